//! `copl-train bench …`: speed and memory benchmarks of training and onboarding (GCF step,
//! onboarding, MoLE training step). The served forward's are `copl-bench`'s.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use copl_trainer::{
    gcf::{self, bench::GcfBench},
    mole::bench::TrainStepTiming,
    onboard::{self, bench::OnboardBench},
};

use super::{Run, dispatch};

#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// Seconds per GCF training step (full-graph propagation, backward, AdamW; batch
    /// 1 024) and peak memory, for one step engine, on a data set or generated pairs.
    Gcf(BenchGcfArgs),
    /// Latency (p50, p99) and memory of one onboarding, against per-user optimisation.
    Onboard(BenchOnboardArgs),
    /// Training pairs per second of the MoLE reward model (forward, backward, AdamW).
    Mole(BenchMoleArgs),
}

/// Runs the benchmark `command` names and prints its result.
pub(crate) fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Gcf(args) => dispatch(args),
        BenchCommand::Onboard(args) => dispatch(args),
        BenchCommand::Mole(args) => dispatch(args),
    }
}

#[derive(Args)]
pub(crate) struct BenchGcfArgs {
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
}

impl Run for BenchGcfArgs {
    type Output = GcfBench;
    fn json(&self) -> bool {
        self.json
    }
    fn run(self) -> Result<GcfBench> {
        let graph = match &self.data {
            Some(data) => gcf::bench::BenchGraph::Data(data),
            None => gcf::bench::BenchGraph::Generated {
                users: self.users.unwrap_or(0),
                answers: self.answers,
                seed: 0,
            },
        };
        gcf::bench::bench_gcf(graph, self.dim, self.steps, self.engine, self.layer_inputs)
    }
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

impl Run for BenchOnboardArgs {
    type Output = OnboardBench;
    fn json(&self) -> bool {
        self.json
    }
    fn run(self) -> Result<OnboardBench> {
        match (&self.ckpt, &self.data, self.users) {
            (Some(ckpt), Some(data), _) => onboard::bench::bench_checkpoint(ckpt, data, self.calls),
            (None, _, Some(users)) => onboard::bench::bench_generated(
                users,
                self.answers,
                self.dim,
                self.calls,
                self.seed,
            ),
            _ => bail!("give --ckpt and --data, or --users to generate a graph"),
        }
    }
}

#[derive(Args)]
pub(crate) struct BenchMoleArgs {
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
}

impl Run for BenchMoleArgs {
    type Output = TrainStepTiming;
    fn json(&self) -> bool {
        self.json
    }
    fn run(self) -> Result<TrainStepTiming> {
        copl_trainer::mole::bench::bench_train_step(
            &self.backbone,
            self.batch_pairs,
            self.tokens,
            self.steps,
            self.user_dim,
            self.adapt_layers,
            self.engine,
        )
    }
}
