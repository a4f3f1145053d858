//! Expert allocation by group (the paper's Fig. 6): for each MoLE projection, the share
//! of each ground-truth group's users routed to each expert (top-1, eq. 9).

use std::collections::BTreeMap;

use copl_core::model::UserRouting;

/// `shares[group][projection][expert]`: the fraction of the group's users whose routing
/// picks that expert in that projection (each projection's row sums to 1).
#[derive(Clone, Debug, PartialEq)]
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
