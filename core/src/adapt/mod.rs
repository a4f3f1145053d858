//! Optimisation-free adaptation of an unseen user u* (paper §4.3, eq. 11), and the
//! engine that chooses which pairs to ask (SuggestSurvey).
//!
//! From u*'s answers alone (nothing else of u* is read: no leakage of held-out pairs):
//! 1. The answers are cleaned ([`AnswerReport`]): duplicates merged, pairs answered both
//!    ways settled by majority (a tie drops the pair), answers on responses that no seen
//!    user annotated set aside (their embeddings were never trained).
//! 2. The k-hop neighbourhood N⁺(k) over **positive edges only**: seen users who chose a
//!    response u* chose (2 hops), then users who chose a response those users chose
//!    (4 hops), and so on.
//! 3. γ(v, u*) = mean over u*'s answers a ≻ b of log σ(s(v, a) − s(v, b)) with
//!    s(v, r) = ⟨ê_v, e_r⟩, and w = softmax(γ / κ) over N⁺(k) (κ = 0.07).
//! 4. e_{u*} = Σ_v w_v ê_v (eq. 11), then scaled to unit length.
//!
//! **Which embeddings.** ê_v is the L2-normalised final GCF user embedding, the same
//! vector the reward model's gates read (docs/authors-implementation.md): γ then measures how well
//! v's *direction* of preference fits u*'s answers, not how confident v's scores are,
//! and no high-norm user dominates the sum. Responses e_r are the unnormalised final
//! embeddings the GCF scores were trained with (eq. 4). The sum is renormalised, unlike
//! the authors' code, because the gates were trained on unit vectors only: a sum of
//! disagreeing neighbours is shorter, and its length is reported as `coherence` instead
//! of being passed to the gates. GCF scores and their ordering are unchanged by it.
//!
//! **At the edges** (each tested in `core/tests/adapt.rs`): when N⁺(k) has fewer than
//! `min_neighbours` users, the walk widens two hops at a time up to `max_hops`
//! ([`Fallback::WidenedHops`]); if that is still short, users who also *rejected* u*'s
//! rejected responses join ([`Fallback::SignedNeighbours`]); with nobody at all, or no
//! usable answer, u* gets the population embedding, the normalised mean of all ê_v
//! ([`Fallback::Population`], confidence 0).

mod alignment;
mod answers;
mod neighbourhood;
pub mod stored;
mod survey;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use answers::{Answer, AnswerReport, resolve_answers};
pub use survey::{SurveyConfig, SurveyEngine, SurveyPair};

use crate::{
    checkpoint::{self, CheckpointError, Manifest},
    graph::{GraphIds, PreferenceGraph},
};
pub use alignment::dot;
use alignment::{alignment, answer_directions, better_than_chance, softmax_weights};
use neighbourhood::{PositiveWalk, users_of};

/// Input the adaptation refuses.
#[derive(Debug, thiserror::Error)]
pub enum AdaptError {
    #[error("answer {index}: unknown response id {id:?}")]
    UnknownResponse { index: usize, id: String },
    #[error("answer {index}: response {id:?} is both chosen and rejected")]
    SelfPreference { index: usize, id: String },
    #[error("answer {index}: response row {row} is out of range ({responses} responses)")]
    ResponseRow {
        index: usize,
        row: u32,
        responses: usize,
    },
    #[error("no answers: onboarding needs at least one pairwise answer")]
    NoAnswers,
    #[error("{field}: {message}")]
    BadOption {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Embeddings(String),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// How the neighbours' embeddings are weighted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weighting {
    /// softmax(γ / κ), eq. 11 (CoPL).
    #[default]
    Alignment,
    /// Every neighbour alike: the paper's "Naive Avg." baseline (Table 5).
    Uniform,
}

/// Adaptation options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdaptConfig {
    /// k of N⁺(k): even, ≥ 2. The paper uses 2.
    pub hops: usize,
    /// κ of eq. 11, > 0. The paper uses 0.07.
    pub temperature: f32,
    /// Fewer neighbours than this widen the search (see the module doc).
    pub min_neighbours: usize,
    /// The widest search, even, ≥ `hops`.
    pub max_hops: usize,
    pub weighting: Weighting,
}

