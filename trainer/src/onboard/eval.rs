//! `copl-train eval-unseen`: how well unseen users are served after onboarding (paper
//! Table 5 and Fig. 5), and how many answers SuggestSurvey saves against random pairs.
//!
//! Each unseen user gives their survey answers from the data (train/val split; the
//! paper's 8 or 16) and is scored on their test pairs with GCF scores s(u*, r) =
//! ⟨e_{u*}, e_r⟩ (eq. 4). Test pairs never enter an adaptation.

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
    time::Instant,
};

use anyhow::{Context, Result, bail};
use copl_core::{
    adapt::{AdaptConfig, Adaptation, Adapter, Answer, SurveyConfig, SurveyEngine, Weighting},
    data::{Dataset, Response, Split, UserTruth},
    graph::GraphIds,
};
use serde::{Deserialize, Serialize};

use super::user_opt::{UserOptConfig, optimise_user};
use crate::gcf::{pair_rows, same_responses};
use copl_synth::truth;

/// Options of the evaluation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalUnseenConfig {
    /// Numbers of answers for the answers-versus-accuracy curve (Fig. 5).
    pub answer_counts: Vec<usize>,
    pub adapt: AdaptConfig,
    pub survey: SurveyConfig,
    pub user_opt: UserOptConfig,
}

impl Default for EvalUnseenConfig {
    fn default() -> Self {
        Self {
            answer_counts: vec![1, 2, 4, 8, 16],
            adapt: AdaptConfig::default(),
            survey: SurveyConfig::default(),
            user_opt: UserOptConfig::default(),
        }
    }
}

/// Accuracy of one way of onboarding, over all unseen users' test pairs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MethodResult {
    pub accuracy: f64,
    pub pairs: usize,
    /// Mean time of one user's onboarding, µs.
    pub mean_us: f64,
}

/// What the CoPL adaptation did over the unseen users.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AdaptationStats {
    pub fallbacks: BTreeMap<String, usize>,
    pub mean_neighbourhood: f64,
    pub mean_effective_neighbours: f64,
    pub mean_confidence: f64,
    pub mean_answer_agreement: f64,
}

/// One point of the answers-versus-accuracy curve.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AnswersPoint {
    pub answers: usize,
    /// The user's own (randomly drawn) survey answers, first `answers` of them.
    pub random_2hop: f64,
    pub random_4hop: f64,
    /// Pairs chosen by SuggestSurvey one at a time, given the answers so far.
    pub suggested_adaptive: Option<f64>,
    /// Pairs chosen by SuggestSurvey all at once, before any answer.
    pub suggested_batch: Option<f64>,
}

/// What `copl-train eval-unseen` reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UnseenEval {
    /// The file's format (`copl_core::file_version`; absent in files before it: 1).
    #[serde(default)]
    pub format_version: copl_core::file_version::FileVersion,
    pub unseen_users: usize,
    pub mean_answers: f64,
    pub test_pairs: usize,
    /// GCF accuracy of the seen users on their test pairs, for reference.
    pub seen_accuracy: f64,
    /// `copl_2hop`, `copl_4hop`, `naive_avg_2hop`, `user_opt`, `population`.
    pub methods: BTreeMap<String, MethodResult>,
    pub copl_2hop: AdaptationStats,
    pub by_answers: Vec<AnswersPoint>,
    /// Why the suggested columns are empty, when they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub survey_note: Option<String>,
    pub survey_pool: usize,
    /// Seconds to sample the committee and rank the candidates (once, at load).
    pub survey_build_seconds: f64,
    /// Mean time of one one-pair suggestion given the answers so far, µs.
    pub suggest_mean_us: f64,
}

pub(crate) struct UnseenUser<'a> {
    pub(crate) truth: Option<&'a UserTruth>,
    pub(crate) given: Vec<Answer>,
    pub(crate) test: Vec<Answer>,
}

