//! Synthetic personalised-preference benchmarks mirroring the paper's four settings
//! (Table 1, Appendix D.1), with preferences that are readable from the text.
//!
//! - `tldr`: Reddit-style posts and summaries of five lengths; group `short` prefers the
//!   shorter summary, group `long` the longer one (by characters).
//! - `ufp2`, `ufp4`: advice answers carrying four latent attributes (see [`text`]); each
//!   group follows one attribute. UF-P-2 uses `detail` and `hedging` and keeps only the
//!   pairs the two groups label oppositely (fully controversial); UF-P-4 uses all four and
//!   keeps the pairs on which not every group agrees (partial agreement allowed). Our
//!   attributes stand in for UltraFeedback's: helpfulness ≈ detail, honesty ≈ hedging,
//!   instruction following ≈ structure, and formality (register) replaces truthfulness,
//!   which text alone cannot show.
//! - `personal`: three answers a prompt, each user a Dirichlet(α = 0.1) mixture over the
//!   four attributes; only pairs on which the attributes disagree (neither answer
//!   dominates on every attribute) are kept.
//!
//! Sizes follow the paper: 10 000 seen users split evenly over the groups, 100 unseen
//! users, n = 8 (tldr, ufp2) or 16 (ufp4, personal) training annotations a user under
//! `all` (exactly n) or `avg` (uniform in 1..=2n−1), one validation pair a seen user, 10
//! test pairs a seen user and 50 an unseen one. Test pairs come from a pool of pairs that
//! no training annotation uses. The catalogue's survey pool has Table 1's size scaled by
//! `users / 10 000`. Generation is deterministic for a seed (ChaCha8).

pub mod catalogue;
mod display;
pub mod shape;
mod taste;
pub mod text;
pub mod truth;
mod words;

use std::collections::{BTreeMap, HashMap};

use copl_core::data::{Annotation, DataErrors, Dataset, Response, Split, UserTruth};
use rand::{Rng, SeedableRng, seq::IndexedRandom, seq::SliceRandom, seq::index};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use catalogue::Catalogue;
use catalogue::{Node, Pair, build_catalogue, heldout_pairs, split_pools};
use taste::{Taste, assign_tastes, group_sizes, prefers};
use text::AdviceLevels;

/// One of the paper's four settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Tldr,
    Ufp2,
    Ufp4,
    Personal,
}

impl Preset {
    /// Annotations per user n (Table 1).
    pub fn default_annotations(self) -> usize {
        match self {
            Preset::Tldr | Preset::Ufp2 => 8,
            Preset::Ufp4 | Preset::Personal => 16,
        }
    }

    /// Survey-set size for 10 000 users (Table 1).
    pub fn survey_size_10k(self) -> usize {
        match self {
            Preset::Tldr => 19_824,
            Preset::Ufp2 | Preset::Ufp4 => 25_993,
            Preset::Personal => 14_435,
        }
    }

    /// The ground-truth groups (empty for `personal`, whose users are mixtures).
    pub fn groups(self) -> &'static [&'static str] {
        match self {
            Preset::Tldr => &["short", "long"],
            Preset::Ufp2 => &["detail", "hedging"],
            Preset::Ufp4 => &AdviceLevels::NAMES,
            Preset::Personal => &[],
        }
    }

    /// The catalogue a benchmark gets unless told otherwise: `dense` for ufp4, whose test
    /// pairs a sparse catalogue leaves below the paper's reach (docs/gcf.md), `sparse`
    /// (the generator every earlier result used) for the others.
    pub fn default_catalogue(self) -> Catalogue {
        match self {
            Preset::Ufp4 => Catalogue::Dense,
            _ => Catalogue::Sparse,
        }
    }

    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Tldr => "tldr",
            Preset::Ufp2 => "ufp2",
            Preset::Ufp4 => "ufp4",
            Preset::Personal => "personal",
        }
    }
}

