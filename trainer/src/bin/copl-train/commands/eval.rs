//! The evaluation subcommands: `eval-gcf`, `eval` and `eval-oracle` (the reward model),
//! `eval-unseen` (onboarding), `eval-experts` (Fig. 6), `eval-projection` (Fig. 1 / A2)
//! and `score` (one user's rewards, to check a server against). Each result prints as its
//! type's `Display`, or as JSON with `--json`.

use std::{fmt, path::PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use copl_core::checkpoint::Manifest;
use copl_trainer::{
    gcf::{self, GcfEval},
    mole::{self, allocation::CheckpointAllocation, eval::MoleEval},
    onboard::{self, UnseenEval},
    projection::Projection,
};
use serde::Serialize;

use super::Run;

#[derive(Args)]
pub(crate) struct EvalGcfArgs {
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    ckpt: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

impl Run for EvalGcfArgs {
    type Output = GcfEval;
    fn json(&self) -> bool {
        self.json
    }
    fn run(self) -> Result<GcfEval> {
        gcf::eval_gcf(&self.data, &self.ckpt)
    }
}

#[derive(Args)]
pub(crate) struct EvalArgs {
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    ckpt: PathBuf,
    /// Backbone directory [default: the one the manifest names].
    #[arg(long)]
    backbone: Option<PathBuf>,
    #[command(flatten)]
    pairs: TestPairs,
    #[arg(long)]
    json: bool,
}

/// Which test pairs `eval` and `eval-oracle` score.
#[derive(Args)]
pub(crate) struct TestPairs {
    /// Seen users' test pairs scored, spread over the split, and as many unseen users'
    /// (0 = all).
    #[arg(long, default_value_t = 0)]
    test_pairs: usize,
    /// Split --test-pairs evenly over the ground-truth groups (imbalanced data: the
    /// minority measured as precisely as the majority; `overall` weighted back by the
    /// groups' shares).
    #[arg(long)]
    per_group: bool,
}

impl Run for EvalArgs {
    type Output = MoleEval;
    fn json(&self) -> bool {
        self.json
    }
    fn run(self) -> Result<MoleEval> {
        let backbone = Manifest::backbone_of(&self.ckpt, self.backbone)?;
        mole::eval::eval_mole(
            &self.data,
            &self.ckpt,
            &backbone,
            self.pairs.test_pairs,
            self.pairs.per_group,
        )
    }
}

#[derive(Args)]
pub(crate) struct EvalOracleArgs {
    #[arg(long)]
    data: PathBuf,
    /// GROUP=CKPT, once per group: a model from `mole --variant uniform --group GROUP`.
    #[arg(long = "group-ckpt", value_name = "GROUP=CKPT", required = true, value_parser = parse_group_ckpt)]
    models: Vec<(String, PathBuf)>,
    /// Backbone directory [default: the one the first model's manifest names].
    #[arg(long)]
    backbone: Option<PathBuf>,
    #[command(flatten)]
    pairs: TestPairs,
    #[arg(long)]
    json: bool,
}

impl Run for EvalOracleArgs {
    type Output = MoleEval;
    fn json(&self) -> bool {
        self.json
    }
    fn run(self) -> Result<MoleEval> {
        let first = &self.models.first().context("no --group-ckpt")?.1;
        let backbone = Manifest::backbone_of(first, self.backbone)?;
        mole::eval::eval_oracle(
            &self.data,
            &self.models,
            &backbone,
            self.pairs.test_pairs,
            self.pairs.per_group,
        )
    }
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

#[derive(Args)]
pub(crate) struct EvalUnseenArgs {
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
}

impl Run for EvalUnseenArgs {
    type Output = UnseenEval;
    fn json(&self) -> bool {
        self.json
    }
    fn run(self) -> Result<UnseenEval> {
        let mut config = onboard::EvalUnseenConfig {
            answer_counts: self.answer_counts,
            ..Default::default()
        };
        config.adapt.temperature = self.temperature;
        config.adapt.min_neighbours = self.min_neighbours;
        config.survey.temperature = self.survey_temperature;
        onboard::eval_unseen(&self.data, &self.ckpt, &config)
    }
}

#[derive(Args)]
pub(crate) struct EvalExpertsArgs {
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    ckpt: PathBuf,
    /// Backbone directory (default: the one the manifest names under backbones/).
    #[arg(long)]
    backbone: Option<PathBuf>,
    /// JSON (the allocation by group and projection, what the report reads).
    #[arg(long)]
    json: bool,
}

impl Run for EvalExpertsArgs {
    type Output = CheckpointAllocation;
    fn json(&self) -> bool {
        self.json
    }
    fn run(self) -> Result<CheckpointAllocation> {
        let backbone = Manifest::backbone_of(&self.ckpt, self.backbone)?;
        mole::allocation::allocation_of_checkpoint(&self.data, &self.ckpt, &backbone)
    }
}

#[derive(Args)]
pub(crate) struct EvalProjectionArgs {
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    ckpt: PathBuf,
    /// JSON (every user's two coordinates, what the report plots).
    #[arg(long)]
    json: bool,
}

impl Run for EvalProjectionArgs {
    type Output = Projection;
    fn json(&self) -> bool {
        self.json
    }
    fn run(self) -> Result<Projection> {
        copl_trainer::projection::projection_of_checkpoint(&self.data, &self.ckpt)
    }
}

#[derive(Args)]
pub(crate) struct ScoreArgs {
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
    /// JSON: the rewards as one array, in the order of --response.
    #[arg(long)]
    json: bool,
}

/// The rewards of `score`, one a response in the order given.
#[derive(Serialize)]
#[serde(transparent)]
pub(crate) struct Rewards(Vec<f32>);

impl fmt::Display for Rewards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            writeln!(f, "response {}: reward {r:.6}", i + 1)?;
        }
        Ok(())
    }
}

impl Run for ScoreArgs {
    type Output = Rewards;
    fn json(&self) -> bool {
        self.json
    }
    fn run(self) -> Result<Rewards> {
        let backbone = Manifest::backbone_of(&self.ckpt, self.backbone)?;
        let rewards = mole::eval::score_for_user(
            &self.ckpt,
            &backbone,
            &self.user,
            &self.prompt,
            &self.response,
        )?;
        Ok(Rewards(rewards))
    }
}
