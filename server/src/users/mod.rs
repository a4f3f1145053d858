//! The users the server scores for: seen users from the checkpoint (their routing
//! computed once at load), onboarded users in a concurrent map backed by the durable
//! [`store`] (embedded files, or Redis shared by replicas: then read through on every
//! lookup, so a user onboarded or deleted on one replica is seen so on all), and the
//! population (empty user id: shared expert only).
//!
//! A stored user adapted on another checkpoint's graph (another [`space`]) is re-adapted
//! from the answers the record keeps (`copl_core::adapt::stored`, eq. 11 on this graph), lazily on first
//! use or at load (`users.readapt`); the record is never rewritten for it (issue #18).
//!
//! Writes (OnboardUser, DeleteUser) take one lock per user id around the store's write
//! *and* the map's update, inside a task of their own: two writes of one id cannot
//! interleave their store and memory halves, and a caller that goes away mid-write does
//! not cut the write short (issue #15: an onboarding racing a deletion could leave the
//! user in memory but not on disk, and a cancelled onboarding released the lock while
//! its write went on).

pub mod files;
pub mod record;
pub mod redis_store;
pub mod space;
pub mod store;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result};
use candle_core::Tensor;
use copl_core::{
    adapt::{
        AdaptConfig, Adaptation, Adapter, Fallback,
        stored::{self as readapt, ReadaptError},
    },
    file_version::FileVersion,
    graph::GraphIds,
    model::{UserRouting, reward::RewardModel},
};
use dashmap::DashMap;
use tokio::sync::Mutex;

pub use record::{KeptAnswer, KeptOptions};
pub use space::EmbeddingSpace;
use store::{StoreError, StoredUser, UserStore};

/// What a row of a batch needs of its user.
#[derive(Clone, Debug)]
pub struct Condition {
    /// Cached routing (eq. 8–9).
    pub routing: UserRouting,
    /// The L2-normalised embedding the gates read (the user-token variant reads it).
    pub embedding: Vec<f32>,
    /// False for the population reward (shared expert only).
    pub personalised: bool,
}

/// An onboarded user in memory.
#[derive(Clone, Debug)]
pub struct Onboarded {
    pub condition: Arc<Condition>,
    pub created_unix_ms: i64,
    pub answers: u32,
    /// `Some(answers the catalogue lacks)` when re-adapted from another space's record.
    pub readapted: Option<u32>,
    /// The record this was made from ([`stamp`]): a shared store's reader re-derives the
    /// user only when the record changed.
    stamp: u64,
}

/// A fingerprint of what a record's user is derived from.
fn stamp(user: &StoredUser) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    (
        user.created_unix_ms,
        &user.space,
        user.personalised,
        user.answers,
    )
        .hash(&mut h);
    for x in &user.embedding {
        x.to_bits().hash(&mut h);
    }
    h.finish()
}

/// When users of another embedding space are re-adapted (`users.readapt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readapt {
    /// On first use (a lookup pays one eq. 11, ≈ the cost of an onboarding).
    Lazy,
    /// At load, every stored user (a Redis store is scanned): the first calls pay
    /// nothing, the start pays for all.
    Eager,
}

/// What [`Users::load`] needs besides the model and the store.
#[derive(Debug)]
pub struct UsersConfig {
    pub space: EmbeddingSpace,
    /// The server's neighbourhood settings for eq. 11 (OnboardUser's options and each
    /// record's kept ones set k and κ on top).
    pub adapt: AdaptConfig,
    /// Catalogue id → response row: what a record's answers are resolved by.
    pub response_rows: Arc<HashMap<String, u32>>,
    pub readapt: Readapt,
}

/// A user as found.
#[derive(Clone, Debug)]
pub enum Found {
    Population(Arc<Condition>),
    Seen {
        condition: Arc<Condition>,
        answers: u32,
    },
    Onboarded(Arc<Onboarded>),
}

