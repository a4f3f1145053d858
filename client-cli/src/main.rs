//! `copl`: the operator's command line for CoPL-serve.
//!
//! `health` (the standard grpc.health.v1 check, usable as a container HEALTHCHECK and in
//! scripts: exit 0 only when SERVING), `info`, `score`, `compare`, `onboard`, `user get`,
//! `user delete`, `survey`. Human-readable output by default, JSON with `--json`. A
//! refused call exits 1 with the gRPC code and the server's message. `bench` is the load
//! generator ([`bench`]); API keys and their digests are in [`key`].

#[macro_use]
mod output;
mod bench;
mod key;

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use copl_proto::v1::{
    AdaptationFallback, CompareRequest, DeleteUserRequest, GetUserRequest, InfoRequest,
    OnboardOptions, OnboardUserRequest, ResponseRef, ScoreRequest, ScoreResult,
    SuggestSurveyRequest, SurveyAnswer, UserInfo, UserOrigin, response_ref::Ref,
    reward_service_client::RewardServiceClient,
};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

#[derive(Parser)]
#[command(name = "copl", version, about = "Operate a CoPL-serve server")]
struct Cli {
    /// Server address.
    #[arg(
        long,
        global = true,
        env = "COPL_ADDR",
        default_value = "http://127.0.0.1:50051"
    )]
    addr: String,
    /// Seconds to wait for the server before giving up.
    #[arg(long, global = true, default_value_t = 5.0)]
    timeout: f64,
    /// API key, sent as `authorization: Bearer <key>` (servers with auth configured).
    #[arg(long, global = true, env = "COPL_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// PEM CA certificate to trust for an `https://` server (TLS).
    #[arg(long, global = true, env = "COPL_CA_CERT")]
    ca_cert: Option<std::path::PathBuf>,
    /// Name the server's certificate must carry [default: the address's host].
    #[arg(long, global = true)]
    tls_domain: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a new random API key and the sha256 digest the server's configuration takes
    /// (`auth.scoring_keys_sha256` or `auth.admin_keys_sha256`). Needs no server.
    Keygen,
    /// Exit 0 if the server reports SERVING (for a service, or the whole server).
    Health {
        /// Service name to check; empty for the server as a whole.
        #[arg(long, default_value = "copl.v1.RewardService")]
        service: String,
    },
    /// Print the server's model, checkpoint and limits as JSON.
    Info,
    /// The reward of one response for a user (empty user: the population reward).
    Score {
        #[arg(long, default_value = "")]
        user: String,
        #[arg(long)]
        prompt: String,
        #[arg(long)]
        response: String,
        /// Cut over-long input instead of refusing it.
        #[arg(long)]
        truncate: bool,
        #[arg(long)]
        json: bool,
    },
    /// P(a preferred to b) for a user, and both rewards.
    Compare {
        #[arg(long, default_value = "")]
        user: String,
        #[arg(long)]
        prompt: String,
        #[arg(long)]
        a: String,
        #[arg(long)]
        b: String,
        #[arg(long)]
        truncate: bool,
        #[arg(long)]
        json: bool,
    },
    /// Onboard a new user from pairwise answers on catalogue responses.
    Onboard {
        #[arg(long)]
        user: String,
        /// An answer `CHOSEN_ID>REJECTED_ID` (repeatable).
        #[arg(long = "answer")]
        answers: Vec<String>,
        /// A JSON file: `[{"chosen": "ID", "rejected": "ID"}, …]`.
        #[arg(long)]
        answers_file: Option<std::path::PathBuf>,
        /// Neighbourhood hops (even) [server default: 2].
        #[arg(long)]
        hops: Option<u32>,
        /// Replace an existing onboarded user of this id.
        #[arg(long)]
        replace: bool,
        #[arg(long)]
        json: bool,
    },
    /// Look up or delete a user.
    #[command(subcommand)]
    User(UserCommand),
    /// Load generator: Score calls at a concurrency, for a duration or a count;
    /// throughput and p50/p90/p99 latency.
    Bench(bench::BenchArgs),
    /// Pairs to ask a new user next (given the answers so far).
    Survey {
        #[arg(long, default_value_t = 8)]
        pairs: u32,
        /// An answer so far `CHOSEN_ID>REJECTED_ID` (repeatable).
        #[arg(long = "answer")]
        answers: Vec<String>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// What the server knows of a user (origin, routing, optionally the embedding).
    Get {
        user: String,
        #[arg(long)]
        embedding: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete an onboarded user for good.
    Delete { user: String },
}

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

/// A refused call as an error naming the gRPC code and the server's message.
fn refused(call: &str) -> impl FnOnce(tonic::Status) -> anyhow::Error + '_ {
    move |s| anyhow::anyhow!("{call}: {:?}: {}", s.code(), s.message())
}

