//! Expert allocation by group (the paper's Fig. 6): for each MoLE projection, the share
//! of each ground-truth group's users routed to each expert (top-1, eq. 9).

use std::path::Path;

use anyhow::Context;
use copl_core::{adapt::Adapter, data::Dataset, model::reward::RewardModel};
use serde::{Deserialize, Serialize};

use super::routing::RoutingProbe;
pub use super::routing::{Allocation, ProjectionPurity};

/// A checkpoint's expert allocation: every seen user with a ground-truth group (or
/// mixture weights: their largest, as `--routing oracle` routes them) routed by the
/// model's gates (what the server caches at load), counted by group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointAllocation {
    /// The file's format (`copl_core::file_version`; absent in files before it: 1).
    #[serde(default)]
    pub format_version: copl_core::file_version::FileVersion,
    /// The MoLE projections in routing order (`encoder.layer.4.attention.self.query`, …).
    pub projections: Vec<String>,
    pub allocation: Allocation,
    pub experts_used: Vec<usize>,
    /// Per projection: how purely the groups land on experts of their own.
    pub purity: Vec<ProjectionPurity>,
    pub users: usize,
}

/// Routes every seen user of `ckpt` with a group in `data` (`copl-train eval-experts`).
pub fn allocation_of_checkpoint(
    data: &Path,
    ckpt: &Path,
    backbone: &Path,
) -> anyhow::Result<CheckpointAllocation> {
    let dataset = Dataset::load(data).map_err(anyhow::Error::new)?;
    let (adapter, ids) =
        Adapter::from_checkpoint(ckpt).with_context(|| format!("loading {}", ckpt.display()))?;
    let model = RewardModel::load(ckpt, backbone, &super::train::device())?;
    let Some(probe) = RoutingProbe::seen_users(&dataset, &ids, &adapter) else {
        anyhow::bail!(
            "{}: no seen user of {} has a ground-truth group or weights",
            data.display(),
            ckpt.display()
        );
    };
    let allocation = probe.allocation(&model)?;
    Ok(CheckpointAllocation {
        format_version: copl_core::file_version::FileVersion::CURRENT,
        projections: model.backbone.adapters().names.clone(),
        experts_used: allocation.experts_used(),
        purity: allocation.purity(),
        allocation,
        users: probe.labels.len(),
    })
}
