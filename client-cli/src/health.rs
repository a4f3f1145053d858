//! `copl health`: the standard grpc.health.v1 check (a container HEALTHCHECK, a probe):
//! exit 0 only when SERVING, 20 when the server answers otherwise (crate::exit).

use std::fmt;

use anyhow::{Context, Result};
use serde::Serialize;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{connect::Connection, exit::Failure};

#[derive(clap::Args)]
pub struct HealthArgs {
    /// Service name to check; empty for the server as a whole.
    #[arg(long, default_value = "copl.v1.RewardService")]
    pub service: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
pub struct Health {
    pub service: String,
    /// SERVING, NOT_SERVING, SERVICE_UNKNOWN or UNKNOWN.
    pub status: String,
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.service, self.status)
    }
}

impl Health {
    /// `Err(NotServing)` unless SERVING (after the answer is printed).
    pub fn serving(&self) -> Result<()> {
        if self.status == ServingStatus::Serving.as_str_name() {
            Ok(())
        } else {
            Err(Failure::NotServing {
                service: self.service.clone(),
                status: self.status.clone(),
            }
            .into())
        }
    }
}

pub async fn check(args: &HealthArgs, conn: &Connection) -> Result<Health> {
    let response = HealthClient::new(conn.channel.clone())
        .check(HealthCheckRequest {
            service: args.service.clone(),
        })
        .await
        .map_err(crate::exit::refused("Health"))
        .with_context(|| format!("health check of {:?}", args.service))?
        .into_inner();
    let status = ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown);
    Ok(Health {
        service: args.service.clone(),
        status: status.as_str_name().to_string(),
    })
}
