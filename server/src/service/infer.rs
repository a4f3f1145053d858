//! What text-embeddings-inference calls `Infer`, between the proto mapping
//! ([`super`]) and the [`Scheduler`](crate::scheduler::Scheduler): checked items are
//! tokenised on the blocking pool once the queue has room for them, split into jobs that
//! each fit one model batch, admitted together or refused together, and their rewards
//! gathered with the work's metadata.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use copl_proto::v1::{Metadata, ScoreResult};
use tonic::Status;

use super::fields::{invalid, score_status};
use crate::{
    scheduler::{Reservation, Row},
    state::State,
    users::Condition,
};

/// One item to score, checked.
pub(super) struct Item {
    pub prompt: String,
    pub response: String,
    pub condition: Arc<Condition>,
    /// The user id was unknown: the population's condition stands in (`unknown_user`).
    pub user_unknown: bool,
}

/// Tokenised items.
pub(super) struct Prepared {
    /// The queue room taken before tokenising ([`Reservation`]).
    room: Reservation,
    rows: Vec<Row>,
    /// Per row: tokens before truncation.
    lengths: Vec<usize>,
    /// Per row: [`Item::user_unknown`].
    user_unknown: Vec<bool>,
    chars: u64,
    tokenization: Duration,
}

/// Rewards of prepared rows with the work's metadata.
pub(super) struct Rewarded {
    pub results: Vec<ScoreResult>,
    pub metadata: Metadata,
}

/// Nanoseconds since `t`.
pub(super) fn since(t: Instant) -> u64 {
    t.elapsed().as_nanos() as u64
}

/// Tokenises `items` on the blocking pool once the queue has room for them (a full
/// queue refuses them before any work); over-long input is refused naming
/// `field(index)` unless `truncate`. The first item refused fails them all.
pub(super) async fn prepare(
    state: &Arc<State>,
    items: Vec<Item>,
    truncate: bool,
    field: impl Fn(usize) -> String,
) -> Result<Prepared, Status> {
    let (prepared, refused) = tokenise(state, items, truncate, false, field).await?;
    match refused.into_iter().next() {
        Some((_, status)) => Err(status),
        None => Ok(prepared),
    }
}

/// As [`prepare`], each item on its own: the items the tokeniser refuses come back as
/// (index in `items`, why), the others are prepared in their order (ScoreBatch's
/// `per_item_errors`). The call itself still fails on a full queue.
pub(super) async fn prepare_each(
    state: &Arc<State>,
    items: Vec<Item>,
    truncate: bool,
    field: impl Fn(usize) -> String,
) -> Result<(Prepared, Vec<(usize, Status)>), Status> {
    tokenise(state, items, truncate, true, field).await
}

/// Both of the above: every item tokenised alone (the tokeniser's cost is per text
/// either way), stopping at the first refusal unless `each`.
async fn tokenise(
    state: &Arc<State>,
    items: Vec<Item>,
    truncate: bool,
    each: bool,
    field: impl Fn(usize) -> String,
) -> Result<(Prepared, Vec<(usize, Status)>), Status> {
    let room = state.scheduler.reserve().map_err(score_status)?;
    let started = Instant::now();
    let s = state.clone();
    let texts: Vec<(String, String)> = items
        .iter()
        .map(|i| (i.prompt.clone(), i.response.clone()))
        .collect();
    let limit = state.max_input_tokens;
    // The call's `tokenise` span, entered on the blocking thread that does the work.
    let span = tracing::info_span!("tokenise", items = texts.len());
    let tokenised = tokio::task::spawn_blocking(move || {
        let _in = span.enter();
        let mut out = Vec::with_capacity(texts.len());
        for (p, r) in &texts {
            let one = s.model.tokenize_limited(&[(p, r)], limit, truncate);
            let refused = one.is_err();
            out.push(one);
            if refused && !each {
                break;
            }
        }
        out
    })
    .await
    .map_err(|e| Status::internal(format!("tokeniser task: {e}")))?;
    let refusal = |index: usize, e: copl_core::model::reward::InputError| match e {
        copl_core::model::reward::InputError::TooLong {
            tokens,
            limit,
            at_least,
            ..
        } => invalid(
            field(index),
            format!(
                "{}{tokens} tokens after the template, more than max_input_tokens = {limit} \
                 (set truncate to drop the prompt's start, then the response's end, down to \
                 {limit})",
                if at_least { "at least " } else { "" }
            ),
        ),
        copl_core::model::reward::InputError::Tokenizer { message, .. } => {
            invalid(field(index), format!("tokenizer: {message}"))
        }
        other => Status::internal(other.to_string()),
    };
    let mut chars = 0;
    let mut rows = Vec::with_capacity(items.len());
    let mut lengths = Vec::with_capacity(items.len());
    let mut user_unknown = Vec::with_capacity(items.len());
    let mut refused = Vec::new();
    for (index, (item, one)) in items.into_iter().zip(tokenised).enumerate() {
        match one.map(|mut rows| rows.pop()) {
            Ok(Some((tokens, length))) => {
                chars += (item.prompt.chars().count() + item.response.chars().count()) as u64;
                rows.push(Row {
                    tokens,
                    condition: item.condition,
                });
                lengths.push(length);
                user_unknown.push(item.user_unknown);
            }
            Ok(None) => refused.push((index, Status::internal("the tokeniser returned no row"))),
            Err(e) => refused.push((index, refusal(index, e))),
        }
    }
    Ok((
        Prepared {
            room,
            rows,
            lengths,
            user_unknown,
            chars,
            tokenization: started.elapsed(),
        },
        refused,
    ))
}

