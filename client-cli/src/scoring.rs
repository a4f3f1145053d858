//! `copl score` (one response's reward for a user, or the population's) and `copl
//! compare` (P(a preferred to b) and both rewards).

use std::fmt;

use anyhow::Result;
use copl_proto::v1::{CompareRequest, ScoreRequest, ScoreResult};
use serde::Serialize;

use crate::{connect::Connection, exit::refused};

#[derive(clap::Args)]
pub struct ScoreArgs {
    /// The user (empty: the population reward).
    #[arg(long, default_value = "")]
    pub user: String,
    #[arg(long)]
    pub prompt: String,
    #[arg(long)]
    pub response: String,
    /// Cut over-long input instead of refusing it.
    #[arg(long)]
    pub truncate: bool,
    #[arg(long)]
    pub json: bool,
}

/// One scored response.
#[derive(Serialize)]
pub struct Scored {
    pub reward: f32,
    pub personalised: bool,
    pub input_tokens: u32,
    pub truncated: bool,
    /// Whom it was scored for (empty: the population); not in the JSON.
    #[serde(skip)]
    pub user: String,
}

impl Scored {
    fn of(r: ScoreResult, user: &str) -> Self {
        Self {
            reward: r.reward,
            personalised: r.personalised,
            input_tokens: r.input_tokens,
            truncated: r.truncated,
            user: user.to_string(),
        }
    }
}

impl fmt::Display for Scored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "reward {:.4} for {} ({} tokens{})",
            self.reward,
            if self.personalised {
                format!("user {:?}", self.user)
            } else {
                "the population".into()
            },
            self.input_tokens,
            if self.truncated { ", truncated" } else { "" }
        )
    }
}

pub async fn score(args: ScoreArgs, conn: &Connection) -> Result<Scored> {
    let r = conn
        .api()
        .score(ScoreRequest {
            user_id: args.user.clone(),
            prompt: args.prompt,
            response: args.response,
            truncate: args.truncate,
            ..Default::default()
        })
        .await
        .map_err(refused("Score"))?
        .into_inner();
    Ok(Scored::of(r.result.unwrap_or_default(), &args.user))
}

#[derive(clap::Args)]
pub struct CompareArgs {
    #[arg(long, default_value = "")]
    pub user: String,
    #[arg(long)]
    pub prompt: String,
    #[arg(long)]
    pub a: String,
    #[arg(long)]
    pub b: String,
    #[arg(long)]
    pub truncate: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
pub struct Compared {
    pub probability_a_preferred: f32,
    pub a: Scored,
    pub b: Scored,
}

impl fmt::Display for Compared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "P(a preferred) = {:.3}  (reward a {:.4}, b {:.4})",
            self.probability_a_preferred, self.a.reward, self.b.reward
        )
    }
}

pub async fn compare(args: CompareArgs, conn: &Connection) -> Result<Compared> {
    let r = conn
        .api()
        .compare_responses(CompareRequest {
            user_id: args.user.clone(),
            prompt: args.prompt,
            response_a: args.a,
            response_b: args.b,
            truncate: args.truncate,
            ..Default::default()
        })
        .await
        .map_err(refused("CompareResponses"))?
        .into_inner();
    Ok(Compared {
        probability_a_preferred: r.probability_a_preferred,
        a: Scored::of(r.a.unwrap_or_default(), &args.user),
        b: Scored::of(r.b.unwrap_or_default(), &args.user),
    })
}
