//! HTTP/JSON beside gRPC on its own port (`http_listen`, off by default; issue #16,
//! item 4), for RLHF stacks that post JSON. Every route is a thin mapping onto the gRPC
//! service's own calls ([`RewardApi`]'s `ScoreBatch` and `CompareResponses`), so the
//! limits, the scheduler, the request ids, the logs and `copl_requests_total` are the
//! gRPC path's; before the body is read the API key is checked ([`Auth`], the same
//! keys and roles) and a permit of the server-wide bound on calls in flight taken (the
//! same [`InFlight`] as gRPC's); the body is bounded by `limits.max_message_bytes`.
//!
//! - `POST /v1/score`: `{"items": [{"user_id", "prompt", "response"}], "truncate",
//!   "unknown_user"}` → `{"results": [{"reward", …} | {"error": {"code", "message"}}]}`,
//!   one per item (per-item outcomes: one bad item fails only itself).
//! - `POST /v1/compare`: CompareResponses' fields → `{"probability_a_preferred", "a",
//!   "b"}`.
//! - `POST /get_reward`: OpenRLHF's remote reward model (`--remote_rm_url
//!   http://host:port/get_reward`): `{"query": [prompt + response], "prompts": [prompt],
//!   "labels": […]}` → `{"rewards": […], "scores": […], "extra_logs": {…}}`. See
//!   [`openrlhf`] for how users and unscorable samples are handled.
//! - `GET /health`: 200 `SERVING` once the model is loaded, else 503.
//!
//! Errors are `{"error": {"code": "INVALID_ARGUMENT", "message": …}}` with the HTTP
//! status of the gRPC code ([`http_status`]). Every answer, refusals included, carries
//! the call's `x-request-id` (the client's usable one, or one made here before the
//! route runs, so the gRPC call's span and log lines have the same id).

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{
        DefaultBodyLimit, FromRequest, Request, State as AxumState, rejection::JsonRejection,
    },
    http::{HeaderMap, HeaderValue, StatusCode},
    middleware::{Next, from_fn},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use copl_proto::v1::{
    CompareRequest, CompareResponse, ScoreBatchRequest, ScoreItem, ScoreResult, UnknownUser,
    reward_service_server::RewardService, score_outcome::Outcome,
};
use serde::{Deserialize, Serialize};
use tonic::{Code, Status};

use crate::{
    auth::{Auth, Role},
    in_flight::InFlight,
    service::{
        RewardApi,
        request_id::{HEADER, RequestId},
    },
};

mod openrlhf;

/// What every route needs.
#[derive(Clone)]
pub struct Http {
    pub api: RewardApi,
    pub auth: Arc<Auth>,
    pub in_flight: InFlight,
    /// `limits.max_batch_items`: a longer OpenRLHF body is sent as several batches.
    pub max_batch_items: usize,
}

/// The routes, bounded to `max_body` bytes of body.
pub fn router(http: Http, max_body: usize) -> Router {
    Router::new()
        .route("/v1/score", post(score))
        .route("/v1/compare", post(compare))
        .route("/get_reward", post(openrlhf::get_reward))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(from_fn(request_ids))
        .with_state(http)
}

/// Gives the request its id (the client's when usable: [`RequestId::from_header`]) before
/// any route or refusal, and puts it on the answer.
async fn request_ids(mut request: Request, next: Next) -> Response {
    let given = request.headers().get(HEADER).and_then(|v| v.to_str().ok());
    let id = HeaderValue::from_str(&RequestId::from_header(given).to_string()).ok();
    if let Some(id) = &id {
        request.headers_mut().insert(HEADER, id.clone());
    }
    let mut response = next.run(request).await;
    if let Some(id) = id {
        response.headers_mut().insert(HEADER, id);
    }
    response
}

/// The HTTP status of a gRPC code.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
            StatusCode::BAD_REQUEST
        }
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The canonical name of a gRPC code (`INVALID_ARGUMENT`), as in the proto's comments.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A refusal as JSON.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

#[derive(Serialize)]
struct ErrorReply {
    error: ErrorBody,
}

/// A failed call: its status as an HTTP answer (the HTTP status of its code unless
/// given).
pub struct Refused(Status, Option<StatusCode>);

impl From<Status> for Refused {
    fn from(status: Status) -> Self {
        Self(status, None)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let status = self.1.unwrap_or_else(|| http_status(self.0.code()));
        let body = ErrorReply {
            error: ErrorBody {
                code: code_name(self.0.code()).to_string(),
                message: self.0.message().to_string(),
            },
        };
        (status, Json(body)).into_response()
    }
}

/// A body that is not JSON of the route's shape: 400 naming where (serde's line and
/// column; also without a JSON content type), 413 when over `limits.max_message_bytes`.
fn rejected(rejection: JsonRejection) -> Refused {
    let text = rejection.body_text();
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        let message = format!("body: {text} (limits.max_message_bytes)");
        return Refused(
            Status::resource_exhausted(message),
            Some(StatusCode::PAYLOAD_TOO_LARGE),
        );
    }
    Refused(
        Status::invalid_argument(format!("body: {text}")),
        Some(StatusCode::BAD_REQUEST),
    )
}

/// A request let in: its headers, its permit of the calls in flight (held until the
/// answer), its body as `T`.
struct Admitted<T> {
    headers: HeaderMap,
    _permit: tokio::sync::OwnedSemaphorePermit,
    body: T,
}

