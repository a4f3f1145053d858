//! ReloadCheckpoint (admin): the hot swap of [`crate::serving`], mapped to the wire.

use std::path::PathBuf;

use copl_proto::v1::{ReloadCheckpointRequest, ReloadCheckpointResponse};
use tonic::{Request, Response, Status};

use super::RewardApi;
use crate::serving::ReloadError;

impl RewardApi {
    pub(super) async fn reload_checkpoint_impl(
        &self,
        request: Request<ReloadCheckpointRequest>,
    ) -> Result<Response<ReloadCheckpointResponse>, Status> {
        let r = request.into_inner();
        let dir = (!r.checkpoint.is_empty()).then(|| PathBuf::from(&r.checkpoint));
        let reloaded = self.serving.reload(dir).await;
        let outcome = match &reloaded {
            Ok(_) => "swapped",
            Err(ReloadError::Busy) => "busy",
            Err(_) => "failed",
        };
        metrics::counter!("copl_reloads_total", "outcome" => outcome).increment(1);
        let reloaded = reloaded.map_err(|e| match e {
            ReloadError::NotLoaded => Status::unavailable(e.to_string()),
            ReloadError::Busy => Status::aborted(e.to_string()),
            ReloadError::Load { .. } => {
                tracing::error!(error = %e, "reload failed");
                Status::failed_precondition(format!("checkpoint: {e}"))
            }
        })?;
        Ok(Response::new(ReloadCheckpointResponse {
            checkpoint_id: reloaded.state.checkpoint_id.clone(),
            previous_checkpoint_id: reloaded.previous_checkpoint_id,
            checkpoint: reloaded.state.checkpoint.display().to_string(),
            load_ms: reloaded.load_time.as_millis() as u64,
        }))
    }
}
