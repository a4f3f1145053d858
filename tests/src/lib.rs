//! Helpers for the end-to-end tests in `tests/tests/` (and the trainer's): they run the
//! real binaries (`copl-train`, `copl-server`, `copl`) as a user would, over a tiny random
//! backbone ([`tiny_bert`]).
//!
//! The binaries must be built first: `cargo build --workspace --bins` (the README's
//! test command does this before `cargo test`).

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // Test support: a panic is the failure report.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use tonic::transport::Channel;

pub mod pki;

/// `copl keygen`: (key, sha256 digest).
pub fn keygen() -> (String, String) {
    let stdout = run_ok("copl", &["keygen"]);
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_string()
    };
    (field("key:"), field("sha256:"))
}

/// Path of a workspace binary built in the same profile as the running test.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` before the end-to-end tests",
        path.display()
    );
    path
}

/// Runs a workspace binary with `args` and returns its output.
pub fn run(name: &str, args: &[&str]) -> Output {
    Command::new(binary(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"))
}

/// A command's stdout and stderr as text, for assertions and messages.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Writes a tiny random BERT backbone directory (2 layers, hidden size 16) with
/// MiniLM's tokenizer into `dir`: a real backbone's shape at a test's cost. Needs
/// `backbones/minilm` (`scripts/fetch-backbone.sh minilm`; `make test` fetches it).
///
/// # Panics
/// When MiniLM is not fetched or `dir` cannot be written (a test's failure report).
pub fn tiny_bert(dir: &Path) {
    use candle_core::{DType, Device};
    use candle_nn::{VarBuilder, VarMap};
    use candle_transformers::models::bert::{BertModel, Config};
    let minilm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../backbones/minilm");
    assert!(
        minilm.join("VERIFIED").exists(),
        "run scripts/fetch-backbone.sh minilm (make test does)"
    );
    let config = serde_json::json!({
        "vocab_size": 30522, "hidden_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 32, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0, "max_position_embeddings": 512, "type_vocab_size": 2,
        "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
        "classifier_dropout": null, "model_type": "bert"
    });
    std::fs::create_dir_all(dir).expect("creating the backbone directory");
    std::fs::write(dir.join("config.json"), config.to_string()).expect("writing config.json");
    std::fs::copy(minilm.join("tokenizer.json"), dir.join("tokenizer.json"))
        .expect("copying MiniLM's tokenizer");
    let varmap = VarMap::new();
    let parsed: Config = serde_json::from_value(config).expect("a valid BERT config");
    BertModel::load(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &parsed,
    )
    .expect("a random BERT");
    varmap
        .save(dir.join("model.safetensors"))
        .expect("writing model.safetensors");
}

/// Writes a tiny random Gemma 3 backbone directory (2 layers, hidden size 16, one
/// sliding and one global layer) with Gemma 3 270M's tokenizer into `dir`: the decoder
/// family at a test's cost. Needs `backbones/gemma3-270m`
/// (`scripts/fetch-backbone.sh gemma3-270m`; `make test` fetches it).
///
/// # Panics
/// When the tokenizer is not fetched or `dir` cannot be written.
pub fn tiny_gemma(dir: &Path) {
    use candle_core::{DType, Device};
    use candle_nn::{VarBuilder, VarMap};
    use candle_transformers::models::gemma3::{Config, Model};
    let gemma = Path::new(env!("CARGO_MANIFEST_DIR")).join("../backbones/gemma3-270m");
    assert!(
        gemma.join("VERIFIED").exists(),
        "run scripts/fetch-backbone.sh gemma3-270m (make test does)"
    );
    let config = serde_json::json!({
        "model_type": "gemma3_text", "attention_bias": false, "head_dim": 8,
        "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 16,
        "intermediate_size": 32, "num_attention_heads": 2, "num_hidden_layers": 2,
        "num_key_value_heads": 1, "rms_norm_eps": 1e-6, "rope_theta": 1_000_000.0,
        "rope_local_base_freq": 10_000.0, "vocab_size": 262_144,
        "final_logit_softcapping": null, "attn_logit_softcapping": null,
        "query_pre_attn_scalar": 8, "sliding_window": 16, "sliding_window_pattern": 2,
        "max_position_embeddings": 512
    });
    std::fs::create_dir_all(dir).expect("creating the backbone directory");
    std::fs::write(dir.join("config.json"), config.to_string()).expect("writing config.json");
    std::fs::copy(gemma.join("tokenizer.json"), dir.join("tokenizer.json"))
        .expect("copying Gemma's tokenizer");
    let varmap = VarMap::new();
    let parsed: Config = serde_json::from_value(config).expect("a valid Gemma 3 config");
    Model::new(
        false,
        &parsed,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .expect("a random Gemma 3");
    // Non-trivial norm weights (Gemma scales by 1 + w; a fresh var map may hold zeros),
    // small: at std 0.3 a tiny random Gemma's BF16 scores strayed from F32 by up to 23 %
    // of the largest score, at 0.1 by ≤ 3 % (scripts/gpu/backbone.py, 2026-12-06).
    for (name, var) in varmap.data().lock().expect("the var map").iter() {
        if name.ends_with("norm.weight") {
            var.set(&var.as_tensor().randn_like(0.0, 0.1).expect("norm weights"))
                .expect("setting norm weights");
        }
    }
    varmap
        .save(dir.join("model.safetensors"))
        .expect("writing model.safetensors");
}

/// Runs `copl-train` with `args`; panics with its output when it fails.
pub fn train(args: &[&str]) {
    run_ok("copl-train", args);
}

/// Runs a workspace binary that must succeed; its stdout (panics with its output when
/// it fails).
pub fn run_ok(name: &str, args: &[&str]) -> String {
    let output = run(name, args);
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "{name} {args:?}\n{stdout}\n{stderr}"
    );
    stdout
}

/// Data (ufp2, 60 seen users, 2 unseen), GCF (d = 8) and a MoLE checkpoint over
/// [`tiny_bert`] (max 48 tokens) under `root`: `(data, checkpoint)`.
pub fn tiny_checkpoint(root: &Path) -> (PathBuf, PathBuf) {
    tiny_checkpoint_over(root, tiny_bert)
}

/// [`tiny_checkpoint`] over the backbone `write_backbone` puts in `root/bb`
/// ([`tiny_bert`], [`tiny_gemma`]).
pub fn tiny_checkpoint_over(root: &Path, write_backbone: fn(&Path)) -> (PathBuf, PathBuf) {
    let (data, ckpt, backbone) = (root.join("data"), root.join("ckpt"), root.join("bb"));
    write_backbone(&backbone);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    train(&[
        "synth",
        "--preset",
        "ufp2",
        "--users",
        "60",
        "--unseen-users",
        "2",
        "--seed",
        "1",
        "--out",
        &s(&data),
    ]);
    train(&[
        "gcf",
        "--data",
        &s(&data),
        "--out",
        &s(&ckpt),
        "--dim",
        "8",
        "--layers",
        "1",
        "--epochs",
        "5",
        "--batch-size",
        "10000",
        "--lr",
        "1e-2",
    ]);
    train(&[
        "mole",
        "--data",
        &s(&data),
        "--ckpt",
        &s(&ckpt),
        "--backbone",
        &s(&backbone),
        "--steps",
        "2",
        "--batch-pairs",
        "4",
        "--eval-every",
        "2",
        "--val-pairs",
        "8",
        "--test-pairs",
        "8",
        "--max-tokens",
        "48",
        "--lr",
        "1e-3",
    ]);
    (data, ckpt)
}

/// A copy of [`tiny_checkpoint`]'s `ckpt` at `root/ckpt-regcf` whose GCF embeddings were
/// trained again (more epochs: another embedding space) under the same reward model: a
/// new checkpoint that the users onboarded for `ckpt` must be re-adapted for (issue #18).
pub fn regcf_checkpoint(root: &Path, data: &Path, ckpt: &Path) -> PathBuf {
    let out = root.join("ckpt-regcf");
    std::fs::create_dir_all(&out).unwrap();
    for entry in std::fs::read_dir(ckpt).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, out.join(path.file_name().unwrap())).unwrap();
    }
    let s = |p: &Path| p.to_str().unwrap().to_string();
    train(&[
        "gcf",
        "--data",
        &s(data),
        "--out",
        &s(&out),
        "--dim",
        "8",
        "--layers",
        "1",
        "--epochs",
        "9",
        "--batch-size",
        "10000",
        "--lr",
        "1e-2",
    ]);
    out
}

