//! The three scoring RPCs mapped onto [`super::infer`]: `Score` and each `ScoreStream`
//! item through one path ([`score_one`]), `ScoreBatch` with one user lookup per distinct
//! user, the stream with a bounded number of items in flight and results in order.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::Instant,
};

use copl_proto::v1::{
    ItemError, ScoreBatchRequest, ScoreBatchResponse, ScoreItem, ScoreOutcome, ScoreRequest,
    ScoreResponse, ScoreStreamRequest, ScoreStreamResponse, score_outcome,
    score_stream_response::Outcome,
};
use futures_util::{StreamExt, stream::FuturesOrdered};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::{
    RewardApi, ScoreStream, Whom, condition,
    fields::{at_most, deadline, invalid, non_empty},
    infer::{Item, Rewarded, prepare, prepare_each, reward, since},
};
use crate::state::State;

/// Items of one stream in flight at once (beyond them the stream waits for results).
const STREAM_IN_FLIGHT: usize = 256;

impl RewardApi {
    pub(super) async fn score_impl(
        &self,
        request: Request<ScoreRequest>,
    ) -> Result<Response<ScoreResponse>, Status> {
        let arrived = Instant::now();
        let state = self.state()?;
        let deadline = deadline(&request);
        let r = request.into_inner();
        let item = ScoreItem {
            user_id: r.user_id,
            prompt: r.prompt,
            response: r.response,
        };
        let mut rewarded = score_one(
            &state,
            "",
            item,
            (r.truncate, r.unknown_user),
            deadline,
            arrived,
        )
        .await?;
        Ok(Response::new(ScoreResponse {
            result: rewarded.results.pop(),
            metadata: Some(rewarded.metadata),
        }))
    }

    pub(super) async fn score_batch_impl(
        &self,
        request: Request<ScoreBatchRequest>,
    ) -> Result<Response<ScoreBatchResponse>, Status> {
        let arrived = Instant::now();
        let state = self.state()?;
        let deadline = deadline(&request);
        let r = request.into_inner();
        let max = state.settings.limits.max_batch_items;
        if r.items.is_empty() {
            return Err(invalid("items", "empty"));
        }
        at_most(
            "items",
            r.items.len(),
            max,
            "items",
            format!("max_batch_items = {max}"),
        )?;
        // The call's own field: out of range, the call is refused (not each item).
        super::unknown_user_policy(r.unknown_user)?;
        let per_item = r.per_item_errors;
        let mut items = Vec::with_capacity(r.items.len());
        // Per item: Some(why) for an item refused before tokenising (per_item only).
        let mut refused: Vec<Option<Status>> = Vec::with_capacity(r.items.len());
        // One lookup per distinct user (with a shared store each is a Redis read).
        let mut found: HashMap<String, Whom> = HashMap::new();
        for (i, item) in r.items.into_iter().enumerate() {
            let checked = async {
                non_empty(&format!("items[{i}].prompt"), &item.prompt)?;
                non_empty(&format!("items[{i}].response"), &item.response)?;
                let whom = match found.get(&item.user_id) {
                    Some(w) => w.clone(),
                    None => {
                        let field = format!("items[{i}].user_id");
                        let w = condition(&state, &field, &item.user_id, r.unknown_user).await?;
                        found.insert(item.user_id.clone(), w.clone());
                        w
                    }
                };
                Ok::<_, Status>(Item {
                    prompt: item.prompt,
                    response: item.response,
                    condition: whom.condition,
                    user_unknown: whom.user_unknown,
                })
            }
            .await;
            match checked {
                Ok(item) => {
                    items.push(item);
                    refused.push(None);
                }
                Err(status) if per_item => refused.push(Some(status)),
                Err(status) => return Err(status),
            }
        }
        // Positions in the request of the items left (what `prepare`'s indices count).
        let left: Vec<usize> = (0..refused.len())
            .filter(|&i| refused[i].is_none())
            .collect();
        let field = |k: usize| format!("items[{}].response", left[k]);
        if !per_item {
            let prepared = prepare(&state, items, r.truncate, field).await?;
            let rewarded = reward(&state, prepared, deadline, arrived).await?;
            return Ok(Response::new(ScoreBatchResponse {
                results: rewarded.results,
                metadata: Some(rewarded.metadata),
                outcomes: Vec::new(),
            }));
        }
        let (prepared, too_long) = prepare_each(&state, items, r.truncate, field).await?;
        for (k, status) in too_long {
            refused[left[k]] = Some(status);
        }
        let (mut results, metadata) = if prepared.is_empty() {
            (Vec::new().into_iter(), None)
        } else {
            let rewarded = reward(&state, prepared, deadline, arrived).await?;
            (rewarded.results.into_iter(), Some(rewarded.metadata))
        };
        // The scored results fill the slots of the items not refused, in order.
        let outcomes = refused
            .into_iter()
            .map(|why| ScoreOutcome {
                outcome: match why {
                    Some(status) => Some(score_outcome::Outcome::Error(item_error(&status))),
                    None => results.next().map(score_outcome::Outcome::Result),
                },
            })
            .collect();
        Ok(Response::new(ScoreBatchResponse {
            results: Vec::new(),
            metadata: metadata.or_else(|| {
                Some(copl_proto::v1::Metadata {
                    total_time_ns: since(arrived),
                    ..Default::default()
                })
            }),
            outcomes,
        }))
    }

