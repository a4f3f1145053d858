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
}

/// The logit of a group's own expert under the oracle gate (every other logit is 0).
pub const ORACLE_LOGIT: f32 = 20.0;

/// Each seen user's oracle group ([`truth_label`]) as an index into the sorted list of
/// groups.
pub struct OracleGroups {
    /// The groups, sorted; a user's code is the index of their group here.
    pub names: Vec<String>,
    /// Per graph user index: the code, or None (no ground truth).
    codes: Vec<Option<usize>>,
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
    pub fn new(dataset: &Dataset, ids: &GraphIds) -> Result<Self> {
        let by_user: std::collections::HashMap<&str, String> = dataset
            .users()
            .iter()
            .filter_map(|u| Some((u.user.as_str(), truth_label(u)?)))
            .collect();
        let names: Vec<String> = by_user
            .values()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let codes = ids
            .users
            .iter()
            .map(|u| {
                by_user
                    .get(u.as_str())
                    .and_then(|g| names.iter().position(|n| n == g))
            })
            .collect();
        Ok(Self { names, codes })
    }

    /// The codes of a split's pairs' users, in `text_pairs`' order; an error names the
    /// first user without ground truth.
    pub fn pair_codes(
        &self,
        dataset: &Dataset,
        ids: &GraphIds,
        split: Split,
    ) -> Result<Vec<usize>> {
        pair_rows(dataset, ids, split)
            .into_iter()
            .map(|(u, _, _)| {
                self.codes[u as usize].with_context(|| {
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

/// The gate input of a user of group `code`: the one-hot vector of length `dim`.
pub fn one_hot(code: usize, dim: usize) -> Vec<f32> {
    let mut v = vec![0f32; dim];
    v[code] = 1.0;
    v
}

/// Sets every gate in `vars` (`….gate.hidden.*`, `….gate.out.*`) to the oracle gate:
/// hidden unit g copies input g (ReLU keeps the 1), output logit g reads hidden unit g
/// with weight [`ORACLE_LOGIT`], biases 0. `groups` must fit the user dimension, the
/// gate's hidden width and the experts.
pub fn set_oracle_gates(vars: &VarMap, groups: usize) -> Result<()> {
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
                (0..groups).for_each(|g| w[g * hidden + g] = ORACLE_LOGIT);
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
