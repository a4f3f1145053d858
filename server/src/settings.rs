//! The server's settings: defaults < TOML file (`--config`) < `COPL_…` environment
//! (`COPL_LISTEN`, `COPL_LIMITS__MAX_BATCH_TOKENS`, …) < command-line flags, merged by
//! the `config` crate. Every option is documented in `deploy/copl-server.example.toml`
//! (a test holds it to that) and `docs/operations.md`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Everything the server reads at start.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Checkpoint directory (`copl-train gcf` + `copl-train mole`).
    pub checkpoint: Option<PathBuf>,
    /// Backbone directory; default: the one the checkpoint's manifest names.
    pub backbone: Option<PathBuf>,
    /// `cpu`, or `cuda:N` in a build with the `cuda` feature. On a GPU the batch limits'
    /// defaults are [`Settings::gpu_defaults`]'s.
    pub device: String,
    /// The served model's precision: `auto` (BF16 on a GPU, F32 on the CPU), `f32` or
    /// `bf16`.
    #[serde(default = "auto")]
    pub dtype: String,
    /// gRPC listen address.
    pub listen: String,
    /// Prometheus metrics address (`GET /metrics`); empty: no metrics listener.
    pub metrics_listen: String,
    /// HTTP/JSON address (`POST /v1/score`, `/v1/compare`, OpenRLHF's `/get_reward`;
    /// same keys and limits as gRPC; plaintext); empty (the default): none.
    pub http_listen: String,
    /// Where the embedded store keeps onboarded users (`users/` below it).
    pub data_dir: PathBuf,
    /// Which store holds onboarded users.
    pub store: Store,
    /// Seconds in-flight calls get to finish after SIGTERM / Ctrl-C.
    pub shutdown_grace_seconds: u64,
    /// `text` or `json` log lines (tracing; level from `RUST_LOG`, default info).
    pub log_format: String,
    /// OTLP/HTTP traces endpoint (e.g. `http://otel-collector:4318/v1/traces`) every
    /// call's spans are exported to; empty (the default): none. Needs a build with the
    /// `otlp` feature.
    #[serde(default)]
    pub otlp_endpoint: String,
    pub limits: Limits,
    pub scoring: Scoring,
    pub onboarding: Onboarding,
    // Empty lists and strings do not survive the defaults' round trip through the config
    // crate: these two sections default field by field.
    #[serde(default)]
    pub auth: AuthSettings,
    #[serde(default)]
    pub tls: Tls,
}

/// API keys (docs/security.md): sha256 hex digests of the keys, never the keys.
/// Both empty: no authentication.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Keys that may score (Score, ScoreBatch, ScoreStream, CompareResponses, GetUser,
    /// SuggestSurvey, Info).
    pub scoring_keys_sha256: Vec<String>,
    /// Keys that may also onboard and delete users.
    pub admin_keys_sha256: Vec<String>,
}

/// TLS for the gRPC port (rustls). Empty `cert`: plaintext.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    /// PEM certificate chain.
    pub cert: String,
    /// PEM private key.
    pub key: String,
    /// PEM CA certificates: when set, clients must present a certificate it signed
    /// (mutual TLS).
    pub client_ca: String,
}

/// Hard limits; requests beyond them are refused (INVALID_ARGUMENT or
/// RESOURCE_EXHAUSTED). `Info` reports them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Tokens of one templated input; default and maximum: the model's `max_tokens`.
    pub max_input_tokens: Option<usize>,
    /// Items in one ScoreBatch call.
    pub max_batch_items: usize,
    /// Tokens in one model batch: the rows' own tokens with the packed forward, rows ×
    /// longest row where the forward pads.
    pub max_batch_tokens: usize,
    /// Rows in one model batch.
    pub max_batch_rows: usize,
    /// When the model is idle and a batch has fewer rows than the previous one, wait for
    /// more requests while they keep arriving less than this many microseconds apart (at
    /// most 4× in all); 0 = run at once. The callers of a batch are answered together and
    /// come back together: this lets their requests share one batch again instead of a
    /// 1-row batch and the rest. A lone caller never waits.
    pub batch_linger_micros: u64,
    /// Requests waiting in the queue before RESOURCE_EXHAUSTED.
    pub max_queued_requests: usize,
    /// Answers in one OnboardUser call; pairs in one SuggestSurvey answer.
    pub max_survey_answers: usize,
    /// Largest `hops` OnboardUser accepts.
    pub max_hops: usize,
    /// Largest gRPC message decoded, bytes.
    pub max_message_bytes: usize,
    /// Concurrent calls (HTTP/2 streams) one client connection may have open.
    pub max_concurrent_streams: u32,
    /// Calls in flight on the whole server, over every connection (an open ScoreStream
    /// counts until it ends); one more is answered RESOURCE_EXHAUSTED before its body is
    /// read. Bounds memory at about this many × `max_message_bytes` of decoded requests.
    pub max_calls_in_flight: usize,
    /// Seconds between HTTP/2 pings on an idle connection (a peer that does not answer
    /// within 20 s is dropped); 0 = no pings.
    pub http2_keepalive_seconds: u64,
    /// Seconds after which a connection is asked to go away (GOAWAY; its calls finish,
    /// for up to 30 s more): clients reconnect and land on other replicas behind a
    /// connection-level balancer; 0 = connections live on.
    pub max_connection_age_seconds: u64,
}

