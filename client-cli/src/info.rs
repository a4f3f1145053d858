//! `copl info`: the server's model, checkpoint and limits.

use std::fmt;

use anyhow::Result;
use copl_proto::v1::InfoRequest;
use serde::Serialize;

use crate::{
    connect::{Connection, Target},
    exit::{Failure, refused},
};

#[derive(clap::Args)]
pub struct InfoArgs {
    #[arg(long)]
    pub json: bool,
    /// Another replica to ask (repeatable; the same connection flags): every address's
    /// Info is printed, and the exit code is 21 unless all serve the same checkpoint id.
    #[arg(long, value_name = "ADDR")]
    pub also: Vec<String>,
}

/// The Info answer as `copl info --json` prints it.
#[derive(Serialize)]
pub struct Info {
    pub version: String,
    pub backbone: String,
    pub backbone_family: String,
    pub backbone_sha256: String,
    pub checkpoint: String,
    /// sha256 over the checkpoint's files, 16 hex digits: what replicas compare.
    pub checkpoint_id: String,
    pub loaded_unix_ms: i64,
    /// The checkpoint this one was refreshed from (empty: trained from scratch).
    pub parent_checkpoint_id: String,
    pub checkpoint_format_version: u32,
    pub text_template: String,
    pub embedding_dim: u32,
    pub num_experts: u32,
    pub adapted_projections: Vec<String>,
    pub seen_users: u32,
    pub onboarded_users: u32,
    pub catalogue_responses: u32,
    pub device: String,
    /// The served precision (`f32`, `bf16`).
    pub dtype: String,
    pub population_reward: String,
    pub limits: Limits,
}

#[derive(Serialize)]
pub struct Limits {
    pub max_input_tokens: u32,
    pub max_batch_items: u32,
    pub max_batch_tokens: u32,
    pub max_queued_requests: u32,
    pub max_survey_answers: u32,
    pub max_hops: u32,
    pub max_message_bytes: u32,
    pub max_batch_rows: u32,
    pub batch_linger_micros: u64,
    pub max_concurrent_streams: u32,
}

impl fmt::Display for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.limits;
        writeln!(
            f,
            "copl-server {} on {} in {}",
            self.version, self.device, self.dtype
        )?;
        writeln!(
            f,
            "checkpoint {} (id {}{}, format {}), backbone {} ({}, sha256 {})",
            self.checkpoint,
            self.checkpoint_id,
            if self.parent_checkpoint_id.is_empty() {
                String::new()
            } else {
                format!(", refreshed from {}", self.parent_checkpoint_id)
            },
            self.checkpoint_format_version,
            self.backbone,
            self.backbone_family,
            self.backbone_sha256
                .get(..12)
                .unwrap_or(&self.backbone_sha256)
        )?;
        writeln!(
            f,
            "MoLE: {} experts in {} projections ({}), user embeddings d = {}",
            self.num_experts,
            self.adapted_projections.len(),
            self.adapted_projections.join(", "),
            self.embedding_dim
        )?;
        writeln!(
            f,
            "users: {} seen, {} onboarded; catalogue {} responses; population reward: {}",
            self.seen_users, self.onboarded_users, self.catalogue_responses, self.population_reward
        )?;
        writeln!(f, "template: {}", self.text_template)?;
        write!(
            f,
            "limits: {} input tokens, batches of {} items / {} rows / {} tokens (linger {} µs), \
             {} queued requests, {} survey answers, {} hops, {} message bytes, {} streams",
            l.max_input_tokens,
            l.max_batch_items,
            l.max_batch_rows,
            l.max_batch_tokens,
            l.batch_linger_micros,
            l.max_queued_requests,
            l.max_survey_answers,
            l.max_hops,
            l.max_message_bytes,
            l.max_concurrent_streams
        )
    }
}

pub async fn info(conn: &Connection) -> Result<Info> {
    let i = conn
        .api()
        .info(InfoRequest {})
        .await
        .map_err(refused("Info"))?
        .into_inner();
    let l = i.limits.unwrap_or_default();
    Ok(Info {
        version: i.version,
        backbone: i.backbone,
        backbone_family: i.backbone_family,
        backbone_sha256: i.backbone_sha256,
        checkpoint: i.checkpoint,
        checkpoint_id: i.checkpoint_id,
        loaded_unix_ms: i.loaded_unix_ms,
        parent_checkpoint_id: i.parent_checkpoint_id,
        checkpoint_format_version: i.checkpoint_format_version,
        text_template: i.text_template,
        embedding_dim: i.embedding_dim,
        num_experts: i.num_experts,
        adapted_projections: i.adapted_projections,
        seen_users: i.seen_users,
        onboarded_users: i.onboarded_users,
        catalogue_responses: i.catalogue_responses,
        device: i.device,
        dtype: i.dtype,
        population_reward: i.population_reward,
        limits: Limits {
            max_input_tokens: l.max_input_tokens,
            max_batch_items: l.max_batch_items,
            max_batch_tokens: l.max_batch_tokens,
            max_queued_requests: l.max_queued_requests,
            max_survey_answers: l.max_survey_answers,
            max_hops: l.max_hops,
            max_message_bytes: l.max_message_bytes,
            max_batch_rows: l.max_batch_rows,
            batch_linger_micros: l.batch_linger_micros,
            max_concurrent_streams: l.max_concurrent_streams,
        },
    })
}

/// One replica's Info, as `copl info --also` prints it.
#[derive(Serialize)]
pub struct Replica {
    pub addr: String,
    pub info: Info,
}

/// Every replica's Info (`target` first, then `also`), in order.
#[derive(Serialize)]
pub struct Replicas(pub Vec<Replica>);

impl fmt::Display for Replicas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
                writeln!(f)?;
            }
            writeln!(f, "== {}", r.addr)?;
            write!(f, "{}", r.info)?;
        }
        Ok(())
    }
}

impl Replicas {
    /// Asks `target` and each of `also` (with `target`'s other flags).
    pub async fn ask(target: &Target, also: &[String]) -> Result<Self> {
        let mut replicas = Vec::with_capacity(1 + also.len());
        for addr in std::iter::once(&target.addr).chain(also) {
            let t = Target {
                addr: addr.clone(),
                ..target.clone()
            };
            replicas.push(Replica {
                addr: addr.clone(),
                info: info(&t.connect().await?).await?,
            });
        }
        Ok(Self(replicas))
    }

    /// Fails ([`Failure::Diverged`], exit 21) unless every replica serves one checkpoint.
    pub fn agree(&self) -> Result<()> {
        let first = self.0.first().map(|r| r.info.checkpoint_id.as_str());
        if self
            .0
            .iter()
            .all(|r| Some(r.info.checkpoint_id.as_str()) == first)
        {
            return Ok(());
        }
        let ids: Vec<String> = self
            .0
            .iter()
            .map(|r| format!("{} {}", r.addr, r.info.checkpoint_id))
            .collect();
        Err(Failure::Diverged(ids.join(", ")).into())
    }
}
