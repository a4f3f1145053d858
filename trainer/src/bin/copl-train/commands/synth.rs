//! `copl-train synth`: its arguments and summary.

use std::{fs, path::PathBuf, time::Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use copl_synth::{self as synth, Catalogue, Preset, Sampling, SynthConfig};

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum PresetArg {
    Tldr,
    Ufp2,
    Ufp4,
    Personal,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum CatalogueArg {
    Sparse,
    Dense,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum SamplingArg {
    All,
    Avg,
}

#[derive(Args)]
pub(crate) struct SynthArgs {
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

impl super::Run for SynthArgs {
    type Output = super::Written<synth::Summary>;
    fn json(&self) -> bool {
        self.json
    }
    fn run(self) -> Result<Self::Output> {
        run_synth(self)
    }
}

fn run_synth(args: SynthArgs) -> Result<super::Written<synth::Summary>> {
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
    Ok(super::Written {
        value: synthetic.summary,
        to: args.out,
        seconds: Some(started.elapsed().as_secs_f64()),
    })
}

pub(crate) fn parse_ratio(text: &str) -> Result<Vec<f64>> {
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