/// The onboarded-user store: `embedded` (files under `data_dir`, one server) or `redis`
/// (shared by every replica: a user onboarded on one is scored on all).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    /// `embedded` or `redis`.
    pub backend: String,
    /// With `redis`: the server, e.g. `redis://10.0.0.5:6379/0` or `rediss://…` (TLS).
    pub redis_url: String,
    /// With `redis`: the key prefix (`<prefix>:<embedding space>:user:<id>`), so that
    /// several deployments can share one Redis.
    pub redis_prefix: String,
    /// With `redis`: milliseconds a command may take before the call answers
    /// UNAVAILABLE.
    pub redis_timeout_ms: u64,
    /// With a `rediss://` URL: a PEM file of the CA that signed Redis' certificate
    /// (empty: the system's roots).
    #[serde(default)]
    pub redis_ca_cert: String,
    /// With a `rediss://` URL and a Redis that asks for client certificates: this
    /// server's PEM certificate and key (both or neither).
    #[serde(default)]
    pub redis_client_cert: String,
    #[serde(default)]
    pub redis_client_key: String,
    /// With `embedded`: what a user file that cannot be loaded at start does —
    /// `quarantine` (renamed `.corrupt`, logged, counted; the rest served) or `refuse`
    /// (the server does not start, naming the file).
    pub on_corrupt: String,
}

/// How scoring treats what a request leaves open.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scoring {
    /// A user id neither seen nor onboarded, where the request does not say
    /// (`unknown_user` UNSPECIFIED): `error` (NOT_FOUND) or `population` (the population
    /// reward, flagged `user_unknown` in the result and counted).
    pub unknown_user: String,
}

impl Scoring {
    /// Whether an unknown user gets the population reward under `asked` (the request's
    /// `unknown_user`; UNSPECIFIED is this setting).
    pub fn population_for_unknown(&self, asked: copl_proto::v1::UnknownUser) -> bool {
        use copl_proto::v1::UnknownUser;
        match asked {
            UnknownUser::Population => true,
            UnknownUser::Error => false,
            UnknownUser::Unspecified => self.unknown_user == "population",
        }
    }
}

/// Onboarding settings (docs/onboarding.md).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Onboarding {
    /// Fewer neighbours than this within `hops` widen the walk (fallbacks).
    pub min_neighbours: usize,
    /// Seen users in the survey committee.
    pub survey_committee: usize,
    /// Candidate pairs the survey considers.
    pub survey_pool: usize,
    /// When stored users onboarded for another checkpoint are re-adapted from their
    /// answers: `"lazy"` (on first use) or `"eager"` (at load; a Redis store is
    /// scanned). Issue #18.
    pub readapt: String,
}

