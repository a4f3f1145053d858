//! Where onboarded users live: the embedded store ([`FileStore`], one JSON file per user
//! under the data directory; one server) or Redis ([`RedisStore`], shared by every
//! replica). A record is durable in the store before OnboardUser answers.

pub use super::record::{StoreError, StoredUser};
use super::{
    files::{FileStore, Loaded},
    redis_store::RedisStore,
};

/// The configured store.
#[derive(Clone, Debug)]
pub enum UserStore {
    /// Files. "Put unless present" is a read then a write: it holds because the caller
    /// serialises the writes of one id (`Users::write`'s per-id lock, the only writer).
    Embedded {
        files: FileStore,
        /// `store.on_corrupt = "quarantine"`: unreadable files are set aside at start.
        quarantine: bool,
    },
    Redis(RedisStore),
}

impl UserStore {
    /// The store `settings` name: files under `data_dir`, or Redis (connected now).
    pub async fn open(settings: &crate::settings::Settings) -> anyhow::Result<Self> {
        let store = &settings.store;
        Ok(match store.backend.as_str() {
            "redis" => Self::Redis(
                RedisStore::connect(
                    &store.redis_url,
                    &store.redis_prefix,
                    std::time::Duration::from_millis(store.redis_timeout_ms.max(1)),
                    super::redis_store::RedisTls::from_settings(store)?,
                )
                .await
                .map_err(|e| anyhow::anyhow!("store.backend = \"redis\": {e}"))?,
            ),
            _ => Self::Embedded {
                files: FileStore::open(&settings.data_dir)?,
                quarantine: store.on_corrupt == "quarantine",
            },
        })
    }

    /// True when other servers write to the same store: a replica must read through
    /// rather than trust what it holds in memory.
    pub fn shared(&self) -> bool {
        matches!(self, Self::Redis(_))
    }

    /// The users to hold in memory at start: every stored user of the embedded store
    /// (and the files it set aside). A shared store moves records from before
    /// 2026-12-06's keys to today's ([`RedisStore::scan`]) and returns them all only
    /// when `every` (eager re-adaptation); otherwise none (read through on first use).
    pub async fn load_all(&self, every: bool) -> Result<Loaded, StoreError> {
        match self {
            Self::Embedded { files, quarantine } => {
                let (files, quarantine) = (files.clone(), *quarantine);
                blocking(move || files.load_all(quarantine)).await
            }
            Self::Redis(redis) => {
                let users = redis.scan(every).await?;
                Ok(Loaded {
                    users,
                    ..Loaded::default()
                })
            }
        }
    }

    /// The record of `user_id`, whatever its embedding space.
    pub async fn get(&self, user_id: &str) -> Result<Option<StoredUser>, StoreError> {
        match self {
            Self::Embedded { files, .. } => {
                let (files, id) = (files.clone(), user_id.to_string());
                blocking(move || files.get(&id)).await
            }
            Self::Redis(redis) => redis.get(user_id).await,
        }
    }

    /// Stores `user` durably; unless `replace`, only when no record exists (false then).
    pub async fn put(&self, user: &StoredUser, replace: bool) -> Result<bool, StoreError> {
        match self {
            Self::Embedded { files, .. } => {
                let (files, user) = (files.clone(), user.clone());
                blocking(move || {
                    if !replace && files.get(&user.user_id)?.is_some() {
                        return Ok(false);
                    }
                    files.put(&user).map(|()| true)
                })
                .await
            }
            Self::Redis(redis) => redis.put(user, replace).await,
        }
    }

    /// Removes `user_id` for good; false when there was no record.
    pub async fn delete(&self, user_id: &str) -> Result<bool, StoreError> {
        match self {
            Self::Embedded { files, .. } => {
                let (files, id) = (files.clone(), user_id.to_string());
                blocking(move || files.delete(&id)).await
            }
            Self::Redis(redis) => redis.delete(user_id).await,
        }
    }
}

/// File work on the blocking pool (fsync must not stall the runtime).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Failed(anyhow::anyhow!("store task: {e}")))?
        .map_err(StoreError::Failed)
}
