//! `copl-train gcf` and `copl-train eval-gcf`: train on a data set and write the GCF
//! part of a checkpoint; evaluate a checkpoint's embeddings on test pairs.

use std::{collections::BTreeMap, fs, path::Path};

use anyhow::{Context, Result, bail};
use copl_core::{
    checkpoint::{self, GcfManifest, Manifest, RESPONSE_EMBEDDINGS, USER_EMBEDDINGS},
    data::{Dataset, Split, data_hash},
    graph::{GraphIds, graph_of},
};
use serde::{Deserialize, Serialize};

use super::{
    accuracy,
    identify::{self, GroupIdentification, Identification},
    pair_rows,
    train::{EpochRecord, TrainConfig, train_from},
    warm::{WarmRows, WarmStart},
};
use crate::onboard::unseen_users;
use copl_synth as synth;

/// What `copl-train gcf` reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GcfSummary {
    /// The file's format (`copl_core::file_version`; absent in files before it: 1).
    #[serde(default)]
    pub format_version: copl_core::file_version::FileVersion,
    pub model: String,
    pub users: usize,
    pub responses: usize,
    pub positive_edges: usize,
    pub negative_edges: usize,
    pub train_pairs: usize,
    pub graph_seconds: f64,
    pub train_seconds: f64,
    pub seconds_per_epoch: f64,
    pub best_epoch: usize,
    pub val_accuracy: f64,
    /// Accuracy on seen users' test pairs at the best epoch.
    pub test_accuracy: f64,
    pub history: Vec<EpochRecord>,
}

/// Trains GCF (or MF with `layers = 0`) on `data` and writes `graph.safetensors`,
/// `gcf.safetensors`, `ids.json` and the manifest's `gcf` section into `out`.
pub fn run_gcf(
    data: &Path,
    out: &Path,
    config: &TrainConfig,
    on_epoch: impl FnMut(&EpochRecord, usize),
) -> Result<GcfSummary> {
    run_gcf_from(data, out, config, None, on_epoch).map(|(summary, _)| summary)
}

/// [`run_gcf`] started from an earlier run's variables (`warm`: refresh), saying what
/// the warm start kept.
pub fn run_gcf_from(
    data: &Path,
    out: &Path,
    config: &TrainConfig,
    warm: Option<&WarmStart>,
    on_epoch: impl FnMut(&EpochRecord, usize),
) -> Result<(GcfSummary, Option<WarmRows>)> {
    let dataset = Dataset::load(data).map_err(anyhow::Error::new)?;
    let started = std::time::Instant::now();
    let (graph, ids) = graph_of(&dataset);
    let graph_seconds = started.elapsed().as_secs_f64();
    if graph.users == 0 {
        bail!("{}: no seen user has a training pair", data.display());
    }
    let train_pairs = pair_rows(&dataset, &ids, Split::Train);
    let val_pairs = pair_rows(&dataset, &ids, Split::Val);
    let test_pairs = pair_rows(&dataset, &ids, Split::Test);
    let device = copl_core::device::parse(&config.device)?;
    let init = warm
        .map(|w| w.variables_for(&ids, config.arch.dim, config.seed))
        .transpose()?;
    let trained = train_from(
        &graph,
        &train_pairs,
        &val_pairs,
        config,
        &device,
        init.as_ref().map(|(variables, _)| variables),
        on_epoch,
    )?;
    let test_accuracy = accuracy(&trained.users, &trained.responses, &test_pairs)?;

    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    checkpoint::save_graph(out, &graph)?;
    checkpoint::save_ids(out, &ids)?;
    checkpoint::save_catalogue(out, &catalogue(&dataset, &ids)?)?;
    checkpoint::save_survey_pairs(out, &survey_pairs(&train_pairs))?;
    let mut tensors = trained.model.snapshot()?;
    tensors.insert(USER_EMBEDDINGS.to_string(), trained.users.clone());
    tensors.insert(RESPONSE_EMBEDDINGS.to_string(), trained.responses.clone());
    checkpoint::save_gcf(out, &tensors)?;

    let model = if config.arch.layers == 0 { "mf" } else { "gcf" };
    let epochs = trained.history.len().max(1) as f64;
    let summary = GcfSummary {
        format_version: copl_core::file_version::FileVersion::CURRENT,
        model: model.to_string(),
        users: graph.users,
        responses: graph.responses,
        positive_edges: graph.positive.edges(),
        negative_edges: graph.negative.edges(),
        train_pairs: train_pairs.len(),
        graph_seconds,
        train_seconds: trained.seconds,
        seconds_per_epoch: trained.history.iter().map(|r| r.seconds).sum::<f64>() / epochs,
        best_epoch: trained.best_epoch,
        val_accuracy: trained.best_val_accuracy,
        test_accuracy,
        history: trained.history,
    };
    let mut manifest = Manifest::load_or_default(out)?;
    manifest.gcf = Some(GcfManifest {
        model: model.to_string(),
        dim: config.arch.dim,
        users: graph.users,
        responses: graph.responses,
        data_hash: data_hash(data).with_context(|| format!("hashing {}", data.display()))?,
        hyper_parameters: serde_json::to_value(config)?,
        metrics: serde_json::json!({
            "best_epoch": summary.best_epoch,
            "val_accuracy": summary.val_accuracy,
            "test_accuracy": summary.test_accuracy,
            "train_seconds": summary.train_seconds,
            "seconds_per_epoch": summary.seconds_per_epoch,
        }),
    });
    manifest.save(out)?;
    Ok((summary, init.map(|(_, rows)| rows)))
}

