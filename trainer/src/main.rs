//! `copl-train`: offline training and benchmarks for CoPL-serve.

use std::{fs, path::PathBuf, time::Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use copl_core::data::Dataset;
use copl_trainer::{
    gcf::{self, EpochRecord, GcfArch, TrainConfig},
    onboard,
    synth::{self, Catalogue, Preset, Sampling, SynthConfig},
};
use indicatif::{ProgressBar, ProgressStyle};

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
    /// Write the results report (issue #9): tables and PNG figures from the evaluation
    /// JSON under `--runs` (layout: trainer/src/report/results.rs).
    Report {
        /// Directory of the runs (gcf/, onboard/, mole/<set>/).
        #[arg(long, default_value = "runs/report")]
        runs: PathBuf,
        /// Directory for the figures.
        #[arg(long, default_value = "docs/results")]
        out: PathBuf,
        /// The markdown file written.
        #[arg(long, default_value = "docs/results.md")]
        markdown: PathBuf,
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

#[derive(Subcommand)]
enum BenchCommand {
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
        #[arg(long)]
        json: bool,
    },
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
        #[arg(long, value_delimiter = ',', default_value = "packed,reference")]
        paths: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum VariantArg {
    /// CoPL: gates route each user from their GCF embedding.
    Copl,
    /// The Uniform baseline: one shared LoRA, no user input.
    Uniform,
    /// The "w/o MoLE" ablation: one shared LoRA, the user embedding as an extra token.
    UserToken,
}

#[derive(Args)]
struct MoleArgs {
    #[arg(long)]
    data: PathBuf,
    /// Checkpoint with the GCF part (copl-train gcf).
    #[arg(long)]
    ckpt: PathBuf,
    /// Where to write the model [default: --ckpt]; another directory gets a copy of the
    /// GCF files, so baselines can sit beside CoPL.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Backbone directory (scripts/fetch-backbone.sh).
    #[arg(long, default_value = "backbones/minilm")]
    backbone: PathBuf,
    #[arg(long, value_enum, default_value = "copl")]
    variant: VariantArg,
    #[arg(long, default_value_t = 1500)]
    steps: usize,
    /// Pairs a step.
    #[arg(long, default_value_t = 16)]
    batch_pairs: usize,
    #[arg(long, default_value_t = 5e-5)]
    lr: f64,
    #[arg(long, default_value_t = 1e-3)]
    weight_decay: f64,
    #[arg(long, default_value_t = 0.03)]
    warmup: f64,
    /// Global gradient-norm bound.
    #[arg(long, default_value_t = 1.0)]
    clip: f64,
    #[arg(long, default_value_t = 100)]
    eval_every: usize,
    /// Validation pairs used, spread over the split (0 = all).
    #[arg(long, default_value_t = 256)]
    val_pairs: usize,
    /// Seen users' test pairs scored for the summary (0 = all; `eval` scores all).
    #[arg(long, default_value_t = 512)]
    test_pairs: usize,
    /// Longest templated input; longer inputs are truncated.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// MoLE in the top K layers only; the frozen layers below run once per text and
    /// are cached [default: all layers, the paper].
    #[arg(long)]
    adapt_layers: Option<usize>,
    /// Memory for the cached frozen-layer states, MiB.
    #[arg(long, default_value_t = 4096)]
    frozen_cache_mib: usize,
    /// Coefficient of a load-balancing loss on the gates (Switch Transformer; the paper's
    /// §7 limitation; 0.01 is Switch's). 0 = off, as in the paper.
    #[arg(long, default_value_t = 0.0)]
    load_balance: f64,
    /// Re-weight pairs against majority bias (the paper's §7): `inverse-frequency` of
    /// the user's group (needs `group` in users.jsonl) or `focal`.
    #[arg(long, value_enum, default_value = "none")]
    reweight: ReweightArg,
    /// γ of `--reweight focal`.
    #[arg(long, default_value_t = 2.0)]
    focal_gamma: f64,
    /// How a step computes its gradients: `packed` (the hand-written backward, ≈ 3×
    /// faster; BERT on the CPU: every variant and §7 option), `autograd` (candle's, the
    /// reference; Gemma), `auto` (packed where it runs).
    #[arg(long, value_enum, default_value = "auto")]
    engine: copl_trainer::mole::train::MoleEngine,
    /// Who routes users to experts: `gates` (the paper), or `oracle`, a diagnostic: each
    /// seen user by their ground-truth group (`group`, or the argmax of `weights`, in
    /// users.jsonl), one expert per group at weight 1, the gates not trained; it reports
    /// the seen users' test accuracy and writes no reward model (packed engine only).
    #[arg(long, value_enum, default_value = "gates")]
    routing: copl_trainer::mole::oracle::Routing,
    /// How the gates start: `kmeans`, each expert on a k-means cluster of the seen
    /// users' GCF embeddings (nearest centroid wins; the gates then train as usual;
    /// CoPL only), or `random` (candle's initialisation, the paper's). `auto`: kmeans
    /// where gates train (ufp4-all at 1 000 users: 97.7 % against 79 % from random
    /// gates, docs/benchmarks.md).
    #[arg(long, value_enum, default_value = "auto")]
    gate_init: copl_trainer::mole::gate_init::GateInit,
    /// Clusters of `--gate-init kmeans` [default: chosen by silhouette, 2 to the experts].
    #[arg(long)]
    gate_clusters: Option<usize>,
    /// LoRA rank r of every expert, the shared one included, with α = 2r (the scale of
    /// the authors' r = 8, α = 16) [default: 8, the paper's CoPL]. The paper's
    /// baselines (Uniform, G-Oracle) use r = 64.
    #[arg(long)]
    rank: Option<usize>,
    /// Train on this ground-truth group's users only (`group` in users.jsonl): with
    /// `--variant uniform`, one of the paper's G-Oracle models (`eval-oracle` scores
    /// each user with their group's).
    #[arg(long)]
    group: Option<String>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReweightArg {
    /// Every pair weighs 1 (the paper).
    None,
    /// Each group weighs the same in total: N / (G · n_group).
    InverseFrequency,
    /// (1 − σ(margin))^γ: confidently ordered pairs count little.
    Focal,
}

#[derive(Args)]
struct BenchOnboardArgs {
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

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum GcfModelArg {
    /// The paper's signed graph network.
    Gcf,
    /// Matrix factorisation: learnable embeddings, no message passing (the paper's "w/o GNN").
    Mf,
}

#[derive(Args)]
struct GcfArgs {
    /// Data set directory (responses.jsonl, annotations.jsonl, users.jsonl).
    #[arg(long)]
    data: PathBuf,
    /// Checkpoint directory to write (created; other stages' files are kept).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "gcf")]
    model: GcfModelArg,
    /// Embedding size d.
    #[arg(long, default_value_t = 512)]
    dim: usize,
    /// Message-passing layers L.
    #[arg(long, default_value_t = 4)]
    layers: usize,
    /// Ablation: drop negative edges (Table A4 "w/o N.E.").
    #[arg(long)]
    no_negative_edges: bool,
    /// Ablation: no learnt transform and no activation (Table A4 "w/o Act. & Trans.").
    #[arg(long)]
    no_transform: bool,
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    #[arg(long, default_value_t = 1024)]
    batch_size: usize,
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Share of steps in linear warm-up before the cosine decay.
    #[arg(long, default_value_t = 0.1)]
    warmup: f64,
    /// λ of eq. 5, on the mean squared norm of the batch's final embeddings (the
    /// authors' 1e-6 on the summed norms of a 1 024-pair batch is ≈ 1e-3 here).
    #[arg(long, default_value_t = 1e-3)]
    l2: f64,
    #[arg(long, default_value_t = 0.1)]
    edge_dropout: f32,
    /// Leave each step's own pairs' edges out of its propagation, so they are predicted
    /// from other users' edges (needs --batch-size below the training pairs).
    #[arg(long)]
    mask_batch_edges: bool,
    /// How a step computes its gradients (autograd: candle's, the reference).
    #[arg(long, value_enum, default_value = "fused")]
    engine: gcf::StepEngine,
    /// Layer inputs the fused step keeps (every-other: less memory, ≈ 17 % slower).
    #[arg(long, value_enum, default_value = "all")]
    layer_inputs: gcf::fused::LayerInputs,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

impl GcfArgs {
    fn config(&self) -> TrainConfig {
        TrainConfig {
            arch: GcfArch {
                dim: self.dim,
                layers: if self.model == GcfModelArg::Mf {
                    0
                } else {
                    self.layers
                },
                negative_edges: !self.no_negative_edges,
                transform: !self.no_transform,
                leaky_slope: 0.2,
            },
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            weight_decay: self.weight_decay,
            warmup: self.warmup,
            l2: self.l2,
            edge_dropout: self.edge_dropout,
            seed: self.seed,
            mask_batch_edges: self.mask_batch_edges,
            engine: self.engine,
            layer_inputs: self.layer_inputs,
            max_steps_per_epoch: None,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum PresetArg {
    Tldr,
    Ufp2,
    Ufp4,
    Personal,
}

#[derive(Clone, Copy, ValueEnum)]
enum CatalogueArg {
    Sparse,
    Dense,
}

#[derive(Clone, Copy, ValueEnum)]
enum SamplingArg {
    All,
    Avg,
}

#[derive(Args)]
struct SynthArgs {
    /// Which of the paper's settings to mirror.
    #[arg(long, value_enum)]
    preset: PresetArg,
    /// `all`: exactly n training annotations a user; `avg`: uniform in 1..=2n-1.
    #[arg(long, value_enum, default_value = "all")]
    sampling: SamplingArg,
    /// Seen users (split evenly over the groups unless --group-ratio).
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Unseen users, to be onboarded at evaluation.
    #[arg(long, default_value_t = 100)]
    unseen_users: usize,
    /// Training annotations a user, n [default: 8 for tldr/ufp2, 16 for ufp4/personal].
    #[arg(long)]
    annotations: Option<usize>,
    /// Survey-pool size in pairs [default: Table 1's size × users / 10000].
    #[arg(long)]
    survey_pairs: Option<usize>,
    /// Test pairs a seen user.
    #[arg(long, default_value_t = 10)]
    seen_test_pairs: usize,
    /// Test pairs an unseen user.
    #[arg(long, default_value_t = 50)]
    unseen_test_pairs: usize,
    /// Probability of flipping each label (annotator noise), in [0, 0.5].
    #[arg(long, default_value_t = 0.0)]
    label_noise: f64,
    /// Relative group sizes of seen users, e.g. `1:9` (the paper's Fig. 4).
    #[arg(long)]
    group_ratio: Option<String>,
    /// Share of catalogue pairs on which all groups agree (0 = the paper's filter).
    #[arg(long, default_value_t = 0.0)]
    common_share: f64,
    /// Share of prompts kept out of every survey pair, in [0, 1): half of every user's
    /// test pairs are then on their responses, texts no training pair has (`eval`
    /// reports them as `new_texts` beside `seen_texts`).
    #[arg(long, default_value_t = 0.0)]
    heldout_prompts: f64,
    /// How densely the catalogue compares its responses [default: dense for ufp4, sparse
    /// for the others]; `--preset ufp4 --catalogue sparse` is ufp4 before 2026-11-30.
    #[arg(long, value_enum)]
    catalogue: Option<CatalogueArg>,
    /// Random seed; the output is identical for the same seed and flags.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (created; existing data files are replaced).
    #[arg(long)]
    out: PathBuf,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    json: bool,
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
        Command::Synth(args) => run_synth(args),
        Command::Gcf(args) => run_gcf(args),
        Command::EvalGcf { data, ckpt, json } => {
            let eval = gcf::eval_gcf(&data, &ckpt)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&eval)?);
            } else {
                print_eval(&eval);
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Gcf {
            data,
            users,
            answers,
            dim,
            steps,
            engine,
            layer_inputs,
            json,
        }) => {
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
        Command::Mole(args) => run_mole(args),
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
        Command::Bench(BenchCommand::Onboard(args)) => {
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
        Command::Bench(BenchCommand::Serve {
            ckpt,
            backbone,
            batches,
            duration,
            users,
            prompt,
            response,
            json,
        }) => {
            let users: Vec<String> = users.into_iter().filter(|u| !u.is_empty()).collect();
            let backbone = backbone_of(&ckpt, backbone)?;
            let rows = copl_trainer::mole::serve_bench::bench_serve(
                &copl_trainer::mole::serve_bench::ServeBench {
                    ckpt: &ckpt,
                    backbone: &backbone,
                    users: &users,
                    prompt: &prompt,
                    response: &response,
                    batches: &batches,
                    seconds: duration,
                },
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for r in &rows {
                    println!(
                        "batch {:>3}: {:>8.1} rows/s, per batch p50 {:.2} ms, p99 {:.2} ms ({} batches)",
                        r.batch, r.rows_per_second, r.p50_ms, r.p99_ms, r.batches
                    );
                }
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Mole {
            backbone,
            batch_pairs,
            tokens,
            steps,
            user_dim,
            adapt_layers,
            engine,
            json,
        }) => {
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
        Command::Bench(BenchCommand::Forward {
            backbone,
            batches,
            tokens,
            repeats,
            user_dim,
            paths,
            json,
        }) => {
            let rows = copl_trainer::mole::bench::bench_forward(
                &backbone, &batches, &tokens, repeats, user_dim, &paths,
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "variant            path       batch  tokens  lengths   s/forward   tokens/s"
                );
                for r in &rows {
                    println!(
                        "{:<18} {:<9} {:>6}  {:>6}  {:<7}  {:>10.4}  {:>9.0}",
                        r.variant,
                        r.path,
                        r.batch,
                        r.tokens,
                        r.lengths,
                        r.seconds,
                        r.tokens_per_second
                    );
                }
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
                copl_trainer::report::experts::allocation_of_checkpoint(&data, &ckpt, &backbone)?;
            println!("{}", serde_json::to_string_pretty(&a)?);
            Ok(())
        }
        Command::EvalProjection { data, ckpt } => {
            let p = copl_trainer::report::projection::projection_of_checkpoint(&data, &ckpt)?;
            println!("{}", serde_json::to_string_pretty(&p)?);
            Ok(())
        }
        Command::Report {
            runs,
            out,
            markdown,
        } => {
            let written = copl_trainer::report::results::report(&runs, &out, &markdown)?;
            println!(
                "{}: written ({} figures in {}); not run yet: {}",
                written.markdown.display(),
                written.figures.len(),
                out.display(),
                if written.missing.is_empty() {
                    "nothing".to_string()
                } else {
                    written.missing.join("; ")
                }
            );
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

/// `eval`'s and `eval-oracle`'s report: JSON, or a line per population and group.
fn print_mole_eval(eval: &copl_trainer::mole::eval::MoleEval, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(eval)?);
        return Ok(());
    }
    for (name, p) in [("seen", Some(&eval.seen)), ("unseen", eval.unseen.as_ref())] {
        let Some(p) = p else { continue };
        println!(
            "{name}: {:.2} % over {} pairs{}",
            100.0 * p.overall.accuracy,
            p.overall.pairs,
            match (&p.controversial, &p.common) {
                (Some(c), Some(m)) => format!(
                    "; controversial {:.2} %, common {:.2} %",
                    100.0 * c.accuracy,
                    100.0 * m.accuracy
                ),
                _ => String::new(),
            }
        );
        for (g, s) in &p.by_group {
            println!("  {g:<12} {:.2} % ({} pairs)", 100.0 * s.accuracy, s.pairs);
        }
    }
    Ok(())
}

/// `GROUP=CKPT` of `eval-oracle --group-ckpt`.
fn parse_group_ckpt(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((group, ckpt)) if !group.is_empty() && !ckpt.is_empty() => {
            Ok((group.to_string(), PathBuf::from(ckpt)))
        }
        _ => Err(format!(
            "{s:?}: expected GROUP=CKPT, e.g. detail=runs/x/ckpt-oracle-detail"
        )),
    }
}

/// The backbone directory given, or the one the checkpoint's manifest names.
fn backbone_of(ckpt: &std::path::Path, given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = given {
        return Ok(dir);
    }
    let manifest = copl_core::checkpoint::Manifest::load(ckpt)?;
    let model = manifest
        .model
        .with_context(|| format!("{}: no model section (copl-train mole)", ckpt.display()))?;
    Ok(PathBuf::from(model.backbone))
}

fn run_synth(args: SynthArgs) -> Result<()> {
    let preset = match args.preset {
        PresetArg::Tldr => Preset::Tldr,
        PresetArg::Ufp2 => Preset::Ufp2,
        PresetArg::Ufp4 => Preset::Ufp4,
        PresetArg::Personal => Preset::Personal,
    };
    let group_ratio = args
        .group_ratio
        .as_deref()
        .map(parse_ratio)
        .transpose()
        .context("--group-ratio")?;
    let config = SynthConfig {
        preset,
        sampling: match args.sampling {
            SamplingArg::All => Sampling::All,
            SamplingArg::Avg => Sampling::Avg,
        },
        users: args.users,
        unseen_users: args.unseen_users,
        annotations: args.annotations,
        survey_pairs: args.survey_pairs,
        seen_test_pairs: args.seen_test_pairs,
        unseen_test_pairs: args.unseen_test_pairs,
        label_noise: args.label_noise,
        group_ratio,
        catalogue: match args.catalogue {
            None => preset.default_catalogue(),
            Some(CatalogueArg::Sparse) => Catalogue::Sparse,
            Some(CatalogueArg::Dense) => Catalogue::Dense,
        },
        common_share: args.common_share,
        heldout_prompts: args.heldout_prompts,
        seed: args.seed,
    };
    let started = Instant::now();
    let synthetic = synth::generate(&config)?;
    synthetic
        .dataset
        .save(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let summary_json = serde_json::to_string_pretty(&synthetic.summary)?;
    fs::write(args.out.join("synth.json"), &summary_json)
        .with_context(|| format!("writing {}", args.out.join("synth.json").display()))?;
    if args.json {
        println!("{summary_json}");
    } else {
        print_summary(
            &synthetic.summary,
            &args.out,
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(())
}

fn parse_ratio(text: &str) -> Result<Vec<f64>> {
    let parts: Vec<f64> = text
        .split(':')
        .map(|p| {
            p.trim()
                .parse::<f64>()
                .with_context(|| format!("{p:?} is not a number"))
        })
        .collect::<Result<_>>()?;
    if parts.len() < 2 {
        bail!("expected parts separated by ':', e.g. 1:9, got {text:?}");
    }
    Ok(parts)
}

fn print_summary(s: &synth::Summary, out: &std::path::Path, seconds: f64) {
    let c = &s.config;
    println!(
        "Synthetic benchmark {} ({:?} sampling, {} catalogue, seed {}) written to {} in {seconds:.1} s",
        c.preset.name(),
        c.sampling,
        c.catalogue.name(),
        c.seed,
        out.display()
    );
    println!(
        "  catalogue: {} prompts, {} responses ({:.0}–{:.0} words, mean {:.0}); {} survey pairs, {} test pairs{}",
        s.prompts,
        s.responses,
        s.response_words[0],
        s.response_words[2],
        s.response_words[1],
        s.survey_pairs,
        s.test_pairs,
        if s.new_text_pairs > 0 {
            format!(" + {} on held-out prompts' new texts", s.new_text_pairs)
        } else {
            String::new()
        }
    );
    let groups = if s.group_sizes.is_empty() {
        "Dirichlet(0.1) mixtures over detail, hedging, structure, formality".to_string()
    } else {
        s.group_sizes
            .iter()
            .map(|(g, n)| format!("{g} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "  users: {} seen ({groups}), {} unseen",
        s.seen_users, s.unseen_users
    );
    println!(
        "  annotations: {} train (mean {:.1} a seen user), {} val, {} test",
        s.train_annotations, s.mean_train_per_seen_user, s.val_annotations, s.test_annotations
    );
    println!(
        "  controversial pairs: {:.1}% of the catalogue",
        100.0 * s.controversial_pair_share
    );
    println!(
        "  test accuracy of the ground truth (upper bound): {:.2}%; of one shared preference (non-personalised bound): {:.2}%",
        100.0 * s.ground_truth_test_accuracy,
        100.0 * s.population_test_accuracy
    );
}

fn run_gcf(args: GcfArgs) -> Result<()> {
    let config = args.config();
    let bar = ProgressBar::new(config.epochs as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] epoch {pos}/{len} {msg} ({elapsed}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(if config.arch.layers == 0 { "mf" } else { "gcf" });
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let summary = gcf::run_gcf(&args.data, &args.out, &config, |record: &EpochRecord, _| {
        bar.set_message(format!(
            "loss {:.4} val acc {:.2}%",
            record.train_loss,
            100.0 * record.val_accuracy
        ));
        bar.inc(1);
    })?;
    bar.finish();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{}: {} users, {} responses, {}+/{}- edges; best epoch {} of {}: val accuracy {:.2}%, test accuracy {:.2}%; {:.1} s/epoch; written to {}",
            summary.model,
            summary.users,
            summary.responses,
            summary.positive_edges,
            summary.negative_edges,
            summary.best_epoch,
            summary.history.len(),
            100.0 * summary.val_accuracy,
            100.0 * summary.test_accuracy,
            summary.seconds_per_epoch,
            args.out.display()
        );
    }
    Ok(())
}

fn print_eval(eval: &gcf::GcfEval) {
    println!(
        "{}: seen users' test pairs: {:.2}% of {}",
        eval.model,
        100.0 * eval.overall.accuracy,
        eval.overall.pairs
    );
    for (group, slice) in &eval.by_group {
        println!(
            "  group {group}: {:.2}% of {}",
            100.0 * slice.accuracy,
            slice.pairs
        );
    }
    for (name, slice) in [
        ("controversial", &eval.controversial),
        ("common", &eval.common),
    ] {
        if let Some(slice) = slice.as_ref().filter(|s| s.pairs > 0) {
            println!(
                "  {name} pairs: {:.2}% of {}",
                100.0 * slice.accuracy,
                slice.pairs
            );
        }
    }
    if let Some(bound) = eval.ground_truth_bound {
        println!("  ground-truth upper bound: {:.2}%", 100.0 * bound);
    }
    if let Some(bound) = eval.shared_preference_bound {
        println!(
            "  one shared preference (non-personalised bound): {:.2}%",
            100.0 * bound
        );
    }
    if let Some(id) = &eval.identification {
        let line = |who: &str, i: &gcf::Identification| {
            let mut parts = Vec::new();
            if let Some(a) = i.probe_accuracy {
                parts.push(format!("linear probe {:.1}%", 100.0 * a));
            }
            if let Some(n) = i.kmeans_nmi {
                parts.push(format!("k-means NMI {n:.3}"));
            }
            if let Some(r2) = i.weights_r2 {
                parts.push(format!("weights R² {r2:.3}"));
            }
            println!("  {who} ({} users): {}", i.users, parts.join(", "));
        };
        println!("identification of the user's preference from the embedding:");
        line("seen, held out", &id.seen);
        if let Some(unseen) = &id.unseen {
            line("unseen, onboarded", unseen);
        }
        if let Some(b) = id.bayes_bound {
            println!(
                "  Bayes bound of the group from a user's own training answers: {:.1}%",
                100.0 * b
            );
        }
    }
}

fn print_unseen(e: &onboard::UnseenEval) {
    println!(
        "{} unseen users, {:.1} answers each, {} test pairs; seen users' GCF accuracy {:.2} %",
        e.unseen_users,
        e.mean_answers,
        e.test_pairs,
        100.0 * e.seen_accuracy
    );
    for (name, m) in &e.methods {
        println!(
            "  {name:<16} {:6.2} %   {:9.1} µs a user",
            100.0 * m.accuracy,
            m.mean_us
        );
    }
    let s = &e.copl_2hop;
    println!(
        "  copl_2hop: fallbacks {:?}; mean neighbourhood {:.1}, effective {:.1}, confidence {:.2}, answer agreement {:.2}",
        s.fallbacks,
        s.mean_neighbourhood,
        s.mean_effective_neighbours,
        s.mean_confidence,
        s.mean_answer_agreement
    );
    println!("  answers  random-2hop  random-4hop  suggested  suggested-batch");
    let pct = |x: Option<f64>| x.map_or("–".to_string(), |x| format!("{:.2}", 100.0 * x));
    for p in &e.by_answers {
        println!(
            "  {:>7}  {:>11.2}  {:>11.2}  {:>9}  {:>15}",
            p.answers,
            100.0 * p.random_2hop,
            100.0 * p.random_4hop,
            pct(p.suggested_adaptive),
            pct(p.suggested_batch)
        );
    }
    println!(
        "  survey: pool {} pairs, built in {:.2} s, one suggestion {:.0} µs",
        e.survey_pool, e.survey_build_seconds, e.suggest_mean_us
    );
    if let Some(note) = &e.survey_note {
        println!("  survey: {note}");
    }
}

fn print_onboard_bench(b: &onboard::bench::OnboardBench) {
    println!(
        "{}: {} users, {} responses, {} positive edges, d = {}; setup {:.1} s, adapter {} MiB, peak {} MiB",
        b.source,
        b.users,
        b.responses,
        b.positive_edges,
        b.dim,
        b.setup_seconds,
        b.adapter_rss_mib.map_or("?".into(), |x| format!("{x:.0}")),
        b.peak_rss_mib.map_or("?".into(), |x| format!("{x:.0}")),
    );
    for (name, l) in [
        ("copl 2-hop", &b.copl_2hop),
        ("copl 4-hop", &b.copl_4hop),
        ("user opt (by hand)", &b.user_opt),
        ("user opt (autograd)", &b.user_opt_autograd),
    ] {
        println!(
            "  {name:<20} p50 {:>10.1} µs  p99 {:>10.1} µs  mean {:>10.1} µs  ({} calls)",
            l.p50_us, l.p99_us, l.mean_us, l.calls
        );
    }
    println!(
        "  mean neighbourhood: 2-hop {:.1}, 4-hop {:.1} users",
        b.mean_neighbourhood_2hop, b.mean_neighbourhood_4hop
    );
}

fn run_mole(args: MoleArgs) -> Result<()> {
    use copl_core::model::reward::Variant;
    use copl_trainer::mole::{
        objective::Reweight,
        run::{MoleRun, run_mole},
        train::MoleTrainConfig,
    };
    let config = MoleTrainConfig {
        steps: args.steps,
        batch_pairs: args.batch_pairs,
        lr: args.lr,
        weight_decay: args.weight_decay,
        warmup: args.warmup,
        clip: args.clip,
        eval_every: args.eval_every,
        val_pairs: args.val_pairs,
        seed: args.seed,
        frozen_cache_mib: args.frozen_cache_mib,
        load_balance: args.load_balance,
        reweight: match args.reweight {
            ReweightArg::None => Reweight::None,
            ReweightArg::InverseFrequency => Reweight::InverseFrequency,
            ReweightArg::Focal => Reweight::Focal {
                gamma: args.focal_gamma,
            },
        },
        engine: args.engine,
        routing: args.routing,
        gate_init: args.gate_init,
        gate_clusters: args.gate_clusters,
    };
    let bar = ProgressBar::new(args.steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} steps, {msg} [{elapsed} < {eta}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let out = args.out.clone().unwrap_or_else(|| args.ckpt.clone());
    let run = MoleRun {
        data: &args.data,
        ckpt: &args.ckpt,
        out: &out,
        backbone: &args.backbone,
        variant: match args.variant {
            VariantArg::Copl => Variant::Copl,
            VariantArg::Uniform => Variant::Uniform,
            VariantArg::UserToken => Variant::UserToken,
        },
        max_tokens: args.max_tokens,
        adapt_layers: args.adapt_layers,
        test_pairs: args.test_pairs,
        group: args.group.as_deref(),
        rank: args.rank,
    };
    let summary = run_mole(&run, &config, |step, loss| {
        bar.set_position(step as u64 + 1);
        bar.set_message(format!("loss {loss:.4}"));
    })?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{:?} on {} ({}): best step {}, val {:.2} %, test {:.2} %, {:.2} pairs/s, {:.0} s -> {}",
            summary.variant,
            summary.family,
            args.backbone.display(),
            summary.training.best_step,
            100.0 * summary.training.best_val_accuracy,
            100.0 * summary.test_accuracy,
            summary.training.pairs_per_second,
            summary.training.train_seconds,
            out.display()
        );
    }
    Ok(())
}
