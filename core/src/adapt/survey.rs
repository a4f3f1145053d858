//! SuggestSurvey's engine: which catalogue pairs to ask a new user so that few answers
//! identify their preference (the limitation the paper states in its conclusion).
//!
//! A *committee* of seen users stands for the population. Each committee member m
//! predicts an answer to a candidate pair (a, b): a ≻ b iff s(m, a) > s(m, b) (eq. 4).
//! Asking a pair splits the committee in two; the user's answer tells which side they
//! resemble. Pairs are chosen greedily to maximise the entropy (in bits) of the
//! partition of the committee by their predicted answers — generalised binary search:
//! each answer should halve the plausible committee, and a pair that repeats an earlier
//! split adds nothing. With answers already given, members are weighted by
//! softmax(γ / κ) (eq. 11's alignment), so the next pairs split the users that still fit.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{
    Adapter, Answer,
    alignment::{alignment, answer_directions, dot, softmax_weights},
    answers::clean_answers,
};

/// Engine sizes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SurveyConfig {
    /// Seen users in the committee (a seeded uniform sample).
    pub committee: usize,
    /// Candidate pairs kept after ranking by how evenly they split the committee.
    pub pool: usize,
    /// κ of the members' weights given answers so far: softmax(γ / κ). Broader than
    /// eq. 11's 0.07, because here the weights are a belief over which users the new
    /// user resembles, not a choice of whom to average: too sharp a belief chases the
    /// noise in a few answers (docs/onboarding.md has the comparison).
    pub temperature: f32,
    pub seed: u64,
}

impl Default for SurveyConfig {
    fn default() -> Self {
        Self {
            committee: 512,
            pool: 2048,
            temperature: 1.0,
            seed: 0,
        }
    }
}

/// A suggested pair, as response rows.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SurveyPair {
    pub a: u32,
    pub b: u32,
    /// Bits of information about the user's place in the committee the answer is
    /// expected to give, in [0, 1].
    pub informativeness: f32,
}

/// The precomputed committee and candidate pool.
#[derive(Clone, Debug)]
pub struct SurveyEngine {
    committee: Vec<u32>,
    pairs: Vec<(u32, u32)>,
    /// `prefers_a[p * committee + m]`: member m predicts a ≻ b on pool pair p.
    prefers_a: Vec<bool>,
    temperature: f32,
}

impl SurveyEngine {
    /// The survey set as candidates: the distinct pairs (either order) that seen users
    /// annotated, keeping those whose two responses both have a positive edge, so that
    /// either answer reaches neighbours.
    pub fn candidate_pairs(adapter: &Adapter, annotated: &[(u32, u32)]) -> Vec<(u32, u32)> {
        let positive = &adapter.graph().positive.response_degree;
        let chosen_by_someone = |r: u32| positive.get(r as usize).is_some_and(|&d| d > 0.0);
        let mut pairs: Vec<(u32, u32)> = annotated
            .iter()
            .map(|&(a, b)| (a.min(b), a.max(b)))
            .filter(|&(a, b)| a != b && chosen_by_someone(a) && chosen_by_someone(b))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        pairs
    }

    /// Samples the committee and keeps the `pool` candidates that split it most evenly.
    pub fn build(adapter: &Adapter, candidates: &[(u32, u32)], config: &SurveyConfig) -> Self {
        let committee = sample(adapter.graph().users, config.committee, config.seed);
        let predict = |&(a, b): &(u32, u32), members: &[u32]| -> Vec<bool> {
            let direction: Vec<f32> = adapter
                .response_embedding(a)
                .iter()
                .zip(adapter.response_embedding(b))
                .map(|(x, y)| x - y)
                .collect();
            members
                .iter()
                .map(|&m| dot(adapter.user_embedding(m), &direction) > 0.0)
                .collect()
        };
        let mut ranked: Vec<(f32, usize)> = candidates
            .iter()
            .enumerate()
            .map(|(i, pair)| {
                let split = predict(pair, &committee);
                let share = split.iter().filter(|&&x| x).count() as f32 / split.len().max(1) as f32;
                (binary_entropy(share), i)
            })
            .collect();
        ranked.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        ranked.truncate(config.pool);
        let pairs: Vec<(u32, u32)> = ranked.iter().map(|&(_, i)| candidates[i]).collect();
        let prefers_a = pairs.iter().flat_map(|p| predict(p, &committee)).collect();
        Self {
            committee,
            pairs,
            prefers_a,
            temperature: config.temperature,
        }
    }

    /// Pairs in the pool.
    pub fn pool_size(&self) -> usize {
        self.pairs.len()
    }