/// How many training annotations each seen user gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    /// Exactly n.
    All,
    /// Uniform in 1..=2n−1 (mean n).
    Avg,
}

impl Sampling {
    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Sampling::All => "all",
            Sampling::Avg => "avg",
        }
    }
}

/// Everything that determines a synthetic benchmark.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SynthConfig {
    pub preset: Preset,
    pub sampling: Sampling,
    /// Seen users (trained on).
    pub users: usize,
    /// Unseen users (onboarded at evaluation), spread evenly over the groups.
    pub unseen_users: usize,
    /// Training annotations a user, n; `None` for the preset's default.
    pub annotations: Option<usize>,
    /// Survey-pool size (pairs that training annotations use); `None` for Table 1's
    /// size scaled by `users / 10 000`.
    pub survey_pairs: Option<usize>,
    pub seen_test_pairs: usize,
    pub unseen_test_pairs: usize,
    /// Probability of flipping each annotation's label (annotator noise).
    pub label_noise: f64,
    /// Relative group sizes of seen users (e.g. `[1, 9]`); `None` for even groups.
    pub group_ratio: Option<Vec<f64>>,
    /// How densely the catalogue compares its responses; files written before the field
    /// existed were `sparse`.
    #[serde(default)]
    pub catalogue: Catalogue,
    /// Share of catalogue pairs on which every group agrees (common pairs), added to the
    /// preset's controversial pairs; 0 reproduces the paper's filtering. Not for `tldr`.
    pub common_share: f64,
    /// Share of prompts kept out of every survey pair (issue #13: new texts): their
    /// responses occur only in test pairs, and half of every user's test pairs are
    /// drawn from them, so a model is scored on texts no training pair has. 0 = none
    /// (files written before the field existed).
    #[serde(default)]
    pub heldout_prompts: f64,
    pub seed: u64,
}

impl SynthConfig {
    /// The paper's defaults for `preset`.
    pub fn new(preset: Preset) -> Self {
        Self {
            preset,
            sampling: Sampling::All,
            users: 10_000,
            unseen_users: 100,
            annotations: None,
            survey_pairs: None,
            seen_test_pairs: 10,
            unseen_test_pairs: 50,
            label_noise: 0.0,
            group_ratio: None,
            catalogue: preset.default_catalogue(),
            common_share: 0.0,
            heldout_prompts: 0.0,
            seed: 0,
        }
    }

    fn n(&self) -> usize {
        self.annotations
            .unwrap_or_else(|| self.preset.default_annotations())
    }

    fn max_train_annotations(&self) -> usize {
        match self.sampling {
            Sampling::All => self.n(),
            Sampling::Avg => 2 * self.n() - 1,
        }
    }
}

/// A configuration that cannot produce a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("{field}: {message}")]
    Config {
        field: &'static str,
        message: String,
    },
    #[error("the generated data failed validation (a generator bug): {0}")]
    Invalid(#[from] DataErrors),
}

fn config_error(field: &'static str, message: impl Into<String>) -> SynthError {
    SynthError::Config {
        field,
        message: message.into(),
    }
}

/// A generated benchmark and its summary.
#[derive(Debug)]
pub struct Synthetic {
    pub dataset: Dataset,
    pub summary: Summary,
}

/// What a generated benchmark holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    /// The file's format (`copl_core::file_version`; absent in files before it: 1).
    #[serde(default)]
    pub format_version: copl_core::file_version::FileVersion,
    pub config: SynthConfig,
    pub prompts: usize,
    pub responses: usize,
    pub survey_pairs: usize,
    pub test_pairs: usize,
    /// Test pairs on held-out prompts' responses (`heldout_prompts`), beside
    /// `test_pairs` on texts of the survey pool.
    #[serde(default)]
    pub new_text_pairs: usize,
    pub seen_users: usize,
    pub unseen_users: usize,
    /// Seen users a group (empty for `personal`).
    pub group_sizes: BTreeMap<String, usize>,
    pub train_annotations: usize,
    pub val_annotations: usize,
    pub test_annotations: usize,
    /// Mean training annotations a seen user.
    pub mean_train_per_seen_user: f64,
    /// Share of catalogue pairs (survey + test pools) that are controversial.
    pub controversial_pair_share: f64,
    /// Accuracy of each user's own ground-truth preference on the test annotations: the
    /// upper bound for every model (below 1 only through label noise).
    pub ground_truth_test_accuracy: f64,
    /// Accuracy on the test annotations of one preference shared by everybody (the
    /// majority label of a sample of seen users): the bound for a non-personalised model.
    pub population_test_accuracy: f64,
    /// Words a response: minimum, mean, maximum.
    pub response_words: [f64; 3],
}

