//! Everything a loaded server holds: the reward model, the onboarding adapter and survey
//! engine, the catalogue of responses, the users, the scheduler. [`State::load`] checks
//! the checkpoint (format version, sections, shapes, backbone checksum) and refuses a
//! bad one with a message that says what is wrong.

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use anyhow::{Context, Result, bail};
use copl_core::{
    adapt::{AdaptConfig, Adapter, SurveyConfig, SurveyEngine},
    checkpoint::{self, CatalogueEntry, Manifest},
    model::reward::RewardModel,
};

use crate::{
    backend::Backend,
    scheduler::{BatchLimits, Scheduler},
    settings::Settings,
    users::{EmbeddingSpace, Users, UsersConfig, store::UserStore},
};

/// The catalogue: response rows with their texts, by id and by text.
#[derive(Debug)]
pub struct Catalogue {
    pub entries: Vec<CatalogueEntry>,
    /// Shared with the users module (a stored user's answers are resolved by it).
    pub by_id: Arc<HashMap<String, u32>>,
    pub by_text: HashMap<String, Vec<u32>>,
}

impl Catalogue {
    fn new(entries: Vec<CatalogueEntry>) -> Self {
        let mut by_id = HashMap::with_capacity(entries.len());
        let mut by_text: HashMap<String, Vec<u32>> = HashMap::new();
        for (row, e) in entries.iter().enumerate() {
            by_id.insert(e.id.clone(), row as u32);
            by_text
                .entry(e.response.clone())
                .or_default()
                .push(row as u32);
        }
        Self {
            entries,
            by_id: Arc::new(by_id),
            by_text,
        }
    }
}

/// The loaded server.
#[derive(Debug)]
pub struct State {
    pub settings: Settings,
    pub checkpoint: PathBuf,
    /// [`checkpoint::checkpoint_id`] of `checkpoint`: what replicas compare.
    pub checkpoint_id: String,
    pub loaded_unix_ms: i64,
    /// `copl_checkpoint_requests_total{checkpoint_id}`, registered once at load: a call
    /// counts itself without building the label.
    pub requests_answered: metrics::Counter,
    pub manifest: Manifest,
    pub model: Arc<RewardModel>,
    pub adapter: Arc<Adapter>,
    pub survey: SurveyEngine,
    pub catalogue: Catalogue,
    pub users: Users,
    pub scheduler: Scheduler,
    /// Effective input limit: the setting, capped by the model's `max_tokens`.
    pub max_input_tokens: usize,
    pub device: String,
}

