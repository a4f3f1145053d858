//! Oracle routing, a diagnostic (issue #13's first item): `copl-train mole --routing
//! oracle` routes every seen user by their ground-truth group instead of the gates —
//! one expert per group, weight 1, in every MoLE projection. Trained this way, CoPL's
//! architecture gets a perfect routing for free, so the gap to the paper's G-Oracle
//! splits in two: what MoLE cannot learn at the budget (oracle routing below G-Oracle)
//! and what the gates miss (CoPL's own routing below oracle routing).
//!
//! How it is done without a second routing path: each pair's gate input (the user's
//! L2-normalised GCF embedding in eq. 8) is replaced by the one-hot code of the user's
//! group, and every gate is set to a fixed map of code g to expert g (a logit margin of
//! [`ORACLE_LOGIT`], so softmax weight ≈ 1 − 7·e⁻²⁰ at τ = 1; the training noise of
//! σ = 0.1 cannot flip it) that does not train. A PersonalLLM-style user (mixture
//! `weights`, no `group`) is routed by the argmax of their weights.
//!
//! The run's summary (validation curve, seen users' test accuracy under oracle
//! routing) is the result; no reward model is written: its gates read group codes,
//! which no served user has.

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};
use candle_core::Tensor;
use candle_nn::VarMap;
use copl_core::{
    data::{Dataset, Split, UserTruth},
    graph::GraphIds,
};
use serde::{Deserialize, Serialize};

use crate::gcf::pair_rows;

/// Who routes a user to an expert.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Routing {
    /// The gates, from the user's GCF embedding (eq. 8–9; the paper).
    #[default]
    Gates,
    /// The user's ground-truth group (`group` in users.jsonl, or the argmax of
    /// `weights`): the diagnostic of this module.
    Oracle,
    /// A mixture user's own `weights` over as many experts (a group's user: their
    /// group's expert alone), every expert weighted at once (soft routing,
    /// [`copl_core::model::MoleConfig::soft_routing`]): what the top-1 oracle loses on
    /// mixtures. The autograd engine only.
    #[serde(rename = "oracle-soft")]
    #[value(name = "oracle-soft")]
    OracleSoft,
}

impl Routing {
    /// Routed by the ground truth, not the gates (which then do not train).
    pub fn is_oracle(self) -> bool {
        self != Self::Gates
    }
}

/// The logit of a group's own expert under the oracle gate (every other logit is 0).
pub const ORACLE_LOGIT: f32 = 20.0;

/// The smallest mixture weight the soft oracle represents: its gate input is
/// ln(max(w, ε) / ε) ≥ 0 (the gate's ReLU keeps it), so an expert of weight w gets
/// softmax weight ∝ w, and an expert no component maps to ∝ ε.
pub const SOFT_ORACLE_FLOOR: f32 = 1e-4;

/// Each seen user's oracle routing: weights over the oracle's experts (one-hot on their
/// [`truth_label`] for the top-1 oracle; their mixture weights for the soft one).
pub struct OracleGroups {
    /// The experts' names, sorted (groups, or `w<i>` mixture components); expert i
    /// stands for `names[i]`.
    pub names: Vec<String>,
    /// Per graph user index: the weights over `names`, or None (no ground truth).
    codes: Vec<Option<Vec<f32>>>,
}

/// A user's ground-truth label: `group` where users.jsonl gives one, else `w<i>` for the
/// largest of their mixture `weights` (PersonalLLM-style users), else none.
pub fn truth_label(user: &UserTruth) -> Option<String> {
    if let Some(g) = &user.group {
        return Some(g.clone());
    }
    let w = user.weights.as_ref()?;
    let (i, _) = w.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
    Some(format!("w{i}"))
}

impl OracleGroups {
    /// The top-1 oracle's groups (`soft` false: one-hot on each user's truth label, the
    /// labels that occur) or the soft oracle's (`soft`: a mixture user's weights over
    /// all their components `w0 … w(K−1)`, a group user one-hot on their group).
    pub fn new(dataset: &Dataset, ids: &GraphIds, soft: bool) -> Result<Self> {
        let mixtures = soft && dataset.users().iter().all(|u| u.group.is_none());
        let names: Vec<String> = if mixtures {
            let k = dataset
                .users()
                .iter()
                .filter_map(|u| u.weights.as_ref().map(Vec::len))
                .max()
                .unwrap_or(0);
            (0..k).map(|i| format!("w{i}")).collect::<BTreeSet<_>>()
        } else {
            dataset.users().iter().filter_map(truth_label).collect()
        }
        .into_iter()
        .collect();
        let by_user: std::collections::HashMap<&str, Vec<f32>> = dataset
            .users()
            .iter()
            .filter_map(|u| {
                let code = match (&u.weights, mixtures) {
                    (Some(w), true) => {
                        let total: f64 = w.iter().sum();
                        let mut code = vec![0f32; names.len()];
                        for (i, &x) in w.iter().enumerate() {
                            let at = names.iter().position(|n| *n == format!("w{i}"))?;
                            code[at] = (x / total.max(f64::MIN_POSITIVE)) as f32;
                        }
                        code
                    }
                    _ => {
                        let label = truth_label(u)?;
                        one_hot(names.iter().position(|n| *n == label)?, names.len())
                    }
                };
                Some((u.user.as_str(), code))
            })
            .collect();
        let codes = ids
            .users
            .iter()
            .map(|u| by_user.get(u.as_str()).cloned())
            .collect();
        Ok(Self { names, codes })
    }

