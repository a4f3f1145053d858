//! `copl-server`: the CoPL-serve gRPC server.
//!
//! The service itself (scheduler, users, every `copl.v1` RPC, health and reflection) is
//! issue #7 and has not landed yet. Until it does, this binary checks its arguments and
//! refuses to start with a message that says so, rather than pretending to serve.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Parser;

/// mimalloc: glibc malloc's page faults on large tensors cost up to half a training step.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "copl-server",
    version,
    about = "Serve a CoPL checkpoint over gRPC (copl.v1)"
)]
struct Cli {
    /// Checkpoint directory written by `copl-train` (manifest.json, *.safetensors).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Optional configuration file (TOML).
    #[arg(long)]
    config: Option<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if !cli.checkpoint.is_dir() {
        bail!("checkpoint {} is not a directory", cli.checkpoint.display());
    }
    let _ = (copl_proto::FILE_DESCRIPTOR_SET, cli.config);
    bail!(
        "copl-server cannot serve yet: the service lands with issue #7 (this build carries the \
         wire contract, proto/copl/v1/reward.proto, and the data tools only)"
    )
}
