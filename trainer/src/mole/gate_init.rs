//! Gate initialisation from k-means centroids of the GCF user embeddings (issue #13's
//! "routing that separates users"): `copl-train mole --gate-init kmeans`.
//!
//! **Why.** Under the paper's top-1 routing (eq. 9) a gate's gradient reaches it only
//! through the chosen expert's weight w_u: training can make a user's expert matter more
//! or less, but nothing pulls a user towards another expert (the logit noise aside). So
//! the routing a run ends with is, by and large, the one its random initialisation drew:
//! on ufp4-all at 1 000 users no projection separated more than 3 of the 4 groups, and
//! CoPL stopped ≈ 20 points under oracle routing (docs/benchmarks.md, "The recipe at the
//! long budget, and oracle routing"). The GCF embeddings themselves separate the groups
//! (k-means NMI 0.999 at 10 000 users, docs/gcf.md): the clusters are there, the gates
//! only have to start on them.
//!
//! **How.** k-means (k-means++ seeding, several restarts) on the seen users'
//! L2-normalised embeddings ê_u, k chosen by the mean silhouette over 2..=M unless given.
//! Every gate `Linear(d → H) → ReLU → Linear(H → M)` is set so that expert k's logit is
//!
//! `β · (2 c_kᵀ ê_u − ‖c_k‖²)`, i.e. `β · (1 − ‖ê_u − c_k‖²)` for a unit ê_u,
//!
//! the nearest centroid wins: hidden units 2k and 2k + 1 carry ReLU(±c_kᵀ ê_u) (their
//! difference is c_kᵀ ê_u), the output row k reads them with ±2β and bias −β‖c_k‖².
//! Experts beyond k get the bias −2β (below any centroid's logit), the remaining hidden
//! units keep their random initialisation with output weights 0, free to learn. β puts
//! the median user's chosen expert [`MEDIAN_MARGIN`] logits above the runner-up (w_u ≈
//! 0.98 against one rival at τ = 1). The gates then train as in the paper; only their
//! starting point differs. Onboarded users (eq. 11) are routed by the same gates.

use anyhow::{Result, bail};
use candle_core::Tensor;
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::gcf::identify::{kmeans, nearest};

/// How the gates start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum GateInit {
    /// `kmeans` where gates train (CoPL routed by its gates), nothing otherwise.
    #[default]
    Auto,
    /// candle-nn's default initialisation (the paper's, as far as it says).
    Random,
    /// Each expert starts on a k-means cluster of the seen users' GCF embeddings.
    Kmeans,
}

impl GateInit {
    /// Whether the gates start on k-means clusters, for a run whose gates train
    /// (`trained_gates`); an error where `kmeans` was asked of a run without.
    pub fn kmeans(self, trained_gates: bool) -> Result<bool> {
        match (self, trained_gates) {
            (Self::Kmeans, false) => bail!(
                "--gate-init kmeans needs --variant copl with --routing gates: the other \
                 variants have no gates and the oracle's do not train"
            ),
            (Self::Auto | Self::Kmeans, trained) => Ok(trained),
            (Self::Random, _) => Ok(false),
        }
    }
}

/// The logit lead of the median user's expert over the runner-up after initialisation.
pub const MEDIAN_MARGIN: f64 = 4.0;
/// Bounds of the logit scale β (a data set whose clusters touch gets at most this).
const SCALE_RANGE: (f64, f64) = (1.0, 200.0);
/// k-means restarts for the chosen k (and for each candidate k).
const RESTARTS: usize = 4;
/// Users the silhouette reads at most (it is quadratic in them).
const SILHOUETTE_USERS: usize = 2000;

/// What the initialisation chose, for the run's summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CentroidGates {
    /// Clusters, one expert each (experts 0..clusters).
    pub clusters: usize,
    /// The mean silhouette of each candidate k (2..=M) when k was chosen, else empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub silhouettes: Vec<(usize, f64)>,
    /// Users per cluster.
    pub sizes: Vec<usize>,
    /// The logit scale β.
    pub scale: f64,
}

