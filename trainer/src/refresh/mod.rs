//! `copl-train refresh` (issue #18): a new checkpoint that has learnt from the users the
//! server onboarded. Their kept answers (the server's store: files or Redis, [`export`])
//! join the parent's data as training annotations ([`data`]); GCF trains on the enlarged
//! graph warm-started from the parent (`gcf::warm`: the parent's users and responses
//! keep their rows, onboarded users start from their eq. 11 embedding on the parent's
//! graph) with the parent's hyper-parameters; the reward model carries over unchanged
//! (its gates read the new embeddings); the manifest records the lineage. The summary
//! compares, before and after, the onboarded users' accuracy on their test pairs (their
//! eq. 11 embedding on the parent → their trained row) and the parent's seen users'.

pub mod data;
mod display;
pub mod export;

use std::{collections::HashMap, path::PathBuf};

use anyhow::{Context, Result, bail};
use copl_core::{
    adapt::{AdaptConfig, Adapter, stored},
    checkpoint::{self, Lineage, Manifest},
    data::{Dataset, Split, data_hash},
    graph::GraphIds,
};
use serde::{Deserialize, Serialize};

use crate::gcf::{
    self, EpochRecord, GcfSummary, TrainConfig,
    warm::{WarmRows, WarmStart},
};

/// What a refresh reads and writes.
#[derive(Clone, Debug)]
pub struct RefreshConfig {
    /// The parent's data set (the one its GCF was trained on).
    pub data: PathBuf,
    /// The server's store: its data directory or a Redis URL.
    pub users: String,
    /// The server's `store.redis_prefix`.
    pub redis_prefix: String,
    pub parent: PathBuf,
    /// The new checkpoint (created; its data set goes to `<out>/data`).
    pub out: PathBuf,
    /// GCF epochs (default: the parent's).
    pub epochs: Option<usize>,
    /// GCF's peak learning rate (default: the parent's).
    pub lr: Option<f64>,
    /// Keep GCF's last epoch rather than the best by validation accuracy.
    pub keep_last: bool,
}

/// Accuracy of one set of users' test pairs before and after.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BeforeAfter {
    pub users: usize,
    pub pairs: usize,
    /// Share of pairs ordered right (NaN without pairs).
    pub before: f64,
    pub after: f64,
}

/// What `copl-train refresh` reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefreshSummary {
    #[serde(default)]
    pub format_version: copl_core::file_version::FileVersion,
    pub lineage: Lineage,
    pub checkpoint_id: String,
    pub added: data::Added,
    pub warm: WarmRows,
    /// The onboarded users (those with test pairs): eq. 11 on the parent, then their
    /// trained rows.
    pub onboarded: BeforeAfter,
    /// The parent's seen users: its embeddings, then the refreshed ones.
    pub seen: BeforeAfter,
    pub gcf: GcfSummary,
}

