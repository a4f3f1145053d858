//! `copl-train`: offline training and benchmarks for CoPL-serve. This file parses the
//! command line and dispatches; each family of subcommands has its arguments and its
//! printing in [`commands`].

mod commands;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use commands::{
    bench::BenchCommand,
    gcf::{GcfArgs, print_eval},
    mole::{MoleArgs, backbone_of, parse_group_ckpt, print_mole_eval},
    onboard::print_unseen,
    synth::SynthArgs,
};
use copl_core::data::Dataset;
use copl_trainer::{gcf, onboard};

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
    /// Learn user and response embeddings with GCF (paper §4.1) and write them to a checkpoint.
    Gcf(GcfArgs),
    /// Accuracy of a checkpoint's GCF embeddings on seen users' test pairs.
    EvalGcf {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        ckpt: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Expert allocation by group (paper Fig. 6): every seen user with a ground-truth
    /// group routed by the checkpoint's gates, the share of each group per expert and
    /// projection.
    EvalExperts {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        ckpt: PathBuf,
        /// Backbone directory (default: the one the manifest names under backbones/).
        #[arg(long)]
        backbone: Option<PathBuf>,
    },
    /// 2-D picture of user embeddings (paper Fig. 1 / A2): seen users' GCF embeddings
    /// and unseen users' onboarded ones on the seen users' two principal components.
    EvalProjection {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        ckpt: PathBuf,
    },
    /// Write `catalogue.jsonl` (response texts by id, which the server needs) into a
    /// checkpoint made before checkpoints carried it, from the data it was trained on.
    Catalogue {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        ckpt: PathBuf,
    },
    /// Train the MoLE reward model (paper §4.2) over a checkpoint's GCF embeddings.
    Mole(MoleArgs),
    /// Reward-model accuracy: seen users' test pairs and unseen users' after onboarding,
    /// overall, per group, controversial versus common (paper Table 3).
    Eval {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        ckpt: PathBuf,
        /// Backbone directory [default: the one the manifest names].
        #[arg(long)]
        backbone: Option<PathBuf>,
        /// Seen users' test pairs scored, spread over the split, and as many unseen users'
        /// (0 = all).
        #[arg(long, default_value_t = 0)]
        test_pairs: usize,
        /// Split --test-pairs evenly over the ground-truth groups (imbalanced data: the
        /// minority measured as precisely as the majority; `overall` weighted back by the
        /// groups' shares).
        #[arg(long)]
        per_group: bool,
        #[arg(long)]
        json: bool,
    },
    /// The paper's G-Oracle (Table 2): each user (seen and unseen) scored by the Uniform
    /// model of their ground-truth group, on the test pairs `eval` scores.
    EvalOracle {
        #[arg(long)]
        data: PathBuf,
        /// GROUP=CKPT, once per group: a model from `mole --variant uniform --group GROUP`.
        #[arg(long = "group-ckpt", value_name = "GROUP=CKPT", required = true, value_parser = parse_group_ckpt)]
        models: Vec<(String, PathBuf)>,
        /// Backbone directory [default: the one the first model's manifest names].
        #[arg(long)]
        backbone: Option<PathBuf>,
        /// As `eval --test-pairs`.
        #[arg(long, default_value_t = 0)]
        test_pairs: usize,
        /// As `eval --per-group`.
        #[arg(long)]
        per_group: bool,
        #[arg(long)]
        json: bool,
    },
    /// Rewards of responses to a prompt for a seen user, as `eval` computes them (to
    /// check a server's scores against).
    Score {
        #[arg(long)]
        ckpt: PathBuf,
        /// Backbone directory [default: the one the manifest names].
        #[arg(long)]
        backbone: Option<PathBuf>,
        #[arg(long)]
        user: String,
        #[arg(long)]
        prompt: String,
        /// One or more responses (repeat the flag).
        #[arg(long, required = true)]
        response: Vec<String>,
    },
    /// Onboard the data set's unseen users from their answers (paper §4.3) and report
    /// their accuracy: CoPL 2/4-hop, naive average, per-user optimisation, population;
    /// accuracy against the number of answers, random against suggested survey pairs.
    EvalUnseen {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        ckpt: PathBuf,
        /// κ of eq. 11.
        #[arg(long, default_value_t = 0.07)]
        temperature: f32,
        /// Fewer neighbours widen the search (docs/onboarding.md).
        #[arg(long, default_value_t = 5)]
        min_neighbours: usize,
        /// Answer counts of the accuracy-versus-answers curve.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
        answer_counts: Vec<usize>,
        /// κ of the survey committee's weights given the answers so far.
        #[arg(long, default_value_t = 1.0)]
        survey_temperature: f32,
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks (speed, memory).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Load and validate a preference data set, and print its counts.
    Check {
        /// Directory with responses.jsonl, annotations.jsonl and (optional) users.jsonl.
        #[arg(long)]
        data: PathBuf,
    },
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
        Command::Bench(command) => commands::bench::run(command),
        Command::Synth(args) => commands::synth::run_synth(args),
        Command::Gcf(args) => commands::gcf::run_gcf(args),
        Command::EvalGcf { data, ckpt, json } => {
            let eval = gcf::eval_gcf(&data, &ckpt)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&eval)?);
            } else {
                print_eval(&eval);
            }
            Ok(())
        }
        Command::Mole(args) => commands::mole::run_mole(args),
        Command::Eval {
            data,
            ckpt,
            backbone,
            test_pairs,
            per_group,
            json,
        } => {
            let backbone = backbone_of(&ckpt, backbone)?;
            let eval = copl_trainer::mole::eval::eval_mole(
                &data, &ckpt, &backbone, test_pairs, per_group,
            )?;
            print_mole_eval(&eval, json)
        }
        Command::EvalOracle {
            data,
            models,
            backbone,
            test_pairs,
            per_group,
            json,
        } => {
            let first = &models.first().context("no --group-ckpt")?.1;
            let backbone = backbone_of(first, backbone)?;
            let eval = copl_trainer::mole::eval::eval_oracle(
                &data, &models, &backbone, test_pairs, per_group,
            )?;
            print_mole_eval(&eval, json)
        }
        Command::EvalUnseen {
            data,
            ckpt,
            temperature,
            min_neighbours,
            answer_counts,
            survey_temperature,
            json,
        } => {
            let mut config = onboard::EvalUnseenConfig {
                answer_counts,
                ..Default::default()
            };
            config.adapt.temperature = temperature;
            config.adapt.min_neighbours = min_neighbours;
            config.survey.temperature = survey_temperature;
            let eval = onboard::eval_unseen(&data, &ckpt, &config)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&eval)?);
            } else {
                print_unseen(&eval);
            }
            Ok(())
        }
        Command::Score {
            ckpt,
            backbone,
            user,
            prompt,
            response,
        } => {
            let backbone = backbone_of(&ckpt, backbone)?;
            let rewards = copl_trainer::mole::eval::score_for_user(
                &ckpt, &backbone, &user, &prompt, &response,
            )?;
            println!("{}", serde_json::to_string(&rewards)?);
            Ok(())
        }
        Command::EvalExperts {
            data,
            ckpt,
            backbone,
        } => {
            let backbone = backbone_of(&ckpt, backbone)?;
            let a =
                copl_trainer::mole::allocation::allocation_of_checkpoint(&data, &ckpt, &backbone)?;
            println!("{}", serde_json::to_string_pretty(&a)?);
            Ok(())
        }
        Command::EvalProjection { data, ckpt } => {
            let p = copl_trainer::projection::projection_of_checkpoint(&data, &ckpt)?;
            println!("{}", serde_json::to_string_pretty(&p)?);
            Ok(())
        }
        Command::Catalogue { data, ckpt } => {
            let written = copl_trainer::gcf::write_catalogue(&data, &ckpt)?;
            println!(
                "{}: catalogue.jsonl written ({written} responses)",
                ckpt.display()
            );
            Ok(())
        }
        Command::Check { data } => {
            let dataset = Dataset::load(&data).map_err(anyhow::Error::new)?;
            println!(
                "{}: {} responses, {} annotations, {} users with ground truth: valid",
                data.display(),
                dataset.responses().len(),
                dataset.annotations().len(),
                dataset.users().len()
            );
            Ok(())
        }
    }
}
