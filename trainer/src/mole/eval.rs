//! `copl-train eval`: the reward model's accuracy on seen users' test pairs and on
//! unseen users' test pairs after onboarding (eq. 11 gives their gate input), overall,
//! per ground-truth group and on controversial versus common pairs (paper Table 3).

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, Result};
use copl_core::{
    adapt::{AdaptConfig, Adapter, Answer},
    data::{Dataset, Split},
    model::{
        frozen_cache::FrozenCache,
        reward::{RewardModel, Variant},
    },
};
use serde::Serialize;

use super::{
    run::spread,
    train::{TextPair, correct, device},
};

/// Accuracy of one slice.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Slice {
    pub pairs: usize,
    pub accuracy: f64,
}

/// One population's figures.
#[derive(Clone, Debug, Serialize)]
pub struct Population {
    pub overall: Slice,
    pub by_group: BTreeMap<String, Slice>,
    pub controversial: Option<Slice>,
    pub common: Option<Slice>,
}

/// What `copl-train eval` reports.
#[derive(Clone, Debug, Serialize)]
pub struct MoleEval {
    pub variant: Variant,
    pub seen: Population,
    pub unseen: Option<Population>,
}

struct Item {
    pair: TextPair,
    group: Option<String>,
    controversial: Option<bool>,
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

/// Scores every item once, then counts by slice; with `shares` (a per-group sample),
/// `overall` is the groups' accuracies weighted by their shares of the population.
fn population(
    model: &RewardModel,
    (items, shares): (Vec<Item>, Option<BTreeMap<String, f64>>),
    cache: &mut FrozenCache,
) -> Result<Population> {
    let pairs: Vec<TextPair> = items.iter().map(|i| i.pair.clone()).collect();
    let right = correct(model, &pairs, 32, cache)?;
    let slice = |keep: &dyn Fn(&Item) -> bool| -> Slice {
        let (pairs, hits) = items
            .iter()
            .zip(&right)
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
    Ok(Population {
        overall,
        by_group,
        // A side of the split with no pair is absent, not NaN.
        controversial: flagged
            .then(|| slice(&|i| i.controversial == Some(true)))
            .filter(|s| s.pairs > 0),
        common: flagged
            .then(|| slice(&|i| i.controversial == Some(false)))
            .filter(|s| s.pairs > 0),
    })
}

/// Every unseen user of `dataset` onboarded (eq. 11, default settings) from their
/// answers outside the test split: user id → adapted embedding.
pub fn onboarded_unseen(
    dataset: &Dataset,
    adapter: &Adapter,
) -> Result<BTreeMap<String, Vec<f32>>> {
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
    let mut embeddings = BTreeMap::new();
    for (user, given) in &answers {
        let adapted = adapter.adapt(given, &AdaptConfig::default())?;
        embeddings.insert(user.to_string(), adapted.embedding);
    }
    Ok(embeddings)
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
    let groups: BTreeMap<&str, &str> = dataset
        .users()
        .iter()
        .filter_map(|u| Some((u.user.as_str(), u.group.as_deref()?)))
        .collect();
    let responses = dataset.responses();
    let item = |user: Vec<f32>, a: &copl_core::data::Annotation| -> Option<Item> {
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
        })
    };
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
        variant: model.config.variant,
        seen,
        unseen,
    })
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
    Ok(super::train::text_rewards(&model, &items, &users, false, &mut cache)?.to_vec1()?)
}