/// Runs the refresh; `on_epoch` sees GCF's epochs.
pub fn run_refresh(
    config: &RefreshConfig,
    on_epoch: impl FnMut(&EpochRecord, usize),
) -> Result<RefreshSummary> {
    let parent = &config.parent;
    let manifest = Manifest::load(parent)?;
    let (gcf_section, model_section) = match (&manifest.gcf, &manifest.model) {
        (Some(g), Some(m)) => (g.clone(), m.clone()),
        _ => bail!(
            "{}: refresh needs a complete checkpoint (gcf and model sections)",
            parent.display()
        ),
    };
    let hash =
        data_hash(&config.data).with_context(|| format!("hashing {}", config.data.display()))?;
    if hash != gcf_section.data_hash {
        bail!(
            "--data {} is not the data set {} was trained on (data hash {hash}, manifest {})",
            config.data.display(),
            parent.display(),
            gcf_section.data_hash
        );
    }
    let mut train: TrainConfig = serde_json::from_value(gcf_section.hyper_parameters.clone())
        .with_context(|| format!("{}: the GCF hyper-parameters", parent.display()))?;
    if let Some(epochs) = config.epochs {
        train.epochs = epochs;
    }
    if let Some(lr) = config.lr {
        train.lr = lr;
    }
    train.keep_last |= config.keep_last;

    let records = export::read_users(&config.users, &config.redis_prefix)?;
    let dataset = Dataset::load(&config.data).map_err(anyhow::Error::new)?;
    let (enlarged, added) = data::enlarge(&dataset, &records)?;
    let new_data = config.out.join("data");
    data::save(&enlarged, &new_data)?;

    // Onboarded users on the parent's graph: their warm start and their "before".
    let (adapter, parent_ids) = Adapter::from_checkpoint(parent)?;
    let catalogue: HashMap<String, u32> = parent_ids
        .responses
        .iter()
        .enumerate()
        .map(|(row, id)| (id.clone(), row as u32))
        .collect();
    let parent_users = parent_ids.user_rows();
    let mut adapted: HashMap<String, Vec<f32>> = HashMap::new();
    for record in records.iter().filter(|r| r.answers_known()) {
        if parent_users.contains_key(record.user_id.as_str()) {
            continue;
        }
        let r = stored::readapt(&adapter, &catalogue, &AdaptConfig::default(), record)
            .with_context(|| format!("adapting stored user {:?} on the parent", record.user_id))?;
        adapted.insert(record.user_id.clone(), r.adaptation.embedding);
    }
    let warm = WarmStart {
        variables: checkpoint::load_gcf(parent)?,
        ids: parent_ids.clone(),
        new_users: adapted.clone(),
    };
    let (gcf, rows) = gcf::run_gcf_from(&new_data, &config.out, &train, Some(&warm), on_epoch)?;
    let warm_rows = rows.unwrap_or_default();

    // The reward model, as it was; the lineage.
    let mole = checkpoint::MOLE_FILE;
    std::fs::copy(parent.join(mole), config.out.join(mole))
        .with_context(|| format!("copying {mole} from {}", parent.display()))?;
    let lineage = Lineage {
        parent_checkpoint_id: checkpoint::checkpoint_id(parent)?,
        parent_checkpoint: parent.display().to_string(),
        parent_data_hash: gcf_section.data_hash.clone(),
        data_hash: data_hash(&new_data)
            .with_context(|| format!("hashing {}", new_data.display()))?,
        users_added: added.users_added + added.users_made_seen,
        answers_added: added.answers_added,
    };
    let mut written = Manifest::load(&config.out)?;
    written.model = Some(model_section);
    written.lineage = Some(lineage.clone());
    written.save(&config.out)?;

    let (new_ids, dim) = (checkpoint::load_ids(&config.out)?, train.arch.dim);
    let before = Embeddings::load(parent, &parent_ids, dim)?;
    let after = Embeddings::load(&config.out, &new_ids, dim)?;
    let onboarded = compare(
        &enlarged,
        adapted.keys().map(String::as_str),
        |user| (adapted.get(user).cloned(), after.user(user)),
        &before,
        &after,
    );
    let seen = compare(
        &enlarged,
        parent_ids.users.iter().map(String::as_str),
        |user| (before.user(user), after.user(user)),
        &before,
        &after,
    );
    Ok(RefreshSummary {
        format_version: copl_core::file_version::FileVersion::CURRENT,
        lineage,
        checkpoint_id: checkpoint::checkpoint_id(&config.out)?,
        added,
        warm: warm_rows,
        onboarded,
        seen,
        gcf,
    })
}

/// A checkpoint's final embeddings by id.
struct Embeddings {
    users: HashMap<String, Vec<f32>>,
    responses: HashMap<String, Vec<f32>>,
}

impl Embeddings {
    fn load(dir: &std::path::Path, ids: &GraphIds, dim: usize) -> Result<Self> {
        let (u, r) = checkpoint::load_embeddings(dir, ids, dim)?;
        let by_id = |ids: &[String], t: candle_core::Tensor| -> Result<HashMap<String, Vec<f32>>> {
            Ok(ids.iter().cloned().zip(t.to_vec2::<f32>()?).collect())
        };
        Ok(Self {
            users: by_id(&ids.users, u)?,
            responses: by_id(&ids.responses, r)?,
        })
    }

    fn user(&self, id: &str) -> Option<Vec<f32>> {
        self.users.get(id).cloned()
    }
}

/// A user's embedding before and after (`None` where that side lacks the user).
type BeforeAndAfter = (Option<Vec<f32>>, Option<Vec<f32>>);

/// Test-pair accuracy of `users` with the (before, after) user embeddings `of` gives,
/// against the before and after response embeddings (GCF's score, eq. 4: the dot
/// product). Pairs on a response either side lacks are left out of both.
fn compare<'a>(
    data: &Dataset,
    users: impl Iterator<Item = &'a str>,
    of: impl Fn(&str) -> BeforeAndAfter,
    before: &Embeddings,
    after: &Embeddings,
) -> BeforeAfter {
    let users: std::collections::HashSet<&str> = users.collect();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let right = |u: &[f32], side: &Embeddings, chosen: &str, rejected: &str| -> Option<bool> {
        let (c, r) = (side.responses.get(chosen)?, side.responses.get(rejected)?);
        Some(dot(u, c) > dot(u, r))
    };
    let (mut pairs, mut good_before, mut good_after) = (0usize, 0usize, 0usize);
    let mut counted = std::collections::HashSet::new();
    let cache: HashMap<&str, BeforeAndAfter> = users.iter().map(|&u| (u, of(u))).collect();
    for a in data.split(Split::Test) {
        let Some((Some(ub), Some(ua))) = cache.get(a.user.as_str()) else {
            continue;
        };
        if let (Some(b), Some(f)) = (
            right(ub, before, &a.chosen, &a.rejected),
            right(ua, after, &a.chosen, &a.rejected),
        ) {
            pairs += 1;
            good_before += usize::from(b);
            good_after += usize::from(f);
            counted.insert(a.user.as_str());
        }
    }
    let share = |n: usize| {
        if pairs == 0 {
            f64::NAN
        } else {
            n as f64 / pairs as f64
        }
    };
    BeforeAfter {
        users: counted.len(),
        pairs,
        before: share(good_before),
        after: share(good_after),
    }
}