impl Default for AdaptConfig {
    fn default() -> Self {
        Self {
            hops: 2,
            temperature: 0.07,
            min_neighbours: 5,
            max_hops: 6,
            weighting: Weighting::Alignment,
        }
    }
}

impl AdaptConfig {
    /// Checks the options, naming the first bad field.
    pub fn validate(&self) -> Result<(), AdaptError> {
        let bad = |field, message: String| Err(AdaptError::BadOption { field, message });
        if self.hops < 2 || self.hops % 2 == 1 {
            return bad(
                "hops",
                format!(
                    "must be even and at least 2 (only even hops end on users), got {}",
                    self.hops
                ),
            );
        }
        if self.max_hops < self.hops || self.max_hops % 2 == 1 {
            return bad(
                "max_hops",
                format!(
                    "must be even and at least hops = {}, got {}",
                    self.hops, self.max_hops
                ),
            );
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return bad(
                "temperature",
                format!("must be a positive number, got {}", self.temperature),
            );
        }
        Ok(())
    }
}

/// What adaptation did when N⁺(k) was too small (the wire's `AdaptationFallback`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// N⁺(k) as eq. 11 says.
    None,
    /// The walk went past k hops.
    WidenedHops,
    /// Users who rejected what u* rejected joined.
    SignedNeighbours,
    /// Nobody to average: the population embedding.
    Population,
}

/// The result of one adaptation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Adaptation {
    /// e_{u*}, unit length (the population embedding under [`Fallback::Population`]).
    pub embedding: Vec<f32>,
    pub fallback: Fallback,
    /// Seen users averaged (|N|, before weighting).
    pub neighbourhood_size: usize,
    /// 1 / Σ w²: how many neighbours effectively carry the embedding.
    pub effective_neighbours: f32,
    /// Hops of the neighbourhood used (> `hops` when widened; 0 under population).
    pub hops_used: usize,
    /// Share of the used answers that `embedding` orders as u* did (GCF score, eq. 4).
    pub answer_agreement: f32,
    /// In [0, 1]: P(the embedding beats chance on u*'s preferences | the answers
    /// reproduced), a Beta posterior, times min(1, effective neighbours / 2); 0 under
    /// population. See docs/onboarding.md.
    pub confidence: f32,
    /// ‖Σ w ê‖ before renormalising, in [0, 1]: 1 when the neighbours agree.
    pub coherence: f32,
    pub answers: AnswerReport,
}

/// What adaptation reads: the seen users' graph and final GCF embeddings.
#[derive(Clone, Debug)]
pub struct Adapter {
    graph: PreferenceGraph,
    dim: usize,
    /// ê_v, L2-normalised, row-major `users × dim`.
    users: Vec<f32>,
    /// e_r, as trained, row-major `responses × dim`.
    responses: Vec<f32>,
    /// Normalised mean of ê_v.
    population: Vec<f32>,
}

impl Adapter {
    /// From the graph and the final (unnormalised) embeddings, row-major.
    pub fn new(
        graph: PreferenceGraph,
        user_embeddings: Vec<f32>,
        response_embeddings: Vec<f32>,
        dim: usize,
    ) -> Result<Self, AdaptError> {
        if dim == 0
            || user_embeddings.len() != graph.users * dim
            || response_embeddings.len() != graph.responses * dim
        {
            return Err(AdaptError::Embeddings(format!(
                "embeddings of {} and {} values do not fit {} users and {} responses of dimension {dim}",
                user_embeddings.len(),
                response_embeddings.len(),
                graph.users,
                graph.responses
            )));
        }
        let mut users = user_embeddings;
        for row in users.chunks_exact_mut(dim) {
            normalise(row);
        }
        let mut population = vec![0f32; dim];
        for row in users.chunks_exact(dim) {
            for (p, x) in population.iter_mut().zip(row) {
                *p += x;
            }
        }
        normalise(&mut population);
        Ok(Self {
            graph,
            dim,
            users,
            responses: response_embeddings,
            population,
        })
    }

