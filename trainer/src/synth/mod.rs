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

pub mod shape;
pub mod text;
pub mod truth;
mod words;

use std::collections::{BTreeMap, HashMap};

use copl_core::data::{Annotation, DataErrors, Dataset, Response, Split, UserTruth};
use rand::{Rng, SeedableRng, seq::IndexedRandom, seq::SliceRandom, seq::index};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma};
use serde::{Deserialize, Serialize};

use text::{AdviceLevels, SUMMARY_LEVELS};

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

    fn responses_per_prompt(self) -> usize {
        match self {
            Preset::Tldr => usize::from(SUMMARY_LEVELS),
            Preset::Ufp2 | Preset::Ufp4 => 4,
            Preset::Personal => 3,
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
    /// Share of catalogue pairs on which every group agrees (common pairs), added to the
    /// preset's controversial pairs; 0 reproduces the paper's filtering. Not for `tldr`.
    pub common_share: f64,
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
            common_share: 0.0,
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
    pub config: SynthConfig,
    pub prompts: usize,
    pub responses: usize,
    pub survey_pairs: usize,
    pub test_pairs: usize,
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

/// A user's ground-truth preference.
#[derive(Clone, Debug)]
enum Taste {
    Group(usize),
    Weights([f64; 4]),
}

/// A catalogue response in the making.
struct Node {
    prompt: usize,
    text: String,
    /// Attribute values: `[chars]` for tldr, the four levels otherwise.
    attributes: Vec<f64>,
}

#[derive(Clone, Copy)]
struct Pair {
    a: usize,
    b: usize,
    controversial: bool,
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
    // pairs (so they are graph nodes with edges), which a small share of the spare pairs do.
    let (prompts, nodes, mut candidates) =
        build_catalogue(&mut rng, config, survey_target + 8 * test_target);
    candidates.shuffle(&mut rng);
    let (survey_pool, pairs, nodes) = split_pools(candidates, nodes, survey_target, test_target);
    let survey_pool = &survey_pool[..];
    let test_pool = &pairs[survey_pool.len()..];

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
            &nodes,
            config.preset,
        );
        for (k, pair) in survey.into_iter().enumerate() {
            let split = if k < train { Split::Train } else { Split::Val };
            annotations.push(annotate(&mut rng, &id, pair, split, taste, &nodes, config).0);
        }
        for pair in draw(&mut rng, test_pool, test, taste, &nodes, config.preset) {
            let (annotation, right) =
                annotate(&mut rng, &id, pair, Split::Test, taste, &nodes, config);
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
        &nodes,
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
        config: config.clone(),
        prompts: prompts.len(),
        responses: nodes.len(),
        survey_pairs: survey_pool.len(),
        test_pairs: test_pool.len(),
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

/// Generates prompts and their responses until `target` catalogue pairs are kept.
fn build_catalogue(
    rng: &mut ChaCha8Rng,
    config: &SynthConfig,
    target: usize,
) -> (Vec<String>, Vec<Node>, Vec<Pair>) {
    let common_target = (config.common_share * target as f64).round() as usize;
    let controversial_target = target - common_target;
    let (mut controversial, mut common) = (0usize, 0usize);
    let mut prompts = Vec::new();
    let mut nodes = Vec::new();
    let mut pairs = Vec::new();
    while controversial < controversial_target || common < common_target {
        let (prompt, local) = prompt_with_responses(rng, config.preset);
        let mut keep: Vec<(usize, usize, bool)> = Vec::new();
        for a in 0..local.len() {
            for b in a + 1..local.len() {
                let Some(is_controversial) = classify(config.preset, &local[a].1, &local[b].1)
                else {
                    continue;
                };
                if is_controversial && controversial < controversial_target {
                    controversial += 1;
                } else if !is_controversial && common < common_target {
                    common += 1;
                } else {
                    continue;
                }
                keep.push((a, b, is_controversial));
            }
        }
        if keep.is_empty() {
            continue;
        }
        let prompt_row = prompts.len();
        prompts.push(prompt);
        let mut global = vec![usize::MAX; local.len()];
        for &(a, b, _) in &keep {
            for i in [a, b] {
                if global[i] == usize::MAX {
                    global[i] = nodes.len();
                    nodes.push(Node {
                        prompt: prompt_row,
                        text: local[i].0.clone(),
                        attributes: local[i].1.clone(),
                    });
                }
            }
        }
        for (a, b, is_controversial) in keep {
            pairs.push(Pair {
                a: global[a],
                b: global[b],
                controversial: is_controversial,
            });
        }
    }
    (prompts, nodes, pairs)
}

/// Splits shuffled candidate pairs into a survey pool (the first `survey`) and a test
/// pool of up to `test` other pairs whose responses both occur in the survey pool; drops
/// the responses neither pool uses. Returns the survey pool, all kept pairs (survey
/// pool first) and the kept responses, renumbered.
fn split_pools(
    candidates: Vec<Pair>,
    nodes: Vec<Node>,
    survey: usize,
    test: usize,
) -> (Vec<Pair>, Vec<Pair>, Vec<Node>) {
    let survey = survey.min(candidates.len());
    let mut in_survey = vec![false; nodes.len()];
    for p in &candidates[..survey] {
        in_survey[p.a] = true;
        in_survey[p.b] = true;
    }
    let mut kept: Vec<Pair> = candidates[..survey].to_vec();
    kept.extend(
        candidates[survey..]
            .iter()
            .filter(|p| in_survey[p.a] && in_survey[p.b])
            .take(test),
    );
    let mut new_row = vec![usize::MAX; nodes.len()];
    let mut used = Vec::new();
    for p in &kept {
        for i in [p.a, p.b] {
            if new_row[i] == usize::MAX {
                new_row[i] = used.len();
                used.push(i);
            }
        }
    }
    // Keep the responses in their original order (grouped by prompt).
    used.sort_unstable();
    for (row, &i) in used.iter().enumerate() {
        new_row[i] = row;
    }
    let mut slots: Vec<Option<Node>> = nodes.into_iter().map(Some).collect();
    let kept_nodes: Vec<Node> = used.iter().filter_map(|&i| slots[i].take()).collect();
    for p in &mut kept {
        p.a = new_row[p.a];
        p.b = new_row[p.b];
    }
    (kept[..survey].to_vec(), kept, kept_nodes)
}

/// One prompt and its candidate responses with their attributes.
fn prompt_with_responses(
    rng: &mut ChaCha8Rng,
    preset: Preset,
) -> (String, Vec<(String, Vec<f64>)>) {
    match preset {
        Preset::Tldr => {
            let post = text::tldr_post(rng);
            let mut levels: Vec<u8> = (0..SUMMARY_LEVELS).collect();
            levels.shuffle(rng);
            let responses = levels
                .into_iter()
                .map(|level| {
                    let summary = text::tldr_summary(rng, &post, level);
                    let chars = summary.chars().count() as f64;
                    (summary, vec![chars])
                })
                .collect();
            (post.text, responses)
        }
        _ => {
            let topic = words::TOPICS.choose(rng).unwrap_or(&words::TOPICS[0]);
            let prompt = text::advice_prompt(rng, topic);
            let responses = (0..preset.responses_per_prompt())
                .map(|_| {
                    let levels = AdviceLevels::random(rng);
                    let response = text::advice_response(rng, topic, levels);
                    (response, levels.as_array().map(f64::from).to_vec())
                })
                .collect();
            (prompt, responses)
        }
    }
}

/// Whether a pair belongs in the catalogue, and if so whether it is controversial
/// (`Some(true)`) or common (`Some(false)`), by the preset's filter.
fn classify(preset: Preset, a: &[f64], b: &[f64]) -> Option<bool> {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    match preset {
        // Both groups always disagree on summaries of clearly different lengths.
        Preset::Tldr => (d[0].abs() >= 10.0_f64.max(0.05 * a[0].min(b[0]))).then_some(true),
        Preset::Ufp2 => {
            let p = d[0] * d[1];
            (p != 0.0).then_some(p < 0.0)
        }
        Preset::Ufp4 => {
            if d.contains(&0.0) {
                return None;
            }
            let positive = d.iter().filter(|x| **x > 0.0).count();
            Some(positive != 0 && positive != d.len())
        }
        Preset::Personal => {
            let up = d.iter().any(|x| *x > 0.0);
            let down = d.iter().any(|x| *x < 0.0);
            (up || down).then_some(up && down)
        }
    }
}

fn assign_tastes(
    rng: &mut ChaCha8Rng,
    config: &SynthConfig,
) -> Result<Vec<(Taste, bool)>, SynthError> {
    let groups = config.preset.groups().len();
    let mut tastes = Vec::with_capacity(config.users + config.unseen_users);
    if groups == 0 {
        let gamma =
            Gamma::<f64>::new(0.1, 1.0).map_err(|e| config_error("dirichlet", e.to_string()))?;
        for i in 0..config.users + config.unseen_users {
            let mut w = [0.0; 4];
            for x in &mut w {
                *x = gamma.sample(rng).max(1e-12);
            }
            let sum: f64 = w.iter().sum();
            tastes.push((Taste::Weights(w.map(|x| x / sum)), i >= config.users));
        }
        return Ok(tastes);
    }
    let ratio = config
        .group_ratio
        .clone()
        .unwrap_or_else(|| vec![1.0; groups]);
    let total: f64 = ratio.iter().sum();
    let mut counts: Vec<usize> = ratio
        .iter()
        .map(|r| (r / total * config.users as f64).floor() as usize)
        .collect();
    let mut g = 0;
    while counts.iter().sum::<usize>() < config.users {
        counts[g % groups] += 1;
        g += 1;
    }
    let mut seen: Vec<usize> = counts
        .iter()
        .enumerate()
        .flat_map(|(g, &c)| std::iter::repeat_n(g, c))
        .collect();
    seen.shuffle(rng);
    tastes.extend(seen.into_iter().map(|g| (Taste::Group(g), false)));
    tastes.extend((0..config.unseen_users).map(|i| (Taste::Group(i % groups), true)));
    Ok(tastes)
}

/// The taste's utility of a response (higher is preferred).
fn utility(preset: Preset, taste: &Taste, attributes: &[f64]) -> f64 {
    match (preset, taste) {
        (Preset::Tldr, Taste::Group(0)) => -attributes[0],
        (Preset::Tldr, Taste::Group(_)) => attributes[0],
        (_, Taste::Group(g)) => attributes[*g],
        (_, Taste::Weights(w)) => w.iter().zip(attributes).map(|(w, x)| w * x).sum(),
    }
}

/// Whether the taste prefers `a` over `b`; `None` on a tie.
fn prefers(preset: Preset, taste: &Taste, nodes: &[Node], pair: Pair) -> Option<bool> {
    let d = utility(preset, taste, &nodes[pair.a].attributes)
        - utility(preset, taste, &nodes[pair.b].attributes);
    (d.abs() > 1e-9).then_some(d > 0.0)
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

fn group_sizes(preset: Preset, tastes: &[(Taste, bool)]) -> BTreeMap<String, usize> {
    let mut sizes = BTreeMap::new();
    for (taste, unseen) in tastes {
        if let (Taste::Group(g), false) = (taste, unseen) {
            *sizes.entry(preset.groups()[*g].to_string()).or_insert(0) += 1;
        }
    }
    sizes
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
