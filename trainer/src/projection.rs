//! Principal components of row vectors (user embeddings) for the paper's 2-D pictures of
//! seen and unseen users (Fig. 1, Fig. A2). Power iteration with deflation on the
//! covariance: exact enough for two components of 64-dimensional embeddings, and
//! deterministic (fixed start, sign fixed so the largest coordinate is positive).

/// The top `k` principal directions of `rows` (each of the same length), with the
/// variance each explains, largest first.
#[derive(Clone, Debug)]
pub struct Components {
    pub mean: Vec<f64>,
    /// Unit vectors.
    pub directions: Vec<Vec<f64>>,
    pub variances: Vec<f64>,
    /// The rows' total variance (the covariance's trace): `variances / total` is the share
    /// each component explains.
    pub total: f64,
}

impl Components {
    /// Fits `k` components. Fewer than two rows or empty rows give no component.
    pub fn fit(rows: &[Vec<f32>], k: usize) -> Self {
        let n = rows.len();
        let d = rows.first().map_or(0, Vec::len);
        let mut mean = vec![0f64; d];
        for r in rows {
            for (m, &v) in mean.iter_mut().zip(r) {
                *m += v as f64 / n.max(1) as f64;
            }
        }
        if n < 2 || d == 0 {
            return Self {
                mean,
                directions: Vec::new(),
                variances: Vec::new(),
                total: 0.0,
            };
        }
        let mut covariance = vec![vec![0f64; d]; d];
        for r in rows {
            let c: Vec<f64> = r.iter().zip(&mean).map(|(&v, m)| v as f64 - m).collect();
            for i in 0..d {
                for j in 0..d {
                    covariance[i][j] += c[i] * c[j] / (n - 1) as f64;
                }
            }
        }
        let total = (0..d).map(|i| covariance[i][i]).sum();
        let mut directions = Vec::new();
        let mut variances = Vec::new();
        for _ in 0..k.min(d) {
            let mut v: Vec<f64> = (0..d).map(|i| 1.0 + i as f64 / d as f64).collect();
            let mut value = 0.0;
            for _ in 0..500 {
                let w: Vec<f64> = covariance
                    .iter()
                    .map(|row| row.iter().zip(&v).map(|(a, b)| a * b).sum())
                    .collect();
                let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
                if norm < 1e-300 {
                    break;
                }
                let next: Vec<f64> = w.iter().map(|x| x / norm).collect();
                let change: f64 = next.iter().zip(&v).map(|(a, b)| (a - b).abs()).sum();
                v = next;
                value = norm;
                if change < 1e-12 {
                    break;
                }
            }
            let largest = v
                .iter()
                .copied()
                .fold(0f64, |m, x| if x.abs() > m.abs() { x } else { m });
            if largest < 0.0 {
                v.iter_mut().for_each(|x| *x = -*x);
            }
            for i in 0..d {
                for j in 0..d {
                    covariance[i][j] -= value * v[i] * v[j];
                }
            }
            directions.push(v);
            variances.push(value);
        }
        Self {
            mean,
            directions,
            variances,
            total,
        }
    }

    /// The coordinates of `row` on the components.
    pub fn project(&self, row: &[f32]) -> Vec<f64> {
        self.directions
            .iter()
            .map(|dir| {
                dir.iter()
                    .zip(row)
                    .zip(&self.mean)
                    .map(|((a, &v), m)| a * (v as f64 - m))
                    .sum()
            })
            .collect()
    }
}

/// One user's point in the 2-D picture.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct UserPoint {
    pub user: String,
    pub group: String,
    /// Onboarded from their answers (eq. 11) rather than trained on.
    pub unseen: bool,
    pub x: f64,
    pub y: f64,
}

/// Seen users' GCF embeddings and unseen users' onboarded ones on the seen users' two
/// principal components (`copl-train eval-projection`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Projection {
    /// The file's format (`copl_core::file_version`; absent in files before it: 1).
    #[serde(default)]
    pub format_version: copl_core::file_version::FileVersion,
    /// Share of the seen embeddings' variance on each of the two components.
    pub explained: Vec<f64>,
    pub points: Vec<UserPoint>,
}

/// The share of variance the components explain, and per group the seen and unseen
/// users' centre on them.
impl std::fmt::Display for Projection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let explained: Vec<String> = self
            .explained
            .iter()
            .map(|e| format!("{:.1} %", 100.0 * e))
            .collect();
        writeln!(
            f,
            "{} users on two principal components (explaining {} of the seen users' variance)",
            self.points.len(),
            explained.join(" and ")
        )?;
        let mut centres: std::collections::BTreeMap<(&str, bool), (f64, f64, usize)> =
            Default::default();
        for p in &self.points {
            let c = centres.entry((p.group.as_str(), p.unseen)).or_default();
            *c = (c.0 + p.x, c.1 + p.y, c.2 + 1);
        }
        for ((group, unseen), (x, y, n)) in centres {
            let who = if unseen { "unseen" } else { "seen" };
            let n_f = n as f64;
            writeln!(
                f,
                "  {group:<12} {who:<6} {n:>6} users, centre ({:+.3}, {:+.3})",
                x / n_f,
                y / n_f
            )?;
        }
        Ok(())
    }
}

/// Projects every user of `data` with a ground-truth group: seen users of `ckpt` and
/// unseen users onboarded from their answers.
pub fn projection_of_checkpoint(
    data: &std::path::Path,
    ckpt: &std::path::Path,
) -> anyhow::Result<Projection> {
    use anyhow::Context;
    let dataset = copl_core::data::Dataset::load(data).map_err(anyhow::Error::new)?;
    let (adapter, ids) = copl_core::adapt::Adapter::from_checkpoint(ckpt)
        .with_context(|| format!("loading {}", ckpt.display()))?;
    let rows = ids.user_rows();
    let onboarded = crate::mole::eval::onboarded_unseen(&dataset, &adapter)?;
    let mut seen = Vec::new();
    let mut labelled = Vec::new();
    for u in dataset.users() {
        let Some(group) = u.group.as_deref() else {
            continue;
        };
        if let Some(&row) = rows.get(u.user.as_str()) {
            let e = adapter.user_embedding(row).to_vec();
            seen.push(e.clone());
            labelled.push((u.user.clone(), group.to_string(), false, e));
        } else if let Some(e) = onboarded.get(&u.user) {
            labelled.push((u.user.clone(), group.to_string(), true, e.clone()));
        }
    }
    if seen.len() < 2 {
        anyhow::bail!(
            "{}: fewer than two seen users of {} have a ground-truth group",
            data.display(),
            ckpt.display()
        );
    }
    let pca = Components::fit(&seen, 2);
    let points = labelled
        .into_iter()
        .map(|(user, group, unseen, e)| {
            let c = pca.project(&e);
            UserPoint {
                user,
                group,
                unseen,
                x: c.first().copied().unwrap_or(0.0),
                y: c.get(1).copied().unwrap_or(0.0),
            }
        })
        .collect();
    Ok(Projection {
        format_version: copl_core::file_version::FileVersion::CURRENT,
        explained: pca
            .variances
            .iter()
            .map(|v| v / pca.total.max(1e-300))
            .collect(),
        points,
    })
}
