//! `copl-train bench …`: speed and memory benchmarks of training and onboarding (GCF step,
//! onboarding, MoLE training step). The served forward's are `copl-bench`'s.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use copl_trainer::{
    gcf::{self},
    onboard,
};

use super::onboard::print_onboard_bench;

#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// Seconds per GCF training step (full-graph propagation, backward, AdamW; batch
    /// 1 024) and peak memory, for one step engine, on a data set or generated pairs.
    Gcf {
        /// Data set directory; without it, ufp4-shaped pairs for --users users.
        #[arg(long, required_unless_present = "users")]
        data: Option<PathBuf>,
        /// Generated users (16 answers each unless --answers).
        #[arg(long, conflicts_with = "data")]
        users: Option<usize>,
        #[arg(long, default_value_t = 16)]
        answers: usize,
        /// Embedding size d.
        #[arg(long, default_value_t = 64)]
        dim: usize,
        /// Steps to time (one more, untimed, warms up).
        #[arg(long, default_value_t = 3)]
        steps: usize,
        #[arg(long, value_enum, default_value = "fused")]
        engine: gcf::StepEngine,
        /// Layer inputs the fused step keeps (every-other: less memory, ≈ 17 % slower).
        #[arg(long, value_enum, default_value = "all")]
        layer_inputs: gcf::fused::LayerInputs,
        #[arg(long)]
        json: bool,
    },
    /// Latency (p50, p99) and memory of one onboarding, against per-user optimisation.
    Onboard(BenchOnboardArgs),
    /// Training pairs per second of the MoLE reward model (forward, backward, AdamW).
    Mole {
        #[arg(long, default_value = "backbones/minilm")]
        backbone: PathBuf,
        #[arg(long, default_value_t = 16)]
        batch_pairs: usize,
        #[arg(long, default_value_t = 128)]
        tokens: usize,
        #[arg(long, default_value_t = 3)]
        steps: usize,
        #[arg(long, default_value_t = 64)]
        user_dim: usize,
        /// MoLE in the top K layers only, the frozen layers below cached per text
        /// [default: all layers].
        #[arg(long)]
        adapt_layers: Option<usize>,
        /// How the step computes its gradients (packed: the hand-written backward; auto:
        /// packed where it runs).
        #[arg(long, value_enum, default_value = "auto")]
        engine: copl_trainer::mole::train::MoleEngine,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub(crate) struct BenchOnboardArgs {
    /// Checkpoint to onboard onto (with --data: its unseen users' answers).
    #[arg(long, requires = "data", conflicts_with = "users")]
    ckpt: Option<PathBuf>,
    #[arg(long)]
    data: Option<PathBuf>,
    /// Instead of a checkpoint: generate a graph of this many seen users.
    #[arg(long)]
    users: Option<usize>,
    /// Answers per user in the generated graph and per onboarding.
    #[arg(long, default_value_t = 16)]
    answers: usize,
    /// Embedding size of the generated graph.
    #[arg(long, default_value_t = 64)]
    dim: usize,
    /// Onboardings timed per method.
    #[arg(long, default_value_t = 2000)]
    calls: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Gcf {
            data,
            users,
            answers,
            dim,
            steps,
            engine,
            layer_inputs,
            json,
        } => {
            let graph = match (&data, users) {
                (Some(data), _) => gcf::bench::BenchGraph::Data(data),
                (None, users) => gcf::bench::BenchGraph::Generated {
                    users: users.unwrap_or(0),
                    answers,
                    seed: 0,
                },
            };
            let b = gcf::bench::bench_gcf(graph, dim, steps, engine, layer_inputs)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&b)?);
            } else {
                println!(
                    "{:?} ({:?} layer inputs), d = {}, {} users, {} responses, {} + {} edges: {:.3} s a step \
                     ({} timed, {} threads; eq. 2's GEMMs {:.1} GFLOP), peak RSS {:.0} MiB; \
                     graph built in {:.2} s",
                    b.engine,
                    b.layer_inputs,
                    b.dim,
                    b.users,
                    b.responses,
                    b.positive_edges,
                    b.negative_edges,
                    b.seconds_per_step,
                    b.steps,
                    b.threads,
                    b.gemm_gflop_per_step,
                    b.peak_rss_mib.unwrap_or(f64::NAN),
                    b.graph_seconds
                );
            }
            Ok(())
        }
        BenchCommand::Onboard(args) => {
            let bench = match (&args.ckpt, &args.data, args.users) {
                (Some(ckpt), Some(data), _) => {
                    onboard::bench::bench_checkpoint(ckpt, data, args.calls)?
                }
                (None, _, Some(users)) => onboard::bench::bench_generated(
                    users,
                    args.answers,
                    args.dim,
                    args.calls,
                    args.seed,
                )?,
                _ => bail!("give --ckpt and --data, or --users to generate a graph"),
            };
            if args.json {
                println!("{}", serde_json::to_string_pretty(&bench)?);
            } else {
                print_onboard_bench(&bench);
            }
            Ok(())
        }
        BenchCommand::Mole {
            backbone,
            batch_pairs,
            tokens,
            steps,
            user_dim,
            adapt_layers,
            engine,
            json,
        } => {
            let t = copl_trainer::mole::bench::bench_train_step(
                &backbone,
                batch_pairs,
                tokens,
                steps,
                user_dim,
                adapt_layers,
                engine,
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&t)?);
            } else {
                let layers = t
                    .adapt_layers
                    .map_or("all layers".to_string(), |k| format!("top {k} layers"));
                println!(
                    "{:?}: {} pairs x {} tokens, MoLE in {layers}: forward {:.2} s, backward {:.2} s, \
                     AdamW {:.3} s -> {:.2} pairs/s (frozen layers cached); frozen forward \
                     {:.2} s -> {:.2} pairs/s uncached",
                    t.engine,
                    t.batch_pairs,
                    t.tokens,
                    t.forward,
                    t.backward,
                    t.optimiser,
                    t.pairs_per_second,
                    t.frozen_forward,
                    t.pairs_per_second_uncached
                );
            }
            Ok(())
        }
    }
}