/// A running copl-server, killed (SIGKILL) on drop.
pub struct Server {
    pub child: Child,
    /// The gRPC address it printed.
    pub addr: String,
    /// Its metrics listener.
    pub metrics: String,
}

/// A port free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /metrics` from `addr` (HTTP/1.0, the body).
pub fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
                .unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).unwrap();
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no metrics listener at {addr}");
}

impl Server {
    /// Starts the server on a free port with `env` set; waits for its `listening on`.
    pub fn start(ckpt: &Path, data_dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_with(ckpt, data_dir, env, &[], Stdio::inherit())
    }

    /// With extra flags, and the log (stderr) sent to `log`.
    pub fn start_with(
        ckpt: &Path,
        data_dir: &Path,
        env: &[(&str, &str)],
        flags: &[&str],
        log: Stdio,
    ) -> Self {
        let metrics = format!("127.0.0.1:{}", free_port());
        let mut child = Command::new(binary("copl-server"))
            .args(["--checkpoint", ckpt.to_str().unwrap()])
            .args(["--data-dir", data_dir.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0"])
            .args(["--metrics-listen", &metrics])
            .args(flags)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Self {
            child,
            addr,
            metrics,
        }
    }

    pub async fn channel(&self) -> Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// Waits until the health service says SERVING for `service`.
    pub async fn serving(&self, service: &str) -> Channel {
        use tonic_health::pb::{
            HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
        };
        let channel = self.channel().await;
        let mut health = HealthClient::new(channel.clone());
        for _ in 0..600 {
            let status = health
                .check(HealthCheckRequest {
                    service: service.to_string(),
                })
                .await
                .unwrap()
                .into_inner()
                .status();
            if status == ServingStatus::Serving {
                return channel;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{service:?} never became SERVING");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One unseen user's answers (chosen, rejected ids) outside the test split of `data`.
pub fn unseen_answers(data: &Path) -> Vec<(String, String)> {
    let dataset = copl_core::data::Dataset::load(data).unwrap();
    // The smallest id, not the set's first: a HashSet's order differs from one call to
    // the next, and callers compare what two calls return.
    let unseen = dataset.unseen_users();
    let user = unseen.iter().min().unwrap().to_string();
    dataset
        .annotations()
        .iter()
        .filter(|a| a.user == user && a.split != copl_core::data::Split::Test)
        .map(|a| (a.chosen.clone(), a.rejected.clone()))
        .collect()
}

/// [`unseen_answers`] as the wire's survey answers (catalogue ids).
pub fn unseen_survey_answers(data: &Path) -> Vec<copl_proto::v1::SurveyAnswer> {
    use copl_proto::v1::{ResponseRef, SurveyAnswer, response_ref::Ref};
    let id = |s: &str| {
        Some(ResponseRef {
            r#ref: Some(Ref::Id(s.to_string())),
        })
    };
    unseen_answers(data)
        .iter()
        .map(|(c, r)| SurveyAnswer {
            chosen: id(c),
            rejected: id(r),
        })
        .collect()
}

/// GetUser of `id`, its embedding included (a failed call panics naming the id).
pub async fn user_info(
    api: &mut copl_proto::v1::reward_service_client::RewardServiceClient<Channel>,
    id: &str,
) -> copl_proto::v1::UserInfo {
    api.get_user(copl_proto::v1::GetUserRequest {
        user_id: id.into(),
        include_embedding: true,
    })
    .await
    .unwrap_or_else(|e| panic!("GetUser {id}: {e:?}"))
    .into_inner()
    .user
    .unwrap_or_else(|| panic!("GetUser {id}: no user in the answer"))
}
