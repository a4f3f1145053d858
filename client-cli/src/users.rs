//! The user verbs: `copl onboard` (a new user from pairwise answers), `copl user get`,
//! `copl user delete`, `copl survey` (which pairs to ask next).

use std::{fmt, path::PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use copl_proto::v1::{
    AdaptationFallback, DeleteUserRequest, GetUserRequest, OnboardOptions, OnboardUserRequest,
    ResponseRef, SuggestSurveyRequest, SurveyAnswer, UserInfo, UserOrigin, response_ref::Ref,
};
use serde::{Deserialize, Serialize};

use crate::{
    connect::{Connection, Target},
    exit::refused,
};

/// `CHOSEN>REJECTED` ids as a survey answer.
fn parse_answer(text: &str) -> Result<SurveyAnswer> {
    let (chosen, rejected) = text
        .split_once('>')
        .with_context(|| format!("answer {text:?}: write CHOSEN_ID>REJECTED_ID"))?;
    let id = |s: &str| {
        Some(ResponseRef {
            r#ref: Some(Ref::Id(s.trim().to_string())),
        })
    };
    Ok(SurveyAnswer {
        chosen: id(chosen),
        rejected: id(rejected),
    })
}

#[derive(clap::Args)]
pub struct OnboardArgs {
    #[arg(long)]
    pub user: String,
    /// An answer `CHOSEN_ID>REJECTED_ID` (repeatable).
    #[arg(long = "answer")]
    pub answers: Vec<String>,
    /// A JSON file: `[{"chosen": "ID", "rejected": "ID"}, …]`.
    #[arg(long)]
    pub answers_file: Option<PathBuf>,
    /// Neighbourhood hops (even) [server default: 2].
    #[arg(long)]
    pub hops: Option<u32>,
    /// Replace an existing onboarded user of this id.
    #[arg(long)]
    pub replace: bool,
    #[arg(long)]
    pub json: bool,
}

/// One answer of `--answers-file`.
#[derive(Deserialize)]
struct FileAnswer {
    chosen: String,
    rejected: String,
}

#[derive(Serialize)]
pub struct Onboarded {
    pub user: Option<User>,
    pub neighbourhood_size: u32,
    pub neighbours_used: u32,
    pub hops_used: u32,
    pub fallback: String,
    pub confidence: f32,
    pub answer_agreement: f32,
    pub answers: AnswerCounts,
}

#[derive(Serialize)]
pub struct AnswerCounts {
    pub given: u32,
    pub used: u32,
    pub duplicates: u32,
    pub contradictory: u32,
    pub outside_graph: u32,
}

impl fmt::Display for Onboarded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = self.user.as_ref().map_or("", |u| u.user_id.as_str());
        write!(
            f,
            "onboarded {who:?} from {} of {} answers: {} neighbours within {} hops \
             (about {} carry it), fallback {}, confidence {:.2}",
            self.answers.used,
            self.answers.given,
            self.neighbourhood_size,
            self.hops_used,
            self.neighbours_used,
            self.fallback,
            self.confidence
        )
    }
}

/// The answers are read and checked before the server is dialled: bad input costs no call.
pub async fn onboard(args: OnboardArgs, target: &Target) -> Result<Onboarded> {
    let mut given: Vec<SurveyAnswer> = args
        .answers
        .iter()
        .map(|a| parse_answer(a))
        .collect::<Result<_>>()?;
    if let Some(path) = &args.answers_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let listed: Vec<FileAnswer> = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: a JSON list of {{\"chosen\": ID, \"rejected\": ID}}",
                path.display()
            )
        })?;
        for a in listed {
            given.push(parse_answer(&format!("{}>{}", a.chosen, a.rejected))?);
        }
    }
    if given.is_empty() {
        bail!("no answers: give --answer CHOSEN_ID>REJECTED_ID or --answers-file");
    }
    let r = target
        .connect()
        .await?
        .api()
        .onboard_user(OnboardUserRequest {
            user_id: args.user,
            answers: given,
            options: Some(OnboardOptions {
                hops: args.hops,
                temperature: None,
            }),
            replace: args.replace,
        })
        .await
        .map_err(refused("OnboardUser"))?
        .into_inner();
    let s = r.answers.unwrap_or_default();
    Ok(Onboarded {
        user: r.user.map(User::of),
        neighbourhood_size: r.neighbourhood_size,
        neighbours_used: r.neighbours_used,
        hops_used: r.hops_used,
        fallback: AdaptationFallback::try_from(r.fallback)
            .map_or("UNKNOWN", |f| f.as_str_name())
            .to_string(),
        confidence: r.confidence,
        answer_agreement: r.answer_agreement,
        answers: AnswerCounts {
            given: s.given,
            used: s.used,
            duplicates: s.duplicates,
            contradictory: s.contradictory,
            outside_graph: s.outside_graph,
        },
    })
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// What the server knows of a user (origin, routing, optionally the embedding).
    Get {
        user: String,
        #[arg(long)]
        embedding: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete an onboarded user for good.
    Delete {
        user: String,
        #[arg(long)]
        json: bool,
    },
}