impl Onboarding {
    /// [`Self::readapt`] as the users module takes it (checked by `Settings::check`).
    pub fn readapt(&self) -> crate::users::Readapt {
        if self.readapt == "eager" {
            crate::users::Readapt::Eager
        } else {
            crate::users::Readapt::Lazy
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            checkpoint: None,
            backbone: None,
            device: "cpu".into(),
            dtype: auto(),
            listen: "0.0.0.0:50051".into(),
            // Loopback: the metrics carry no auth (issue #15); deployments that scrape
            // from outside the host set 0.0.0.0 (the Dockerfile and Kubernetes config do).
            metrics_listen: "127.0.0.1:9100".into(),
            http_listen: String::new(),
            data_dir: PathBuf::from("copl-data"),
            store: Store {
                backend: "embedded".into(),
                redis_url: "redis://127.0.0.1:6379/".into(),
                redis_prefix: "copl".into(),
                redis_timeout_ms: 1000,
                redis_ca_cert: String::new(),
                redis_client_cert: String::new(),
                redis_client_key: String::new(),
                on_corrupt: "quarantine".into(),
            },
            shutdown_grace_seconds: 30,
            log_format: "text".into(),
            otlp_endpoint: String::new(),
            limits: Limits {
                max_input_tokens: None,
                max_batch_items: 256,
                max_batch_tokens: 16_384,
                max_batch_rows: 64,
                batch_linger_micros: 500,
                max_queued_requests: 1024,
                max_survey_answers: 64,
                max_hops: 6,
                max_message_bytes: 4 << 20,
                max_concurrent_streams: 256,
                max_calls_in_flight: 1024,
                http2_keepalive_seconds: 60,
                max_connection_age_seconds: 0,
            },
            scoring: Scoring {
                unknown_user: "error".into(),
            },
            onboarding: Onboarding {
                min_neighbours: 5,
                survey_committee: 512,
                survey_pool: 2048,
                readapt: "lazy".into(),
            },
            auth: AuthSettings::default(),
            tls: Tls::default(),
        }
    }
}

/// Flag values that override everything else (None: not given).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub checkpoint: Option<PathBuf>,
    pub backbone: Option<PathBuf>,
    pub device: Option<String>,
    pub listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub http_listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub log_format: Option<String>,
}

fn auto() -> String {
    "auto".into()
}

impl Settings {
    /// The defaults where the model runs on a GPU: model batches eight times the CPU's
    /// in rows and tokens (512 rows, 131 072 tokens). The CPU's 64 rows and 16 384 tokens
    /// keep a CPU batch near 100 ms; a GPU runs a Gemma-2B batch of 64 × 512 in tens of
    /// milliseconds and needs larger batches to fill itself (issue #14). Files, the
    /// environment and flags override them as they do every default.
    pub fn gpu_defaults() -> Self {
        let mut s = Self::default();
        s.limits.max_batch_rows = 512;
        s.limits.max_batch_tokens = 131_072;
        s
    }

    /// Defaults ([`Self::gpu_defaults`] when the merged settings name a GPU device), then
    /// `file`, then the `COPL_` environment, then `flags`.
    pub fn load(file: Option<&std::path::Path>, flags: &Overrides) -> Result<Self> {
        let settings = Self::load_over(Settings::default(), file, flags)?;
        if copl_core::device::names_gpu(&settings.device) {
            return Self::load_over(Self::gpu_defaults(), file, flags);
        }
        Ok(settings)
    }

