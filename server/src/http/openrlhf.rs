//! `POST /get_reward`: OpenRLHF's remote reward model (`--remote_rm_url
//! http://host:port/get_reward`, the path of its own `openrlhf.cli.serve_rm`). OpenRLHF
//! posts `{"query": [...], "prompts": [...], "labels": [...]}` — each query the decoded
//! prompt + response, each prompt the templated prompt it starts with — and reads
//! `rewards` (one number per query; `scores` is the same list, `extra_logs` per-sample
//! lists it logs).
//!
//! - **The response** is the query after its prompt; a query that does not start with
//!   its prompt is not split by guesswork: it is unscored (below).
//! - **The user**: `user_ids` in the body if given; with `?users=labels` the `labels`
//!   column (OpenRLHF's `--label_key user_id`); else the population reward. Unknown
//!   users get the population reward (flagged in `extra_logs.copl_user_unknown`):
//!   OpenRLHF cannot take a sample without a number.
//! - **Unscorable samples** (a blank response, a query without its prompt) get
//!   `fallback_reward` (default 0.0) — a number, since OpenRLHF makes a tensor of the
//!   list — and are listed in `unscored` (index, code, message) and
//!   `extra_logs.copl_scored` (0 for them), never silently. Inputs longer than the
//!   model's window are truncated (the prompt's start goes first).
//! - A body longer than `limits.max_batch_items` queries goes as several ScoreBatch
//!   calls, concurrently.

use axum::{
    Json,
    extract::{Query, Request, State as AxumState},
    response::{IntoResponse, Response},
};
use copl_proto::v1::{ScoreItem, UnknownUser};
use serde::{Deserialize, Serialize};
use tonic::Status;

use super::{Admitted, ErrorBody, Http, ItemReply, Refused, admit, outcomes};

/// The body OpenRLHF posts (fields it may add later are ignored).
#[derive(Debug, Deserialize)]
pub struct RewardBody {
    /// Prompt + response, as OpenRLHF decodes each sample.
    pub query: Vec<String>,
    /// The prompt each query starts with.
    #[serde(default)]
    pub prompts: Vec<String>,
    /// OpenRLHF's `--label_key` column: the user ids with `?users=labels`.
    #[serde(default)]
    pub labels: Vec<serde_json::Value>,
    /// The user ids, one per query (not OpenRLHF's own field).
    #[serde(default)]
    pub user_ids: Option<Vec<String>>,
    /// The reward of a sample that cannot be scored (default 0.0).
    #[serde(default)]
    pub fallback_reward: Option<f32>,
}

/// `?users=labels`: the labels are the user ids.
#[derive(Debug, Default, Deserialize)]
pub struct RewardQuery {
    #[serde(default)]
    pub users: Option<String>,
}

/// A sample not scored.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Unscored {
    pub index: usize,
    #[serde(flatten)]
    pub error: ErrorBody,
}

/// Per-sample lists OpenRLHF logs beside the rewards.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ExtraLogs {
    /// 1 where the model scored the sample, 0 where `fallback_reward` stands in.
    pub copl_scored: Vec<f32>,
    /// 1 where the user id was unknown and the population reward stood in.
    pub copl_user_unknown: Vec<f32>,
}

/// What `/get_reward` answers.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct RewardReply {
    pub rewards: Vec<f32>,
    pub scores: Vec<f32>,
    pub extra_logs: ExtraLogs,
    pub unscored: Vec<Unscored>,
}

fn invalid(field: &str, message: impl std::fmt::Display) -> Refused {
    Refused::from(Status::invalid_argument(format!("{field}: {message}")))
}