/// A user as GetUser and OnboardUser describe them.
#[derive(Serialize)]
pub struct User {
    pub user_id: String,
    /// USER_ORIGIN_SEEN or USER_ORIGIN_ONBOARDED.
    pub origin: String,
    pub created_unix_ms: i64,
    pub answers: u32,
    pub personalised: bool,
    /// Onboarded for another checkpoint and re-adapted here from the kept answers.
    pub readapted: bool,
    /// Of those answers, the ones naming a response this checkpoint lacks.
    pub answers_outside_catalogue: u32,
    pub routing: Vec<Route>,
    pub embedding: Vec<f32>,
}

#[derive(Serialize)]
pub struct Route {
    pub projection: String,
    pub expert: u32,
    pub weight: f32,
}

impl User {
    fn of(u: UserInfo) -> Self {
        Self {
            origin: UserOrigin::try_from(u.origin)
                .map_or("UNKNOWN", |o| o.as_str_name())
                .to_string(),
            user_id: u.user_id,
            created_unix_ms: u.created_unix_ms,
            answers: u.answers,
            personalised: u.personalised,
            readapted: u.readapted,
            answers_outside_catalogue: u.answers_outside_catalogue,
            routing: u
                .routing
                .into_iter()
                .map(|r| Route {
                    projection: r.projection,
                    expert: r.expert,
                    weight: r.weight,
                })
                .collect(),
            embedding: u.embedding,
        }
    }
}

impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:?}: {}, {} answers, {}",
            self.user_id,
            self.origin,
            self.answers,
            if self.personalised {
                "personalised"
            } else {
                "population reward"
            }
        )?;
        if self.readapted {
            writeln!(
                f,
                "  re-adapted from the answers kept for another checkpoint ({} outside this \
                 catalogue)",
                self.answers_outside_catalogue
            )?;
        }
        for r in &self.routing {
            writeln!(
                f,
                "  {}: expert {} (w {:.3})",
                r.projection, r.expert, r.weight
            )?;
        }
        Ok(())
    }
}

pub async fn get(user: String, embedding: bool, conn: &Connection) -> Result<User> {
    let u = conn
        .api()
        .get_user(GetUserRequest {
            user_id: user,
            include_embedding: embedding,
        })
        .await
        .map_err(refused("GetUser"))?
        .into_inner()
        .user
        .unwrap_or_default();
    Ok(User::of(u))
}

#[derive(Serialize)]
pub struct Deleted {
    pub deleted: String,
}

impl fmt::Display for Deleted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "deleted {:?}", self.deleted)
    }
}

pub async fn delete(user: String, conn: &Connection) -> Result<Deleted> {
    conn.api()
        .delete_user(DeleteUserRequest {
            user_id: user.clone(),
        })
        .await
        .map_err(refused("DeleteUser"))?;
    Ok(Deleted { deleted: user })
}

#[derive(clap::Args)]
pub struct SurveyArgs {
    #[arg(long, default_value_t = 8)]
    pub pairs: u32,
    /// An answer so far `CHOSEN_ID>REJECTED_ID` (repeatable).
    #[arg(long = "answer")]
    pub answers: Vec<String>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub json: bool,
}

/// The pairs to ask, most informative first.
#[derive(Serialize)]
#[serde(transparent)]
pub struct Survey(pub Vec<SurveyPair>);

#[derive(Serialize)]
pub struct SurveyPair {
    pub prompt: String,
    pub a: Shown,
    pub b: Shown,
    pub informativeness: f32,
}

#[derive(Serialize)]
pub struct Shown {
    pub id: String,
    pub response: String,
}

impl fmt::Display for Survey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            writeln!(
                f,
                "{}. {} ({:.2} bits)\n   a [{}]: {}\n   b [{}]: {}",
                i + 1,
                p.prompt,
                p.informativeness,
                p.a.id,
                p.a.response,
                p.b.id,
                p.b.response
            )?;
        }
        Ok(())
    }
}

pub async fn survey(args: SurveyArgs, target: &Target) -> Result<Survey> {
    let given: Vec<SurveyAnswer> = args
        .answers
        .iter()
        .map(|a| parse_answer(a))
        .collect::<Result<_>>()?;
    let r = target
        .connect()
        .await?
        .api()
        .suggest_survey(SuggestSurveyRequest {
            max_pairs: args.pairs,
            answers_so_far: given,
            seed: args.seed,
            declined: Vec::new(),
        })
        .await
        .map_err(refused("SuggestSurvey"))?
        .into_inner();
    let shown = |c: Option<copl_proto::v1::CatalogueResponse>| {
        let c = c.unwrap_or_default();
        Shown {
            id: c.id,
            response: c.response,
        }
    };
    Ok(Survey(
        r.pairs
            .into_iter()
            .map(|p| SurveyPair {
                prompt: p.prompt,
                a: shown(p.a),
                b: shown(p.b),
                informativeness: p.informativeness,
            })
            .collect(),
    ))
}
