//! `copl-train mole`: its arguments and the run (its summary prints as `MoleSummary`'s
//! `Display`).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum VariantArg {
    /// CoPL: gates route each user from their GCF embedding.
    Copl,
    /// The Uniform baseline: one shared LoRA, no user input.
    Uniform,
    /// The "w/o MoLE" ablation: one shared LoRA, the user embedding as an extra token.
    UserToken,
}

#[derive(Args)]
pub(crate) struct MoleArgs {
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
    /// Training steps. The defaults of steps, pairs a step, learning rate and layers are
    /// the paper's schedule shape; the recipe measured for MiniLM on 2 cores is
    /// `--adapt-layers 2 --steps 600 --batch-pairs 32 --lr 5e-4` (400 steps with two
    /// groups; docs/data.md, scripts/lib/mole.sh).
    #[arg(long, default_value_t = 1500)]
    steps: usize,
    /// Pairs a step.
    #[arg(long, default_value_t = 16)]
    batch_pairs: usize,
    /// Peak learning rate (AdamW, linear warm-up then cosine decay).
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
    /// the seen users' test accuracy and writes no reward model. `oracle-soft`: a
    /// mixture user (`weights`) on every component's expert at once, each at the user's
    /// weight (soft routing; the autograd engine, which `auto` picks).
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
    /// `cpu` or `cuda:N` (a build with the `cuda` feature; off the CPU the engine is
    /// autograd's).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// The frozen backbone's dtype: `auto` (BF16 on a GPU, F32 on the CPU), `f32` or
    /// `bf16`; adapters, gates and head train in F32 either way.
    #[arg(long, default_value = "auto")]
    dtype: String,
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
pub(crate) enum ReweightArg {
    /// Every pair weighs 1 (the paper).
    None,
    /// Each group weighs the same in total: N / (G · n_group).
    InverseFrequency,
    /// (1 − σ(margin))^γ: confidently ordered pairs count little.
    Focal,
}

impl super::Run for MoleArgs {
    type Output = super::Written<copl_trainer::mole::run::MoleSummary>;
    fn json(&self) -> bool {
        self.json
    }
    fn run(self) -> Result<Self::Output> {
        run_mole(self)
    }
}

fn run_mole(args: MoleArgs) -> Result<super::Written<copl_trainer::mole::run::MoleSummary>> {
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
        device: args.device.clone(),
        dtype: args.dtype.clone(),
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
    Ok(super::Written {
        value: summary,
        to: out,
        seconds: None,
    })
}
