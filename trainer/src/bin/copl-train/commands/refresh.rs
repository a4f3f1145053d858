//! `copl-train refresh`: its arguments and the run (`RefreshSummary`'s `Display`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use copl_trainer::refresh::{RefreshConfig, RefreshSummary, run_refresh};

#[derive(Args)]
pub(crate) struct RefreshArgs {
    /// The parent checkpoint's data set (the one its GCF was trained on; checked).
    #[arg(long)]
    data: PathBuf,
    /// The server's user store: its data directory (or that directory's users/), or a
    /// Redis URL (`redis://…`, `rediss://…`).
    #[arg(long)]
    users: String,
    /// The server's `store.redis_prefix` (Redis only).
    #[arg(long, default_value = "copl")]
    redis_prefix: String,
    /// The parent checkpoint.
    #[arg(long)]
    ckpt: PathBuf,
    /// The new checkpoint (created; the enlarged data set is written to OUT/data).
    #[arg(long)]
    out: PathBuf,
    /// GCF epochs [default: the parent's].
    #[arg(long)]
    epochs: Option<usize>,
    /// GCF's peak learning rate [default: the parent's].
    #[arg(long)]
    lr: Option<f64>,
    /// Keep GCF's last epoch, not the best by validation accuracy (the validation pairs
    /// are nearly all the parent's seen users').
    #[arg(long)]
    keep_last: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

impl super::Run for RefreshArgs {
    type Output = super::Written<RefreshSummary>;
    fn json(&self) -> bool {
        self.json
    }
    fn run(self) -> Result<Self::Output> {
        let config = RefreshConfig {
            data: self.data,
            users: self.users,
            redis_prefix: self.redis_prefix,
            parent: self.ckpt,
            out: self.out.clone(),
            epochs: self.epochs,
            lr: self.lr,
            keep_last: self.keep_last,
        };
        let summary = run_refresh(&config, |record, _| {
            tracing::debug!(
                epoch = record.epoch,
                val = record.val_accuracy,
                "refresh GCF epoch"
            );
        })?;
        Ok(super::Written {
            value: summary,
            to: self.out,
            seconds: None,
        })
    }
}