/// Generates the benchmark described by `config`.
pub fn generate(config: &SynthConfig) -> Result<Synthetic, SynthError> {
    check(config)?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let n = config.n();
    let survey_target = config
        .survey_pairs
        .unwrap_or_else(|| {
            (config.preset.survey_size_10k() as f64 * config.users as f64 / 10_000.0).round()
                as usize
        })
        .max(4 * n);
    let test_target = (survey_target / 4)
        .max(2 * config.unseen_test_pairs)
        .max(2 * config.seen_test_pairs);

    // Over-generate: a test pair must join two responses that also occur in survey
    // pairs (so they are graph nodes with edges), which a small share of the spare pairs
    // do; held-out prompts take their share of the catalogue on top.
    let seen_target = survey_target + config.catalogue.over_generation() * test_target;
    let (prompts, nodes, mut candidates) = build_catalogue(
        &mut rng,
        config,
        (seen_target as f64 / (1.0 - config.heldout_prompts)).ceil() as usize,
    );
    candidates.shuffle(&mut rng);
    let heldout = heldout_pairs(&mut rng, &mut candidates, &nodes, prompts.len(), config);
    let pools = split_pools(candidates, heldout, nodes, survey_target, test_target);
    let (pairs, nodes) = (&pools.pairs[..], &pools.nodes[..]);
    let survey_pool = &pairs[..pools.survey];
    let test_pool = &pairs[pools.survey..pools.survey + pools.test];
    let new_text_pool = &pairs[pools.survey + pools.test..];

    let tastes = assign_tastes(&mut rng, config)?;
    let mut annotations = Vec::new();
    let mut users = Vec::new();
    let mut noiseless_right = 0usize;
    let mut test_total = 0usize;
    for (i, (taste, unseen)) in tastes.iter().enumerate() {
        let id = if *unseen {
            format!("unseen-{:04}", i - config.users)
        } else {
            format!("user-{i:05}")
        };
        let (train, val, test) = if *unseen {
            (n, 0, config.unseen_test_pairs)
        } else {
            let train = match config.sampling {
                Sampling::All => n,
                Sampling::Avg => rng.random_range(1..2 * n),
            };
            (train, 1, config.seen_test_pairs)
        };
        let survey = draw(
            &mut rng,
            survey_pool,
            train + val,
            taste,
            nodes,
            config.preset,
        );
        for (k, pair) in survey.into_iter().enumerate() {
            let split = if k < train { Split::Train } else { Split::Val };
            annotations.push(annotate(&mut rng, &id, pair, split, taste, nodes, config).0);
        }
        let new_texts = if new_text_pool.is_empty() {
            0
        } else {
            test / 2
        };
        let mut tests = draw(
            &mut rng,
            test_pool,
            test - new_texts,
            taste,
            nodes,
            config.preset,
        );
        if new_texts > 0 {
            tests.extend(draw(
                &mut rng,
                new_text_pool,
                new_texts,
                taste,
                nodes,
                config.preset,
            ));
        }
        for pair in tests {
            let (annotation, right) =
                annotate(&mut rng, &id, pair, Split::Test, taste, nodes, config);
            annotations.push(annotation);
            noiseless_right += usize::from(right);
            test_total += 1;
        }
        users.push(UserTruth {
            user: id,
            group: match taste {
                Taste::Group(g) => Some(config.preset.groups()[*g].to_string()),
                Taste::Weights(_) => None,
            },
            weights: match taste {
                Taste::Group(_) => None,
                Taste::Weights(w) => Some(w.to_vec()),
            },
            unseen: *unseen,
        });
    }

    let population_test_accuracy = population_accuracy(
        &mut rng,
        &annotations,
        &users,
        &tastes,
        nodes,
        config.preset,
    );
    let responses: Vec<Response> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| Response {
            id: response_id(i),
            prompt: prompts[node.prompt].clone(),
            response: node.text.clone(),
            attributes: Some(attribute_map(config.preset, &node.attributes)),
        })
        .collect();

    let count = |split| annotations.iter().filter(|a| a.split == split).count();
    let words: Vec<usize> = nodes
        .iter()
        .map(|n| n.text.split_whitespace().count())
        .collect();
    let summary = Summary {
        format_version: copl_core::file_version::FileVersion::CURRENT,
        config: config.clone(),
        prompts: prompts.len(),
        responses: nodes.len(),
        survey_pairs: survey_pool.len(),
        test_pairs: test_pool.len(),
        new_text_pairs: new_text_pool.len(),
        seen_users: config.users,
        unseen_users: config.unseen_users,
        group_sizes: group_sizes(config.preset, &tastes),
        train_annotations: count(Split::Train),
        val_annotations: count(Split::Val),
        test_annotations: count(Split::Test),
        mean_train_per_seen_user: annotations
            .iter()
            .filter(|a| a.split == Split::Train && a.user.starts_with("user-"))
            .count() as f64
            / config.users as f64,
        controversial_pair_share: pairs.iter().filter(|p| p.controversial).count() as f64
            / pairs.len() as f64,
        ground_truth_test_accuracy: noiseless_right as f64 / test_total.max(1) as f64,
        population_test_accuracy,
        response_words: [
            words.iter().copied().min().unwrap_or(0) as f64,
            words.iter().sum::<usize>() as f64 / words.len().max(1) as f64,
            words.iter().copied().max().unwrap_or(0) as f64,
        ],
    };
    let dataset = Dataset::new(responses, annotations, users)?;
    Ok(Synthetic { dataset, summary })
}

