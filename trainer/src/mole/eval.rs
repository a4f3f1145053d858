//! `copl-train eval`: the reward model's accuracy on seen users' test pairs and on
//! unseen users' test pairs after onboarding (eq. 11 gives their gate input), overall,
//! per ground-truth group and on controversial versus common pairs (paper Table 3).

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, Result};
use copl_core::{
    adapt::{AdaptConfig, Adapter, Answer},
    data::{Dataset, Split},
    model::reward::{RewardModel, Variant},
};
use serde::Serialize;

use super::{
    run::spread,
    train::{TextPair, accuracy, device},
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

fn population(model: &RewardModel, items: Vec<Item>) -> Result<Population> {
    let slice = |items: &[&Item]| -> Result<Slice> {
        let pairs: Vec<TextPair> = items.iter().map(|i| i.pair.clone()).collect();
        Ok(Slice {
            pairs: pairs.len(),
            accuracy: accuracy(model, &pairs, 32)?,
        })
    };
    let all: Vec<&Item> = items.iter().collect();
    let mut groups: BTreeMap<String, Vec<&Item>> = BTreeMap::new();
    for i in &items {
        if let Some(g) = &i.group {
            groups.entry(g.clone()).or_default().push(i);
        }
    }
    let flagged = items.iter().any(|i| i.controversial.is_some());
    let with = |flag: bool| -> Vec<&Item> {
        items
            .iter()
            .filter(|i| i.controversial == Some(flag))
            .collect()
    };
    Ok(Population {
        overall: slice(&all)?,
        by_group: groups
            .iter()
            .map(|(g, v)| Ok((g.clone(), slice(v)?)))
            .collect::<Result<_>>()?,
        controversial: if flagged {
            Some(slice(&with(true))?)
        } else {
            None
        },
        common: if flagged {
            Some(slice(&with(false))?)
        } else {
            None
        },
    })
}

/// Evaluates the checkpoint `ckpt` (GCF + model) on `data`; at most `test_pairs` seen
/// pairs (spread as `copl-train mole` spreads them; 0 = all).
pub fn eval_mole(data: &Path, ckpt: &Path, backbone: &Path, test_pairs: usize) -> Result<MoleEval> {
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
    let seen = population(&model, spread(seen, test_pairs))?;

    // Unseen users: onboarded from their given answers, scored on their test pairs.
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
        embeddings.insert(*user, adapted.embedding);
    }
    let unseen: Vec<Item> = dataset
        .split(Split::Test)
        .filter_map(|a| item(embeddings.get(a.user.as_str())?.clone(), a))
        .collect();
    let unseen = if unseen.is_empty() {
        None
    } else {
        Some(population(&model, unseen)?)
    };
    Ok(MoleEval {
        variant: model.config.variant,
        seen,
        unseen,
    })
}