    /// Up to `max_pairs` pairs to ask next, most informative first, none already
    /// answered or `declined` (shown but not answered: no preference, skipped), in
    /// either order. Ties break by `seed`.
    pub fn suggest(
        &self,
        adapter: &Adapter,
        answers_so_far: &[Answer],
        declined: &[(u32, u32)],
        max_pairs: usize,
        seed: u64,
    ) -> Vec<SurveyPair> {
        let members = self.committee.len();
        if members == 0 {
            return Vec::new();
        }
        let (answers, _) = clean_answers(answers_so_far, |r| adapter.in_graph(r));
        let weights = if answers.is_empty() {
            vec![1.0 / members as f32; members]
        } else {
            let directions = answer_directions(
                &adapter.responses,
                adapter.dim,
                answers.iter().map(|a| (a.chosen, a.rejected)),
            );
            let gammas: Vec<f32> = self
                .committee
                .iter()
                .map(|&m| alignment(adapter.user_embedding(m), &directions))
                .collect();
            softmax_weights(&gammas, self.temperature)
        };
        // Pairs already shown, in either order: one set, so the cost is O(pool + shown)
        // rather than O(pool × shown) (issue #15).
        let shown: std::collections::HashSet<(u32, u32)> = answers_so_far
            .iter()
            .map(|x| (x.chosen, x.rejected))
            .chain(declined.iter().copied())
            .map(|(a, b)| (a.min(b), a.max(b)))
            .collect();
        let asked = |&(a, b): &(u32, u32)| shown.contains(&(a.min(b), a.max(b)));
        let mut available: Vec<bool> = self.pairs.iter().map(|p| !asked(p)).collect();
        let mut cells = vec![0u32; members];
        let mut cell_count = 1usize;
        let mut chosen = Vec::new();
        let mut total = vec![0f32; members];
        let mut with_a = vec![0f32; members];
        for _ in 0..max_pairs {
            let mut best: Option<(f32, u64, usize)> = None;
            for (p, _) in available.iter().enumerate().filter(|(_, ok)| **ok) {
                total[..cell_count].fill(0.0);
                with_a[..cell_count].fill(0.0);
                let row = &self.prefers_a[p * members..(p + 1) * members];
                for ((&cell, &w), &a) in cells.iter().zip(&weights).zip(row) {
                    total[cell as usize] += w;
                    if a {
                        with_a[cell as usize] += w;
                    }
                }
                let gain: f32 = total[..cell_count]
                    .iter()
                    .zip(&with_a[..cell_count])
                    .filter(|(t, _)| **t > 0.0)
                    .map(|(t, a)| t * binary_entropy(a / t))
                    .sum();
                let tie = splitmix(seed ^ (p as u64).wrapping_mul(0x9e37_79b9));
                let better = match best {
                    None => true,
                    Some((g, t, _)) => gain > g + 1e-6 || ((gain - g).abs() <= 1e-6 && tie < t),
                };
                if better {
                    best = Some((gain, tie, p));
                }
            }
            let Some((gain, _, p)) = best else { break };
            available[p] = false;
            let (a, b) = self.pairs[p];
            chosen.push(SurveyPair {
                a,
                b,
                informativeness: gain.clamp(0.0, 1.0),
            });
            // Refine the partition by the new pair's predicted answers.
            let row = &self.prefers_a[p * members..(p + 1) * members];
            let mut renumber: HashMap<(u32, bool), u32> = HashMap::new();
            for (cell, &a) in cells.iter_mut().zip(row) {
                let next = renumber.len() as u32;
                *cell = *renumber.entry((*cell, a)).or_insert(next);
            }
            cell_count = renumber.len();
        }
        chosen
    }
}

/// H(p) in bits.
fn binary_entropy(p: f32) -> f32 {
    let h = |x: f32| if x > 0.0 { -x * x.log2() } else { 0.0 };
    h(p) + h(1.0 - p)
}

/// SplitMix64: a seeded, dependency-free hash for sampling and tie-breaking.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `k` distinct rows of `0..n` (all when k ≥ n), sorted, chosen by a seeded shuffle.
fn sample(n: usize, k: usize, seed: u64) -> Vec<u32> {
    let mut rows: Vec<u32> = (0..n as u32).collect();
    if k < n {
        // Partial Fisher–Yates.
        for i in 0..k {
            let j = i + (splitmix(seed.wrapping_add(i as u64)) % (n - i) as u64) as usize;
            rows.swap(i, j);
        }
        rows.truncate(k);
        rows.sort_unstable();
    }
    rows
}
