//! What the server serves: the loaded [`State`] (model, users, scheduler) behind one
//! atomic pointer, and its hot swap (issue #18). A reload loads the new checkpoint
//! beside the serving one, warms it, swaps the pointer, and lets the old state go:
//! every call took its own `Arc<State>` when it began, so calls already running finish
//! on the old model (their batches run on its scheduler and backend thread) and the old
//! state is freed — its thread ends, its memory returns — when the last of them ends.
//! While a reload loads, both models are in memory: at most 2× one model. A failed load
//! leaves the old one serving.

use std::{
    path::PathBuf,
    sync::{Arc, Weak},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use arc_swap::ArcSwapOption;

use crate::{settings::Settings, state::State};

/// Why a reload did not swap.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the model is still loading; retry shortly")]
    NotLoaded,
    #[error("another reload is running; retry when it has finished")]
    Busy,
    /// The new checkpoint could not be loaded or warmed: the old one still serves.
    #[error("checkpoint {checkpoint}: {error:#} (the previous checkpoint still serves)")]
    Load {
        checkpoint: String,
        error: anyhow::Error,
    },
}

/// What a reload did.
#[derive(Debug)]
pub struct Reloaded {
    pub state: Arc<State>,
    pub previous_checkpoint_id: String,
    pub load_time: Duration,
}

/// The served state and how to replace it.
#[derive(Debug)]
pub struct Serving {
    current: ArcSwapOption<State>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    /// Held (read) by every OnboardUser and DeleteUser, taken (write) by a reload from
    /// reading the store until the swap: see [`State::load`].
    writes: Arc<tokio::sync::RwLock<()>>,
    /// The settings the server started with: a reload reads its checkpoint with them.
    settings: Settings,
}

impl Serving {
    pub fn new(settings: Settings) -> Self {
        Self {
            current: ArcSwapOption::empty(),
            reloading: tokio::sync::Mutex::new(()),
            writes: Arc::default(),
            settings,
        }
    }

    /// The state calls are served by now (none while the first load runs). A call takes
    /// it once and keeps it to its end.
    pub fn current(&self) -> Option<Arc<State>> {
        self.current.load_full()
    }

    /// What a user write (OnboardUser, DeleteUser) holds from before it takes the
    /// state to its end.
    pub async fn write_gate(&self) -> tokio::sync::OwnedRwLockReadGuard<()> {
        self.writes.clone().read_owned().await
    }

    /// Loads and warms the checkpoint `settings` names (on the blocking pool: loading
    /// reads files and runs a forward); with `gate`, the users' write gate is returned
    /// held (see [`State::load`]).
    pub async fn load(
        settings: Settings,
        gate: Option<Arc<tokio::sync::RwLock<()>>>,
    ) -> Result<(Arc<State>, Option<tokio::sync::OwnedRwLockWriteGuard<()>>)> {
        tokio::task::spawn_blocking(move || {
            let (state, gate) = State::load(settings, gate)?;
            warm_up(&state)?;
            Ok((Arc::new(state), gate))
        })
        .await
        .context("loading task")?
    }

    /// Serves `state` (the first load, or a swap) and says so in the metrics.
    pub fn serve(&self, state: Arc<State>) -> Option<Arc<State>> {
        crate::telemetry::checkpoint_served(&state.checkpoint_id);
        self.current.swap(Some(state))
    }

    /// Loads `checkpoint` (None: the configured directory, read again) beside the
    /// serving state, warms it and swaps it in; the old state is freed after its last
    /// call ([`drained`] logs when).
    pub async fn reload(&self, checkpoint: Option<PathBuf>) -> Result<Reloaded, ReloadError> {
        let _one = self.reloading.try_lock().map_err(|_| ReloadError::Busy)?;
        let previous = self.current().ok_or(ReloadError::NotLoaded)?;
        let mut settings = self.settings.clone();
        if let Some(dir) = checkpoint {
            settings.checkpoint = Some(dir);
        }
        let shown = settings
            .checkpoint
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        tracing::info!(checkpoint = %shown, "reloading: loading beside the serving checkpoint");
        let started = Instant::now();
        let (state, gate) = Self::load(settings, Some(self.writes.clone()))
            .await
            .map_err(|error| ReloadError::Load {
                checkpoint: shown.clone(),
                error,
            })?;
        let load_time = started.elapsed();
        let previous_checkpoint_id = previous.checkpoint_id.clone();
        let old = self.serve(state.clone());
        drop(gate);
        tracing::info!(
            checkpoint = %shown,
            checkpoint_id = %state.checkpoint_id,
            previous_checkpoint_id = %previous_checkpoint_id,
            load_ms = load_time.as_millis() as u64,
            "reloaded: new calls are served by the new checkpoint"
        );
        if let Some(old) = old {
            tokio::spawn(drained(Arc::downgrade(&old)));
        }
        drop(previous);
        Ok(Reloaded {
            state,
            previous_checkpoint_id,
            load_time,
        })
    }
}

/// Waits until the swapped-out state's last call has ended and it is freed; logs the
/// wait (what a swap costs in memory: both models live until then).
async fn drained(old: Weak<State>) {
    let started = Instant::now();
    let id = old
        .upgrade()
        .map(|s| s.checkpoint_id.clone())
        .unwrap_or_default();
    while old.strong_count() > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::info!(
        checkpoint_id = %id,
        drained_ms = started.elapsed().as_millis() as u64,
        "the previous checkpoint's last call ended: freed"
    );
}

/// One forward of the population on a short text, so the first call does not pay for
/// lazy initialisation.
fn warm_up(state: &State) -> Result<()> {
    let rows = state
        .model
        .tokenize(&[("warm-up", "warm-up")], true)
        .context("warm-up tokenisation")?;
    let routing =
        copl_core::model::UserRouting::population(state.model.backbone.adapters().moles.len());
    state
        .model
        .score_served(&[copl_core::model::reward::ServedRow {
            tokens: &rows[0],
            routing: &routing,
            embedding: state.adapter.population_embedding(),
        }])
        .context("warm-up forward")?;
    Ok(())
}
