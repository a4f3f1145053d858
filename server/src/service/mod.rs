//! `copl.v1.RewardService`, the proto mapping: checks each request ([`fields`]:
//! INVALID_ARGUMENT names the field and the value), resolves users (NOT_FOUND), and hands
//! the checked items to [`infer`] (tokenising, jobs, admission, the
//! [`Scheduler`](crate::scheduler::Scheduler)); onboarding and surveys run the
//! optimisation-free adaptation (eq. 11) on plain rows. Until the model is loaded and
//! warmed every call is UNAVAILABLE.

pub mod fields;
mod infer;

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{Arc, OnceLock},
    time::Instant,
};

use copl_core::adapt::{AdaptConfig, Fallback};
use copl_proto::v1::{
    AdaptationFallback, AnswerSummary, CatalogueResponse, CompareRequest, CompareResponse,
    DeleteUserRequest, DeleteUserResponse, ExpertRouting, GetUserRequest, GetUserResponse,
    InfoRequest, InfoResponse, ItemError, Limits, Metadata, OnboardUserRequest,
    OnboardUserResponse, ScoreBatchRequest, ScoreBatchResponse, ScoreRequest, ScoreResponse,
    ScoreStreamRequest, ScoreStreamResponse, SuggestSurveyRequest, SuggestSurveyResponse,
    SurveyPair, UserInfo, UserOrigin, reward_service_server::RewardService,
    score_stream_response::Outcome,
};
use futures_util::{StreamExt, stream::FuturesOrdered};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    state::State,
    users::{Condition, Found},
};
use fields::{answers, at_most, deadline, invalid, non_empty, response_row, user_id, user_status};
use infer::{Item, prepare, reward, since};

/// Items of one stream in flight at once (beyond them the stream waits for results).
const STREAM_IN_FLIGHT: usize = 256;

/// The service; answers UNAVAILABLE until [`Self::ready`] is set. It is served behind
/// [`crate::auth::Guarded`], which admits each call by its key before the body is read.
#[derive(Clone, Debug, Default)]
pub struct RewardApi {
    state: Arc<OnceLock<Arc<State>>>,
}

impl RewardApi {
    /// Runs one RPC, counted and timed under `rpc`. (Its key was checked before the body
    /// was read: [`crate::auth::Guarded`], which counts its refusals itself.)
    async fn admitted<T, R, F>(
        &self,
        rpc: &'static str,
        request: Request<T>,
        call: impl FnOnce(Request<T>) -> F,
    ) -> Result<R, Status>
    where
        F: std::future::Future<Output = Result<R, Status>>,
    {
        let started = Instant::now();
        let result = call(request).await;
        crate::telemetry::observe(rpc, started, &result);
        result
    }

    /// The state, once loaded.
    pub fn ready(&self, state: Arc<State>) {
        let _ = self.state.set(state);
    }

    fn state(&self) -> Result<Arc<State>, Status> {
        self.state
            .get()
            .cloned()
            .ok_or_else(|| Status::unavailable("the model is still loading; retry shortly"))
    }
}

/// Finds the user of `field`.
async fn condition(state: &State, field: &str, id: &str) -> Result<Arc<Condition>, Status> {
    user_id(field, id)?;
    state
        .users
        .find(id)
        .await
        .map(|f| f.condition().clone())
        .map_err(|e| user_status(field, e))
}

fn user_info(state: &State, id: &str, found: &Found, include_embedding: bool) -> UserInfo {
    let condition = found.condition();
    let names = &state.model.backbone.adapters().names;
    let (origin, created_unix_ms, answers) = match found {
        Found::Population(_) => (UserOrigin::Unspecified, 0, 0),
        Found::Seen { answers, .. } => (UserOrigin::Seen, 0, *answers),
        Found::Onboarded(o) => (UserOrigin::Onboarded, o.created_unix_ms, o.answers),
    };
    UserInfo {
        user_id: id.to_string(),
        origin: origin as i32,
        created_unix_ms,
        answers,
        personalised: condition.personalised,
        routing: names
            .iter()
            .zip(
                condition
                    .routing
                    .experts
                    .iter()
                    .zip(&condition.routing.weights),
            )
            .map(|(projection, (&expert, &weight))| ExpertRouting {
                projection: projection.clone(),
                expert,
                weight,
            })
            .collect(),
        embedding: if include_embedding {
            condition.embedding.clone()
        } else {
            Vec::new()
        },
    }
}

