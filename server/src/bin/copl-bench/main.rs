//! `copl-bench`: the serving benchmarks, beside the server whose path they time.
//! `forward` times the reward model's served forward (the packed path the backend runs,
//! and candle's reference) at fixed and mixed lengths; `serve` runs `copl bench`'s work
//! through `RewardModel::score_served` in this process at the server's batch sizes, the
//! bare-model side of the server's overhead (scripts/serve-benchmark.sh); `scores`
//! scores a checkpoint on a device in a dtype and holds it to saved scores
//! (scripts/gpu-check.sh). Each prints a table, or its typed rows as JSON with `--json`.

mod forward;
mod scores;
mod serve;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// The server's allocator: the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "copl-bench",
    version,
    about = "Benchmarks of the served reward model (the forward, the bare model at the server's batch sizes)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// JSON (the typed rows) instead of the table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Tokens per second of the reward model's served forward (packed and reference):
    /// backbone alone, with MoLE for one user, with MoLE for a batch of different users;
    /// every row of one length and a mix of lengths.
    Forward {
        /// Backbone directory (scripts/fetch-backbone.sh minilm).
        #[arg(long, default_value = "backbones/minilm")]
        backbone: PathBuf,
        #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
        batches: Vec<usize>,
        #[arg(long, value_delimiter = ',', default_value = "128,512")]
        tokens: Vec<usize>,
        /// Timed forwards per configuration (after one warm-up), at least; more when one
        /// is short (about a second in all, at most 50). The median is reported.
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// User-embedding size the gates read.
        #[arg(long, default_value_t = 64)]
        user_dim: usize,
        /// Which served forwards to time: `packed` (the server's), `reference` (candle).
        /// Off the CPU or in BF16 the server runs the reference: `packed` then times it.
        #[arg(long, value_delimiter = ',', default_value = "packed,reference")]
        paths: Vec<String>,
        /// `cpu` or `cuda:N`.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// `auto` (BF16 on a GPU), `f32` or `bf16`.
        #[arg(long, default_value = "auto")]
        dtype: String,
        /// Which rows to time.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "backbone,mole_one_user,mole_mixed_users"
        )]
        variants: Vec<String>,
    },
    /// A checkpoint's served scores for a reproducible set of rows (the first eight seen
    /// users in turn, random tokens of mixed lengths up to the model's limit), the largest
    /// difference between a mixed batch and each row alone, and with `--expect` the
    /// largest difference from saved scores (`--json` of a run elsewhere): refused
    /// beyond `--tolerance` × max(1, largest |saved score|).
    Scores {
        #[arg(long)]
        ckpt: PathBuf,
        /// Backbone directory [default: the one the manifest names].
        #[arg(long)]
        backbone: Option<PathBuf>,
        /// `cpu` or `cuda:N`.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// `auto` (BF16 on a GPU, F32 on the CPU), `f32` or `bf16`.
        #[arg(long, default_value = "auto")]
        dtype: String,
        #[arg(long, default_value_t = 32)]
        rows: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Saved scores (`copl-bench scores --json` on the same checkpoint, rows, seed).
        #[arg(long)]
        expect: Option<PathBuf>,
        /// Allowed difference from `--expect`, relative to max(1, largest |score|). The
        /// default is BF16's against F32: tiny random checkpoints differ by up to 3 %
        /// (2026-12-06), a GPU sums in another order, and a wrong kernel is off by the
        /// score's own size. F32 against F32 takes 1e-3.
        #[arg(long, default_value_t = 0.1)]
        tolerance: f32,
    },
    /// The bare-model side of the serving benchmark: `copl bench`'s work (one text, users
    /// in turn) scored through `copl_core::model` in this process, in batches of each size.
    Serve {
        #[arg(long)]
        ckpt: PathBuf,
        /// Backbone directory [default: the one the manifest names].
        #[arg(long)]
        backbone: Option<PathBuf>,
        /// Batch sizes (the server's batch at concurrency 1, 8, 64).
        #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
        batches: Vec<usize>,
        /// Seconds per batch size.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Seen users scored for, in turn [default: the first eight].
        #[arg(long, value_delimiter = ',', default_value = "")]
        users: Vec<String>,
        /// The text scored (scripts/serve-benchmark.sh passes `copl bench`'s).
        #[arg(long)]
        prompt: String,
        #[arg(long)]
        response: String,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Forward {
            backbone,
            batches,
            tokens,
            repeats,
            user_dim,
            paths,
            device,
            dtype,
            variants,
        } => {
            let rows = forward::bench_forward(&forward::ForwardBench {
                dir: &backbone,
                batches: &batches,
                lengths: &tokens,
                repeats,
                user_dim,
                paths: &paths,
                device: &device,
                dtype: &dtype,
                variants: &variants,
            })?;
            print(&forward::ForwardRows(rows), cli.json)
        }
        Command::Scores {
            ckpt,
            backbone,
            device,
            dtype,
            rows,
            seed,
            expect,
            tolerance,
        } => {
            let backbone = copl_core::checkpoint::Manifest::backbone_of(&ckpt, backbone)?;
            let check = scores::scores(&scores::Scores {
                ckpt: &ckpt,
                backbone: &backbone,
                device: &device,
                dtype: &dtype,
                rows,
                seed,
                expect: expect.as_deref(),
                tolerance,
            })?;
            print(&check, cli.json)
        }
        Command::Serve {
            ckpt,
            backbone,
            batches,
            duration,
            users,
            prompt,
            response,
        } => {
            let users: Vec<String> = users.into_iter().filter(|u| !u.is_empty()).collect();
            let backbone = copl_core::checkpoint::Manifest::backbone_of(&ckpt, backbone)?;
            let rows = serve::bench_serve(&serve::ServeBench {
                ckpt: &ckpt,
                backbone: &backbone,
                users: &users,
                prompt: &prompt,
                response: &response,
                batches: &batches,
                seconds: duration,
            })?;
            print(&serve::ServeRows(rows), cli.json)
        }
    }
}

/// `result` as JSON or as its table.
fn print<T: serde::Serialize + std::fmt::Display>(result: &T, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(result)?);
    } else {
        print!("{result}");
    }
    Ok(())
}