impl Found {
    pub fn condition(&self) -> &Arc<Condition> {
        match self {
            Self::Population(c) | Self::Seen { condition: c, .. } => c,
            Self::Onboarded(o) => &o.condition,
        }
    }
}

/// Why a user operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("no such user {0:?}")]
    NotFound(String),
    #[error("{0:?} is a seen user (part of the checkpoint) and cannot be {1}")]
    Seen(String, &'static str),
    #[error("{0:?} is already onboarded (set replace to overwrite)")]
    AlreadyExists(String),
    /// Stored for another checkpoint's embedding space before answers were kept.
    #[error(
        "no such user {0:?} for this checkpoint: its record is from another checkpoint and \
         from before answers were kept, so it cannot be re-adapted; onboard it again with \
         replace set"
    )]
    Stale(String),
    #[error("storing user {0:?}: {1:#}")]
    Store(String, anyhow::Error),
    /// The shared store cannot be reached now.
    #[error("user {0:?}: {1}")]
    Unavailable(String, StoreError),
}

impl UserError {
    fn store(user_id: &str, error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => Self::Unavailable(user_id.to_string(), error),
            StoreError::Failed(e) => Self::Store(user_id.to_string(), e),
        }
    }
}

/// Stripes of the per-id write lock (ids hash onto them; writes are rare, so a shared
/// stripe costs nothing measurable).
const WRITE_LOCKS: usize = 64;

/// Seen, onboarded and population users.
#[derive(Debug)]
pub struct Users {
    model: Arc<RewardModel>,
    seen_rows: HashMap<String, u32>,
    seen: Vec<Arc<Condition>>,
    seen_answers: Vec<u32>,
    onboarded: Arc<DashMap<String, Arc<Onboarded>>>,
    /// Write locks, one per user id by hash ([`WRITE_LOCKS`] stripes).
    writes: Arc<Vec<Arc<Mutex<()>>>>,
    population: Arc<Condition>,
    store: UserStore,
    /// The checkpoint's embedding space (stored users carry theirs).
    space: EmbeddingSpace,
    adapter: Arc<Adapter>,
    adapt: AdaptConfig,
    response_rows: Arc<HashMap<String, u32>>,
    /// Embedded store, lazy re-adaptation: records of another space, re-adapted on
    /// first use (and those that cannot be, for their message).
    pending: Arc<DashMap<String, StoredUser>>,
}

