//! A stored user adapted (again) by eq. 11 on this graph from the answers their record
//! keeps, with the options they were first adapted with (issue #18): what a server on a
//! new checkpoint serves them with, and what `copl-train refresh` starts their GCF rows
//! from. The record itself is left as it is.

use std::collections::HashMap;

use super::{AdaptConfig, AdaptError, Adaptation, Adapter, Answer, AnswerReport, Fallback};
use crate::stored_user::{KeptOptions, StoredUser};

/// The configuration eq. 11 runs with for `options`: OnboardUser's and re-adaptation's
/// one rule (`base` carries the server's neighbourhood settings).
pub fn adapt_config(base: &AdaptConfig, options: KeptOptions) -> AdaptConfig {
    let hops = options.hops as usize;
    AdaptConfig {
        hops,
        temperature: options.temperature,
        max_hops: base.max_hops.max(hops),
        ..base.clone()
    }
}

/// A user adapted again on this graph.
#[derive(Debug)]
pub struct Readaptation {
    pub adaptation: Adaptation,
    /// Answers naming a response this checkpoint's catalogue lacks: left out (the
    /// adaptation falls back to the population when no answer is left).
    pub answers_missing: u32,
}

/// Why a stored user cannot be re-adapted.
#[derive(Debug, thiserror::Error)]
pub enum ReadaptError {
    /// A record from before answers were kept.
    #[error("the record keeps no answers to re-adapt from")]
    AnswersUnknown,
    #[error(transparent)]
    Adapt(#[from] AdaptError),
}

/// Re-adapts `record` on `adapter`'s graph; `rows` maps catalogue ids to response rows.
pub fn readapt(
    adapter: &Adapter,
    rows: &HashMap<String, u32>,
    base: &AdaptConfig,
    record: &StoredUser,
) -> Result<Readaptation, ReadaptError> {
    let log = record
        .answer_log
        .as_ref()
        .ok_or(ReadaptError::AnswersUnknown)?;
    let mut answers_missing = 0;
    let answers: Vec<Answer> = log
        .iter()
        .filter_map(|a| match (rows.get(&a.chosen), rows.get(&a.rejected)) {
            (Some(&chosen), Some(&rejected)) if chosen != rejected => {
                Some(Answer { chosen, rejected })
            }
            _ => {
                answers_missing += 1;
                None
            }
        })
        .collect();
    let adaptation = if answers.is_empty() {
        // Nothing left to average from: the population, as eq. 11 falls back to when
        // no answer reaches the graph.
        Adaptation {
            embedding: adapter.population_embedding().to_vec(),
            fallback: Fallback::Population,
            neighbourhood_size: 0,
            effective_neighbours: 0.0,
            hops_used: 0,
            answer_agreement: 0.0,
            confidence: 0.0,
            coherence: 0.0,
            answers: AnswerReport {
                given: log.len(),
                ..AnswerReport::default()
            },
        }
    } else {
        let config = adapt_config(base, record.options.unwrap_or_default());
        adapter.adapt(&answers, &config)?
    };
    Ok(Readaptation {
        adaptation,
        answers_missing,
    })
}