fn result_json(r: &ScoreResult) -> serde_json::Value {
    serde_json::json!({
        "reward": r.reward,
        "personalised": r.personalised,
        "input_tokens": r.input_tokens,
        "truncated": r.truncated,
    })
}

fn user_json(u: &UserInfo) -> serde_json::Value {
    serde_json::json!({
        "user_id": u.user_id,
        "origin": UserOrigin::try_from(u.origin).map_or("UNKNOWN", |o| o.as_str_name()),
        "created_unix_ms": u.created_unix_ms,
        "answers": u.answers,
        "personalised": u.personalised,
        "routing": u.routing.iter().map(|r| serde_json::json!({
            "projection": r.projection, "expert": r.expert, "weight": r.weight,
        })).collect::<Vec<_>>(),
        "embedding": u.embedding,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    match run(Cli::parse()).await {
        Err(e) if output::is_closed_pipe(&e) => Ok(()),
        done => done,
    }
}

async fn run(cli: Cli) -> Result<()> {
    if let Command::Keygen = cli.command {
        let fresh = key::new_key();
        out!("key:    {fresh}");
        out!("sha256: {}", key::hex_digest(&fresh));
        return Ok(());
    }
    let timeout = Duration::from_secs_f64(cli.timeout.max(0.001));
    let mut endpoint = Endpoint::from_shared(cli.addr.clone())
        .with_context(|| format!("--addr {:?} is not a valid URI", cli.addr))?
        .connect_timeout(timeout)
        .timeout(timeout);
    if let Some(ca) = &cli.ca_cert {
        let pem = std::fs::read(ca).with_context(|| format!("--ca-cert {}", ca.display()))?;
        let mut tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(pem));
        if let Some(domain) = &cli.tls_domain {
            tls = tls.domain_name(domain.clone());
        }
        endpoint = endpoint.tls_config(tls).context("TLS settings")?;
    } else if cli.addr.starts_with("https://") {
        bail!(
            "--addr {} is TLS: give --ca-cert FILE (the CA that signed its certificate)",
            cli.addr
        );
    }
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", cli.addr))?;
    let api_key = key::ApiKey::new(cli.api_key.as_deref())?;
    let api = |channel: Channel| RewardServiceClient::with_interceptor(channel, api_key.clone());
    match cli.command {
        Command::Keygen => unreachable!("answered above"),
        Command::Health { service } => {
            let response = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: service.clone(),
                })
                .await
                .with_context(|| format!("health check of {service:?}"))?
                .into_inner();
            let status = ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown);
            out!("{service:?}: {}", status.as_str_name());
            if status != ServingStatus::Serving {
                bail!("{service:?} is not serving");
            }
        }
        Command::Info => {
            let info = api(channel)
                .info(InfoRequest {})
                .await
                .context("Info")?
                .into_inner();
            let limits = info.limits.unwrap_or_default();
            let json = serde_json::json!({
                "version": info.version,
                "backbone": info.backbone,
                "backbone_family": info.backbone_family,
                "backbone_sha256": info.backbone_sha256,
                "checkpoint": info.checkpoint,
                "checkpoint_format_version": info.checkpoint_format_version,
                "text_template": info.text_template,
                "embedding_dim": info.embedding_dim,
                "num_experts": info.num_experts,
                "adapted_projections": info.adapted_projections,
                "seen_users": info.seen_users,
                "onboarded_users": info.onboarded_users,
                "catalogue_responses": info.catalogue_responses,
                "device": info.device,
                "population_reward": info.population_reward,
                "limits": {
                    "max_input_tokens": limits.max_input_tokens,
                    "max_batch_items": limits.max_batch_items,
                    "max_batch_tokens": limits.max_batch_tokens,
                    "max_queued_requests": limits.max_queued_requests,
                    "max_survey_answers": limits.max_survey_answers,
                    "max_hops": limits.max_hops,
                    "max_message_bytes": limits.max_message_bytes,
                    "max_batch_rows": limits.max_batch_rows,
                    "batch_linger_micros": limits.batch_linger_micros,
                    "max_concurrent_streams": limits.max_concurrent_streams,
                },
            });
            out!("{}", serde_json::to_string_pretty(&json)?);
        }
        Command::Score {
            user,
            prompt,
            response,
            truncate,
            json,
        } => {
            let r = api(channel)
                .score(ScoreRequest {
                    user_id: user.clone(),
                    prompt,
                    response,
                    truncate,
                })
                .await
                .map_err(refused("Score"))?
                .into_inner();
            let result = r.result.unwrap_or_default();
            if json {
                out!("{}", serde_json::to_string_pretty(&result_json(&result))?);
            } else {
                out!(
                    "reward {:.4} for {} ({} tokens{})",
                    result.reward,
                    if result.personalised {
                        format!("user {user:?}")
                    } else {
                        "the population".into()
                    },
                    result.input_tokens,
                    if result.truncated { ", truncated" } else { "" }
                );
            }
        }
        Command::Compare {
            user,
            prompt,
            a,
            b,
            truncate,
            json,
        } => {
            let r = api(channel)
                .compare_responses(CompareRequest {
                    user_id: user,
                    prompt,
                    response_a: a,
                    response_b: b,
                    truncate,
                })
                .await
                .map_err(refused("CompareResponses"))?
                .into_inner();
            let (ra, rb) = (r.a.unwrap_or_default(), r.b.unwrap_or_default());
            if json {
                out!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "probability_a_preferred": r.probability_a_preferred,
                        "a": result_json(&ra),
                        "b": result_json(&rb),
                    }))?
                );
            } else {
                out!(
                    "P(a preferred) = {:.3}  (reward a {:.4}, b {:.4})",
                    r.probability_a_preferred,
                    ra.reward,
                    rb.reward
                );
            }
        }
        Command::Onboard {
            user,
            answers,
            answers_file,
            hops,
            replace,
            json,
        } => {
            let mut given: Vec<SurveyAnswer> = answers
                .iter()
                .map(|a| parse_answer(a))
                .collect::<Result<_>>()?;
            if let Some(path) = answers_file {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let listed: Vec<serde_json::Value> = serde_json::from_str(&text)
                    .with_context(|| format!("{}: a JSON list of answers", path.display()))?;
                for (i, a) in listed.iter().enumerate() {
                    let (Some(c), Some(r)) = (a["chosen"].as_str(), a["rejected"].as_str()) else {
                        bail!(
                            "{}: answer {i} needs string fields chosen and rejected",
                            path.display()
                        );
                    };
                    given.push(parse_answer(&format!("{c}>{r}"))?);
                }
            }
            let r = api(channel)
                .onboard_user(OnboardUserRequest {
                    user_id: user.clone(),
                    answers: given,
                    options: Some(OnboardOptions {
                        hops,
                        temperature: None,
                    }),
                    replace,
                })
                .await
                .map_err(refused("OnboardUser"))?
                .into_inner();
            let summary = r.answers.unwrap_or_default();
            let fallback =
                AdaptationFallback::try_from(r.fallback).map_or("UNKNOWN", |f| f.as_str_name());
            if json {
                out!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "user": r.user.as_ref().map(user_json),
                        "neighbourhood_size": r.neighbourhood_size,
                        "neighbours_used": r.neighbours_used,
                        "hops_used": r.hops_used,
                        "fallback": fallback,
                        "confidence": r.confidence,
                        "answer_agreement": r.answer_agreement,
                        "answers": {
                            "given": summary.given, "used": summary.used,
                            "duplicates": summary.duplicates,
                            "contradictory": summary.contradictory,
                            "outside_graph": summary.outside_graph,
                        },
                    }))?
                );
            } else {
                out!(
                    "onboarded {user:?} from {} of {} answers: {} neighbours within {} hops \
                     (about {} carry it), fallback {fallback}, confidence {:.2}",
                    summary.used,
                    summary.given,
                    r.neighbourhood_size,
                    r.hops_used,
                    r.neighbours_used,
                    r.confidence
                );
            }
        }
        Command::User(UserCommand::Get {
            user,
            embedding,
            json,
        }) => {
            let u = api(channel)
                .get_user(GetUserRequest {
                    user_id: user,
                    include_embedding: embedding,
                })
                .await
                .map_err(refused("GetUser"))?
                .into_inner()
                .user
                .unwrap_or_default();
            if json {
                out!("{}", serde_json::to_string_pretty(&user_json(&u))?);
            } else {
                let origin = UserOrigin::try_from(u.origin).map_or("UNKNOWN", |o| o.as_str_name());
                out!(
                    "{:?}: {origin}, {} answers, {}",
                    u.user_id,
                    u.answers,
                    if u.personalised {
                        "personalised"
                    } else {
                        "population reward"
                    }
                );
                for r in &u.routing {
                    out!(
                        "  {}: expert {} (w {:.3})",
                        r.projection,
                        r.expert,
                        r.weight
                    );
                }
            }
        }
        Command::Bench(args) => bench::run(channel, api_key, args).await?,
        Command::User(UserCommand::Delete { user }) => {
            api(channel)
                .delete_user(DeleteUserRequest {
                    user_id: user.clone(),
                })
                .await
                .map_err(refused("DeleteUser"))?;
            out!("deleted {user:?}");
        }
        Command::Survey {
            pairs,
            answers,
            seed,
            json,
        } => {
            let given: Vec<SurveyAnswer> = answers
                .iter()
                .map(|a| parse_answer(a))
                .collect::<Result<_>>()?;
            let r = api(channel)
                .suggest_survey(SuggestSurveyRequest {
                    max_pairs: pairs,
                    answers_so_far: given,
                    seed,
                    declined: Vec::new(),
                })
                .await
                .map_err(refused("SuggestSurvey"))?
                .into_inner();
            if json {
                let list: Vec<_> = r
                    .pairs
                    .iter()
                    .map(|p| {
                        let (a, b) = (
                            p.a.clone().unwrap_or_default(),
                            p.b.clone().unwrap_or_default(),
                        );
                        serde_json::json!({
                            "prompt": p.prompt,
                            "a": {"id": a.id, "response": a.response},
                            "b": {"id": b.id, "response": b.response},
                            "informativeness": p.informativeness,
                        })
                    })
                    .collect();
                out!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for (i, p) in r.pairs.iter().enumerate() {
                    let (a, b) = (
                        p.a.clone().unwrap_or_default(),
                        p.b.clone().unwrap_or_default(),
                    );
                    out!(
                        "{}. {} ({:.2} bits)\n   a [{}]: {}\n   b [{}]: {}",
                        i + 1,
                        p.prompt,
                        p.informativeness,
                        a.id,
                        a.response,
                        b.id,
                        b.response
                    );
                }
            }
        }
    }
    Ok(())
}
