//! `copl-train eval`: the reward model's accuracy on seen users' test pairs and on
//! unseen users' test pairs after onboarding (eq. 11 gives their gate input), overall,
//! per ground-truth group and on controversial versus common pairs (paper Table 3), and
//! on texts of training pairs versus new texts (test pairs whose responses no training
//! or validation pair has: `synth --heldout-prompts`, issue #13).

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, Result, bail};
use copl_core::{
    adapt::{AdaptConfig, Adapter, Answer},
    data::{AnnotatedTexts, Annotation, Dataset, Split},
    model::{
        frozen_cache::FrozenCache,
        reward::{RewardModel, Variant},
    },
};
use serde::{Deserialize, Serialize};

use super::{
    run::{spread, user_groups},
    train::{TextPair, correct, device},
};

/// Accuracy of one slice.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Slice {
    pub pairs: usize,
    pub accuracy: f64,
}

/// One population's figures.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Population {
    pub overall: Slice,
    pub by_group: BTreeMap<String, Slice>,
    pub controversial: Option<Slice>,
    pub common: Option<Slice>,
    /// The other pairs (a response some training pair has); both absent when no test
    /// pair is on new texts.
    pub seen_texts: Option<Slice>,
    /// Pairs on responses no training or validation pair has: texts nobody annotated.
    pub new_texts: Option<Slice>,
}

/// What `copl-train eval` reports.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MoleEval {
    /// The file's format (`copl_core::file_version`; absent in files before it: 1).
    #[serde(default)]
    pub format_version: copl_core::file_version::FileVersion,
    pub variant: Variant,
    pub seen: Population,
    pub unseen: Option<Population>,
}

struct Item {
    pair: TextPair,
    group: Option<String>,
    controversial: Option<bool>,
    /// Neither response occurs in a training or validation pair.
    new_text: bool,
}

/// At most `limit` of `items` (0 = all), spread over them; with `per_group`, `limit /
/// groups` from each ground-truth group, so a minority is measured on as many pairs as
/// a majority, with each group's share of all `items` (to weigh `overall` back to the
/// population).
fn sample(
    items: Vec<Item>,
    limit: usize,
    per_group: bool,
) -> (Vec<Item>, Option<BTreeMap<String, f64>>) {
    if !per_group || limit == 0 {
        return (spread(items, limit), None);
    }
    let total = items.len() as f64;
    let mut groups: BTreeMap<String, Vec<Item>> = BTreeMap::new();
    for item in items {
        groups
            .entry(item.group.clone().unwrap_or_default())
            .or_default()
            .push(item);
    }
    let each = (limit / groups.len().max(1)).max(1);
    let shares = groups
        .iter()
        .map(|(g, items)| (g.clone(), items.len() as f64 / total))
        .collect();
    let sampled = groups
        .into_values()
        .flat_map(|items| spread(items, each))
        .collect();
    (sampled, Some(shares))
}

/// Scores every item once with `model`, then counts by slice ([`counted`]).
fn population(
    model: &RewardModel,
    (items, shares): (Vec<Item>, Option<BTreeMap<String, f64>>),
    cache: &mut FrozenCache,
) -> Result<Population> {
    let pairs: Vec<TextPair> = items.iter().map(|i| i.pair.clone()).collect();
    let right = correct(model, &pairs, 32, cache)?;
    Ok(counted(&items, &right, shares))
}

/// Counts `right` (one per item) by slice; with `shares` (a per-group sample),
/// `overall` is the groups' accuracies weighted by their shares of the population.
fn counted(items: &[Item], right: &[bool], shares: Option<BTreeMap<String, f64>>) -> Population {
    let slice = |keep: &dyn Fn(&Item) -> bool| -> Slice {
        let (pairs, hits) = items
            .iter()
            .zip(right)
            .filter(|(i, _)| keep(i))
            .fold((0usize, 0usize), |(n, h), (_, &r)| {
                (n + 1, h + usize::from(r))
            });
        Slice {
            pairs,
            accuracy: if pairs == 0 {
                f64::NAN
            } else {
                hits as f64 / pairs as f64
            },
        }
    };
    let groups: std::collections::BTreeSet<&String> =
        items.iter().filter_map(|i| i.group.as_ref()).collect();
    let flagged = items.iter().any(|i| i.controversial.is_some());
    let new_texts = items.iter().any(|i| i.new_text);
    let by_group: BTreeMap<String, Slice> = groups
        .into_iter()
        .map(|g| (g.clone(), slice(&|i| i.group.as_ref() == Some(g))))
        .collect();
    let mut overall = slice(&|_| true);
    if let Some(shares) = shares {
        let (sum, weight) = by_group
            .iter()
            .filter(|(_, s)| s.pairs > 0)
            .filter_map(|(g, s)| Some((shares.get(g)?, s.accuracy)))
            .fold((0.0, 0.0), |(sum, w), (share, a)| {
                (sum + share * a, w + share)
            });
        if weight > 0.0 {
            overall.accuracy = sum / weight;
        }
    }
    Population {
        overall,
        by_group,
        // A side of the split with no pair is absent, not NaN.
        controversial: flagged
            .then(|| slice(&|i| i.controversial == Some(true)))
            .filter(|s| s.pairs > 0),
        common: flagged
            .then(|| slice(&|i| i.controversial == Some(false)))
            .filter(|s| s.pairs > 0),
        seen_texts: new_texts
            .then(|| slice(&|i| !i.new_text))
            .filter(|s| s.pairs > 0),
        new_texts: new_texts.then(|| slice(&|i| i.new_text)),
    }
}

