//! The shared store of onboarded users: Redis, one JSON value per user under
//! `<prefix>:<embedding space>:user:<id>`, so that replicas serving one checkpoint see
//! the same users and different checkpoints never mix theirs. OnboardUser answers after
//! Redis acknowledged the write (durability is Redis's: `appendonly yes` with
//! `appendfsync always` matches the embedded store's; docs/operations.md). The
//! connection is re-established on its own after Redis goes away; meanwhile calls
//! that need the store answer UNAVAILABLE.

use std::time::Duration;

use redis::{AsyncCommands, aio::ConnectionManager};

use super::record::{StoreError, StoredUser};

#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// What a `rediss://` connection trusts and presents, read from the files the settings
/// name (`store.redis_ca_cert`, `redis_client_cert`, `redis_client_key`).
#[derive(Clone, Default)]
pub struct RedisTls {
    /// PEM CA; `None`: the system's roots.
    pub root_cert: Option<Vec<u8>>,
    /// PEM certificate and key, for a Redis that asks for client certificates.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl RedisTls {
    /// From the settings' file names (empty: not set); `None` when none is set. A file
    /// that cannot be read is an error naming the setting and the file.
    pub fn from_settings(store: &crate::settings::Store) -> Result<Option<Self>, StoreError> {
        let read = |setting: &str, path: &str| -> Result<Option<Vec<u8>>, StoreError> {
            if path.is_empty() {
                return Ok(None);
            }
            std::fs::read(path).map(Some).map_err(|e| {
                StoreError::Failed(anyhow::anyhow!("setting store.{setting} = {path:?}: {e}"))
            })
        };
        let root_cert = read("redis_ca_cert", &store.redis_ca_cert)?;
        let cert = read("redis_client_cert", &store.redis_client_cert)?;
        let key = read("redis_client_key", &store.redis_client_key)?;
        let client = cert.zip(key);
        Ok((root_cert.is_some() || client.is_some()).then_some(Self { root_cert, client }))
    }
}

impl RedisStore {
    /// Connects to `url` (fails when Redis cannot be reached now); `tls` adds a CA and a
    /// client certificate to a `rediss://` connection. Errors show the URL with its
    /// password as `***`.
    pub async fn connect(
        url: &str,
        prefix: &str,
        timeout: Duration,
        tls: Option<RedisTls>,
    ) -> Result<Self, StoreError> {
        let shown = crate::settings::redacted(url);
        let client = match tls {
            None => redis::Client::open(url),
            Some(tls) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: tls.client.map(|(client_cert, client_key)| {
                        redis::ClientTlsConfig {
                            client_cert,
                            client_key,
                        }
                    }),
                    root_cert: tls.root_cert,
                },
            ),
        }
        .map_err(|e| StoreError::Failed(anyhow::anyhow!("store.redis_url {shown}: {e}")))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| StoreError::Unavailable(format!("connecting to {shown}: {e}")))?;
        Ok(Self {
            connection,
            prefix: prefix.to_string(),
        })
    }

    fn key(&self, user_id: &str, space: &str) -> String {
        format!("{}:{space}:user:{user_id}", self.prefix)
    }

    pub async fn get(&self, user_id: &str, space: &str) -> Result<Option<StoredUser>, StoreError> {
        let key = self.key(user_id, space);
        let value: Option<Vec<u8>> = self.connection.clone().get(&key).await.map_err(failure)?;
        value
            .map(|bytes| {
                serde_json::from_slice(&bytes).map_err(|e| {
                    StoreError::Failed(anyhow::anyhow!("redis key {key:?}: not a stored user: {e}"))
                })
            })
            .transpose()
    }

    pub async fn put(&self, user: &StoredUser, replace: bool) -> Result<bool, StoreError> {
        let key = self.key(&user.user_id, &user.space);
        let value = serde_json::to_vec(user).map_err(|e| StoreError::Failed(e.into()))?;
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(value);
        if !replace {
            set.arg("NX");
        }
        let reply: Option<String> = set
            .query_async(&mut self.connection.clone())
            .await
            .map_err(failure)?;
        Ok(reply.is_some())
    }

    pub async fn delete(&self, user_id: &str, space: &str) -> Result<bool, StoreError> {
        let removed: i64 = self
            .connection
            .clone()
            .del(self.key(user_id, space))
            .await
            .map_err(failure)?;
        Ok(removed > 0)
    }
}

/// Connection trouble is UNAVAILABLE (retry); anything else a failure.
fn failure(e: redis::RedisError) -> StoreError {
    if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_connection_refusal() {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Failed(anyhow::anyhow!("redis: {e}"))
    }
}