    /// Reads the graph, ids and final embeddings of a checkpoint with a GCF section.
    pub fn from_checkpoint(dir: &Path) -> Result<(Self, GraphIds), AdaptError> {
        let manifest = Manifest::load(dir)?;
        let gcf = manifest.gcf.ok_or_else(|| {
            AdaptError::Embeddings(format!(
                "{}: the manifest has no gcf section",
                dir.display()
            ))
        })?;
        let ids = checkpoint::load_ids(dir)?;
        let graph = checkpoint::load_graph(dir)?;
        if graph.users != ids.users.len() || graph.responses != ids.responses.len() {
            return Err(AdaptError::Embeddings(format!(
                "{}: graph.safetensors ({} users, {} responses) and ids.json ({}, {}) differ",
                dir.display(),
                graph.users,
                graph.responses,
                ids.users.len(),
                ids.responses.len()
            )));
        }
        let (users, responses) = checkpoint::load_embeddings(dir, &ids, gcf.dim)?;
        let flat = |t: candle_core::Tensor| -> Result<Vec<f32>, AdaptError> {
            t.flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| AdaptError::Embeddings(format!("{}: {e}", dir.display())))
        };
        let adapter = Self::new(graph, flat(users)?, flat(responses)?, gcf.dim)?;
        Ok((adapter, ids))
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn graph(&self) -> &PreferenceGraph {
        &self.graph
    }

    /// ê_v of seen user row `v`.
    pub fn user_embedding(&self, v: u32) -> &[f32] {
        &self.users[v as usize * self.dim..(v as usize + 1) * self.dim]
    }

    /// e_r of response row `r`.
    pub fn response_embedding(&self, r: u32) -> &[f32] {
        &self.responses[r as usize * self.dim..(r as usize + 1) * self.dim]
    }

    /// The normalised mean of all ê_v (what a user without neighbours gets).
    pub fn population_embedding(&self) -> &[f32] {
        &self.population
    }

    /// s(u, r) = ⟨e_u, e_r⟩ (eq. 4).
    pub fn score(&self, user: &[f32], r: u32) -> f32 {
        dot(user, self.response_embedding(r))
    }

    /// Whether some seen user annotated response `r` (so its embedding was trained).
    pub fn in_graph(&self, r: u32) -> bool {
        let r = r as usize;
        self.graph
            .positive
            .response_degree
            .get(r)
            .is_some_and(|&d| d > 0.0)
            || self
                .graph
                .negative
                .response_degree
                .get(r)
                .is_some_and(|&d| d > 0.0)
    }