fn check(config: &SynthConfig) -> Result<(), SynthError> {
    if config.users == 0 {
        return Err(config_error("users", "must be at least 1"));
    }
    if config.annotations == Some(0) {
        return Err(config_error("annotations", "must be at least 1"));
    }
    if !(0.0..=0.5).contains(&config.label_noise) {
        return Err(config_error(
            "label_noise",
            format!("must be in [0, 0.5], got {}", config.label_noise),
        ));
    }
    if !(0.0..1.0).contains(&config.heldout_prompts) {
        return Err(config_error(
            "heldout_prompts",
            format!("must be in [0, 1), got {}", config.heldout_prompts),
        ));
    }
    if !(0.0..1.0).contains(&config.common_share) {
        return Err(config_error(
            "common_share",
            format!("must be in [0, 1), got {}", config.common_share),
        ));
    }
    if config.preset == Preset::Tldr && config.common_share > 0.0 {
        return Err(config_error(
            "common_share",
            "tldr has no common pairs: the groups disagree on every pair of different lengths",
        ));
    }
    if let Some(ratio) = &config.group_ratio {
        let groups = config.preset.groups().len();
        if groups == 0 {
            return Err(config_error(
                "group_ratio",
                "personal users are mixtures, not groups",
            ));
        }
        if ratio.len() != groups {
            return Err(config_error(
                "group_ratio",
                format!(
                    "{} has {groups} groups, got {} ratio parts",
                    config.preset.name(),
                    ratio.len()
                ),
            ));
        }
        if ratio.iter().any(|r| !r.is_finite() || *r <= 0.0) {
            return Err(config_error(
                "group_ratio",
                "every part must be a positive number",
            ));
        }
    }
    let needed = config.max_train_annotations() + 1;
    if config.survey_pairs.is_some_and(|s| s < needed) {
        return Err(config_error(
            "survey_pairs",
            format!("must be at least {needed} so that a user's pairs can be distinct"),
        ));
    }
    Ok(())
}