    /// The routing weights of a split's pairs' users, in `text_pairs`' order; an error
    /// names the first user without ground truth.
    pub fn pair_codes(
        &self,
        dataset: &Dataset,
        ids: &GraphIds,
        split: Split,
    ) -> Result<Vec<Vec<f32>>> {
        pair_rows(dataset, ids, split)
            .into_iter()
            .map(|(u, _, _)| {
                self.codes[u as usize].clone().with_context(|| {
                    format!(
                        "users.jsonl: user {} has neither group nor weights; --routing oracle \
                         routes by them",
                        ids.users[u as usize]
                    )
                })
            })
            .collect()
    }
}

/// The one-hot vector of `code` of length `dim`.
pub fn one_hot(code: usize, dim: usize) -> Vec<f32> {
    let mut v = vec![0f32; dim];
    v[code] = 1.0;
    v
}

/// The gate input, `dim` wide, of a user whose oracle routing is `weights`: the top-1
/// oracle's one-hot code of the largest weight, or the soft oracle's τ·ln(max(w, ε)/ε)
/// per expert ([`SOFT_ORACLE_FLOOR`]), which the soft oracle gate ([`set_oracle_gates`]
/// with weight 1) turns into softmax(logits / τ) = w / Σw.
pub fn gate_input(weights: &[f32], dim: usize, soft: bool, temperature: f64) -> Vec<f32> {
    let mut v = vec![0f32; dim];
    if soft {
        for (x, &w) in v.iter_mut().zip(weights) {
            *x = temperature as f32 * (w.max(SOFT_ORACLE_FLOOR) / SOFT_ORACLE_FLOOR).ln();
        }
    } else if let Some((top, _)) = weights.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)) {
        v[top] = 1.0;
    }
    v
}

/// Sets every gate in `vars` (`….gate.hidden.*`, `….gate.out.*`) to the oracle gate:
/// hidden unit g copies input g (ReLU keeps the non-negative input), output logit g
/// reads hidden unit g with weight `logit` ([`ORACLE_LOGIT`] for the top-1 oracle's
/// one-hot inputs, 1 for the soft oracle's log-weights), biases 0. `groups` must fit the
/// user dimension, the gate's hidden width and the experts.
pub fn set_oracle_gates(vars: &VarMap, groups: usize, logit: f32) -> Result<()> {
    let data = vars
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("var map poisoned"))?;
    let mut gates = 0;
    for (name, var) in data.iter().filter(|(n, _)| n.contains(".gate.")) {
        let dims = var.dims().to_vec();
        let values = match (
            name.contains(".hidden."),
            name.ends_with(".weight"),
            &dims[..],
        ) {
            (_, false, _) => vec![0f32; var.elem_count()],
            (true, true, &[hidden, d_user]) => {
                if groups > hidden.min(d_user) {
                    bail!(
                        "--routing oracle: {groups} groups, but the gate's input is {d_user} wide and its hidden layer {hidden}"
                    );
                }
                let mut w = vec![0f32; hidden * d_user];
                (0..groups).for_each(|g| w[g * d_user + g] = 1.0);
                w
            }
            (false, true, &[experts, hidden]) => {
                if groups > experts {
                    bail!("--routing oracle: {groups} groups for {experts} experts");
                }
                gates += 1;
                let mut w = vec![0f32; experts * hidden];
                (0..groups).for_each(|g| w[g * hidden + g] = logit);
                w
            }
            _ => bail!("{name}: unexpected gate shape {dims:?}"),
        };
        var.set(&Tensor::from_vec(values, dims, var.device())?)?;
    }
    if gates == 0 {
        bail!("--routing oracle: the model has no gates (it needs --variant copl)");
    }
    Ok(())
}