impl Users {
    /// Seen users of the checkpoint (routed by `model` once, here), then the stored
    /// onboarded users: those of this space as stored, the others re-adapted now or
    /// held for first use (`config.readapt`).
    pub async fn load(
        model: Arc<RewardModel>,
        adapter: Arc<Adapter>,
        ids: &GraphIds,
        store: UserStore,
        config: UsersConfig,
    ) -> Result<Self> {
        let n = ids.users.len();
        let dim = adapter.dim();
        let flat: Vec<f32> = (0..n as u32)
            .flat_map(|v| adapter.user_embedding(v).iter().copied())
            .collect();
        let users = Tensor::from_vec(flat, (n, dim), &model.device)?;
        let routings = model
            .user_routings(&users)
            .context("routing the seen users")?;
        let graph = adapter.graph();
        let seen = routings
            .into_iter()
            .enumerate()
            .map(|(v, routing)| {
                Arc::new(Condition {
                    routing,
                    embedding: adapter.user_embedding(v as u32).to_vec(),
                    personalised: true,
                })
            })
            .collect();
        let seen_answers = (0..n)
            .map(|v| graph.positive.user_degree.get(v).copied().unwrap_or(0.0) as u32)
            .collect();
        let projections = model.backbone.adapters().moles.len();
        let population = Arc::new(Condition {
            routing: UserRouting::population(projections),
            embedding: adapter.population_embedding().to_vec(),
            personalised: false,
        });
        let this = Self {
            model,
            seen_rows: ids
                .users
                .iter()
                .enumerate()
                .map(|(i, u)| (u.clone(), i as u32))
                .collect(),
            seen,
            seen_answers,
            onboarded: Arc::default(),
            writes: Arc::new((0..WRITE_LOCKS).map(|_| Arc::default()).collect()),
            population,
            store,
            space: config.space,
            adapter,
            adapt: config.adapt,
            response_rows: config.response_rows,
            pending: Arc::default(),
        };
        let eager = config.readapt == Readapt::Eager;
        let stored = this
            .store
            .load_all(eager)
            .await
            .map_err(|e| anyhow::anyhow!("loading the stored users: {e}"))?;
        for q in &stored.quarantined {
            tracing::error!(
                moved_to = %q.file.display(),
                why = %q.why,
                "a stored user's file could not be loaded: set aside, its user must onboard again"
            );
        }
        metrics::counter!("copl_user_records_quarantined_total")
            .increment(stored.quarantined.len() as u64);
        let answers_unknown = stored.users.iter().filter(|u| !u.answers_known()).count();
        if answers_unknown > 0 {
            tracing::warn!(
                records = answers_unknown,
                "stored users from before answers were kept: served in their own embedding \
                 space, but a new checkpoint cannot re-adapt them (they must onboard again)"
            );
        }
        let (mut other_space, mut stale) = (0usize, 0usize);
        for user in stored.users {
            let here = this.space.holds(&user.space);
            other_space += usize::from(!here);
            if !here && !eager {
                this.pending.insert(user.user_id.clone(), user);
                continue;
            }
            match this.restore(&user) {
                Ok(onboarded) => {
                    this.onboarded.insert(user.user_id.clone(), onboarded);
                }
                Err(UserError::Stale(_)) => {
                    stale += 1;
                    this.pending.insert(user.user_id.clone(), user);
                }
                Err(e) => return Err(anyhow::anyhow!("{e}")),
            }
        }
        if other_space > 0 {
            tracing::info!(
                records = other_space,
                cannot = stale,
                when = if eager {
                    "re-adapted now"
                } else {
                    "re-adapted on first use"
                },
                "stored users adapted for another checkpoint"
            );
        }
        metrics::gauge!("copl_seen_users").set(this.seen.len() as f64);
        this.count_onboarded();
        Ok(this)
    }

    /// The write lock of `user_id`.
    fn write_lock(&self, user_id: &str) -> Arc<Mutex<()>> {
        use std::hash::{BuildHasher, RandomState};
        static HASHER: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
        let hash = HASHER.get_or_init(RandomState::new).hash_one(user_id);
        self.writes[hash as usize % self.writes.len()].clone()
    }