/// Every unseen user of `dataset` onboarded (eq. 11, default settings) from their
/// answers outside the test split: user id → adapted embedding.
pub fn onboarded_unseen(
    dataset: &Dataset,
    adapter: &Adapter,
) -> Result<BTreeMap<String, Vec<f32>>> {
    let mut embeddings = BTreeMap::new();
    for (user, given) in &unseen_answers(dataset) {
        let adapted = adapter.adapt(given, &AdaptConfig::default())?;
        embeddings.insert(user.to_string(), adapted.embedding);
    }
    Ok(embeddings)
}

/// Each unseen user's answers outside the test split (the ones they onboard from): the
/// unseen users `eval` and `eval-oracle` score are its keys.
fn unseen_answers(dataset: &Dataset) -> BTreeMap<&str, Vec<Answer>> {
    let unseen_ids = dataset.unseen_users();
    let mut answers: BTreeMap<&str, Vec<Answer>> = BTreeMap::new();
    for a in dataset.annotations() {
        if a.split != Split::Test
            && unseen_ids.contains(a.user.as_str())
            && let (Some(c), Some(r)) = (
                dataset.response_row(&a.chosen),
                dataset.response_row(&a.rejected),
            )
        {
            answers.entry(a.user.as_str()).or_default().push(Answer {
                chosen: c as u32,
                rejected: r as u32,
            });
        }
    }
    answers
}

/// The test annotation `a` as a scored item for a user with gate input `user`; none when
/// a response is not in the catalogue. `trained`: [`Dataset::annotated_texts`].
fn test_item(
    dataset: &Dataset,
    groups: &BTreeMap<&str, &str>,
    trained: &AnnotatedTexts,
    user: Vec<f32>,
    a: &Annotation,
) -> Option<Item> {
    let responses = dataset.responses();
    let c = dataset.response_row(&a.chosen)?;
    let r = dataset.response_row(&a.rejected)?;
    Some(Item {
        pair: TextPair {
            user,
            prompt: responses[c].prompt.clone(),
            chosen: responses[c].response.clone(),
            rejected: responses[r].response.clone(),
            weight: 1.0,
        },
        group: groups.get(a.user.as_str()).map(|g| g.to_string()),
        controversial: a.controversial,
        new_text: trained.new_pair(c, r),
    })
}

/// Evaluates the checkpoint `ckpt` (GCF + model) on `data`; at most `test_pairs` seen
/// pairs (spread as `copl-train mole` spreads them) and as many unseen ones (0 = all);
/// with `per_group`, that many split evenly over the ground-truth groups (imbalanced
/// data: the minority measured as precisely as the majority, `overall` weighted back).
pub fn eval_mole(
    data: &Path,
    ckpt: &Path,
    backbone: &Path,
    test_pairs: usize,
    per_group: bool,
) -> Result<MoleEval> {
    let dataset = Dataset::load(data).map_err(anyhow::Error::new)?;
    let (adapter, ids) =
        Adapter::from_checkpoint(ckpt).with_context(|| format!("loading {}", ckpt.display()))?;
    let model = RewardModel::load(ckpt, backbone, &device())?;
    let groups = user_groups(&dataset);
    let trained = dataset.annotated_texts();
    let item = |user: Vec<f32>, a: &Annotation| test_item(&dataset, &groups, &trained, user, a);
    // Seen users: the order of `gcf::pair_rows`, so the spread sample is `mole`'s.
    let rows = ids.user_rows();
    let seen: Vec<Item> = dataset
        .split(Split::Test)
        .filter_map(|a| {
            let u = *rows.get(a.user.as_str())?;
            item(adapter.user_embedding(u).to_vec(), a)
        })
        .collect();
    let mut cache = super::train::MoleTrainConfig::default().frozen_cache();
    let seen = population(&model, sample(seen, test_pairs, per_group), &mut cache)?;

    // Unseen users: onboarded from their given answers, scored on their test pairs.
    let embeddings = onboarded_unseen(&dataset, &adapter)?;
    let unseen: Vec<Item> = dataset
        .split(Split::Test)
        .filter_map(|a| item(embeddings.get(&a.user)?.clone(), a))
        .collect();
    let unseen = if unseen.is_empty() {
        None
    } else {
        Some(population(
            &model,
            sample(unseen, test_pairs, per_group),
            &mut cache,
        )?)
    };
    Ok(MoleEval {
        format_version: copl_core::file_version::FileVersion::CURRENT,
        variant: model.config.variant,
        seen,
        unseen,
    })
}