impl RewardApi {
    async fn score_impl(
        &self,
        request: Request<ScoreRequest>,
    ) -> Result<Response<ScoreResponse>, Status> {
        let arrived = Instant::now();
        let state = self.state()?;
        let deadline = deadline(&request);
        let r = request.into_inner();
        non_empty("prompt", &r.prompt)?;
        non_empty("response", &r.response)?;
        let condition = condition(&state, "user_id", &r.user_id).await?;
        let prepared = prepare(
            &state,
            vec![Item {
                prompt: r.prompt,
                response: r.response,
                condition,
            }],
            r.truncate,
            |_| "response".to_string(),
        )
        .await?;
        let mut rewarded = reward(&state, prepared, deadline, arrived).await?;
        Ok(Response::new(ScoreResponse {
            result: rewarded.results.pop(),
            metadata: Some(rewarded.metadata),
        }))
    }

    async fn score_batch_impl(
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
        let mut items = Vec::with_capacity(r.items.len());
        // One lookup per distinct user (with a shared store each is a Redis read).
        let mut found: HashMap<String, Arc<Condition>> = HashMap::new();
        for (i, item) in r.items.into_iter().enumerate() {
            non_empty(&format!("items[{i}].prompt"), &item.prompt)?;
            non_empty(&format!("items[{i}].response"), &item.response)?;
            let condition = match found.get(&item.user_id) {
                Some(c) => c.clone(),
                None => {
                    let c =
                        condition(&state, &format!("items[{i}].user_id"), &item.user_id).await?;
                    found.insert(item.user_id.clone(), c.clone());
                    c
                }
            };
            items.push(Item {
                prompt: item.prompt,
                response: item.response,
                condition,
            });
        }
        let prepared = prepare(&state, items, r.truncate, |i| {
            format!("items[{i}].response")
        })
        .await?;
        let rewarded = reward(&state, prepared, deadline, arrived).await?;
        Ok(Response::new(ScoreBatchResponse {
            results: rewarded.results,
            metadata: Some(rewarded.metadata),
        }))
    }

