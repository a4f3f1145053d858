//! `Info`'s answer: the served model, its checkpoint and every limit a client must
//! respect, read from the loaded state.

use copl_proto::v1::{InfoResponse, Limits};

use crate::state::State;

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
        dtype: model.dtype.as_str().to_string(),
        checkpoint_id: state.checkpoint_id.clone(),
        loaded_unix_ms: state.loaded_unix_ms,
        parent_checkpoint_id: state
            .manifest
            .lineage
            .as_ref()
            .map(|l| l.parent_checkpoint_id.clone())
            .unwrap_or_default(),
        population_reward: "the shared LoRA expert only (eq. 10 without the user's expert \
                            term, w_u = 0); not the average of users' rewards"
            .into(),
    }
}