/// `copl-train catalogue`: writes `catalogue.jsonl` (the response texts the server
/// serves by id) into a checkpoint written before checkpoints carried it. `data` must be
/// the data set the GCF part was trained on (its hash is checked against the manifest).
/// Returns the number of responses written.
pub fn write_catalogue(data: &Path, ckpt: &Path) -> Result<usize> {
    let manifest = Manifest::load(ckpt)?;
    let gcf = manifest
        .gcf
        .with_context(|| format!("{}: the manifest has no gcf section", ckpt.display()))?;
    let hash = data_hash(data).with_context(|| format!("hashing {}", data.display()))?;
    if hash != gcf.data_hash {
        bail!(
            "{} is not the data set {} was trained on (data hash {hash}, manifest {})",
            data.display(),
            ckpt.display(),
            gcf.data_hash
        );
    }
    let dataset = Dataset::load(data).map_err(anyhow::Error::new)?;
    let ids = checkpoint::load_ids(ckpt)?;
    let entries = catalogue(&dataset, &ids)?;
    checkpoint::save_catalogue(ckpt, &entries)?;
    Ok(entries.len())
}

/// The survey set: distinct unordered response pairs of the training pairs.
fn survey_pairs(train_pairs: &[(u32, u32, u32)]) -> Vec<(u32, u32)> {
    let mut pairs: Vec<(u32, u32)> = train_pairs
        .iter()
        .map(|&(_, a, b)| (a.min(b), a.max(b)))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// Accuracy of one slice of test pairs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Slice {
    pub pairs: usize,
    /// NaN (written as `null`) for a slice without pairs, as files before 2026-12-07 hold
    /// (an empty `common` slice of data with no common pairs); now such a slice is absent.
    #[serde(deserialize_with = "null_as_nan")]
    pub accuracy: f64,
}

fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// What `copl-train eval-gcf` reports (written with `--json`, read by the report).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GcfEval {
    /// The file's format (`copl_core::file_version`; absent in files before it: 1).
    #[serde(default)]
    pub format_version: copl_core::file_version::FileVersion,
    pub model: String,
    /// Seen users' test pairs.
    pub overall: Slice,
    /// By ground-truth group (users with a `group` in users.jsonl).
    pub by_group: BTreeMap<String, Slice>,
    /// By the pair's `controversial` flag, where the data has it.
    pub controversial: Option<Slice>,
    pub common: Option<Slice>,
    /// The ground truth's own test accuracy and a shared preference's (synth.json),
    /// where the data set was generated.
    pub ground_truth_bound: Option<f64>,
    pub shared_preference_bound: Option<f64>,
    /// How well the embeddings identify each user's group or mixture weights (what the
    /// gates need); `None` when users.jsonl has neither.
    #[serde(default)]
    pub identification: Option<GroupIdentification>,
}

/// Refuses a data set whose responses are not the checkpoint's (same ids, same order).
pub fn same_responses(dataset: &Dataset, ids: &GraphIds, data: &Path, ckpt: &Path) -> Result<()> {
    if ids.responses.len() != dataset.responses().len()
        || ids
            .responses
            .iter()
            .zip(dataset.responses())
            .any(|(a, b)| *a != b.id)
    {
        bail!(
            "{} and {} have different responses: evaluate on the data the checkpoint was trained on",
            ckpt.display(),
            data.display()
        );
    }
    Ok(())
}

