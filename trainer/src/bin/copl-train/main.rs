//! `copl-train`: offline training, evaluation and training benchmarks for CoPL-serve.
//! This file parses the command line and dispatches; each subcommand's arguments and run
//! are in [`commands`], its result printed as text (`Display`) or JSON (`--json`).

mod commands;

use anyhow::Result;
use clap::{Parser, Subcommand};
use commands::{
    bench::BenchCommand,
    data::{CatalogueArgs, CheckArgs},
    dispatch,
    eval::{
        EvalArgs, EvalExpertsArgs, EvalGcfArgs, EvalOracleArgs, EvalProjectionArgs, EvalUnseenArgs,
        ScoreArgs,
    },
    gcf::GcfArgs,
    mole::MoleArgs,
    refresh::RefreshArgs,
    synth::SynthArgs,
};

/// mimalloc: glibc malloc's page faults on large tensors cost up to half a training step.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "copl-train",
    version,
    about = "Offline training and benchmarks for CoPL-serve"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a synthetic personalised-preference benchmark (the paper's four settings).
    Synth(SynthArgs),
    /// Load and validate a preference data set, and print its counts.
    Check(CheckArgs),
    /// Learn user and response embeddings with GCF (paper §4.1) and write them to a checkpoint.
    Gcf(GcfArgs),
    /// Accuracy of a checkpoint's GCF embeddings on seen users' test pairs.
    EvalGcf(EvalGcfArgs),
    /// Onboard the data set's unseen users from their answers (paper §4.3) and report
    /// their accuracy: CoPL 2/4-hop, naive average, per-user optimisation, population;
    /// accuracy against the number of answers, random against suggested survey pairs.
    EvalUnseen(EvalUnseenArgs),
    /// Train the MoLE reward model (paper §4.2) over a checkpoint's GCF embeddings.
    Mole(MoleArgs),
    /// Reward-model accuracy: seen users' test pairs and unseen users' after onboarding,
    /// overall, per group, controversial versus common (paper Table 3).
    Eval(EvalArgs),
    /// The paper's G-Oracle (Table 2): each user (seen and unseen) scored by the Uniform
    /// model of their ground-truth group, on the test pairs `eval` scores.
    EvalOracle(EvalOracleArgs),
    /// Expert allocation by group (paper Fig. 6): every seen user with a ground-truth
    /// group routed by the checkpoint's gates, the share of each group per expert and
    /// projection.
    EvalExperts(EvalExpertsArgs),
    /// 2-D picture of user embeddings (paper Fig. 1 / A2): seen users' GCF embeddings
    /// and unseen users' onboarded ones on the seen users' two principal components.
    EvalProjection(EvalProjectionArgs),
    /// Rewards of responses to a prompt for a seen user, as `eval` computes them (to
    /// check a server's scores against).
    Score(ScoreArgs),
    /// Write `catalogue.jsonl` (response texts by id, which the server needs) into a
    /// checkpoint made before checkpoints carried it, from the data it was trained on.
    Catalogue(CatalogueArgs),
    /// A new checkpoint that learnt from the users a server onboarded: their kept
    /// answers join the data, GCF trains warm-started from the parent, the reward model
    /// carries over, the manifest records the lineage (issue #18).
    Refresh(RefreshArgs),
    /// Benchmarks (speed, memory).
    #[command(subcommand)]
    Bench(BenchCommand),
}

fn main() -> Result<()> {
    copl_trainer::memory::keep_freed_pages();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Synth(c) => dispatch(c),
        Command::Check(c) => dispatch(c),
        Command::Gcf(c) => dispatch(c),
        Command::EvalGcf(c) => dispatch(c),
        Command::EvalUnseen(c) => dispatch(c),
        Command::Mole(c) => dispatch(c),
        Command::Eval(c) => dispatch(c),
        Command::EvalOracle(c) => dispatch(c),
        Command::EvalExperts(c) => dispatch(c),
        Command::EvalProjection(c) => dispatch(c),
        Command::Score(c) => dispatch(c),
        Command::Catalogue(c) => dispatch(c),
        Command::Refresh(c) => dispatch(c),
        Command::Bench(c) => commands::bench::run(c),
    }
}