    pub(super) async fn score_stream_impl(
        &self,
        request: Request<Streaming<ScoreStreamRequest>>,
    ) -> Result<Response<ScoreStream>, Status> {
        self.state()?; // UNAVAILABLE while loading
        // Each item takes the state served when it arrives: a long stream moves to a
        // reloaded checkpoint, and does not keep the old one alive.
        let api = self.clone();
        let deadline = deadline(&request);
        let mut inbound = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_IN_FLIGHT);
        tokio::spawn(async move {
            let mut in_flight = FuturesOrdered::new();
            // Finished results waiting for room in the response channel. In-flight items
            // keep being polled while the client does not read, so each one finishes
            // and gives its queue room back: a client that stops reading but keeps its
            // connection holds at most STREAM_IN_FLIGHT results in memory and no queue
            // room (before, the items it had read held their room for as long as it
            // stalled: `copl_queue_depth` stayed above 0, and enough such clients would
            // have filled `max_queued_requests` for everyone).
            let mut ready: VecDeque<ScoreStreamResponse> = VecDeque::new();
            let mut open = true;
            while open || !in_flight.is_empty() || !ready.is_empty() {
                tokio::select! {
                    // The client went away: drop the in-flight items (their queued jobs
                    // are skipped before compute) and read no more.
                    () = tx.closed() => return,
                    // Results go out in the order items came in.
                    permit = tx.reserve(), if !ready.is_empty() => {
                        let Ok(permit) = permit else { return };
                        if let Some(out) = ready.pop_front() {
                            permit.send(Ok(out));
                        }
                    }
                    Some(out) = in_flight.next(), if !in_flight.is_empty() => ready.push_back(out),
                    next = inbound.next(), if open && in_flight.len() + ready.len() < STREAM_IN_FLIGHT => {
                        match next {
                            Some(Ok(item)) => {
                                // Never unset once served (checked above).
                                let Ok(state) = api.state() else { return };
                                in_flight.push_back(async move { stream_item(&state, item, deadline).await });
                            }
                            Some(Err(status)) => {
                                // The in-flight items go first (their room with them).
                                drop(std::mem::take(&mut in_flight));
                                let _ = tx.send(Err(status)).await;
                                return;
                            }
                            None => open = false,
                        }
                    }
                }
            }
        }.instrument(tracing::Span::current()));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// One item checked, tokenised and scored: the one path of `Score` and of each
/// `ScoreStream` item. `prefix` is how the request names the item's fields (`""` for
/// Score's `prompt`, `"item."` for a stream's `item.prompt`).
async fn score_one(
    state: &Arc<State>,
    prefix: &str,
    item: ScoreItem,
    (truncate, unknown_user): (bool, i32),
    deadline: Option<Instant>,
    arrived: Instant,
) -> Result<Rewarded, Status> {
    let response_field = format!("{prefix}response");
    non_empty(&format!("{prefix}prompt"), &item.prompt)?;
    non_empty(&response_field, &item.response)?;
    let whom = condition(
        state,
        &format!("{prefix}user_id"),
        &item.user_id,
        unknown_user,
    )
    .await?;
    let prepared = prepare(
        state,
        vec![Item {
            prompt: item.prompt,
            response: item.response,
            condition: whom.condition,
            user_unknown: whom.user_unknown,
        }],
        truncate,
        |_| response_field.clone(),
    )
    .await?;
    reward(state, prepared, deadline, arrived).await
}

/// One stream item: checked, tokenised, scored; a bad item is an error result only.
async fn stream_item(
    state: &Arc<State>,
    item: ScoreStreamRequest,
    deadline: Option<Instant>,
) -> ScoreStreamResponse {
    let arrived = Instant::now();
    let request_id = item.request_id;
    let outcome = match item.item {
        Some(i) => {
            let asked = (item.truncate, item.unknown_user);
            score_one(state, "item.", i, asked, deadline, arrived).await
        }
        None => Err(invalid("item", "missing")),
    };
    match outcome {
        Ok(mut rewarded) => ScoreStreamResponse {
            request_id,
            outcome: rewarded.results.pop().map(Outcome::Result),
            metadata: Some(rewarded.metadata),
        },
        Err(status) => ScoreStreamResponse {
            request_id,
            outcome: Some(Outcome::Error(item_error(&status))),
            metadata: None,
        },
    }
}

/// A refused item's status as its per-item error (a stream item, a per-item batch item).
fn item_error(status: &Status) -> ItemError {
    ItemError {
        code: status.code() as i32,
        message: status.message().to_string(),
    }
}