/// Evaluates the checkpoint's final embeddings on `data`'s seen users' test pairs.
pub fn eval_gcf(data: &Path, ckpt: &Path) -> Result<GcfEval> {
    let dataset = Dataset::load(data).map_err(anyhow::Error::new)?;
    let manifest = Manifest::load(ckpt)?;
    let gcf = manifest
        .gcf
        .with_context(|| format!("{}: the manifest has no gcf section", ckpt.display()))?;
    let ids: GraphIds = checkpoint::load_ids(ckpt)?;
    same_responses(&dataset, &ids, data, ckpt)?;
    let (users, responses) = checkpoint::load_embeddings(ckpt, &ids, gcf.dim)?;
    let user_rows = ids.user_rows();
    let groups: BTreeMap<&str, &str> = dataset
        .users()
        .iter()
        .filter_map(|u| Some((u.user.as_str(), u.group.as_deref()?)))
        .collect();

    let mut all = Vec::new();
    let mut by_group: BTreeMap<String, Vec<(u32, u32, u32)>> = BTreeMap::new();
    let (mut controversial, mut common) = (Vec::new(), Vec::new());
    let mut has_flag = false;
    // A graph model scores graph nodes: pairs on new texts are the reward model's.
    let annotated = dataset.annotated_texts();
    for a in dataset.split(Split::Test) {
        let (Some(&u), Some(c), Some(r)) = (
            user_rows.get(a.user.as_str()),
            dataset.response_row(&a.chosen),
            dataset.response_row(&a.rejected),
        ) else {
            continue;
        };
        if annotated.new_pair(c, r) {
            continue;
        }
        let row = (u, c as u32, r as u32);
        all.push(row);
        if let Some(g) = groups.get(a.user.as_str()) {
            by_group.entry(g.to_string()).or_default().push(row);
        }
        match a.controversial {
            Some(true) => controversial.push(row),
            Some(false) => common.push(row),
            None => {}
        }
        has_flag |= a.controversial.is_some();
    }
    let slice = |pairs: &[(u32, u32, u32)]| -> Result<Slice> {
        Ok(Slice {
            pairs: pairs.len(),
            accuracy: accuracy(&users, &responses, pairs)?,
        })
    };
    let synth: Option<synth::Summary> = fs::read_to_string(data.join("synth.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let label_noise = synth.as_ref().map_or(0.0, |s| s.config.label_noise);
    let identification = identification(&dataset, ckpt, &ids, &users, label_noise)?;
    Ok(GcfEval {
        format_version: copl_core::file_version::FileVersion::CURRENT,
        model: gcf.model,
        overall: slice(&all)?,
        by_group: by_group
            .iter()
            .map(|(g, pairs)| Ok((g.clone(), slice(pairs)?)))
            .collect::<Result<_>>()?,
        // A slice without pairs is absent (its accuracy would be NaN, which JSON cannot
        // hold).
        controversial: if has_flag && !controversial.is_empty() {
            Some(slice(&controversial)?)
        } else {
            None
        },
        common: if has_flag && !common.is_empty() {
            Some(slice(&common)?)
        } else {
            None
        },
        ground_truth_bound: synth.as_ref().map(|s| s.ground_truth_test_accuracy),
        shared_preference_bound: synth.as_ref().map(|s| s.population_test_accuracy),
        identification,
    })
}

/// Seed of the probes' user split and of k-means.
const IDENTIFY_SEED: u64 = 0;

/// The embeddings' group (or weight) identification for seen users and for unseen users
/// onboarded from their answers (eq. 11, 2 hops, the server's defaults), and the Bayes
/// bound of identifying a group from a user's own training answers.
fn identification(
    dataset: &Dataset,
    ckpt: &Path,
    ids: &GraphIds,
    users: &candle_core::Tensor,
    label_noise: f64,
) -> Result<Option<GroupIdentification>> {
    let rows: Vec<Vec<f32>> = users.to_vec2()?;
    let user_rows = ids.user_rows();
    let group_names: Vec<&str> = {
        let mut names: Vec<&str> = dataset
            .users()
            .iter()
            .filter_map(|u| u.group.as_deref())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    };
    let has_weights = dataset.users().iter().any(|u| u.weights.is_some());
    if group_names.is_empty() && !has_weights {
        return Ok(None);
    }
    let group_of = |u: &copl_core::data::UserTruth| {
        u.group
            .as_deref()
            .and_then(|g| group_names.iter().position(|n| *n == g))
    };
    let unseen = unseen_users(dataset);
    let onboarded: Vec<(Vec<f32>, &copl_core::data::UserTruth)> = if unseen.is_empty() {
        Vec::new()
    } else {
        let (adapter, _) = copl_core::adapt::Adapter::from_checkpoint(ckpt)
            .with_context(|| format!("loading {}", ckpt.display()))?;
        let config = copl_core::adapt::AdaptConfig::default();
        unseen
            .iter()
            .filter_map(|u| Some((u, u.truth?)))
            .map(|(u, truth)| Ok((adapter.adapt(&u.given, &config)?.embedding, truth)))
            .collect::<Result<_>>()?
    };
    let seen_truths = dataset
        .users()
        .iter()
        .filter_map(|u| Some((rows.get(*user_rows.get(u.user.as_str())? as usize)?, u)));
    if !group_names.is_empty() {
        let seen: Vec<(Vec<f32>, usize)> = seen_truths
            .filter_map(|(e, u)| Some((e.clone(), group_of(u)?)))
            .collect();
        let unseen: Vec<(Vec<f32>, usize)> = onboarded
            .iter()
            .filter_map(|(e, u)| Some((e.clone(), group_of(u)?)))
            .collect();
        let (seen_id, unseen_id) =
            identify::identify_groups(&seen, &unseen, group_names.len(), IDENTIFY_SEED);
        return Ok(Some(GroupIdentification {
            groups: group_names.len(),
            seen: seen_id,
            unseen: unseen_id,
            bayes_bound: Some(group_bayes_bound(dataset, &group_names, label_noise)),
        }));
    }
    let seen: Vec<(Vec<f32>, Vec<f64>)> = seen_truths
        .filter_map(|(e, u)| Some((e.clone(), u.weights.clone()?)))
        .collect();
    let unseen: Vec<(Vec<f32>, Vec<f64>)> = onboarded
        .iter()
        .filter_map(|(e, u)| Some((e.clone(), u.weights.clone()?)))
        .collect();
    let (seen_id, unseen_id): (Identification, Option<Identification>) =
        identify::identify_weights(&seen, &unseen, IDENTIFY_SEED);
    Ok(Some(GroupIdentification {
        groups: 0,
        seen: seen_id,
        unseen: unseen_id,
        bayes_bound: None,
    }))
}

/// [`identify::bayes_bound`] over the seen users with a group: each training answer is
/// checked against every group's noiseless rule (`synth::truth::prefers`).
fn group_bayes_bound(dataset: &Dataset, group_names: &[&str], label_noise: f64) -> f64 {
    let candidates: Vec<copl_core::data::UserTruth> = group_names
        .iter()
        .map(|g| copl_core::data::UserTruth {
            user: String::new(),
            group: Some(g.to_string()),
            weights: None,
            unseen: false,
        })
        .collect();
    let truth_of: std::collections::HashMap<&str, usize> = dataset
        .users()
        .iter()
        .filter(|u| !u.unseen)
        .filter_map(|u| {
            let g = u.group.as_deref()?;
            Some((u.user.as_str(), group_names.iter().position(|n| *n == g)?))
        })
        .collect();
    let mut counts: std::collections::HashMap<&str, (Vec<usize>, usize)> =
        std::collections::HashMap::new();
    for a in dataset.split(Split::Train) {
        if !truth_of.contains_key(a.user.as_str()) {
            continue;
        }
        let (Some(chosen), Some(rejected)) =
            (dataset.response(&a.chosen), dataset.response(&a.rejected))
        else {
            continue;
        };
        let entry = counts
            .entry(a.user.as_str())
            .or_insert_with(|| (vec![0; group_names.len()], 0));
        entry.1 += 1;
        for (h, candidate) in candidates.iter().enumerate() {
            if synth::truth::prefers(candidate, chosen, rejected) == Some(true) {
                entry.0[h] += 1;
            }
        }
    }
    let users: Vec<(usize, Vec<usize>, usize)> = counts
        .into_iter()
        .map(|(user, (consistent, answers))| (truth_of[user], consistent, answers))
        .collect();
    identify::bayes_bound(&users, label_noise)
}

/// The response rows' texts, in row order, for `catalogue.jsonl`.
fn catalogue(dataset: &Dataset, ids: &GraphIds) -> Result<Vec<checkpoint::CatalogueEntry>> {
    ids.responses
        .iter()
        .map(|id| {
            let row = dataset
                .response_row(id)
                .with_context(|| format!("response {id} of the graph is not in the data"))?;
            let r = &dataset.responses()[row];
            Ok(checkpoint::CatalogueEntry {
                id: r.id.clone(),
                prompt: r.prompt.clone(),
                response: r.response.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Slice;

    #[test]
    fn a_slice_written_with_a_null_accuracy_reads_as_nan() {
        let old: Slice = serde_json::from_str(r#"{"pairs": 0, "accuracy": null}"#).unwrap();
        assert_eq!(old.pairs, 0);
        assert!(old.accuracy.is_nan());
        let new: Slice = serde_json::from_str(r#"{"pairs": 4, "accuracy": 0.75}"#).unwrap();
        assert_eq!(new.accuracy, 0.75);
    }
}