/// Evaluates onboarding of `data`'s unseen users on the checkpoint `ckpt`.
pub fn eval_unseen(data: &Path, ckpt: &Path, config: &EvalUnseenConfig) -> Result<UnseenEval> {
    let dataset = Dataset::load(data).map_err(anyhow::Error::new)?;
    let (adapter, ids) =
        Adapter::from_checkpoint(ckpt).with_context(|| format!("loading {}", ckpt.display()))?;
    same_responses(&dataset, &ids, data, ckpt)?;
    let users = unseen_users(&dataset);
    if users.is_empty() {
        bail!("{}: users.jsonl marks no user unseen", data.display());
    }
    let seen_accuracy = seen_accuracy(&adapter, &dataset, &ids);

    let two = AdaptConfig {
        hops: 2,
        ..config.adapt.clone()
    };
    let four = AdaptConfig {
        hops: 4,
        max_hops: config.adapt.max_hops.max(4),
        ..config.adapt.clone()
    };
    let naive = AdaptConfig {
        weighting: Weighting::Uniform,
        ..two.clone()
    };
    let mut methods = BTreeMap::new();
    let mut stats = AdaptationStats::default();
    let copl = |c: &AdaptConfig, answers: &[Answer]| -> Result<Adaptation> {
        Ok(adapter.adapt(answers, c)?)
    };
    let mut adaptations = Vec::new();
    for (name, c) in [
        ("copl_2hop", &two),
        ("copl_4hop", &four),
        ("naive_avg_2hop", &naive),
    ] {
        let (result, list) = run_method(&adapter, &users, |given| {
            let a = copl(c, given)?;
            Ok((a.embedding.clone(), Some(a)))
        })?;
        if name == "copl_2hop" {
            adaptations = list;
        }
        methods.insert(name.to_string(), result);
    }
    for a in adaptations.iter().flatten() {
        *stats
            .fallbacks
            .entry(format!("{:?}", a.fallback).to_lowercase())
            .or_default() += 1;
        stats.mean_neighbourhood += a.neighbourhood_size as f64;
        stats.mean_effective_neighbours += f64::from(a.effective_neighbours);
        stats.mean_confidence += f64::from(a.confidence);
        stats.mean_answer_agreement += f64::from(a.answer_agreement);
    }
    let n = users.len() as f64;
    stats.mean_neighbourhood /= n;
    stats.mean_effective_neighbours /= n;
    stats.mean_confidence /= n;
    stats.mean_answer_agreement /= n;
    let (user_opt, _) = run_method(&adapter, &users, |given| {
        Ok((optimise_user(&adapter, given, &config.user_opt), None))
    })?;
    methods.insert("user_opt".to_string(), user_opt);
    let (population, _) = run_method(&adapter, &users, |_| {
        Ok((adapter.population_embedding().to_vec(), None))
    })?;
    methods.insert("population".to_string(), population);

    // The survey: candidates are the seen users' annotated pairs.
    let survey_rows: Vec<(u32, u32)> = pair_rows(&dataset, &ids, Split::Train)
        .iter()
        .map(|&(_, a, b)| (a, b))
        .collect();
    let candidates = SurveyEngine::candidate_pairs(&adapter, &survey_rows);
    let started = Instant::now();
    let engine = SurveyEngine::build(&adapter, &candidates, &config.survey);
    let survey_build_seconds = started.elapsed().as_secs_f64();
    let has_truth = users.iter().all(|u| u.truth.is_some())
        && dataset.responses().iter().all(|r| r.attributes.is_some());
    let survey_note = (!has_truth).then(|| {
        "no ground truth (users.jsonl group/weights and response attributes) to answer suggested pairs"
            .to_string()
    });
    let max_answers = config.answer_counts.iter().copied().max().unwrap_or(0);
    let (adaptive, batch): (Vec<Vec<Answer>>, Vec<Vec<Answer>>) = if has_truth {
        users
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let seed = i as u64 + 1;
                (
                    adaptive_survey(&adapter, &engine, &dataset, u, max_answers, seed),
                    batch_survey(&adapter, &engine, &dataset, u, max_answers, seed),
                )
            })
            .unzip()
    } else {
        (Vec::new(), Vec::new())
    };

    let mut by_answers = Vec::new();
    for &k in &config.answer_counts {
        let first = |answers: &[Answer]| answers[..k.min(answers.len())].to_vec();
        let accuracy_with =
            |c: &AdaptConfig, pick: &dyn Fn(usize, &UnseenUser<'_>) -> Vec<Answer>| {
                let mut right = 0usize;
                let mut total = 0usize;
                for (i, u) in users.iter().enumerate() {
                    let answers = pick(i, u);
                    let embedding = if answers.is_empty() {
                        adapter.population_embedding().to_vec()
                    } else {
                        adapter.adapt(&answers, c)?.embedding
                    };
                    let (r, t) = correct(&adapter, &embedding, &u.test);
                    right += r;
                    total += t;
                }
                anyhow::Ok(right as f64 / total.max(1) as f64)
            };
        by_answers.push(AnswersPoint {
            answers: k,
            random_2hop: accuracy_with(&two, &|_, u| first(&u.given))?,
            random_4hop: accuracy_with(&four, &|_, u| first(&u.given))?,
            suggested_adaptive: if has_truth {
                Some(accuracy_with(&two, &|i, _| first(&adaptive[i]))?)
            } else {
                None
            },
            suggested_batch: if has_truth {
                Some(accuracy_with(&two, &|i, _| first(&batch[i]))?)
            } else {
                None
            },
        });
    }

    Ok(UnseenEval {
        format_version: copl_core::file_version::FileVersion::CURRENT,
        unseen_users: users.len(),
        mean_answers: users.iter().map(|u| u.given.len()).sum::<usize>() as f64 / n,
        test_pairs: users.iter().map(|u| u.test.len()).sum(),
        seen_accuracy,
        methods,
        copl_2hop: stats,
        by_answers,
        survey_note,
        survey_pool: engine.pool_size(),
        survey_build_seconds,
        suggest_mean_us: {
            let started = Instant::now();
            let calls = users.len().min(50);
            for (i, u) in users.iter().take(calls).enumerate() {
                std::hint::black_box(engine.suggest(&adapter, &u.given, &[], 1, i as u64));
            }
            started.elapsed().as_secs_f64() * 1e6 / calls.max(1) as f64
        },
    })
}