/// The user id of every query (`""` = the population).
fn users(body: &RewardBody, query: &RewardQuery) -> Result<Vec<String>, Refused> {
    let n = body.query.len();
    if let Some(ids) = &body.user_ids {
        if ids.len() != n {
            return Err(invalid(
                "user_ids",
                format!("{} entries for {n} queries", ids.len()),
            ));
        }
        return Ok(ids.clone());
    }
    match query.users.as_deref() {
        None => Ok(vec![String::new(); n]),
        Some("labels") => {
            if body.labels.len() != n {
                return Err(invalid(
                    "labels",
                    format!(
                        "{} entries for {n} queries (?users=labels)",
                        body.labels.len()
                    ),
                ));
            }
            body.labels
                .iter()
                .enumerate()
                .map(|(i, label)| match label {
                    serde_json::Value::String(s) => Ok(s.clone()),
                    serde_json::Value::Number(x) if x.is_u64() || x.is_i64() => Ok(x.to_string()),
                    serde_json::Value::Null => Ok(String::new()),
                    other => Err(invalid(
                        &format!("labels[{i}]"),
                        format!("{other} is not a user id (?users=labels)"),
                    )),
                })
                .collect()
        }
        Some(other) => Err(invalid(
            "users",
            format!("{other:?}: the only value is \"labels\""),
        )),
    }
}

pub async fn get_reward(
    AxumState(http): AxumState<Http>,
    request: Request,
) -> Result<Response, Refused> {
    let query = Query::<RewardQuery>::try_from_uri(request.uri())
        .map_err(|e| invalid("query string", e.body_text()))?
        .0;
    let Admitted { headers, body, .. } =
        admit::<RewardBody>(&http, request, "http /get_reward").await?;
    let n = body.query.len();
    if body.prompts.len() != n {
        return Err(invalid(
            "prompts",
            format!(
                "{} entries for {n} queries (each query is its prompt + the response)",
                body.prompts.len()
            ),
        ));
    }
    let users = users(&body, &query)?;
    let fallback = body.fallback_reward.unwrap_or(0.0);
    let mut unscored = Vec::new();
    // (index, item) of the queries that split into prompt + response.
    let mut items = Vec::with_capacity(n);
    for (i, ((q, p), user)) in body.query.iter().zip(&body.prompts).zip(users).enumerate() {
        match q.strip_prefix(p.as_str()) {
            Some(response) => items.push((
                i,
                ScoreItem {
                    user_id: user,
                    prompt: p.clone(),
                    response: response.to_string(),
                },
            )),
            None => unscored.push(Unscored {
                index: i,
                error: ErrorBody {
                    code: "INVALID_ARGUMENT".into(),
                    message: format!("query[{i}]: does not start with prompts[{i}]"),
                },
            }),
        }
    }
    let chunk = http.max_batch_items.max(1);
    let calls = items.chunks(chunk).map(|part| {
        let part: Vec<ScoreItem> = part.iter().map(|(_, item)| item.clone()).collect();
        outcomes(&http, &headers, part, true, UnknownUser::Population as i32)
    });
    let replies = futures_util::future::try_join_all(calls).await?;
    let mut rewards = vec![fallback; n];
    let mut scored = vec![0.0; n];
    let mut user_unknown = vec![0.0; n];
    for ((i, _), reply) in items.iter().zip(replies.into_iter().flatten()) {
        match reply {
            ItemReply::Scored(r) => {
                rewards[*i] = r.reward;
                scored[*i] = 1.0;
                user_unknown[*i] = if r.user_unknown { 1.0 } else { 0.0 };
            }
            ItemReply::Refused { mut error } => {
                // The batch names its own positions; say the query's.
                error.message = format!("query[{i}]: {}", error.message);
                unscored.push(Unscored { index: *i, error });
            }
        }
    }
    unscored.sort_by_key(|u| u.index);
    if !unscored.is_empty() {
        tracing::info!(
            unscored = unscored.len(),
            of = n,
            "get_reward: samples not scored got the fallback reward"
        );
    }
    Ok(Json(RewardReply {
        scores: rewards.clone(),
        rewards,
        extra_logs: ExtraLogs {
            copl_scored: scored,
            copl_user_unknown: user_unknown,
        },
        unscored,
    })
    .into_response())
}
