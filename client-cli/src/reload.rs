//! `copl reload`: the server loads a checkpoint beside the serving one and swaps it in
//! (ReloadCheckpoint, admin key).

use std::{fmt, path::PathBuf};

use anyhow::Result;
use copl_proto::v1::ReloadCheckpointRequest;
use serde::Serialize;

use crate::{connect::Connection, exit::refused};

#[derive(clap::Args)]
pub struct ReloadArgs {
    /// The checkpoint directory, as the server sees it [default: the one it was started
    /// with, read again].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

/// The ReloadCheckpoint answer.
#[derive(Serialize)]
pub struct Reloaded {
    pub checkpoint: String,
    pub checkpoint_id: String,
    pub previous_checkpoint_id: String,
    pub load_ms: u64,
}

impl fmt::Display for Reloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "serving {} (id {}; was {}), loaded and warmed in {} ms",
            self.checkpoint, self.checkpoint_id, self.previous_checkpoint_id, self.load_ms
        )
    }
}

pub async fn reload(args: &ReloadArgs, conn: &Connection) -> Result<Reloaded> {
    let r = conn
        .api()
        .reload_checkpoint(ReloadCheckpointRequest {
            checkpoint: args
                .checkpoint
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        })
        .await
        .map_err(refused("ReloadCheckpoint"))?
        .into_inner();
    Ok(Reloaded {
        checkpoint: r.checkpoint,
        checkpoint_id: r.checkpoint_id,
        previous_checkpoint_id: r.previous_checkpoint_id,
        load_ms: r.load_ms,
    })
}