/// Onboards every user with `onboard` (timed) and scores their test pairs.
fn run_method(
    adapter: &Adapter,
    users: &[UnseenUser<'_>],
    mut onboard: impl FnMut(&[Answer]) -> Result<(Vec<f32>, Option<Adaptation>)>,
) -> Result<(MethodResult, Vec<Option<Adaptation>>)> {
    let (mut right, mut total, mut micros) = (0usize, 0usize, 0f64);
    let mut adaptations = Vec::new();
    for u in users {
        let started = Instant::now();
        let (embedding, adaptation) = onboard(&u.given)?;
        micros += started.elapsed().as_secs_f64() * 1e6;
        let (r, t) = correct(adapter, &embedding, &u.test);
        right += r;
        total += t;
        adaptations.push(adaptation);
    }
    Ok((
        MethodResult {
            accuracy: right as f64 / total.max(1) as f64,
            pairs: total,
            mean_us: micros / users.len().max(1) as f64,
        },
        adaptations,
    ))
}

/// (pairs ordered as the user did, pairs) under GCF scores.
fn correct(adapter: &Adapter, embedding: &[f32], pairs: &[Answer]) -> (usize, usize) {
    let right = pairs
        .iter()
        .filter(|p| adapter.score(embedding, p.chosen) > adapter.score(embedding, p.rejected))
        .count();
    (right, pairs.len())
}

pub(crate) fn unseen_users(dataset: &Dataset) -> Vec<UnseenUser<'_>> {
    let truths: HashMap<&str, &UserTruth> = dataset
        .users()
        .iter()
        .map(|u| (u.user.as_str(), u))
        .collect();
    let unseen = dataset.unseen_users();
    let mut order: Vec<&str> = Vec::new();
    let mut by_user: HashMap<&str, (Vec<Answer>, Vec<Answer>)> = HashMap::new();
    // Eq. 11 scores graph nodes: test pairs on new texts are the reward model's.
    let annotated = dataset.annotated_texts();
    for a in dataset.annotations() {
        if !unseen.contains(a.user.as_str()) {
            continue;
        }
        let (Some(c), Some(r)) = (
            dataset.response_row(&a.chosen),
            dataset.response_row(&a.rejected),
        ) else {
            continue;
        };
        if a.split == Split::Test && annotated.new_pair(c, r) {
            continue;
        }
        let answer = Answer {
            chosen: c as u32,
            rejected: r as u32,
        };
        let entry = by_user.entry(a.user.as_str()).or_insert_with(|| {
            order.push(a.user.as_str());
            Default::default()
        });
        match a.split {
            Split::Test => entry.1.push(answer),
            Split::Train | Split::Val => entry.0.push(answer),
        }
    }
    order
        .into_iter()
        .filter_map(|id| {
            let (given, test) = by_user.remove(id)?;
            (!given.is_empty() && !test.is_empty()).then(|| UnseenUser {
                truth: truths.get(id).copied(),
                given,
                test,
            })
        })
        .collect()
}

fn seen_accuracy(adapter: &Adapter, dataset: &Dataset, ids: &GraphIds) -> f64 {
    let pairs = pair_rows(dataset, ids, Split::Test);
    let right = pairs
        .iter()
        .filter(|&&(u, a, b)| {
            let e = adapter.user_embedding(u);
            adapter.score(e, a) > adapter.score(e, b)
        })
        .count();
    right as f64 / pairs.len().max(1) as f64
}

/// The simulated user's answer to a pair (`None`: no preference).
fn answer_as(dataset: &Dataset, user: &UnseenUser<'_>, a: u32, b: u32) -> Option<Answer> {
    let response = |r: u32| -> &Response { &dataset.responses()[r as usize] };
    let a_wins = truth::prefers(user.truth?, response(a), response(b))?;
    Some(if a_wins {
        Answer {
            chosen: a,
            rejected: b,
        }
    } else {
        Answer {
            chosen: b,
            rejected: a,
        }
    })
}

/// Asks one suggested pair at a time, each given the answers so far.
fn adaptive_survey(
    adapter: &Adapter,
    engine: &SurveyEngine,
    dataset: &Dataset,
    user: &UnseenUser<'_>,
    count: usize,
    seed: u64,
) -> Vec<Answer> {
    let mut answers = Vec::new();
    let mut declined = Vec::new();
    while answers.len() < count {
        let Some(pair) = engine.suggest(adapter, &answers, &declined, 1, seed).pop() else {
            break;
        };
        match answer_as(dataset, user, pair.a, pair.b) {
            Some(answer) => answers.push(answer),
            None => declined.push((pair.a, pair.b)),
        }
    }
    answers
}

/// Asks `count` pairs suggested at once, before any answer; pairs without a preference
/// are left unanswered.
fn batch_survey(
    adapter: &Adapter,
    engine: &SurveyEngine,
    dataset: &Dataset,
    user: &UnseenUser<'_>,
    count: usize,
    seed: u64,
) -> Vec<Answer> {
    engine
        .suggest(adapter, &[], &[], count, seed)
        .into_iter()
        .filter_map(|p| answer_as(dataset, user, p.a, p.b))
        .collect()
}