/// The k-means gates' centroids and scale for unit rows `users` and `experts` experts;
/// `clusters` = None chooses k by silhouette.
pub fn fit_centroids(
    users: &[Vec<f64>],
    experts: usize,
    clusters: Option<usize>,
    seed: u64,
) -> Result<(Vec<Vec<f64>>, CentroidGates)> {
    if users.len() < 2 {
        bail!(
            "--gate-init kmeans: {} seen user(s); clustering needs at least 2",
            users.len()
        );
    }
    let most = experts.min(users.len());
    // The chosen k's centroids, when the silhouette's sample was every user.
    let mut fitted = None;
    let (k, silhouettes) = match clusters {
        Some(k) if k < 1 || k > most => {
            bail!("--gate-clusters {k}: must be between 1 and {most} (experts, users)")
        }
        Some(k) => (k, Vec::new()),
        None if most < 2 => (1, Vec::new()),
        None => {
            let sample = spread_rows(users, SILHOUETTE_USERS);
            let whole = sample.len() == users.len();
            let mut best: Option<(usize, f64, Vec<Vec<f64>>)> = None;
            let mut scores = Vec::with_capacity(most - 1);
            for k in 2..=most {
                let c = kmeans(&sample, k, RESTARTS, seed);
                let score = mean_silhouette(&sample, &c);
                scores.push((k, score));
                // The last of equal scores, as `max_by` picks.
                if best.as_ref().is_none_or(|b| score.total_cmp(&b.1).is_ge()) {
                    best = Some((k, score, c));
                }
            }
            let (k, _, c) = best.unwrap_or((2, 0.0, Vec::new()));
            if whole && !c.is_empty() {
                fitted = Some(c);
            }
            (k, scores)
        }
    };
    let centroids = fitted.unwrap_or_else(|| kmeans(users, k, RESTARTS, seed));
    let mut sizes = vec![0; k];
    let mut margins = Vec::with_capacity(users.len());
    for u in users {
        sizes[nearest(&centroids, u)] += 1;
        let mut logits: Vec<f64> = centroids.iter().map(|c| unit_logit(c, u)).collect();
        logits.sort_by(|a, b| b.total_cmp(a));
        if let [first, second, ..] = logits[..] {
            margins.push(first - second);
        }
    }
    margins.sort_by(f64::total_cmp);
    let scale = match margins.get(margins.len() / 2) {
        Some(&m) if m > 0.0 => (MEDIAN_MARGIN / m).clamp(SCALE_RANGE.0, SCALE_RANGE.1),
        _ => SCALE_RANGE.1,
    };
    Ok((
        centroids,
        CentroidGates {
            clusters: k,
            silhouettes,
            sizes,
            scale,
        },
    ))
}

/// `2 cᵀu − ‖c‖²`: larger for nearer centroids (equal to 1 − ‖u − c‖² for a unit u).
fn unit_logit(c: &[f64], u: &[f64]) -> f64 {
    c.iter().zip(u).map(|(c, u)| 2.0 * c * u - c * c).sum()
}

/// At most `limit` rows, spread evenly.
fn spread_rows(rows: &[Vec<f64>], limit: usize) -> Vec<Vec<f64>> {
    if rows.len() <= limit {
        return rows.to_vec();
    }
    (0..limit)
        .map(|i| rows[i * rows.len() / limit].clone())
        .collect()
}

