//! `copl`: the operator's command line for CoPL-serve.
//!
//! Available now: `health` (the standard grpc.health.v1 check, usable as a container
//! HEALTHCHECK) and `info` (the server's model, checkpoint and limits). Scoring,
//! onboarding and `bench` arrive with the server (issues #7 and #8).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use copl_proto::v1::{InfoRequest, reward_service_client::RewardServiceClient};
use tonic::transport::Endpoint;
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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Exit 0 if the server reports SERVING (for a service, or the whole server).
    Health {
        /// Service name to check; empty for the server as a whole.
        #[arg(long, default_value = "copl.v1.RewardService")]
        service: String,
    },
    /// Print the server's model, checkpoint and limits as JSON.
    Info,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let timeout = Duration::from_secs_f64(cli.timeout.max(0.001));
    let channel = Endpoint::from_shared(cli.addr.clone())
        .with_context(|| format!("--addr {:?} is not a valid URI", cli.addr))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", cli.addr))?;
    match cli.command {
        Command::Health { service } => {
            let response = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: service.clone(),
                })
                .await
                .with_context(|| format!("health check of {service:?}"))?
                .into_inner();
            let status = ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown);
            println!("{service:?}: {}", status.as_str_name());
            if status != ServingStatus::Serving {
                bail!("{service:?} is not serving");
            }
        }
        Command::Info => {
            let info = RewardServiceClient::new(channel)
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
                },
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
    }
    Ok(())
}