/// The key check and the in-flight permit from the headers, then the body read (within
/// `max_body`) and decoded as `T`: a request without a valid key costs its headers
/// only. A refusal before the body is counted in `copl_requests_total` under the
/// route's name (a call let in is counted under the gRPC method it becomes).
async fn admit<T: serde::de::DeserializeOwned>(
    http: &Http,
    request: Request,
    route: &'static str,
) -> Result<Admitted<T>, Refused> {
    let started = std::time::Instant::now();
    let permit = http
        .auth
        .check(request.headers().get("authorization"), route, Role::Scoring)
        .and_then(|()| http.in_flight.admit())
        .map_err(|status| {
            crate::telemetry::observe(route, started, &Err::<(), _>(status.clone()));
            Refused(status, None)
        })?;
    let headers = request.headers().clone();
    let Json(body) = Json::<T>::from_request(request, &())
        .await
        .map_err(rejected)?;
    Ok(Admitted {
        headers,
        _permit: permit,
        body,
    })
}

/// The caller's `x-request-id`, passed on to the gRPC call's metadata.
fn grpc_request<T>(headers: &HeaderMap, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(id) = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
    {
        request.metadata_mut().insert("x-request-id", id);
    }
    request
}

/// The unknown-user policy as JSON writes it.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownUserBody {
    Error,
    Population,
}

impl UnknownUserBody {
    fn wire(policy: Option<Self>) -> i32 {
        (match policy {
            None => UnknownUser::Unspecified,
            Some(Self::Error) => UnknownUser::Error,
            Some(Self::Population) => UnknownUser::Population,
        }) as i32
    }
}

/// `POST /v1/score`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreBody {
    pub items: Vec<ItemBody>,
    #[serde(default)]
    pub truncate: bool,
    #[serde(default)]
    pub unknown_user: Option<UnknownUserBody>,
}

/// One item to score; an absent `user_id` is the population.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemBody {
    #[serde(default)]
    pub user_id: String,
    pub prompt: String,
    pub response: String,
}

/// A scored item.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ResultBody {
    pub reward: f32,
    pub personalised: bool,
    pub input_tokens: u32,
    pub truncated: bool,
    pub user_unknown: bool,
}

impl From<ScoreResult> for ResultBody {
    fn from(r: ScoreResult) -> Self {
        Self {
            reward: r.reward,
            personalised: r.personalised,
            input_tokens: r.input_tokens,
            truncated: r.truncated,
            user_unknown: r.user_unknown,
        }
    }
}

/// One item's outcome.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ItemReply {
    Scored(ResultBody),
    Refused { error: ErrorBody },
}

#[derive(Serialize)]
struct ScoreReply {
    results: Vec<ItemReply>,
}

/// Per-item outcomes of `items` through ScoreBatch.
async fn outcomes(
    http: &Http,
    headers: &HeaderMap,
    items: Vec<ScoreItem>,
    truncate: bool,
    unknown_user: i32,
) -> Result<Vec<ItemReply>, Status> {
    let reply = http
        .api
        .score_batch(grpc_request(
            headers,
            ScoreBatchRequest {
                items,
                truncate,
                per_item_errors: true,
                unknown_user,
            },
        ))
        .await?
        .into_inner();
    Ok(reply
        .outcomes
        .into_iter()
        .map(|o| match o.outcome {
            Some(Outcome::Result(r)) => ItemReply::Scored(r.into()),
            Some(Outcome::Error(e)) => ItemReply::Refused {
                error: ErrorBody {
                    code: code_name(Code::from(e.code)).to_string(),
                    message: e.message,
                },
            },
            None => ItemReply::Refused {
                error: ErrorBody {
                    code: "INTERNAL".into(),
                    message: "no outcome".into(),
                },
            },
        })
        .collect())
}

async fn score(AxumState(http): AxumState<Http>, request: Request) -> Result<Response, Refused> {
    let Admitted { headers, body, .. } =
        admit::<ScoreBody>(&http, request, "http /v1/score").await?;
    let items = body
        .items
        .into_iter()
        .map(|i| ScoreItem {
            user_id: i.user_id,
            prompt: i.prompt,
            response: i.response,
        })
        .collect();
    let results = outcomes(
        &http,
        &headers,
        items,
        body.truncate,
        UnknownUserBody::wire(body.unknown_user),
    )
    .await?;
    Ok(Json(ScoreReply { results }).into_response())
}

/// `POST /v1/compare`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareBody {
    #[serde(default)]
    pub user_id: String,
    pub prompt: String,
    pub response_a: String,
    pub response_b: String,
    #[serde(default)]
    pub truncate: bool,
    #[serde(default)]
    pub unknown_user: Option<UnknownUserBody>,
}

#[derive(Serialize)]
struct CompareReply {
    probability_a_preferred: f32,
    a: Option<ResultBody>,
    b: Option<ResultBody>,
}

async fn compare(AxumState(http): AxumState<Http>, request: Request) -> Result<Response, Refused> {
    let Admitted { headers, body, .. } =
        admit::<CompareBody>(&http, request, "http /v1/compare").await?;
    let CompareResponse {
        probability_a_preferred,
        a,
        b,
        ..
    } = http
        .api
        .compare_responses(grpc_request(
            &headers,
            CompareRequest {
                user_id: body.user_id,
                prompt: body.prompt,
                response_a: body.response_a,
                response_b: body.response_b,
                truncate: body.truncate,
                unknown_user: UnknownUserBody::wire(body.unknown_user),
            },
        ))
        .await?
        .into_inner();
    Ok(Json(CompareReply {
        probability_a_preferred,
        a: a.map(Into::into),
        b: b.map(Into::into),
    })
    .into_response())
}

async fn health(AxumState(http): AxumState<Http>) -> Response {
    if http.api.is_ready() {
        (StatusCode::OK, "SERVING").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "NOT_SERVING").into_response()
    }
}
