//! How well user embeddings identify a user's ground-truth preference: what CoPL's gates
//! (eq. 8–9) and onboarding (eq. 11) need of them, measured apart from pair accuracy.
//!
//! - **Linear probe**: softmax regression on the L2-normalised embeddings (what the gates
//!   read), fitted on a seeded 80 % of the seen users, accuracy on the other 20 %; the
//!   same probe, fitted on every seen user, applied to onboarded unseen users.
//! - **k-means NMI**: k-means (k = number of groups, k-means++ seeding, best of several
//!   restarts) on the seen users' normalised embeddings, and the normalised mutual
//!   information (arithmetic mean of the entropies) of its clusters with the groups;
//!   unseen users are assigned to the nearest seen centroid.
//! - **Mixtures** (personal): the R² of a ridge regression from the embedding to the
//!   user's weights, pooled over the weights, on the same split.
//! - **Bayes bound**: the share of seen users whose group the maximum-likelihood rule
//!   recovers from their own training answers under the generator's noiseless rules and
//!   label noise: no embedding can identify more from those answers alone.
//!
//! Everything here is plain `f64` arithmetic on rows; it is seeded and deterministic.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Share of seen users the probes are fitted on (the rest scores them).
pub const TRAIN_SHARE: f64 = 0.8;

/// How well one set of embeddings identifies the users' groups or weights.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Identification {
    /// Users scored.
    pub users: usize,
    /// Linear probe's accuracy on them (groups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_accuracy: Option<f64>,
    /// NMI of k-means clusters with the groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kmeans_nmi: Option<f64>,
    /// R² of a linear (ridge) prediction of the mixture weights (mixtures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_r2: Option<f64>,
}

/// The identification report of `copl-train eval-gcf`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupIdentification {
    /// Number of groups (0 for mixtures).
    pub groups: usize,
    /// Held-out seen users (the probe's and the regression's 20 %; NMI over all seen).
    pub seen: Identification,
    /// Unseen users onboarded from their answers (eq. 11, 2 hops), where the data has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unseen: Option<Identification>,
    /// Maximum-likelihood group from a seen user's own training answers (groups only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bayes_bound: Option<f64>,
}

/// Rows scaled to unit length (a zero row stays zero).
pub fn normalised(rows: &[Vec<f32>]) -> Vec<Vec<f64>> {
    rows.iter()
        .map(|r| {
            let norm = r.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
            let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
            r.iter().map(|x| f64::from(*x) * scale).collect()
        })
        .collect()
}

/// A seeded split of `n` items into (fit, held out) index lists.
pub fn split(n: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let fit = ((n as f64 * TRAIN_SHARE).round() as usize).clamp(n.min(1), n);
    let held = order.split_off(fit);
    (order, held)
}

/// A multinomial logistic regression (softmax over `classes`, bias, small L2), fitted
/// with Adam on the whole batch: the linear probe.
pub struct Probe {
    classes: usize,
    dim: usize,
    /// `classes × (dim + 1)`, the bias last.
    weights: Vec<f64>,
}

impl Probe {
    pub fn fit(x: &[Vec<f64>], y: &[usize], classes: usize) -> Self {
        let dim = x.first().map_or(0, Vec::len);
        let width = dim + 1;
        let mut probe = Probe {
            classes,
            dim,
            weights: vec![0.0; classes * width],
        };
        if x.is_empty() || classes < 2 {
            return probe;
        }
        let (lr, l2, beta1, beta2) = (0.05, 1e-4, 0.9, 0.999);
        let mut m = vec![0.0; probe.weights.len()];
        let mut v = vec![0.0; probe.weights.len()];
        let mut grad = vec![0.0; probe.weights.len()];
        let mut p = vec![0.0; classes];
        for t in 1..=400 {
            grad.iter_mut().for_each(|g| *g = 0.0);
            for (row, &label) in x.iter().zip(y) {
                probe.probabilities(row, &mut p);
                for (c, &pc) in p.iter().enumerate() {
                    let err = pc - f64::from(u8::from(c == label));
                    let g = &mut grad[c * width..(c + 1) * width];
                    for (gi, xi) in g.iter_mut().zip(row) {
                        *gi += err * xi;
                    }
                    g[dim] += err;
                }
            }
            let n = x.len() as f64;
            for i in 0..grad.len() {
                let g = grad[i] / n + l2 * probe.weights[i];
                m[i] = beta1 * m[i] + (1.0 - beta1) * g;
                v[i] = beta2 * v[i] + (1.0 - beta2) * g * g;
                let mh = m[i] / (1.0 - beta1.powi(t));
                let vh = v[i] / (1.0 - beta2.powi(t));
                probe.weights[i] -= lr * mh / (vh.sqrt() + 1e-8);
            }
        }
        probe
    }