    async fn score_stream_impl(
        &self,
        request: Request<Streaming<ScoreStreamRequest>>,
    ) -> Result<Response<ScoreStream>, Status> {
        let state = self.state()?;
        let deadline = deadline(&request);
        let mut inbound = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_IN_FLIGHT);
        tokio::spawn(async move {
            let mut in_flight = FuturesOrdered::new();
            let mut open = true;
            while open || !in_flight.is_empty() {
                tokio::select! {
                    // The client went away: drop the in-flight items (their queued jobs
                    // are skipped before compute) and read no more.
                    () = tx.closed() => return,
                    // Results go out in the order items came in.
                    Some(out) = in_flight.next(), if !in_flight.is_empty() => {
                        if tx.send(Ok(out)).await.is_err() {
                            return; // the client went away: drop outstanding work
                        }
                    }
                    next = inbound.next(), if open && in_flight.len() < STREAM_IN_FLIGHT => {
                        match next {
                            Some(Ok(item)) => {
                                let state = state.clone();
                                in_flight.push_back(async move { stream_item(&state, item, deadline).await });
                            }
                            Some(Err(status)) => {
                                let _ = tx.send(Err(status)).await;
                                return;
                            }
                            None => open = false,
                        }
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn compare_responses_impl(
        &self,
        request: Request<CompareRequest>,
    ) -> Result<Response<CompareResponse>, Status> {
        let arrived = Instant::now();
        let state = self.state()?;
        let deadline = deadline(&request);
        let r = request.into_inner();
        non_empty("prompt", &r.prompt)?;
        non_empty("response_a", &r.response_a)?;
        non_empty("response_b", &r.response_b)?;
        let condition = condition(&state, "user_id", &r.user_id).await?;
        let items = vec![
            Item {
                prompt: r.prompt.clone(),
                response: r.response_a,
                condition: condition.clone(),
            },
            Item {
                prompt: r.prompt,
                response: r.response_b,
                condition,
            },
        ];
        let prepared = prepare(&state, items, r.truncate, |i| {
            if i == 0 { "response_a" } else { "response_b" }.to_string()
        })
        .await?;
        // Two rows: one job, so both responses share a model batch.
        let rewarded = reward(&state, prepared, deadline, arrived).await?;
        let mut results = rewarded.results.into_iter();
        let (a, b) = (results.next(), results.next());
        let margin = match (&a, &b) {
            (Some(a), Some(b)) => a.reward - b.reward,
            _ => {
                return Err(Status::internal(
                    "compare: the model returned too few rewards",
                ));
            }
        };
        Ok(Response::new(CompareResponse {
            probability_a_preferred: 1.0 / (1.0 + (-margin).exp()),
            a,
            b,
            metadata: Some(rewarded.metadata),
        }))
    }

    async fn onboard_user_impl(
        &self,
        request: Request<OnboardUserRequest>,
    ) -> Result<Response<OnboardUserResponse>, Status> {
        let arrived = Instant::now();
        let state = self.state()?;
        let r = request.into_inner();
        non_empty("user_id", &r.user_id)?;
        user_id("user_id", &r.user_id)?;
        let max = state.settings.limits.max_survey_answers;
        if r.answers.is_empty() {
            return Err(invalid(
                "answers",
                "empty: onboarding needs at least one answer",
            ));
        }
        let limit = format!("max_survey_answers = {max}");
        at_most("answers", r.answers.len(), max, "answers", &limit)?;
        let given = answers(&state, "answers", &r.answers)?;
        let options = r.options.unwrap_or_default();
        let max_hops = state.settings.limits.max_hops;
        let hops = options.hops.unwrap_or(2) as usize;
        if hops < 2 || !hops.is_multiple_of(2) || hops > max_hops {
            return Err(invalid(
                "options.hops",
                format!("{hops}: must be even and in 2..={max_hops}"),
            ));
        }
        let temperature = options.temperature.unwrap_or(0.07);
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(invalid(
                "options.temperature",
                format!("{temperature}: must be > 0"),
            ));
        }
        let config = AdaptConfig {
            hops,
            temperature,
            min_neighbours: state.settings.onboarding.min_neighbours,
            max_hops: max_hops.max(hops),
            ..AdaptConfig::default()
        };
        let started = Instant::now();
        let adaptation = state
            .adapter
            .adapt(&given, &config)
            .map_err(|e| invalid("answers", e))?;
        let adapt_time = started.elapsed();
        let answers_given = r.answers.len() as u32;
        let onboarded = state
            .users
            .onboard(&r.user_id, &adaptation, answers_given, r.replace)
            .await
            .map_err(|e| user_status("user_id", e))?;
        let found = Found::Onboarded(onboarded);
        let report = &adaptation.answers;
        Ok(Response::new(OnboardUserResponse {
            user: Some(user_info(&state, &r.user_id, &found, false)),
            neighbourhood_size: adaptation.neighbourhood_size as u32,
            neighbours_used: adaptation.effective_neighbours.round() as u32,
            hops_used: adaptation.hops_used as u32,
            fallback: match adaptation.fallback {
                Fallback::None => AdaptationFallback::None,
                Fallback::WidenedHops => AdaptationFallback::WidenedHops,
                Fallback::SignedNeighbours => AdaptationFallback::SignedNeighbours,
                Fallback::Population => AdaptationFallback::Population,
            } as i32,
            confidence: adaptation.confidence,
            answer_agreement: adaptation.answer_agreement,
            answers: Some(AnswerSummary {
                given: report.given as u32,
                used: report.used as u32,
                duplicates: report.duplicates as u32,
                contradictory: report.contradictory as u32,
                outside_graph: report.outside_graph as u32,
            }),
            metadata: Some(Metadata {
                total_time_ns: since(arrived),
                inference_time_ns: adapt_time.as_nanos() as u64,
                ..Metadata::default()
            }),
        }))
    }

    async fn get_user_impl(
        &self,
        request: Request<GetUserRequest>,
    ) -> Result<Response<GetUserResponse>, Status> {
        let state = self.state()?;
        let r = request.into_inner();
        non_empty("user_id", &r.user_id)?;
        user_id("user_id", &r.user_id)?;
        let found = state
            .users
            .find(&r.user_id)
            .await
            .map_err(|e| user_status("user_id", e))?;
        Ok(Response::new(GetUserResponse {
            user: Some(user_info(&state, &r.user_id, &found, r.include_embedding)),
        }))
    }

    async fn delete_user_impl(
        &self,
        request: Request<DeleteUserRequest>,
    ) -> Result<Response<DeleteUserResponse>, Status> {
        let state = self.state()?;
        let r = request.into_inner();
        non_empty("user_id", &r.user_id)?;
        user_id("user_id", &r.user_id)?;
        state
            .users
            .delete(&r.user_id)
            .await
            .map_err(|e| user_status("user_id", e))?;
        Ok(Response::new(DeleteUserResponse { user_id: r.user_id }))
    }

    async fn suggest_survey_impl(
        &self,
        request: Request<SuggestSurveyRequest>,
    ) -> Result<Response<SuggestSurveyResponse>, Status> {
        let state = self.state()?;
        let r = request.into_inner();
        let max = state.settings.limits.max_survey_answers;
        let wanted = if r.max_pairs == 0 {
            8
        } else {
            r.max_pairs as usize
        };
        if wanted > max {
            return Err(invalid(
                "max_pairs",
                format!("{wanted}: more than max_survey_answers = {max}"),
            ));
        }
        let limit = format!("max_survey_answers = {max}");
        at_most(
            "answers_so_far",
            r.answers_so_far.len(),
            max,
            "answers",
            &limit,
        )?;
        // More declined pairs than the pool holds can only repeat (issue #15).
        let pool = state.survey.pool_size();
        let limit = format!("the survey pool's {pool}");
        at_most("declined", r.declined.len(), pool, "pairs", limit)?;
        let so_far = answers(&state, "answers_so_far", &r.answers_so_far)?;
        let declined = r
            .declined
            .iter()
            .enumerate()
            .map(|(i, d)| {
                Ok((
                    response_row(&state.catalogue, &format!("declined[{i}].a"), d.a.as_ref())?,
                    response_row(&state.catalogue, &format!("declined[{i}].b"), d.b.as_ref())?,
                ))
            })
            .collect::<Result<Vec<_>, Status>>()?;
        let seed = if r.seed == 0 { rand_seed() } else { r.seed };
        let s = state.clone();
        let suggested = tokio::task::spawn_blocking(move || {
            s.survey
                .suggest(&s.adapter, &so_far, &declined, wanted, seed)
        })
        .await
        .map_err(|e| Status::internal(format!("survey task: {e}")))?;
        let entry = |row: u32| {
            let e = &state.catalogue.entries[row as usize];
            CatalogueResponse {
                id: e.id.clone(),
                response: e.response.clone(),
            }
        };
        Ok(Response::new(SuggestSurveyResponse {
            pairs: suggested
                .into_iter()
                .map(|p| SurveyPair {
                    prompt: state.catalogue.entries[p.a as usize].prompt.clone(),
                    a: Some(entry(p.a)),
                    b: Some(entry(p.b)),
                    informativeness: p.informativeness,
                })
                .collect(),
        }))
    }

    async fn info_impl(&self, _: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let state = self.state()?;
        Ok(Response::new(info(&state)))
    }
}

/// The stream ScoreStream answers with.
type ScoreStream =
    Pin<Box<dyn Stream<Item = Result<ScoreStreamResponse, Status>> + Send + 'static>>;

/// Every RPC (its key already checked: [`crate::auth::Guarded`]) counted and timed (`crate::telemetry`), then handled
/// by its `_impl`.
#[tonic::async_trait]
impl RewardService for RewardApi {
    async fn score(
        &self,
        request: Request<ScoreRequest>,
    ) -> Result<Response<ScoreResponse>, Status> {
        self.admitted("Score", request, |r| self.score_impl(r))
            .await
    }

    async fn score_batch(
        &self,
        request: Request<ScoreBatchRequest>,
    ) -> Result<Response<ScoreBatchResponse>, Status> {
        self.admitted("ScoreBatch", request, |r| self.score_batch_impl(r))
            .await
    }

    async fn compare_responses(
        &self,
        request: Request<CompareRequest>,
    ) -> Result<Response<CompareResponse>, Status> {
        self.admitted("CompareResponses", request, |r| {
            self.compare_responses_impl(r)
        })
        .await
    }

    async fn onboard_user(
        &self,
        request: Request<OnboardUserRequest>,
    ) -> Result<Response<OnboardUserResponse>, Status> {
        self.admitted("OnboardUser", request, |r| self.onboard_user_impl(r))
            .await
    }

    async fn get_user(
        &self,
        request: Request<GetUserRequest>,
    ) -> Result<Response<GetUserResponse>, Status> {
        self.admitted("GetUser", request, |r| self.get_user_impl(r))
            .await
    }

    async fn delete_user(
        &self,
        request: Request<DeleteUserRequest>,
    ) -> Result<Response<DeleteUserResponse>, Status> {
        self.admitted("DeleteUser", request, |r| self.delete_user_impl(r))
            .await
    }

    async fn suggest_survey(
        &self,
        request: Request<SuggestSurveyRequest>,
    ) -> Result<Response<SuggestSurveyResponse>, Status> {
        self.admitted("SuggestSurvey", request, |r| self.suggest_survey_impl(r))
            .await
    }

    async fn info(&self, request: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        self.admitted("Info", request, |r| self.info_impl(r)).await
    }

    type ScoreStreamStream = ScoreStream;

    /// Counted when the stream is set up; each item's outcome travels in the stream.
    async fn score_stream(
        &self,
        request: Request<Streaming<ScoreStreamRequest>>,
    ) -> Result<Response<ScoreStream>, Status> {
        self.admitted("ScoreStream", request, |r| self.score_stream_impl(r))
            .await
    }
}

/// A seed from the clock, for surveys that ask for none.
fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64 | 1)
}

/// One stream item: checked, tokenised, scored; a bad item is an error result only.
async fn stream_item(
    state: &Arc<State>,
    item: ScoreStreamRequest,
    deadline: Option<Instant>,
) -> ScoreStreamResponse {
    let arrived = Instant::now();
    let request_id = item.request_id;
    let outcome = async {
        let i = item.item.ok_or_else(|| invalid("item", "missing"))?;
        non_empty("item.prompt", &i.prompt)?;
        non_empty("item.response", &i.response)?;
        let condition = condition(state, "item.user_id", &i.user_id).await?;
        let prepared = prepare(
            state,
            vec![Item {
                prompt: i.prompt,
                response: i.response,
                condition,
            }],
            item.truncate,
            |_| "item.response".to_string(),
        )
        .await?;
        reward(state, prepared, deadline, arrived).await
    }
    .await;
    match outcome {
        Ok(mut rewarded) => ScoreStreamResponse {
            request_id,
            outcome: rewarded.results.pop().map(Outcome::Result),
            metadata: Some(rewarded.metadata),
        },
        Err(status) => ScoreStreamResponse {
            request_id,
            outcome: Some(Outcome::Error(ItemError {
                code: status.code() as i32,
                message: status.message().to_string(),
            })),
            metadata: None,
        },
    }
}

/// What `Info` answers.
pub fn info(state: &State) -> InfoResponse {
    let model = &state.model;
    let section = state.manifest.model.as_ref();
    let gcf = state.manifest.gcf.as_ref();
    let limits = &state.settings.limits;
    InfoResponse {
        version: env!("CARGO_PKG_VERSION").to_string(),
        backbone: section.map(|m| m.backbone.clone()).unwrap_or_default(),
        backbone_family: model.config.family.to_string(),
        backbone_sha256: section
            .map(|m| m.backbone_sha256.clone())
            .unwrap_or_default(),
        checkpoint: state.checkpoint.display().to_string(),
        checkpoint_format_version: state.manifest.format_version,
        text_template: match &model.config.template {
            copl_core::model::reward::Template::Pair => {
                "pair: [CLS] prompt [SEP] response [SEP]".into()
            }
            copl_core::model::reward::Template::Format { format } => format.clone(),
        },
        embedding_dim: gcf.map_or(0, |g| g.dim as u32),
        num_experts: model.config.mole.experts as u32,
        adapted_projections: model.backbone.adapters().names.clone(),
        seen_users: state.users.seen_count() as u32,
        onboarded_users: state.users.onboarded_count() as u32,
        catalogue_responses: state.catalogue.entries.len() as u32,
        limits: Some(Limits {
            max_input_tokens: state.max_input_tokens as u32,
            max_batch_items: limits.max_batch_items as u32,
            max_batch_tokens: state.scheduler.limits().max_tokens as u32,
            max_queued_requests: limits.max_queued_requests as u32,
            max_survey_answers: limits.max_survey_answers as u32,
            max_hops: limits.max_hops as u32,
            max_message_bytes: limits.max_message_bytes as u32,
            max_batch_rows: state.scheduler.limits().max_rows as u32,
            batch_linger_micros: limits.batch_linger_micros,
            max_concurrent_streams: limits.max_concurrent_streams,
        }),
        device: state.device.clone(),
        population_reward: "the shared LoRA expert only (eq. 10 without the user's expert \
                            term, w_u = 0); not the average of users' rewards"
            .into(),
    }
}