/// The mean silhouette of `rows` under nearest-centroid assignment (Rousseeuw 1987): per
/// row (b − a) / max(a, b) with a its mean distance to its own cluster, b to the nearest
/// other; a row alone in its cluster scores 0.
pub fn mean_silhouette(rows: &[Vec<f64>], centroids: &[Vec<f64>]) -> f64 {
    let k = centroids.len();
    if k < 2 || rows.is_empty() {
        return 0.0;
    }
    let labels: Vec<usize> = rows.iter().map(|r| nearest(centroids, r)).collect();
    let mut sizes = vec![0usize; k];
    labels.iter().for_each(|&l| sizes[l] += 1);
    let total: f64 = rows
        .iter()
        .zip(&labels)
        .map(|(r, &own)| {
            if sizes[own] < 2 {
                return 0.0;
            }
            let mut sums = vec![0.0; k];
            for (other, &l) in rows.iter().zip(&labels) {
                let d: f64 = r.iter().zip(other).map(|(x, y)| (x - y).powi(2)).sum();
                sums[l] += d.sqrt();
            }
            let a = sums[own] / (sizes[own] - 1) as f64;
            let b = (0..k)
                .filter(|&c| c != own && sizes[c] > 0)
                .map(|c| sums[c] / sizes[c] as f64)
                .fold(f64::INFINITY, f64::min);
            if !b.is_finite() || a.max(b) == 0.0 {
                0.0
            } else {
                (b - a) / a.max(b)
            }
        })
        .sum();
    total / rows.len() as f64
}