impl State {
    /// Loads and checks the checkpoint named by `settings`, starts the backend and the
    /// scheduler (on the current runtime). The users are loaded last, after taking
    /// `users_gate` for writing when one is given (a reload: no OnboardUser or DeleteUser
    /// runs from the moment the store is read until the new state serves, so none is
    /// missed; the guard is returned to be dropped after the swap).
    pub fn load(
        settings: Settings,
        users_gate: Option<Arc<tokio::sync::RwLock<()>>>,
    ) -> Result<(Self, Option<tokio::sync::OwnedRwLockWriteGuard<()>>)> {
        let dir = settings
            .checkpoint
            .clone()
            .context("no checkpoint: give --checkpoint DIR (or checkpoint in the config file, or COPL_CHECKPOINT)")?;
        if !dir.is_dir() {
            bail!("checkpoint {} is not a directory", dir.display());
        }
        let manifest = Manifest::load(&dir)?;
        if manifest.format_version != checkpoint::FORMAT_VERSION {
            bail!(
                "{}: checkpoint format version {}, this server reads version {}",
                dir.display(),
                manifest.format_version,
                checkpoint::FORMAT_VERSION
            );
        }
        let gcf = manifest.gcf.clone().with_context(|| {
            format!(
                "{}: no gcf section in the manifest (run copl-train gcf)",
                dir.display()
            )
        })?;
        let model_section = manifest.model.clone().with_context(|| {
            format!(
                "{}: no model section in the manifest (run copl-train mole)",
                dir.display()
            )
        })?;
        if model_section.config.mole.user_dim != gcf.dim {
            bail!(
                "{}: the model's gates read {}-dimensional users, the GCF embeddings have {}",
                dir.display(),
                model_section.config.mole.user_dim,
                gcf.dim
            );
        }
        let device = copl_core::device::parse(&settings.device)?;
        let dtype = copl_core::device::dtype(&settings.dtype, &device)?;
        let backbone = settings
            .backbone
            .clone()
            .unwrap_or_else(|| PathBuf::from(&model_section.backbone));
        let model = RewardModel::load_as(&dir, &backbone, &device, dtype)
            .with_context(|| format!("loading the reward model of {}", dir.display()))?;
        let (adapter, ids) = Adapter::from_checkpoint(&dir)?;
        let catalogue = checkpoint::load_catalogue(&dir, &ids).with_context(|| {
            "the checkpoint lacks a usable catalogue.jsonl (written by copl-train gcf since \
             2026-11-27: rerun it)"
        })?;
        let catalogue = Catalogue::new(catalogue);
        let survey_pairs = checkpoint::load_survey_pairs(&dir, ids.responses.len())?;
        let survey = SurveyEngine::build(
            &adapter,
            &SurveyEngine::candidate_pairs(&adapter, &survey_pairs),
            &SurveyConfig {
                committee: settings.onboarding.survey_committee,
                pool: settings.onboarding.survey_pool,
                ..SurveyConfig::default()
            },
        );
        let users_config = UsersConfig {
            space: EmbeddingSpace::of_checkpoint(&dir, &gcf)?,
            adapt: AdaptConfig {
                min_neighbours: settings.onboarding.min_neighbours,
                max_hops: settings.limits.max_hops,
                ..AdaptConfig::default()
            },
            response_rows: catalogue.by_id.clone(),
            readapt: settings.onboarding.readapt(),
        };
        let model = Arc::new(model);
        let adapter = Arc::new(adapter);
        // Loading runs on the blocking pool; the store's client is async.
        let runtime = tokio::runtime::Handle::current();
        let checkpoint_id = checkpoint::checkpoint_id(&dir)?;
        let (users, gate) = runtime.block_on(async {
            let gate = match users_gate {
                Some(gate) => Some(gate.write_owned().await),
                None => None,
            };
            let store = UserStore::open(&settings).await?;
            let users =
                Users::load(model.clone(), adapter.clone(), &ids, store, users_config).await?;
            anyhow::Ok((users, gate))
        })?;
        let max_input_tokens = settings
            .limits
            .max_input_tokens
            .unwrap_or(model.config.max_tokens)
            .min(model.config.max_tokens);
        copl_core::model::reward::check_token_limit(
            model.template_tokens,
            max_input_tokens,
            "limits.max_input_tokens",
        )?;
        let backend = Backend::start(model.clone()).context("starting the backend thread")?;
        let scheduler = Scheduler::start(
            backend,
            BatchLimits {
                max_rows: settings.limits.max_batch_rows,
                linger: std::time::Duration::from_micros(settings.limits.batch_linger_micros),
                max_tokens: settings.limits.max_batch_tokens.max(max_input_tokens),
                padded: model.pads_served_batches(),
                max_queued: settings.limits.max_queued_requests,
            },
        );
        let state = Self {
            device: settings.device.clone(),
            settings,
            checkpoint: dir,
            requests_answered: metrics::counter!(
                "copl_checkpoint_requests_total",
                "checkpoint_id" => checkpoint_id.clone()
            ),
            checkpoint_id,
            loaded_unix_ms: crate::users::now_unix_ms(),
            manifest,
            model,
            adapter,
            survey,
            catalogue,
            users,
            scheduler,
            max_input_tokens,
        };
        Ok((state, gate))
    }
}
