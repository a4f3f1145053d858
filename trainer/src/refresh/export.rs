//! The onboarded users as the server stored them (`copl_core::stored_user`): read from
//! its embedded store (the server's data directory, `<dir>/users/*.json`, or that
//! `users/` directory itself) or from the Redis it shares (`redis://…`, `rediss://…`,
//! keys `<prefix>:user:<id>`; the server moves keys of older layouts at its start).

use std::path::Path;

use anyhow::{Context, Result, bail};
use copl_core::stored_user::StoredUser;

/// Every stored user of `source` (a directory or a Redis URL), by id.
pub fn read_users(source: &str, redis_prefix: &str) -> Result<Vec<StoredUser>> {
    let mut users = if source.starts_with("redis://") || source.starts_with("rediss://") {
        from_redis(source, redis_prefix)?
    } else {
        from_files(Path::new(source))?
    };
    users.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    users.dedup_by(|a, b| a.user_id == b.user_id);
    Ok(users)
}

fn from_files(dir: &Path) -> Result<Vec<StoredUser>> {
    let dir = if dir.join("users").is_dir() {
        dir.join("users")
    } else {
        dir.to_path_buf()
    };
    if !dir.is_dir() {
        bail!(
            "--users {}: not a directory (the server's data_dir, its users/ directory, or a \
             redis:// URL)",
            dir.display()
        );
    }
    let mut users = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue; // .corrupt files set aside by the server, temporaries
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let user: StoredUser = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a stored user", path.display()))?;
        user.format_version
            .readable()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        users.push(user);
    }
    Ok(users)
}

fn from_redis(url: &str, prefix: &str) -> Result<Vec<StoredUser>> {
    use redis::Commands;
    let shown = copl_core::redact::redacted(url);
    let client = redis::Client::open(url).with_context(|| format!("--users {shown}"))?;
    let mut connection = client
        .get_connection()
        .with_context(|| format!("connecting to {shown}"))?;
    let pattern = format!("{prefix}:user:*");
    let keys: Vec<String> = connection
        .scan_match::<_, String>(&pattern)
        .with_context(|| format!("scanning {shown} for {pattern}"))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("scanning {shown} for {pattern}"))?;
    let mut users = Vec::with_capacity(keys.len());
    for key in keys {
        let value: Option<Vec<u8>> = connection
            .get(&key)
            .with_context(|| format!("reading {key:?} from {shown}"))?;
        let Some(value) = value else { continue };
        let user: StoredUser = serde_json::from_slice(&value)
            .with_context(|| format!("redis key {key:?}: not a stored user"))?;
        users.push(user);
    }
    Ok(users)
}
