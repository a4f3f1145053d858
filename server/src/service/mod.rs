//! `copl.v1.RewardService`, the proto mapping: checks each request ([`fields`]:
//! INVALID_ARGUMENT names the field and the value), resolves users (NOT_FOUND), and hands
//! the checked items to [`infer`] (tokenising, jobs, admission, the
//! [`Scheduler`](crate::scheduler::Scheduler)); [`score`] holds the three scoring RPCs,
//! [`info`] the Info answer, [`reload`] ReloadCheckpoint; onboarding and surveys (here) run the
//! optimisation-free adaptation (eq. 11) on plain rows. Until the model is loaded and
//! warmed every call is UNAVAILABLE.

pub mod fields;
mod infer;
mod info;
mod reload;
pub mod request_id;
mod score;

pub use info::info;

use std::{pin::Pin, sync::Arc, time::Instant};

use copl_core::adapt::Fallback;
use copl_proto::v1::{
    AdaptationFallback, AnswerSummary, CatalogueResponse, CompareRequest, CompareResponse,
    DeleteUserRequest, DeleteUserResponse, ExpertRouting, GetUserRequest, GetUserResponse,
    InfoRequest, InfoResponse, Metadata, OnboardUserRequest, OnboardUserResponse,
    ReloadCheckpointRequest, ReloadCheckpointResponse, ScoreBatchRequest, ScoreBatchResponse,
    ScoreRequest, ScoreResponse, ScoreStreamRequest, ScoreStreamResponse, SuggestSurveyRequest,
    SuggestSurveyResponse, SurveyPair, UnknownUser, UserInfo, UserOrigin,
    reward_service_server::RewardService,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use request_id::RequestId;

use crate::{
    serving::Serving,
    state::State,
    users::{Condition, Found, UserError},
};
use fields::{answers, at_most, deadline, invalid, non_empty, response_row, user_id, user_status};
use infer::{Item, prepare, reward, since};

/// The service; answers UNAVAILABLE until [`Serving`] serves a state. It is served behind
/// [`crate::auth::Guarded`], which admits each call by its key before the body is read.
/// Each call takes the state served when it begins and keeps it to its end (a reload
/// swaps the state for the calls after it: [`crate::serving`]).
#[derive(Clone, Debug)]
pub struct RewardApi {
    serving: Arc<Serving>,
}

impl RewardApi {
    /// Runs one RPC, counted and timed under `rpc`, in a tracing span with its
    /// [`RequestId`] (the answer carries the id; a failure is logged with it). (Its key
    /// was checked before the body was read: [`crate::auth::Guarded`], which counts its
    /// refusals itself.)
    async fn admitted<T, R, F>(
        &self,
        rpc: &'static str,
        request: Request<T>,
        call: impl FnOnce(Request<T>) -> F,
    ) -> Result<Response<R>, Status>
    where
        F: std::future::Future<Output = Result<Response<R>, Status>>,
    {
        let started = Instant::now();
        let id = RequestId::of(request.metadata());
        let span = tracing::info_span!("rpc", rpc, request_id = %id);
        let result = call(request).instrument(span.clone()).await;
        crate::telemetry::observe(rpc, started, &result);
        if let Some(state) = self.serving.current() {
            state.requests_answered.increment(1);
        }
        match result {
            Ok(mut response) => {
                id.set_on(response.metadata_mut());
                Ok(response)
            }
            Err(status) => {
                // One line for every refused or failed call (a client's mistake at info,
                // the server's own failures at warn), with the span's request id.
                span.in_scope(|| {
                    let (code, message) = (status.code(), status.message());
                    let ms = started.elapsed().as_secs_f64() * 1e3;
                    if matches!(
                        code,
                        tonic::Code::Internal | tonic::Code::Unavailable | tonic::Code::Unknown
                    ) {
                        tracing::warn!(?code, reason = message, ms, "call failed");
                    } else {
                        tracing::info!(?code, reason = message, ms, "call refused");
                    }
                });
                Err(id.tag(status))
            }
        }
    }

    pub fn new(serving: Arc<Serving>) -> Self {
        Self { serving }
    }

    /// Whether the model is loaded (what health says).
    pub fn is_ready(&self) -> bool {
        self.serving.current().is_some()
    }

    /// The state served now (a call takes it once).
    fn state(&self) -> Result<Arc<State>, Status> {
        self.serving
            .current()
            .ok_or_else(|| Status::unavailable("the model is still loading; retry shortly"))
    }
}

/// Whom an item is scored for: the condition of the user `field` names, and whether the
/// id was unknown and the population's condition stands in (only where `unknown_user`,
/// the request's value or else `scoring.unknown_user`, asks for it).
#[derive(Clone)]
pub(super) struct Whom {
    pub condition: Arc<Condition>,
    pub user_unknown: bool,
}

/// The request's `unknown_user`, refused naming the field when out of range.
fn unknown_user_policy(unknown_user: i32) -> Result<UnknownUser, Status> {
    UnknownUser::try_from(unknown_user).map_err(|_| {
        invalid(
            "unknown_user",
            format!("{unknown_user} is not an UnknownUser value (0, 1 or 2)"),
        )
    })
}

/// Finds the user of `field` (`unknown_user` as the request gives it).
async fn condition(
    state: &State,
    field: &str,
    id: &str,
    unknown_user: i32,
) -> Result<Whom, Status> {
    user_id(field, id)?;
    let asked = unknown_user_policy(unknown_user)?;
    match state.users.find(id).await {
        Ok(found) => Ok(Whom {
            condition: found.condition().clone(),
            user_unknown: false,
        }),
        Err(UserError::NotFound(_) | UserError::Stale(_))
            if state.settings.scoring.population_for_unknown(asked) =>
        {
            metrics::counter!("copl_unknown_user_population_total").increment(1);
            Ok(Whom {
                condition: state.users.population(),
                user_unknown: true,
            })
        }
        Err(e) => Err(user_status(field, e)),
    }
}

fn user_info(state: &State, id: &str, found: &Found, include_embedding: bool) -> UserInfo {
    let condition = found.condition();
    let names = &state.model.backbone.adapters().names;
    let (origin, created_unix_ms, answers) = match found {
        Found::Population(_) => (UserOrigin::Unspecified, 0, 0),
        Found::Seen { answers, .. } => (UserOrigin::Seen, 0, *answers),
        Found::Onboarded(o) => (UserOrigin::Onboarded, o.created_unix_ms, o.answers),
    };
    let readapted = match found {
        Found::Onboarded(o) => o.readapted,
        _ => None,
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
        readapted: readapted.is_some(),
        answers_outside_catalogue: readapted.unwrap_or(0),
    }
}

impl RewardApi {
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
        let whom = condition(&state, "user_id", &r.user_id, r.unknown_user).await?;
        let items = vec![
            Item {
                prompt: r.prompt.clone(),
                response: r.response_a,
                condition: whom.condition.clone(),
                user_unknown: whom.user_unknown,
            },
            Item {
                prompt: r.prompt,
                response: r.response_b,
                condition: whom.condition,
                user_unknown: whom.user_unknown,
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
        // Before the state: a reload reading the store waits for this write, and this
        // write for the reload's swap ([`Serving::write_gate`]).
        let gate = self.serving.write_gate().await;
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
        let options = crate::users::KeptOptions {
            hops: hops as u32,
            temperature,
        };
        let config = state.users.adapt_config(options);
        let started = Instant::now();
        let adaptation = state
            .adapter
            .adapt(&given, &config)
            .map_err(|e| invalid("answers", e))?;
        let adapt_time = started.elapsed();
        // The answers as kept (catalogue ids, in the order given): what a new
        // checkpoint re-adapts the user from (issue #18).
        let answered = crate::users::now_unix_ms();
        let kept = given
            .iter()
            .map(|a| crate::users::KeptAnswer {
                chosen: state.catalogue.entries[a.chosen as usize].id.clone(),
                rejected: state.catalogue.entries[a.rejected as usize].id.clone(),
                answered_unix_ms: answered,
            })
            .collect();
        let onboarded = state
            .users
            .onboard(&r.user_id, &adaptation, kept, options, r.replace, gate)
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
        let gate = self.serving.write_gate().await;
        let state = self.state()?;
        let r = request.into_inner();
        non_empty("user_id", &r.user_id)?;
        user_id("user_id", &r.user_id)?;
        state
            .users
            .delete(&r.user_id, gate)
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

    async fn reload_checkpoint(
        &self,
        request: Request<ReloadCheckpointRequest>,
    ) -> Result<Response<ReloadCheckpointResponse>, Status> {
        self.admitted("ReloadCheckpoint", request, |r| {
            self.reload_checkpoint_impl(r)
        })
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
pub(super) fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64 | 1)
}