    fn probabilities(&self, row: &[f64], p: &mut [f64]) {
        let width = self.dim + 1;
        for (c, pc) in p.iter_mut().enumerate() {
            let w = &self.weights[c * width..(c + 1) * width];
            *pc = w[self.dim] + w.iter().zip(row).map(|(a, b)| a * b).sum::<f64>();
        }
        let max = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut sum = 0.0;
        for pc in p.iter_mut() {
            *pc = (*pc - max).exp();
            sum += *pc;
        }
        p.iter_mut().for_each(|pc| *pc /= sum);
    }

    pub fn predict(&self, row: &[f64]) -> usize {
        let mut p = vec![0.0; self.classes];
        self.probabilities(row, &mut p);
        argmax(&p)
    }

    /// Share of `x` predicted as `y`.
    pub fn accuracy(&self, x: &[Vec<f64>], y: &[usize]) -> f64 {
        let right = x
            .iter()
            .zip(y)
            .filter(|(r, l)| self.predict(r) == **l)
            .count();
        right as f64 / x.len().max(1) as f64
    }
}

fn argmax(values: &[f64]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

/// k-means centroids of `x` (k-means++ seeding, Lloyd's iterations, the lowest inertia
/// of `restarts` runs).
pub fn kmeans(x: &[Vec<f64>], k: usize, restarts: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut best: Option<(f64, Vec<Vec<f64>>)> = None;
    if x.is_empty() || k == 0 {
        return Vec::new();
    }
    for _ in 0..restarts.max(1) {
        let mut centroids = vec![x[rng.random_range(0..x.len())].clone()];
        while centroids.len() < k {
            let d2: Vec<f64> = x
                .iter()
                .map(|r| {
                    centroids
                        .iter()
                        .map(|c| squared_distance(r, c))
                        .fold(f64::INFINITY, f64::min)
                })
                .collect();
            let total: f64 = d2.iter().sum();
            let next = if total > 0.0 {
                let mut target = rng.random::<f64>() * total;
                d2.iter()
                    .position(|&d| {
                        target -= d;
                        target <= 0.0
                    })
                    .unwrap_or(x.len() - 1)
            } else {
                rng.random_range(0..x.len())
            };
            centroids.push(x[next].clone());
        }
        let mut assignment = vec![usize::MAX; x.len()];
        for _ in 0..100 {
            let next: Vec<usize> = x.iter().map(|r| nearest(&centroids, r)).collect();
            if next == assignment {
                break;
            }
            assignment = next;
            let dim = x[0].len();
            let mut sums = vec![vec![0.0; dim]; k];
            let mut counts = vec![0usize; k];
            for (r, &c) in x.iter().zip(&assignment) {
                counts[c] += 1;
                sums[c].iter_mut().zip(r).for_each(|(s, v)| *s += v);
            }
            for (c, (sum, count)) in sums.into_iter().zip(counts).enumerate() {
                if count > 0 {
                    centroids[c] = sum.into_iter().map(|s| s / count as f64).collect();
                }
            }
        }
        let inertia: f64 = x
            .iter()
            .map(|r| squared_distance(r, &centroids[nearest(&centroids, r)]))
            .sum();
        if best.as_ref().is_none_or(|(b, _)| inertia < *b) {
            best = Some((inertia, centroids));
        }
    }
    best.map(|(_, c)| c).unwrap_or_default()
}

/// Index of the centroid nearest to `row`.
pub fn nearest(centroids: &[Vec<f64>], row: &[f64]) -> usize {
    let d: Vec<f64> = centroids
        .iter()
        .map(|c| -squared_distance(row, c))
        .collect();
    argmax(&d)
}

/// Normalised mutual information of two labelings, I / mean(H(a), H(b)) (1 when they
/// match up to renaming; 0 when independent; 1 when both are constant).
pub fn nmi(a: &[usize], b: &[usize]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    if n == 0.0 {
        return f64::NAN;
    }
    let mut joint: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    let mut pa: BTreeMap<usize, f64> = BTreeMap::new();
    let mut pb: BTreeMap<usize, f64> = BTreeMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *joint.entry((x, y)).or_default() += 1.0 / n;
        *pa.entry(x).or_default() += 1.0 / n;
        *pb.entry(y).or_default() += 1.0 / n;
    }
    let entropy =
        |p: &BTreeMap<usize, f64>| -> f64 { -p.values().map(|q| q * q.ln()).sum::<f64>() };
    let mutual: f64 = joint
        .iter()
        .map(|(&(x, y), &p)| p * (p / (pa[&x] * pb[&y])).ln())
        .sum();
    let mean = (entropy(&pa) + entropy(&pb)) / 2.0;
    if mean <= 0.0 {
        1.0
    } else {
        (mutual / mean).clamp(0.0, 1.0)
    }
}

