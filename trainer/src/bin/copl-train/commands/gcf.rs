//! `copl-train gcf`: its arguments and the run (its summary prints as
//! `GcfSummary`'s `Display`).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use copl_trainer::gcf::{self, EpochRecord, GcfArch, TrainConfig};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum GcfModelArg {
    /// The paper's signed graph network.
    Gcf,
    /// Matrix factorisation: learnable embeddings, no message passing (the paper's "w/o GNN").
    Mf,
}

#[derive(Args)]
pub(crate) struct GcfArgs {
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
    /// Keep the last epoch's embeddings, not the best by validation accuracy (noisy
    /// labels make one validation pair a user mostly noise).
    #[arg(long)]
    keep_last: bool,
    /// Keep each seen user's layer-0 embedding at its initial draw (untrained): a seen
    /// user's embedding then comes from their edges alone, as an onboarded user's does
    /// (against label noise; needs --layers ≥ 1).
    #[arg(long)]
    fixed_user_init: bool,
    /// How a step computes its gradients (autograd: candle's, the reference).
    #[arg(long, value_enum, default_value = "fused")]
    engine: gcf::StepEngine,
    /// Layer inputs the fused step keeps (every-other: less memory, ≈ 17 % slower).
    #[arg(long, value_enum, default_value = "all")]
    layer_inputs: gcf::fused::LayerInputs,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// `cpu` or `cuda:N` (a build with the `cuda` feature): off the CPU the step is
    /// autograd's and the sparse products gather–scatter.
    #[arg(long, default_value = "cpu")]
    device: String,
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
            keep_last: self.keep_last,
            fixed_user_init: self.fixed_user_init,
            engine: self.engine,
            layer_inputs: self.layer_inputs,
            max_steps_per_epoch: None,
            device: self.device.clone(),
        }
    }
}

impl super::Run for GcfArgs {
    type Output = super::Written<gcf::GcfSummary>;
    fn json(&self) -> bool {
        self.json
    }
    fn run(self) -> Result<Self::Output> {
        run_gcf(self)
    }
}

fn run_gcf(args: GcfArgs) -> Result<super::Written<gcf::GcfSummary>> {
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
    Ok(super::Written {
        value: summary,
        to: args.out,
        seconds: None,
    })
}
