//! Expert allocation by group (the paper's Fig. 6): for each MoLE projection, the share
//! of each ground-truth group's users routed to each expert (top-1, eq. 9).

use std::{collections::BTreeMap, path::Path};

use anyhow::Context;
use copl_core::{
    adapt::Adapter,
    data::Dataset,
    model::{UserRouting, reward::RewardModel},
};
use serde::Serialize;

/// `shares[group][projection][expert]`: the fraction of the group's users whose routing
/// picks that expert in that projection (each projection's row sums to 1).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Allocation {
    pub shares: BTreeMap<String, Vec<Vec<f64>>>,
    pub experts: usize,
}

impl Allocation {
    /// Counts `users` (group name, routing); routings must all cover the same
    /// projections and name experts below `experts`.
    pub fn count(users: &[(String, &UserRouting)], experts: usize) -> anyhow::Result<Self> {
        let projections = users.first().map_or(0, |(_, r)| r.experts.len());
        let mut counts: BTreeMap<String, Vec<Vec<f64>>> = BTreeMap::new();
        for (i, (group, routing)) in users.iter().enumerate() {
            if routing.experts.len() != projections {
                anyhow::bail!(
                    "user {i}: a routing for {} projections, the first had {projections}",
                    routing.experts.len()
                );
            }
            let table = counts
                .entry(group.clone())
                .or_insert_with(|| vec![vec![0.0; experts]; projections]);
            for (p, &e) in routing.experts.iter().enumerate() {
                let slot = table[p].get_mut(e as usize).ok_or_else(|| {
                    anyhow::anyhow!("user {i}: expert {e} in projection {p}, only {experts}")
                })?;
                *slot += 1.0;
            }
        }
        for table in counts.values_mut() {
            for row in table.iter_mut() {
                let total: f64 = row.iter().sum();
                row.iter_mut().for_each(|c| *c /= total.max(1.0));
            }
        }
        Ok(Self {
            shares: counts,
            experts,
        })
    }

    /// Experts that receive any user of any group, per projection (how many of the M
    /// experts the gates use: the paper notes that few are).
    pub fn experts_used(&self) -> Vec<usize> {
        let projections = self.shares.values().next().map_or(0, Vec::len);
        (0..projections)
            .map(|p| {
                (0..self.experts)
                    .filter(|&e| self.shares.values().any(|t| t[p][e] > 0.0))
                    .count()
            })
            .collect()
    }
}

/// A checkpoint's expert allocation: every seen user with a ground-truth group routed by
/// the model's gates (what the server caches at load), counted by group.
#[derive(Clone, Debug, Serialize)]
pub struct CheckpointAllocation {
    /// The MoLE projections in routing order (`encoder.layer.4.attention.self.query`, …).
    pub projections: Vec<String>,
    pub allocation: Allocation,
    pub experts_used: Vec<usize>,
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
    let model = RewardModel::load(ckpt, backbone, &crate::mole::train::device())?;
    let rows = ids.user_rows();
    let mut groups = Vec::new();
    let mut embeddings = Vec::new();
    for u in dataset.users() {
        if let (Some(group), Some(&row)) = (u.group.as_deref(), rows.get(u.user.as_str())) {
            groups.push(group.to_string());
            embeddings.extend_from_slice(adapter.user_embedding(row));
        }
    }
    if groups.is_empty() {
        anyhow::bail!(
            "{}: no seen user of {} has a ground-truth group",
            data.display(),
            ckpt.display()
        );
    }
    let dim = embeddings.len() / groups.len();
    let users = candle_core::Tensor::from_vec(embeddings, (groups.len(), dim), &model.device)?;
    let routings = model.user_routings(&users)?;
    let adapters = model.backbone.adapters();
    let labelled: Vec<(String, &UserRouting)> = groups.into_iter().zip(&routings).collect();
    let allocation = Allocation::count(&labelled, adapters.config.experts)?;
    Ok(CheckpointAllocation {
        projections: adapters.names.clone(),
        experts_used: allocation.experts_used(),
        allocation,
        users: labelled.len(),
    })
}