/// A ridge regression from rows (with a bias) to several targets.
pub struct Ridge {
    /// `(dim + 1) × targets`, the bias row last.
    coefficients: Vec<Vec<f64>>,
}

impl Ridge {
    pub fn fit(x: &[Vec<f64>], y: &[Vec<f64>], lambda: f64) -> Self {
        let dim = x.first().map_or(0, Vec::len) + 1;
        let targets = y.first().map_or(0, Vec::len);
        let row = |r: &[f64]| r.iter().copied().chain([1.0]).collect::<Vec<f64>>();
        let mut gram = vec![vec![0.0; dim]; dim];
        let mut rhs = vec![vec![0.0; targets]; dim];
        for (r, t) in x.iter().zip(y) {
            let r = row(r);
            for i in 0..dim {
                for j in 0..dim {
                    gram[i][j] += r[i] * r[j];
                }
                for (k, v) in t.iter().enumerate() {
                    rhs[i][k] += r[i] * v;
                }
            }
        }
        for (i, g) in gram.iter_mut().enumerate().take(dim - 1) {
            g[i] += lambda;
        }
        Ridge {
            coefficients: solve(gram, rhs),
        }
    }

    pub fn predict(&self, row: &[f64]) -> Vec<f64> {
        let targets = self.coefficients.first().map_or(0, Vec::len);
        (0..targets)
            .map(|k| {
                row.iter()
                    .copied()
                    .chain([1.0])
                    .zip(&self.coefficients)
                    .map(|(x, c)| x * c[k])
                    .sum()
            })
            .collect()
    }

    /// R² pooled over the targets: 1 − Σ residual² / Σ (y − mean y)².
    pub fn r2(&self, x: &[Vec<f64>], y: &[Vec<f64>]) -> f64 {
        let targets = y.first().map_or(0, Vec::len);
        let n = y.len().max(1) as f64;
        let means: Vec<f64> = (0..targets)
            .map(|k| y.iter().map(|t| t[k]).sum::<f64>() / n)
            .collect();
        let (mut residual, mut total) = (0.0, 0.0);
        for (r, t) in x.iter().zip(y) {
            let p = self.predict(r);
            for k in 0..targets {
                residual += (t[k] - p[k]).powi(2);
                total += (t[k] - means[k]).powi(2);
            }
        }
        if total > 0.0 {
            1.0 - residual / total
        } else {
            f64::NAN
        }
    }
}

/// Solves `a · x = b` by Gaussian elimination with partial pivoting (a singular
/// direction gets a zero coefficient).
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    let n = a.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap_or(col);
        a.swap(col, pivot);
        b.swap(col, pivot);
        if a[col][col].abs() < 1e-12 {
            continue;
        }
        for row in col + 1..n {
            let f = a[row][col] / a[col][col];
            if f == 0.0 {
                continue;
            }
            let (upper, lower) = a.split_at_mut(row);
            for (t, p) in lower[0][col..].iter_mut().zip(&upper[col][col..]) {
                *t -= f * p;
            }
            let (upper, lower) = b.split_at_mut(row);
            for (t, p) in lower[0].iter_mut().zip(&upper[col]) {
                *t -= f * p;
            }
        }
    }
    let targets = b.first().map_or(0, Vec::len);
    let mut x = vec![vec![0.0; targets]; n];
    for col in (0..n).rev() {
        if a[col][col].abs() < 1e-12 {
            continue;
        }
        for k in 0..targets {
            let s: f64 = (col + 1..n).map(|j| a[col][j] * x[j][k]).sum();
            x[col][k] = (b[col][k] - s) / a[col][col];
        }
    }
    x
}

