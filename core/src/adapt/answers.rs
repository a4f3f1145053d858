//! A new user's survey answers, cleaned before adaptation: ids resolved to response
//! rows, duplicates merged, pairs answered both ways settled by majority.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::AdaptError;

/// One pairwise answer of the new user u*: `chosen ≻ rejected`, as response rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Answer {
    pub chosen: u32,
    pub rejected: u32,
}

/// What happened to the answers given (the wire's `AnswerSummary`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AnswerReport {
    /// Answers in the request.
    pub given: usize,
    /// Distinct answers that entered the alignment score γ.
    pub used: usize,
    /// Repeats of an answer already counted (same pair, same direction), merged.
    pub duplicates: usize,
    /// Pairs answered both ways. The majority direction is kept once; a tie drops the
    /// pair (the user has no net preference on it).
    pub contradictory: usize,
    /// Distinct kept answers naming a response no seen user annotated: its embedding
    /// was never trained, so the answer cannot inform γ and is not used.
    pub outside_graph: usize,
}

/// Resolves `(chosen id, rejected id)` answers to rows, refusing the first unknown id
/// or self-preference with the answer's index.
pub fn resolve_answers(
    response_rows: &HashMap<&str, u32>,
    answers: &[(&str, &str)],
) -> Result<Vec<Answer>, AdaptError> {
    answers
        .iter()
        .enumerate()
        .map(|(index, &(chosen, rejected))| {
            let row = |id: &str| {
                response_rows
                    .get(id)
                    .copied()
                    .ok_or_else(|| AdaptError::UnknownResponse {
                        index,
                        id: id.to_string(),
                    })
            };
            let answer = Answer {
                chosen: row(chosen)?,
                rejected: row(rejected)?,
            };
            if answer.chosen == answer.rejected {
                return Err(AdaptError::SelfPreference {
                    index,
                    id: chosen.to_string(),
                });
            }
            Ok(answer)
        })
        .collect()
}

/// Merges duplicates and settles contradictions (see [`AnswerReport`]); keeps only
/// answers whose two responses satisfy `in_graph`. The result is in first-seen order.
pub(crate) fn clean_answers(
    answers: &[Answer],
    in_graph: impl Fn(u32) -> bool,
) -> (Vec<Answer>, AnswerReport) {
    // Votes per unordered pair (low row, high row): (for low ≻ high, for high ≻ low).
    let mut votes: BTreeMap<(u32, u32), (usize, usize, usize)> = BTreeMap::new();
    for (order, a) in answers.iter().enumerate() {
        let key = (a.chosen.min(a.rejected), a.chosen.max(a.rejected));
        let entry = votes.entry(key).or_insert((0, 0, order));
        if a.chosen == key.0 {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }
    let mut report = AnswerReport {
        given: answers.len(),
        ..AnswerReport::default()
    };
    let mut kept = Vec::new();
    for (&(low, high), &(forward, backward, order)) in &votes {
        if forward > 0 && backward > 0 {
            report.contradictory += 1;
        }
        report.duplicates += forward.saturating_sub(1) + backward.saturating_sub(1);
        let answer = match forward.cmp(&backward) {
            std::cmp::Ordering::Greater => Answer {
                chosen: low,
                rejected: high,
            },
            std::cmp::Ordering::Less => Answer {
                chosen: high,
                rejected: low,
            },
            std::cmp::Ordering::Equal => continue,
        };
        if in_graph(answer.chosen) && in_graph(answer.rejected) {
            kept.push((order, answer));
        } else {
            report.outside_graph += 1;
        }
    }
    kept.sort_unstable();
    report.used = kept.len();
    (kept.into_iter().map(|(_, a)| a).collect(), report)
}
