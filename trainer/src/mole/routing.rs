//! How the gates route users against the ground truth (the paper's Fig. 6, and issue
//! #13's measures): for each MoLE projection, the share of each group's users on each
//! expert (top-1, eq. 9), how purely the groups land on experts of their own, how many
//! experts carry traffic — at the end of training (`copl-train eval-experts`) and at
//! every validation step (`StepRecord::routing`, from a [`RoutingProbe`]).

use std::collections::BTreeMap;

use anyhow::Result;
use candle_core::Tensor;
use copl_core::{
    adapt::Adapter,
    data::Dataset,
    graph::GraphIds,
    model::{UserRouting, reward::RewardModel},
};
use serde::{Deserialize, Serialize};

use super::oracle::truth_label;

/// `shares[group][projection][expert]`: the fraction of the group's users whose routing
/// picks that expert in that projection (each projection's row sums to 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

    /// How purely each projection routes the groups apart (issue #13's measure), per
    /// projection.
    pub fn purity(&self) -> Vec<ProjectionPurity> {
        let projections = self.shares.values().next().map_or(0, Vec::len);
        let groups = self.shares.len().max(1) as f64;
        (0..projections)
            .map(|p| {
                let mut majority_share = 0.0;
                let mut entropy_bits = 0.0;
                let mut majorities = std::collections::BTreeSet::new();
                for table in self.shares.values() {
                    let row = &table[p];
                    // The majority expert; on a tie the lowest-numbered one.
                    let (top, share) =
                        row.iter()
                            .enumerate()
                            .fold((0, f64::NEG_INFINITY), |best, (e, &s)| {
                                if s > best.1 { (e, s) } else { best }
                            });
                    majorities.insert(top);
                    majority_share += share / groups;
                    entropy_bits -= row
                        .iter()
                        .filter(|&&s| s > 0.0)
                        .map(|s| s * s.log2())
                        .sum::<f64>()
                        / groups;
                }
                ProjectionPurity {
                    majority_share,
                    entropy_bits,
                    distinct_majorities: majorities.len(),
                }
            })
            .collect()
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

/// One projection's routing against the ground truth: 1, 0 and the number of groups
/// when every group has an expert of its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectionPurity {
    /// Mean over groups of the share of the group's users on its majority expert.
    pub majority_share: f64,
    /// Mean over groups of the entropy (bits) of where the group's users go.
    pub entropy_bits: f64,
    /// How many different experts the groups' majorities are (groups apart).
    pub distinct_majorities: usize,
}

/// What one validation step records of the routing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoutingMeasure {
    pub experts_used: Vec<usize>,
    pub purity: Vec<ProjectionPurity>,
}

/// The seen users whose routing a run follows while it trains: their gate inputs and
/// ground-truth labels (`oracle::truth_label`).
pub struct RoutingProbe {
    /// `[n × d_user]`, L2-normalised, as the gates read them.
    pub users: Vec<f32>,
    pub labels: Vec<String>,
}

impl RoutingProbe {
    /// Every seen user (a row of `ids`) with a ground-truth label, and their GCF
    /// embedding from `adapter`; None when no seen user has one.
    pub fn seen_users(dataset: &Dataset, ids: &GraphIds, adapter: &Adapter) -> Option<Self> {
        let rows = ids.user_rows();
        let mut probe = Self {
            users: Vec::new(),
            labels: Vec::new(),
        };
        for u in dataset.users() {
            if let (Some(label), Some(&row)) = (truth_label(u), rows.get(u.user.as_str())) {
                probe.users.extend_from_slice(adapter.user_embedding(row));
                probe.labels.push(label);
            }
        }
        (!probe.labels.is_empty()).then_some(probe)
    }

    /// Routes every probed user through `model`'s gates (no noise), counted by label.
    pub fn allocation(&self, model: &RewardModel) -> Result<Allocation> {
        let dim = self.users.len() / self.labels.len().max(1);
        let users = Tensor::from_vec(self.users.clone(), (self.labels.len(), dim), &model.device)?;
        let routings = model.user_routings(&users)?;
        let labelled: Vec<(String, &UserRouting)> =
            self.labels.iter().cloned().zip(&routings).collect();
        Allocation::count(&labelled, model.backbone.adapters().config.experts)
    }

    /// [`Self::allocation`]'s measures; `None` for a model without gates or a probe
    /// without users.
    pub fn measure(&self, model: &RewardModel) -> Result<Option<RoutingMeasure>> {
        if self.labels.is_empty() || !model.config.variant.uses_gates() {
            return Ok(None);
        }
        let allocation = self.allocation(model)?;
        Ok(Some(RoutingMeasure {
            experts_used: allocation.experts_used(),
            purity: allocation.purity(),
        }))
    }
}
