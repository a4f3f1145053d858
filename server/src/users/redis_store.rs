//! The shared store of onboarded users: Redis, one JSON value per user under
//! `<prefix>:user:<id>`, whatever checkpoint onboarded them: the record names its
//! embedding space, and a replica on another checkpoint re-adapts the user from the
//! record's answers (issue #18). Until 2026-12-06 the key held the space
//! (`<prefix>:<data hash>:<d>:user:<id>`), so a new checkpoint found no user:
//! [`RedisStore::scan`] moves such keys to today's at every start. OnboardUser answers after
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

    fn key(&self, user_id: &str) -> String {
        format!("{}:user:{user_id}", self.prefix)
    }

    pub async fn get(&self, user_id: &str) -> Result<Option<StoredUser>, StoreError> {
        let key = self.key(user_id);
        let value: Option<Vec<u8>> = self.connection.clone().get(&key).await.map_err(failure)?;
        value.map(|bytes| record(&key, &bytes)).transpose()
    }

    /// One pass over the prefix's keys (SCAN: O(keys), in batches, never blocking
    /// Redis): records under a key of before 2026-12-06 move to today's key (SET NX,
    /// then the old key is deleted; when today's key exists it is the newer write and
    /// wins), and with `every` all records are returned (eager re-adaptation). A value
    /// that is not a record is reported and left alone.
    pub async fn scan(&self, every: bool) -> Result<Vec<StoredUser>, StoreError> {
        let mut connection = self.connection.clone();
        let pattern = format!("{}:*", self.prefix);
        let (mut cursor, mut users, mut moved) = (0u64, Vec::new(), 0usize);
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut connection)
                .await
                .map_err(failure)?;
            for key in keys {
                let Ok(key) = String::from_utf8(key) else {
                    continue;
                };
                let Some(rest) = key.strip_prefix(&format!("{}:", self.prefix)) else {
                    continue;
                };
                let current = rest.starts_with("user:");
                // Lazy re-adaptation reads no record of today's layout here: only old
                // keys are moved, so a start costs one SCAN, not a read per user.
                if (current && !every) || (!current && legacy_user_id(rest).is_none()) {
                    continue;
                }
                let value: Option<Vec<u8>> = connection.get(&key).await.map_err(failure)?;
                let Some(value) = value else { continue };
                let user = match record(&key, &value) {
                    Ok(user) => user,
                    Err(e) => {
                        tracing::error!(error = %e, "a Redis value under the user prefix is not a stored user; left alone");
                        continue;
                    }
                };
                if !current {
                    let _: Option<String> = redis::cmd("SET")
                        .arg(self.key(&user.user_id))
                        .arg(&value)
                        .arg("NX")
                        .query_async(&mut connection)
                        .await
                        .map_err(failure)?;
                    let _: i64 = connection.del(&key).await.map_err(failure)?;
                    moved += 1;
                }
                if every {
                    users.push(user);
                }
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        if moved > 0 {
            tracing::info!(
                records = moved,
                "moved stored users from keys of before 2026-12-06 (<prefix>:<space>:user:<id>) \
                 to <prefix>:user:<id>"
            );
        }
        // SCAN may return a key twice (when Redis rehashes meanwhile).
        users.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        users.dedup_by(|a, b| a.user_id == b.user_id);
        Ok(users)
    }

    pub async fn put(&self, user: &StoredUser, replace: bool) -> Result<bool, StoreError> {
        let key = self.key(&user.user_id);
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

    pub async fn delete(&self, user_id: &str) -> Result<bool, StoreError> {
        let removed: i64 = self
            .connection
            .clone()
            .del(self.key(user_id))
            .await
            .map_err(failure)?;
        Ok(removed > 0)
    }
}

/// The record stored under `key`.
fn record(key: &str, bytes: &[u8]) -> Result<StoredUser, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| {
        StoreError::Failed(anyhow::anyhow!("redis key {key:?}: not a stored user: {e}"))
    })
}

/// The user id of a key of before 2026-12-06 (`<data hash>:<d>:user:<id>` after the
/// prefix: a hex hash, a number), or `None` for any other key.
fn legacy_user_id(rest: &str) -> Option<&str> {
    let (hash, rest) = rest.split_once(':')?;
    let (dim, id) = rest.split_once(":user:")?;
    let hex = !hash.is_empty() && hash.bytes().all(|b| b.is_ascii_hexdigit());
    let number = !dim.is_empty() && dim.bytes().all(|b| b.is_ascii_digit());
    (hex && number).then_some(id)
}

/// Connection trouble is UNAVAILABLE (retry); anything else a failure.
fn failure(e: redis::RedisError) -> StoreError {
    if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_connection_refusal() {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Failed(anyhow::anyhow!("redis: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::legacy_user_id;

    #[test]
    fn only_keys_of_the_old_layout_are_moved() {
        assert_eq!(legacy_user_id("ab12:8:user:u-1"), Some("u-1"));
        assert_eq!(legacy_user_id("ab12:8:user:a:user:b"), Some("a:user:b"));
        // Today's keys, and keys of other applications under the prefix, are not.
        assert_eq!(legacy_user_id("user:ab12:8:user:x"), None);
        assert_eq!(legacy_user_id("ab12:x8:user:u"), None);
        assert_eq!(legacy_user_id("session:42"), None);
    }
}