/// Group identification of seen users (`seen`: embedding, group) and of onboarded unseen
/// users, probe and k-means fitted on the seen users.
pub fn identify_groups(
    seen: &[(Vec<f32>, usize)],
    unseen: &[(Vec<f32>, usize)],
    groups: usize,
    seed: u64,
) -> (Identification, Option<Identification>) {
    let x = normalised(&seen.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>());
    let y: Vec<usize> = seen.iter().map(|(_, g)| *g).collect();
    let (fit, held) = split(x.len(), seed);
    let pick = |idx: &[usize]| -> (Vec<Vec<f64>>, Vec<usize>) {
        (
            idx.iter().map(|&i| x[i].clone()).collect(),
            idx.iter().map(|&i| y[i]).collect(),
        )
    };
    let (fx, fy) = pick(&fit);
    let (hx, hy) = pick(&held);
    let probe = Probe::fit(&fx, &fy, groups);
    let centroids = kmeans(&x, groups, 8, seed);
    let clusters: Vec<usize> = x.iter().map(|r| nearest(&centroids, r)).collect();
    let seen_id = Identification {
        users: hx.len(),
        probe_accuracy: Some(probe.accuracy(&hx, &hy)),
        kmeans_nmi: Some(nmi(&clusters, &y)),
        weights_r2: None,
    };
    let unseen_id = (!unseen.is_empty()).then(|| {
        let ux = normalised(&unseen.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>());
        let uy: Vec<usize> = unseen.iter().map(|(_, g)| *g).collect();
        let all = Probe::fit(&x, &y, groups);
        let uc: Vec<usize> = ux.iter().map(|r| nearest(&centroids, r)).collect();
        Identification {
            users: ux.len(),
            probe_accuracy: Some(all.accuracy(&ux, &uy)),
            kmeans_nmi: Some(nmi(&uc, &uy)),
            weights_r2: None,
        }
    });
    (seen_id, unseen_id)
}

/// Mixture identification: R² of a ridge regression from the normalised embedding to the
/// weights, fitted on 80 % of the seen users, scored on the rest and on unseen users.
pub fn identify_weights(
    seen: &[(Vec<f32>, Vec<f64>)],
    unseen: &[(Vec<f32>, Vec<f64>)],
    seed: u64,
) -> (Identification, Option<Identification>) {
    let x = normalised(&seen.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>());
    let y: Vec<Vec<f64>> = seen.iter().map(|(_, w)| w.clone()).collect();
    let (fit, held) = split(x.len(), seed);
    let pick = |idx: &[usize]| -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        (
            idx.iter().map(|&i| x[i].clone()).collect(),
            idx.iter().map(|&i| y[i].clone()).collect(),
        )
    };
    let (fx, fy) = pick(&fit);
    let (hx, hy) = pick(&held);
    let ridge = Ridge::fit(&fx, &fy, 1e-3 * fx.len() as f64);
    let seen_id = Identification {
        users: hx.len(),
        weights_r2: Some(ridge.r2(&hx, &hy)),
        ..Identification::default()
    };
    let unseen_id = (!unseen.is_empty()).then(|| {
        let ux = normalised(&unseen.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>());
        let uy: Vec<Vec<f64>> = unseen.iter().map(|(_, w)| w.clone()).collect();
        let all = Ridge::fit(&x, &y, 1e-3 * x.len() as f64);
        Identification {
            users: ux.len(),
            weights_r2: Some(all.r2(&ux, &uy)),
            ..Identification::default()
        }
    });
    (seen_id, unseen_id)
}

/// The Bayes bound of identifying a user's group from their own answers: for each user,
/// `consistent[h]` answers agree with group h's rule out of `answers`; with label noise
/// ε the likelihood of h is (1−ε)^agree · ε^(answers−agree), and the maximum-likelihood
/// group (ties shared evenly) is right with the returned expected share.
pub fn bayes_bound(users: &[(usize, Vec<usize>, usize)], label_noise: f64) -> f64 {
    let eps = label_noise.clamp(1e-9, 0.5);
    let mut right = 0.0;
    for (truth, consistent, answers) in users {
        let log_lik: Vec<f64> = consistent
            .iter()
            .map(|&c| c as f64 * (1.0 - eps).ln() + (answers - c) as f64 * eps.ln())
            .collect();
        let best = log_lik.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let tied: Vec<usize> = (0..log_lik.len())
            .filter(|&h| (log_lik[h] - best).abs() < 1e-9)
            .collect();
        if tied.contains(truth) {
            right += 1.0 / tied.len() as f64;
        }
    }
    right / users.len().max(1) as f64
}