/// The paper's G-Oracle (Table 2): every user scored by the model of their ground-truth
/// group. `models` maps each group to the checkpoint of a Uniform model trained on that
/// group's users only (`copl-train mole --variant uniform --group G`); seen and unseen
/// users are scored on the same test pairs [`eval_mole`] samples (unseen users need no
/// onboarding: the oracle knows their group).
pub fn eval_oracle(
    data: &Path,
    models: &[(String, std::path::PathBuf)],
    backbone: &Path,
    test_pairs: usize,
    per_group: bool,
) -> Result<MoleEval> {
    let dataset = Dataset::load(data).map_err(anyhow::Error::new)?;
    let Some((_, first)) = models.first() else {
        bail!("no group's model given (--group-ckpt GROUP=CKPT, one per group)");
    };
    let (adapter, ids) =
        Adapter::from_checkpoint(first).with_context(|| format!("loading {}", first.display()))?;
    let mut loaded = BTreeMap::new();
    for (group, ckpt) in models {
        let model = RewardModel::load(ckpt, backbone, &device())?;
        if model.config.variant != Variant::Uniform {
            bail!(
                "{}: a {:?} model; a G-Oracle model is a Uniform model of one group \
                 (copl-train mole --variant uniform --group {group})",
                ckpt.display(),
                model.config.variant
            );
        }
        if loaded.insert(group.clone(), model).is_some() {
            bail!("group {group} given twice");
        }
    }
    let groups = user_groups(&dataset);
    // Uniform models read no gate input: every user gets the same zeros.
    let trained = dataset.annotated_texts();
    let item = |a: &Annotation| test_item(&dataset, &groups, &trained, vec![0.0; adapter.dim()], a);
    let rows = ids.user_rows();
    let seen: Vec<Item> = dataset
        .split(Split::Test)
        .filter(|a| rows.contains_key(a.user.as_str()))
        .filter_map(item)
        .collect();
    // The unseen users `eval` scores: those with answers to onboard from.
    let answered = unseen_answers(&dataset);
    let unseen: Vec<Item> = dataset
        .split(Split::Test)
        .filter(|a| answered.contains_key(a.user.as_str()))
        .filter_map(item)
        .collect();
    let seen = oracle_population(&loaded, sample(seen, test_pairs, per_group))?;
    let unseen = if unseen.is_empty() {
        None
    } else {
        Some(oracle_population(
            &loaded,
            sample(unseen, test_pairs, per_group),
        )?)
    };
    Ok(MoleEval {
        format_version: copl_core::file_version::FileVersion::CURRENT,
        variant: Variant::Uniform,
        seen,
        unseen,
    })
}

/// Scores each item with its group's model in `models`; an item of a group without one
/// is an error naming the group.
fn oracle_population(
    models: &BTreeMap<String, RewardModel>,
    (items, shares): (Vec<Item>, Option<BTreeMap<String, f64>>),
) -> Result<Population> {
    if let Some(orphan) = items
        .iter()
        .find(|i| i.group.as_ref().is_none_or(|g| !models.contains_key(g)))
    {
        bail!(
            "no G-Oracle model for group {} (give --group-ckpt GROUP=CKPT for each of: {})",
            orphan
                .group
                .as_deref()
                .unwrap_or("(a user without a group)"),
            items
                .iter()
                .filter_map(|i| i.group.as_deref())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut right = vec![false; items.len()];
    for (group, model) in models {
        let mine: Vec<usize> = (0..items.len())
            .filter(|&k| items[k].group.as_deref() == Some(group.as_str()))
            .collect();
        let pairs: Vec<TextPair> = mine.iter().map(|&k| items[k].pair.clone()).collect();
        // Each item is scored by one model: a cache per model loses nothing.
        let mut cache = super::train::MoleTrainConfig::default().frozen_cache();
        for (&k, r) in mine.iter().zip(correct(model, &pairs, 32, &mut cache)?) {
            right[k] = r;
        }
    }
    Ok(counted(&items, &right, shares))
}

/// `copl-train score`: rewards of `responses` to `prompt` for a seen `user` of the
/// checkpoint, computed as `copl-train eval` computes them (the gates run on the user's
/// GCF embedding; the server uses the routing cached at load: the two must agree).
pub fn score_for_user(
    ckpt: &Path,
    backbone: &Path,
    user: &str,
    prompt: &str,
    responses: &[String],
) -> Result<Vec<f32>> {
    let (adapter, ids) =
        Adapter::from_checkpoint(ckpt).with_context(|| format!("loading {}", ckpt.display()))?;
    let row = *ids
        .user_rows()
        .get(user)
        .with_context(|| format!("user {user:?} is not a seen user of {}", ckpt.display()))?;
    let model = RewardModel::load(ckpt, backbone, &device())?;
    let items: Vec<(&str, &str)> = responses.iter().map(|r| (prompt, r.as_str())).collect();
    let embedding = adapter.user_embedding(row);
    let users = candle_core::Tensor::from_vec(
        embedding.repeat(items.len()),
        (items.len(), embedding.len()),
        &model.device,
    )?;
    let mut cache = super::train::MoleTrainConfig::default().frozen_cache();
    Ok(super::train::text_rewards(&model, &items, &users, None, &mut cache)?.to_vec1()?)
}