    /// Runs `write` (a store write and the map's update) under `user_id`'s write lock in
    /// a task of its own, so that it completes even if the caller goes away.
    async fn write<T: Send + 'static>(
        &self,
        user_id: &str,
        write: impl Future<Output = Result<T, UserError>> + Send + 'static,
    ) -> Result<T, UserError> {
        let lock = self.write_lock(user_id);
        let task = tokio::spawn(async move {
            let _one_writer = lock.lock_owned().await;
            write.await
        });
        task.await.map_err(|e| {
            UserError::Store(user_id.to_string(), anyhow::anyhow!("write task: {e}"))
        })?
    }

    /// The user `user` records, in this space: its embedding routed (eq. 8–9) when the
    /// record is of this space, else re-adapted from its answers first ([`readapt`]).
    fn restore(&self, user: &StoredUser) -> Result<Arc<Onboarded>, UserError> {
        let id = &user.user_id;
        let (embedding, personalised, readapted) = if self.space.holds(&user.space) {
            (user.embedding.clone(), user.personalised, None)
        } else {
            let r = readapt::readapt(&self.adapter, &self.response_rows, &self.adapt, user)
                .map_err(|e| match e {
                    ReadaptError::AnswersUnknown => UserError::Stale(id.clone()),
                    e => UserError::Store(id.clone(), anyhow::anyhow!("re-adapting: {e}")),
                })?;
            metrics::counter!("copl_users_readapted_total").increment(1);
            metrics::counter!("copl_readapt_answers_missing_total")
                .increment(u64::from(r.answers_missing));
            tracing::info!(
                user = %id,
                from_space = %user.space,
                answers_missing = r.answers_missing,
                fallback = ?r.adaptation.fallback,
                "re-adapted a user onboarded for another checkpoint"
            );
            let personalised = r.adaptation.fallback != Fallback::Population;
            (
                r.adaptation.embedding,
                personalised,
                Some(r.answers_missing),
            )
        };
        let condition = if personalised {
            self.route(id, embedding)
                .map_err(|e| UserError::Store(id.clone(), e))?
        } else {
            self.population.clone()
        };
        Ok(Arc::new(Onboarded {
            condition,
            created_unix_ms: user.created_unix_ms,
            answers: user.answers,
            readapted,
            stamp: stamp(user),
        }))
    }

    /// A personalised user's condition: `embedding` routed by the gates (eq. 8–9).
    fn route(&self, id: &str, embedding: Vec<f32>) -> Result<Arc<Condition>> {
        let model = &self.model;
        let t = Tensor::from_vec(embedding.clone(), (1, embedding.len()), &model.device)?;
        let routing = model
            .user_routings(&t)
            .with_context(|| format!("routing stored user {id:?}"))?
            .pop()
            .context("no routing")?;
        Ok(Arc::new(Condition {
            routing,
            embedding,
            personalised: true,
        }))
    }

    /// The population's condition (the shared expert only: what an empty id is scored
    /// with).
    pub fn population(&self) -> Arc<Condition> {
        self.population.clone()
    }

    /// The user `user_id` names; the population for an empty id.
    pub async fn find(&self, user_id: &str) -> Result<Found, UserError> {
        if user_id.is_empty() {
            return Ok(Found::Population(self.population.clone()));
        }
        if let Some(&row) = self.seen_rows.get(user_id) {
            return Ok(Found::Seen {
                condition: self.seen[row as usize].clone(),
                answers: self.seen_answers[row as usize],
            });
        }
        if !self.store.shared() {
            if let Some(o) = self.onboarded.get(user_id) {
                return Ok(Found::Onboarded(o.clone()));
            }
            if !self.pending.contains_key(user_id) {
                return Err(UserError::NotFound(user_id.to_string()));
            }
            return self.restore_pending(user_id).await.map(Found::Onboarded);
        }
        // Shared store: the record decides; the map only saves re-deriving it.
        let stored = self
            .store
            .get(user_id)
            .await
            .map_err(|e| UserError::store(user_id, e))?;
        let Some(stored) = stored else {
            if self.onboarded.remove(user_id).is_some() {
                self.count_onboarded();
            }
            return Err(UserError::NotFound(user_id.to_string()));
        };
        if let Some(held) = self.onboarded.get(user_id)
            && held.stamp == stamp(&stored)
        {
            return Ok(Found::Onboarded(held.clone()));
        }
        let onboarded = self.restore(&stored)?;
        self.onboarded
            .insert(user_id.to_string(), onboarded.clone());
        self.count_onboarded();
        Ok(Found::Onboarded(onboarded))
    }

    /// Embedded store: re-adapts a pending record of another space on its first use,
    /// under the id's write lock (an onboarding or deletion of the id cannot interleave).
    async fn restore_pending(&self, user_id: &str) -> Result<Arc<Onboarded>, UserError> {
        let lock = self.write_lock(user_id);
        let _one_writer = lock.lock().await;
        if let Some(o) = self.onboarded.get(user_id) {
            return Ok(o.clone());
        }
        let record = self
            .pending
            .get(user_id)
            .map(|r| r.clone())
            .ok_or_else(|| UserError::NotFound(user_id.to_string()))?;
        let onboarded = self.restore(&record)?;
        self.onboarded
            .insert(user_id.to_string(), onboarded.clone());
        self.pending.remove(user_id);
        self.count_onboarded();
        Ok(onboarded)
    }

    /// The eq. 11 configuration of an onboarding with `options` (k and κ) under this
    /// server's neighbourhood settings.
    pub fn adapt_config(&self, options: KeptOptions) -> AdaptConfig {
        readapt::adapt_config(&self.adapt, options)
    }

    /// Stores and adds an onboarded user from its adaptation (durable before it is
    /// visible). An existing onboarded id needs `replace`; a seen id is refused.
    pub async fn onboard(
        &self,
        user_id: &str,
        adaptation: &Adaptation,
        answers: Vec<KeptAnswer>,
        options: KeptOptions,
        replace: bool,
        hold: impl Send + 'static,
    ) -> Result<Arc<Onboarded>, UserError> {
        if self.seen_rows.contains_key(user_id) {
            return Err(UserError::Seen(user_id.to_string(), "onboarded again"));
        }
        let stored = StoredUser {
            format_version: FileVersion::CURRENT,
            user_id: user_id.to_string(),
            embedding: adaptation.embedding.clone(),
            personalised: adaptation.fallback != Fallback::Population,
            created_unix_ms: now_unix_ms(),
            answers: answers.len() as u32,
            space: self.space.id.clone(),
            answer_log: Some(answers),
            options: Some(options),
        };
        let onboarded = self.restore(&stored)?;
        // The store decides "already there" (atomically: one writer for files, SET NX
        // in Redis), so two concurrent onboardings of one id cannot both succeed.
        let (store, map, pending, id) = (
            self.store.clone(),
            self.onboarded.clone(),
            self.pending.clone(),
            user_id.to_string(),
        );
        let held = onboarded.clone();
        self.write(user_id, async move {
            let _held_to_the_end = hold;
            let written = store
                .put(&stored, replace)
                .await
                .map_err(|e| UserError::store(&id, e))?;
            if !written {
                return Err(UserError::AlreadyExists(id));
            }
            pending.remove(&id);
            map.insert(id, held);
            count_onboarded(&map);
            Ok(())
        })
        .await?;
        Ok(onboarded)
    }

    /// Removes an onboarded user from the store and from memory. `hold` (the caller's
    /// reload gate) is kept until the write ends, even if the caller goes away; so is
    /// [`Self::onboard`]'s.
    pub async fn delete(&self, user_id: &str, hold: impl Send + 'static) -> Result<(), UserError> {
        if self.seen_rows.contains_key(user_id) {
            return Err(UserError::Seen(user_id.to_string(), "deleted"));
        }
        let (store, map, pending, id) = (
            self.store.clone(),
            self.onboarded.clone(),
            self.pending.clone(),
            user_id.to_string(),
        );
        self.write(user_id, async move {
            let _held_to_the_end = hold;
            let removed = store
                .delete(&id)
                .await
                .map_err(|e| UserError::store(&id, e))?;
            map.remove(&id);
            pending.remove(&id);
            count_onboarded(&map);
            if removed {
                Ok(())
            } else {
                Err(UserError::NotFound(id))
            }
        })
        .await
    }

    fn count_onboarded(&self) {
        count_onboarded(&self.onboarded);
    }

    pub fn seen_count(&self) -> usize {
        self.seen.len()
    }

    pub fn onboarded_count(&self) -> usize {
        self.onboarded.len()
    }
}

fn count_onboarded(map: &DashMap<String, Arc<Onboarded>>) {
    metrics::gauge!("copl_onboarded_users").set(map.len() as f64);
}

/// Milliseconds since the Unix epoch (0 on a clock before it).
pub fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