    /// Adapts an unseen user from `answers` (eq. 11 with the fallbacks of the module doc).
    pub fn adapt(
        &self,
        answers: &[Answer],
        config: &AdaptConfig,
    ) -> Result<Adaptation, AdaptError> {
        config.validate()?;
        self.check_rows(answers)?;
        let (answers, report) = answers::clean_answers(answers, |r| self.in_graph(r));
        if answers.is_empty() {
            return Ok(self.population_adaptation(&answers, report));
        }
        let directions = answer_directions(
            &self.responses,
            self.dim,
            answers.iter().map(|a| (a.chosen, a.rejected)),
        );

        let chosen: Vec<u32> = answers.iter().map(|a| a.chosen).collect();
        let mut walk = PositiveWalk::new(&self.graph.positive, &chosen);
        let mut neighbours: Vec<u32> = Vec::new();
        let mut hops_used = config.hops;
        loop {
            let (hops, users) = walk.step();
            if users.len() > neighbours.len() {
                neighbours = users.to_vec();
                hops_used = hops.max(config.hops);
            }
            if hops >= config.hops
                && (neighbours.len() >= config.min_neighbours
                    || hops >= config.max_hops
                    || walk.exhausted())
            {
                break;
            }
        }
        let mut fallback = if hops_used > config.hops {
            Fallback::WidenedHops
        } else {
            Fallback::None
        };
        if neighbours.len() < config.min_neighbours {
            let rejected: Vec<u32> = answers.iter().map(|a| a.rejected).collect();
            let before = neighbours.len();
            neighbours.extend(users_of(&self.graph.negative, &rejected));
            neighbours.sort_unstable();
            neighbours.dedup();
            if neighbours.len() > before {
                fallback = Fallback::SignedNeighbours;
            }
        }
        if neighbours.is_empty() {
            return Ok(self.population_adaptation(&answers, report));
        }

        let weights = match config.weighting {
            Weighting::Alignment => {
                let gammas: Vec<f32> = neighbours
                    .iter()
                    .map(|&v| alignment(self.user_embedding(v), &directions))
                    .collect();
                softmax_weights(&gammas, config.temperature)
            }
            Weighting::Uniform => vec![1.0 / neighbours.len() as f32; neighbours.len()],
        };
        let mut embedding = vec![0f32; self.dim];
        for (&v, &w) in neighbours.iter().zip(&weights) {
            for (e, x) in embedding.iter_mut().zip(self.user_embedding(v)) {
                *e += w * x;
            }
        }
        let coherence = normalise(&mut embedding);
        if coherence < 1e-6 {
            return Ok(self.population_adaptation(&answers, report));
        }
        let effective_neighbours = 1.0 / weights.iter().map(|w| w * w).sum::<f32>();
        let agree = agreeing(&embedding, &directions);
        let used = answers.len();
        let support = (effective_neighbours / 2.0).min(1.0);
        Ok(Adaptation {
            embedding,
            fallback,
            neighbourhood_size: neighbours.len(),
            effective_neighbours,
            hops_used,
            answer_agreement: agree as f32 / used as f32,
            confidence: better_than_chance(agree, used) as f32 * support,
            coherence,
            answers: report,
        })
    }

    fn check_rows(&self, answers: &[Answer]) -> Result<(), AdaptError> {
        if answers.is_empty() {
            return Err(AdaptError::NoAnswers);
        }
        for (index, a) in answers.iter().enumerate() {
            for row in [a.chosen, a.rejected] {
                if row as usize >= self.graph.responses {
                    return Err(AdaptError::ResponseRow {
                        index,
                        row,
                        responses: self.graph.responses,
                    });
                }
            }
            if a.chosen == a.rejected {
                return Err(AdaptError::SelfPreference {
                    index,
                    id: format!("row {}", a.chosen),
                });
            }
        }
        Ok(())
    }

    fn population_adaptation(&self, answers: &[Answer], report: AnswerReport) -> Adaptation {
        let directions = answer_directions(
            &self.responses,
            self.dim,
            answers.iter().map(|a| (a.chosen, a.rejected)),
        );
        let agree = agreeing(&self.population, &directions);
        Adaptation {
            embedding: self.population.clone(),
            fallback: Fallback::Population,
            neighbourhood_size: 0,
            effective_neighbours: 0.0,
            hops_used: 0,
            answer_agreement: if answers.is_empty() {
                0.0
            } else {
                agree as f32 / answers.len() as f32
            },
            confidence: 0.0,
            coherence: 0.0,
            answers: report,
        }
    }
}

/// Answers whose direction `embedding` scores positive.
fn agreeing(embedding: &[f32], directions: &[f32]) -> usize {
    directions
        .chunks_exact(embedding.len())
        .filter(|d| dot(embedding, d) > 0.0)
        .count()
}

/// Scales `row` to unit length in place (a zero row stays zero); returns the old norm.
fn normalise(row: &mut [f32]) -> f32 {
    let norm = dot(row, row).sqrt();
    if norm > 0.0 {
        for x in row.iter_mut() {
            *x /= norm;
        }
    }
    norm
}