/// `count` distinct pairs of `pool` on which the taste has a preference.
fn draw(
    rng: &mut ChaCha8Rng,
    pool: &[Pair],
    count: usize,
    taste: &Taste,
    nodes: &[Node],
    preset: Preset,
) -> Vec<Pair> {
    let amount = (count + count / 2 + 2).min(pool.len());
    index::sample(rng, pool.len(), amount)
        .into_iter()
        .map(|i| pool[i])
        .filter(|&p| prefers(preset, taste, nodes, p).is_some())
        .take(count)
        .collect()
}

/// The user's annotation of a pair, and whether its label is the noiseless one.
fn annotate(
    rng: &mut ChaCha8Rng,
    user: &str,
    pair: Pair,
    split: Split,
    taste: &Taste,
    nodes: &[Node],
    config: &SynthConfig,
) -> (Annotation, bool) {
    let truth = prefers(config.preset, taste, nodes, pair).unwrap_or(true);
    let flipped = config.label_noise > 0.0 && rng.random_bool(config.label_noise);
    let a_wins = truth != flipped;
    let (chosen, rejected) = if a_wins {
        (pair.a, pair.b)
    } else {
        (pair.b, pair.a)
    };
    let annotation = Annotation {
        user: user.to_string(),
        chosen: response_id(chosen),
        rejected: response_id(rejected),
        split,
        controversial: Some(pair.controversial),
    };
    (annotation, !flipped)
}

/// Accuracy on the test annotations of the majority label of (a sample of) seen users.
fn population_accuracy(
    rng: &mut ChaCha8Rng,
    annotations: &[Annotation],
    users: &[UserTruth],
    tastes: &[(Taste, bool)],
    nodes: &[Node],
    preset: Preset,
) -> f64 {
    let seen: Vec<usize> = (0..users.len()).filter(|&i| !users[i].unseen).collect();
    let sample: Vec<&Taste> = seen
        .choose_multiple(rng, 256)
        .map(|&i| &tastes[i].0)
        .collect();
    let row = |id: &str| id.trim_start_matches('r').parse::<usize>().unwrap_or(0);
    // Votes for the lower-numbered response of each unordered pair.
    let mut votes_for_first: HashMap<(usize, usize), i64> = HashMap::new();
    let mut right = 0.0;
    let mut total = 0usize;
    for a in annotations.iter().filter(|a| a.split == Split::Test) {
        let (chosen, rejected) = (row(&a.chosen), row(&a.rejected));
        let key = (chosen.min(rejected), chosen.max(rejected));
        let votes = *votes_for_first.entry(key).or_insert_with(|| {
            let pair = Pair {
                a: key.0,
                b: key.1,
                controversial: false,
            };
            sample
                .iter()
                .map(|t| match prefers(preset, t, nodes, pair) {
                    Some(true) => 1,
                    Some(false) => -1,
                    None => 0,
                })
                .sum()
        });
        let votes_for_chosen = if chosen == key.0 { votes } else { -votes };
        right += match votes_for_chosen.signum() {
            1 => 1.0,
            0 => 0.5,
            _ => 0.0,
        };
        total += 1;
    }
    right / total.max(1) as f64
}

fn attribute_map(preset: Preset, attributes: &[f64]) -> BTreeMap<String, f64> {
    match preset {
        Preset::Tldr => BTreeMap::from([("chars".to_string(), attributes[0])]),
        _ => AdviceLevels::NAMES
            .iter()
            .zip(attributes)
            .map(|(name, value)| (name.to_string(), *value))
            .collect(),
    }
}

fn response_id(row: usize) -> String {
    format!("r{row:06}")
}