impl Prepared {
    /// Rows left to score.
    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Scores prepared rows, split into jobs that each fit one model batch (charged as the
/// scheduler charges them: [`crate::scheduler::BatchLimits::cost`]), admitted together
/// or refused together, all waited on together (dropping the call drops the jobs).
pub(super) async fn reward(
    state: &State,
    prepared: Prepared,
    deadline: Option<Instant>,
    arrived: Instant,
) -> Result<Rewarded, Status> {
    let limits = state.scheduler.limits();
    let Prepared {
        mut room,
        rows,
        lengths,
        user_unknown,
        chars,
        tokenization,
    } = prepared;
    let results_meta: Vec<(bool, u32, bool, bool)> = rows
        .iter()
        .zip(&lengths)
        .zip(user_unknown)
        .map(|((r, &n), unknown)| {
            (
                r.condition.personalised,
                r.tokens.ids.len() as u32,
                n > r.tokens.ids.len(),
                unknown,
            )
        })
        .collect();
    let tokens: u64 = rows.iter().map(|r| r.tokens.ids.len() as u64).sum();
    let mut jobs: Vec<Vec<Row>> = Vec::new();
    let mut current: Vec<Row> = Vec::new();
    let (mut width, mut job_tokens) = (0, 0);
    for row in rows {
        let n = row.tokens.ids.len();
        if !current.is_empty() && !limits.fits(current.len() + 1, job_tokens + n, width.max(n)) {
            jobs.push(std::mem::take(&mut current));
            (width, job_tokens) = (0, 0);
        }
        width = width.max(n);
        job_tokens += n;
        current.push(row);
    }
    if !current.is_empty() {
        jobs.push(current);
    }
    // All of the request's jobs are admitted before the first is queued, or none is.
    room.grow(jobs.len()).map_err(score_status)?;
    let outcomes = futures_util::future::join_all(
        jobs.into_iter()
            .zip(room.into_jobs())
            .map(|(rows, room)| state.scheduler.score(room, rows, deadline)),
    )
    .await;
    let mut rewards = Vec::with_capacity(results_meta.len());
    let (mut queue, mut inference) = (Duration::ZERO, Duration::ZERO);
    for outcome in outcomes {
        let scored = outcome.map_err(score_status)?;
        queue = queue.max(scored.queue_time);
        inference += scored.inference_time;
        rewards.extend(scored.rewards);
    }
    let results = rewards
        .into_iter()
        .zip(results_meta)
        .map(
            |(reward, (personalised, input_tokens, truncated, user_unknown))| ScoreResult {
                reward,
                personalised,
                input_tokens,
                truncated,
                user_unknown,
            },
        )
        .collect();
    Ok(Rewarded {
        results,
        metadata: Metadata {
            compute_chars: chars,
            compute_tokens: tokens,
            total_time_ns: since(arrived),
            tokenization_time_ns: tokenization.as_nanos() as u64,
            queue_time_ns: queue.as_nanos() as u64,
            inference_time_ns: inference.as_nanos() as u64,
        },
    })
}