    fn load_over(
        defaults: Settings,
        file: Option<&std::path::Path>,
        flags: &Overrides,
    ) -> Result<Self> {
        let defaults =
            config::Config::try_from(&defaults).context("encoding the default settings")?;
        let mut builder = config::Config::builder().add_source(defaults);
        if let Some(path) = file {
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        builder = builder.add_source(
            config::Environment::with_prefix("COPL")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                // COPL_AUTH__ADMIN_KEYS_SHA256=d1,d2
                .list_separator(",")
                .with_list_parse_key("auth.scoring_keys_sha256")
                .with_list_parse_key("auth.admin_keys_sha256"),
        );
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        builder = builder
            .set_override_option("checkpoint", path(&flags.checkpoint))?
            .set_override_option("backbone", path(&flags.backbone))?
            .set_override_option("device", flags.device.clone())?
            .set_override_option("listen", flags.listen.clone())?
            .set_override_option("metrics_listen", flags.metrics_listen.clone())?
            .set_override_option("http_listen", flags.http_listen.clone())?
            .set_override_option("data_dir", path(&flags.data_dir))?
            .set_override_option("log_format", flags.log_format.clone())?;
        let settings: Settings = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .with_context(|| match file {
                Some(p) => format!(
                    "reading settings (file {}, COPL_* environment)",
                    p.display()
                ),
                None => "reading settings (COPL_* environment)".to_string(),
            })?;
        settings.check()?;
        Ok(settings)
    }

    /// Refuses settings that cannot work, naming the field.
    fn check(&self) -> Result<()> {
        let l = &self.limits;
        for (field, value) in [
            ("limits.max_batch_items", l.max_batch_items),
            ("limits.max_batch_tokens", l.max_batch_tokens),
            ("limits.max_batch_rows", l.max_batch_rows),
            ("limits.max_queued_requests", l.max_queued_requests),
            ("limits.max_calls_in_flight", l.max_calls_in_flight),
            ("limits.max_survey_answers", l.max_survey_answers),
            ("limits.max_message_bytes", l.max_message_bytes),
            (
                "onboarding.survey_committee",
                self.onboarding.survey_committee,
            ),
            ("onboarding.survey_pool", self.onboarding.survey_pool),
        ] {
            if value == 0 {
                anyhow::bail!("setting {field} must be at least 1");
            }
        }
        if self.tls.cert.is_empty() != self.tls.key.is_empty() {
            anyhow::bail!("settings tls.cert and tls.key: give both (TLS) or neither (plaintext)");
        }
        if !self.http_listen.is_empty() && !self.tls.cert.is_empty() {
            anyhow::bail!(
                "settings http_listen and tls.cert: the HTTP port has no TLS of its own; \
                 terminate TLS in front of it (an ingress, a sidecar) or leave http_listen empty"
            );
        }
        if !self.tls.client_ca.is_empty() && self.tls.cert.is_empty() {
            anyhow::bail!("setting tls.client_ca needs tls.cert and tls.key");
        }
        if !matches!(self.store.backend.as_str(), "embedded" | "redis") {
            anyhow::bail!(
                "setting store.backend = {:?}: use \"embedded\" or \"redis\"",
                self.store.backend
            );
        }
        let store = &self.store;
        if store.redis_client_cert.is_empty() != store.redis_client_key.is_empty() {
            anyhow::bail!(
                "settings store.redis_client_cert and store.redis_client_key: give both \
                 (a client certificate for Redis) or neither"
            );
        }
        let redis_tls = !store.redis_ca_cert.is_empty() || !store.redis_client_cert.is_empty();
        if redis_tls && !store.redis_url.starts_with("rediss://") {
            anyhow::bail!(
                "settings store.redis_ca_cert / redis_client_cert are for TLS: store.redis_url \
                 must start with rediss:// (it is {})",
                redacted(&store.redis_url)
            );
        }
        if l.max_hops < 2 || !l.max_hops.is_multiple_of(2) {
            anyhow::bail!(
                "setting limits.max_hops = {} must be even and >= 2",
                l.max_hops
            );
        }
        if !matches!(self.store.on_corrupt.as_str(), "quarantine" | "refuse") {
            anyhow::bail!(
                "setting store.on_corrupt = {:?}: use \"quarantine\" or \"refuse\"",
                self.store.on_corrupt
            );
        }
        if !matches!(self.onboarding.readapt.as_str(), "lazy" | "eager") {
            anyhow::bail!(
                "setting onboarding.readapt = {:?}: use \"lazy\" or \"eager\"",
                self.onboarding.readapt
            );
        }
        if !matches!(self.scoring.unknown_user.as_str(), "error" | "population") {
            anyhow::bail!(
                "setting scoring.unknown_user = {:?}: use \"error\" or \"population\"",
                self.scoring.unknown_user
            );
        }
        if !self.otlp_endpoint.is_empty() {
            if !cfg!(feature = "otlp") {
                anyhow::bail!(
                    "setting otlp_endpoint = {:?}: this copl-server was built without OTLP \
                     export (cargo build -p copl-server --features otlp)",
                    self.otlp_endpoint
                );
            }
            if !(self.otlp_endpoint.starts_with("http://")
                || self.otlp_endpoint.starts_with("https://"))
            {
                anyhow::bail!(
                    "setting otlp_endpoint = {:?}: an http:// or https:// URL (OTLP over HTTP, \
                     e.g. http://otel-collector:4318/v1/traces)",
                    self.otlp_endpoint
                );
            }
        }
        if let Err(e) = copl_core::device::check_dtype(&self.dtype) {
            anyhow::bail!("setting {e}");
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            anyhow::bail!(
                "setting log_format = {:?}: use text or json",
                self.log_format
            );
        }
        Ok(())
    }
}

pub use copl_core::redact::redacted;

#[cfg(test)]
mod tests;
