//! The catalogue: prompts, their responses and the pairs users may be asked about, split
//! into the survey pool (training and validation annotations) and the test pool.

use rand::{seq::IndexedRandom, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::text::{self, AdviceLevels, SUMMARY_LEVELS};
use super::words;
use super::{Preset, SynthConfig};

/// How densely the catalogue compares its responses.
///
/// A test pair joins two responses that occur in survey pairs; what a graph model knows of
/// them is their other comparisons. Under `sparse` a response is in ≈ 1.13 survey pairs
/// (ufp4, 10 000 users), so a graph model's test accuracy stops at ≈ 72 % (the
/// level-posterior oracle of `scripts/data-oracles.py`, docs/gcf.md), below the
/// shared-preference bound + 10 points the paper's setting allows. `dense` keeps more of
/// each prompt's pairs, as UltraFeedback's several completions a prompt do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Catalogue {
    /// The generator until 2026-11-30 (the default of tldr, ufp2 and personal): the
    /// preset's responses a prompt (4 for ufp, 3 for personal, one a length level for
    /// tldr) and candidates over-generated 8 times the test pool, so the survey pool
    /// keeps about one in three of a prompt's pairs.
    #[default]
    Sparse,
    /// Twice the responses a prompt for ufp and personal, and candidates over-generated
    /// only twice the test pool (ufp4's default).
    Dense,
}

impl Catalogue {
    /// Candidate responses a prompt.
    pub fn responses_per_prompt(self, preset: Preset) -> usize {
        let sparse = match preset {
            Preset::Tldr => usize::from(SUMMARY_LEVELS),
            Preset::Ufp2 | Preset::Ufp4 => 4,
            Preset::Personal => 3,
        };
        match (self, preset) {
            (Catalogue::Sparse, _) | (Catalogue::Dense, Preset::Tldr) => sparse,
            (Catalogue::Dense, _) => 2 * sparse,
        }
    }

    /// Candidate pairs generated beyond the survey pool, in test pools: a test pair must
    /// join two responses of survey pairs, which only a share of the spare pairs do.
    pub fn over_generation(self) -> usize {
        match self {
            Catalogue::Sparse => 8,
            Catalogue::Dense => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Catalogue::Sparse => "sparse",
            Catalogue::Dense => "dense",
        }
    }
}

/// A catalogue response in the making.
pub(super) struct Node {
    pub prompt: usize,
    pub text: String,
    /// Attribute values: `[chars]` for tldr, the four levels otherwise.
    pub attributes: Vec<f64>,
}

#[derive(Clone, Copy)]
pub(super) struct Pair {
    pub a: usize,
    pub b: usize,
    pub controversial: bool,
}

/// Generates prompts and their responses until `target` catalogue pairs are kept.
pub(super) fn build_catalogue(
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
        let (prompt, local) = prompt_with_responses(rng, config.preset, config.catalogue);
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

/// The catalogue's pairs and responses as kept: `pairs` holds the survey pool (the
/// first `survey`), then the test pool on the survey pool's texts (`test`), then the
/// test pairs on held-out prompts' texts (the rest).
pub(super) struct Pools {
    pub pairs: Vec<Pair>,
    pub survey: usize,
    pub test: usize,
    pub nodes: Vec<Node>,
}

/// Takes the pairs of a share `config.heldout_prompts` of the `prompts` prompts out of
/// `candidates` (their order kept) and returns them; none (and no draw) at share 0.
pub(super) fn heldout_pairs(
    rng: &mut ChaCha8Rng,
    candidates: &mut Vec<Pair>,
    nodes: &[Node],
    prompts: usize,
    config: &SynthConfig,
) -> Vec<Pair> {
    let share = config.heldout_prompts;
    if share <= 0.0 || prompts == 0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..prompts).collect();
    order.shuffle(rng);
    let mut held = vec![false; prompts];
    let count = ((share * prompts as f64).round() as usize).clamp(1, prompts);
    for &p in &order[..count] {
        held[p] = true;
    }
    let (heldout, kept): (Vec<Pair>, Vec<Pair>) =
        candidates.drain(..).partition(|p| held[nodes[p.a].prompt]);
    *candidates = kept;
    heldout
}

/// Splits shuffled candidate pairs into a survey pool (the first `survey`) and a test
/// pool of up to `test` other pairs whose responses both occur in the survey pool, and
/// keeps up to `test` of the `heldout` pairs (responses no survey pair has) as test pairs
/// on new texts; drops the responses no pool uses, and renumbers the rest.
pub(super) fn split_pools(
    candidates: Vec<Pair>,
    heldout: Vec<Pair>,
    nodes: Vec<Node>,
    survey: usize,
    test: usize,
) -> Pools {
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
    let test_len = kept.len() - survey;
    kept.extend(heldout.into_iter().take(test));
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
    Pools {
        pairs: kept,
        survey,
        test: test_len,
        nodes: kept_nodes,
    }
}

/// One prompt and its candidate responses with their attributes.
fn prompt_with_responses(
    rng: &mut ChaCha8Rng,
    preset: Preset,
    catalogue: Catalogue,
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
            let responses = (0..catalogue.responses_per_prompt(preset))
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
pub(super) fn classify(preset: Preset, a: &[f64], b: &[f64]) -> Option<bool> {
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