/// Sets every gate in `vars` (`….gate.hidden.*`, `….gate.out.*`) to route by the nearest
/// of `centroids` with logit scale `scale` (the module's construction). Returns the
/// number of gates set; an error where the centroids do not fit the gates.
pub fn set_centroid_gates(vars: &VarMap, centroids: &[Vec<f64>], scale: f64) -> Result<usize> {
    let data = vars
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("var map poisoned"))?;
    let k = centroids.len();
    let dim = centroids.first().map_or(0, Vec::len);
    let mut gates = 0;
    for (name, var) in data.iter().filter(|(n, _)| n.contains(".gate.")) {
        let dims = var.dims().to_vec();
        let mut values: Vec<f32> = var.as_tensor().flatten_all()?.to_vec1()?;
        let hidden_layer = name.contains(".hidden.");
        match (hidden_layer, name.ends_with(".weight"), &dims[..]) {
            (true, true, &[hidden, d_user]) => {
                if 2 * k > hidden || d_user != dim {
                    bail!(
                        "--gate-init kmeans: {k} centroids of {dim} dimensions, but {name} is \
                         {hidden} × {d_user} (it needs 2 hidden units a centroid)"
                    );
                }
                for (c, centroid) in centroids.iter().enumerate() {
                    for (j, &x) in centroid.iter().enumerate() {
                        values[2 * c * d_user + j] = x as f32;
                        values[(2 * c + 1) * d_user + j] = -x as f32;
                    }
                }
            }
            (true, false, &[hidden]) => {
                if 2 * k > hidden {
                    bail!(
                        "--gate-init kmeans: {k} centroids, but {name} has {hidden} hidden \
                         units (it needs 2 hidden units a centroid)"
                    );
                }
                values[..2 * k].iter_mut().for_each(|b| *b = 0.0)
            }
            (false, true, &[experts, hidden]) => {
                if k > experts {
                    bail!("--gate-init kmeans: {k} clusters for {experts} experts");
                }
                gates += 1;
                values.iter_mut().for_each(|w| *w = 0.0);
                for c in 0..k {
                    values[c * hidden + 2 * c] = (2.0 * scale) as f32;
                    values[c * hidden + 2 * c + 1] = (-2.0 * scale) as f32;
                }
            }
            (false, false, &[experts]) => {
                for (e, b) in values.iter_mut().enumerate().take(experts) {
                    *b = match centroids.get(e) {
                        Some(c) => (-scale * c.iter().map(|x| x * x).sum::<f64>()) as f32,
                        None => (-2.0 * scale) as f32,
                    };
                }
            }
            _ => bail!("{name}: unexpected gate shape {dims:?}"),
        }
        var.set(&Tensor::from_vec(values, dims, var.device())?)?;
    }
    if gates == 0 {
        bail!("--gate-init kmeans: the model has no gates (it needs --variant copl)");
    }
    Ok(gates)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four tight clusters on the unit circle's axes, `n` users each.
    fn four_clusters(n: usize) -> (Vec<Vec<f64>>, Vec<usize>) {
        let axes = [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]];
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for i in 0..4 * n {
            let g = i % 4;
            let jitter = 0.05 * ((i * 7919 % 101) as f64 / 101.0 - 0.5);
            let (x, y) = (
                axes[g][0] - jitter * axes[g][1],
                axes[g][1] + jitter * axes[g][0],
            );
            let norm = (x * x + y * y).sqrt();
            rows.push(vec![x / norm, y / norm]);
            labels.push(g);
        }
        (rows, labels)
    }

    #[test]
    fn silhouette_chooses_the_number_of_clusters_there_are() {
        let (rows, labels) = four_clusters(30);
        let (centroids, chosen) = fit_centroids(&rows, 8, None, 0).unwrap();
        assert_eq!(chosen.clusters, 4, "{chosen:?}");
        assert_eq!(chosen.sizes, vec![30; 4]);
        // The silhouette's sample was every user: its fit for the chosen k is reused,
        // the one a fresh fit of all users gives.
        assert_eq!(centroids, kmeans(&rows, 4, RESTARTS, 0));
        // Each cluster is one group.
        for g in 0..4 {
            let found: std::collections::BTreeSet<usize> = rows
                .iter()
                .zip(&labels)
                .filter(|(_, l)| **l == g)
                .map(|(r, _)| nearest(&centroids, r))
                .collect();
            assert_eq!(found.len(), 1, "group {g} split over {found:?}");
        }
        assert!(chosen.scale > 1.0 && chosen.scale <= 200.0);
        let (_, fixed) = fit_centroids(&rows, 8, Some(3), 0).unwrap();
        assert_eq!(fixed.clusters, 3);
        assert!(fixed.silhouettes.is_empty());
        assert!(fit_centroids(&rows, 8, Some(9), 0).is_err());
        assert!(fit_centroids(&rows[..1], 8, None, 0).is_err());
    }

    /// The gate the construction sets routes every user to their nearest centroid, with
    /// the median user's weight near 1, and the experts without a centroid get no one.
    #[test]
    fn centroid_gates_route_by_the_nearest_centroid() {
        use candle_core::{DType, Device};
        use copl_core::model::{MoleConfig, mole::Gate, mole::route};
        let (rows, _) = four_clusters(10);
        let (centroids, chosen) = fit_centroids(&rows, 8, None, 1).unwrap();
        let config = MoleConfig {
            user_dim: 2,
            gate_hidden: 16,
            ..MoleConfig::default()
        };
        let vars = VarMap::new();
        let vb = candle_nn::VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
        let gate = Gate::new(&config, vb.pp("layer.gate")).unwrap();
        assert_eq!(
            set_centroid_gates(&vars, &centroids, chosen.scale).unwrap(),
            1
        );
        let flat: Vec<f32> = rows.iter().flatten().map(|&x| x as f32).collect();
        let users = Tensor::from_vec(flat, (rows.len(), 2), &Device::Cpu).unwrap();
        let routing = route(&gate.logits(&users).unwrap(), 1.0, None).unwrap();
        let weights: Vec<Vec<f32>> = routing.weights.to_vec2().unwrap();
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(
                routing.experts[i] as usize,
                nearest(&centroids, row),
                "user {i}"
            );
            assert!(
                weights[i][routing.experts[i] as usize] > 0.9,
                "{:?}",
                weights[i]
            );
        }
        // Too few hidden units for the centroids: a clear error.
        let small = VarMap::new();
        let vb = candle_nn::VarBuilder::from_varmap(&small, DType::F32, &Device::Cpu);
        let config = MoleConfig {
            gate_hidden: 6,
            ..config
        };
        Gate::new(&config, vb.pp("layer.gate")).unwrap();
        let e = set_centroid_gates(&small, &centroids, 1.0).unwrap_err();
        assert!(e.to_string().contains("2 hidden units a centroid"), "{e}");
    }
}
