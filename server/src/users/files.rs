//! The embedded durable store of onboarded users (one server): one JSON file per user under
//! `<data_dir>/users/`, named by the hex of the id's bytes (any id is a safe file name);
//! an id whose hex would pass the file-name limit (over [`HEX_NAME_MAX_BYTES`] bytes:
//! 124–128-byte ids failed OnboardUser with "File name too long", issue #15) is named
//! `h-<sha256 of the id>` instead. The record holds the id either way.
//! A write goes to a temporary sibling, is flushed to disk, renamed over the old file,
//! and the directory is flushed, before OnboardUser answers: a crash leaves the old
//! record or the new one, never a torn one. Delete removes the file and flushes the
//! directory.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};

use super::store::StoredUser;

/// The longest id named by its hex: `<hex>.json.tmp` (the write's temporary sibling)
/// then fits the 255-byte file-name limit of Linux file systems.
pub const HEX_NAME_MAX_BYTES: usize = (255 - ".json.tmp".len()) / 2;

/// The directory of user files.
#[derive(Clone, Debug)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// Opens (creating) `<data_dir>/users`.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let dir = data_dir.join("users");
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self { dir })
    }

    fn path(&self, user_id: &str) -> PathBuf {
        let bytes = user_id.as_bytes();
        let stem = if bytes.len() <= HEX_NAME_MAX_BYTES {
            hex::encode(bytes)
        } else {
            use sha2::{Digest, Sha256};
            format!("h-{}", hex::encode(Sha256::digest(bytes)))
        };
        self.dir.join(format!("{stem}.json"))
    }

    /// Every stored user; a file that cannot be read or whose name does not match its
    /// id is an error naming the file (nothing is dropped silently). Run at start, before
    /// any write: it also removes the `.json.tmp` siblings that interrupted writes left
    /// (their rename never happened, so no client was told the record was stored).
    pub fn load_all(&self) -> Result<Vec<StoredUser>> {
        let mut users = Vec::new();
        for entry in
            fs::read_dir(&self.dir).with_context(|| format!("reading {}", self.dir.display()))?
        {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                if path.to_string_lossy().ends_with(".json.tmp") {
                    fs::remove_file(&path)
                        .with_context(|| format!("removing {}", path.display()))?;
                }
                continue;
            }
            let text =
                fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let user: StoredUser = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a stored user", path.display()))?;
            if self.path(&user.user_id) != path {
                bail!(
                    "{}: holds user {:?}, whose file name differs",
                    path.display(),
                    user.user_id
                );
            }
            users.push(user);
        }
        users.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        Ok(users)
    }

    /// The record of `user_id`, if any.
    pub fn get(&self, user_id: &str) -> Result<Option<StoredUser>> {
        let path = self.path(user_id);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("{}: not a stored user", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes `user` durably (replacing any earlier record).
    pub fn put(&self, user: &StoredUser) -> Result<()> {
        let path = self.path(&user.user_id);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec(user)?;
        let mut file =
            fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(&text)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
        self.sync_dir()
    }

    /// Removes `user_id` for good; false when it was not stored.
    pub fn delete(&self, user_id: &str) -> Result<bool> {
        let path = self.path(user_id);
        match fs::remove_file(&path) {
            Ok(()) => {
                self.sync_dir()?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
        }
    }

    fn sync_dir(&self) -> Result<()> {
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("flushing {}", self.dir.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> StoredUser {
        StoredUser {
            user_id: id.to_string(),
            embedding: vec![0.6, 0.8],
            personalised: true,
            created_unix_ms: 1,
            answers: 8,
            space: "s".into(),
        }
    }

    /// A write interrupted before its rename leaves a `.json.tmp`: loading removes it,
    /// keeps the stored users, and leaves other files alone.
    #[test]
    fn loading_removes_the_leftovers_of_interrupted_writes() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = FileStore::open(dir.path()).unwrap_or_else(|e| panic!("{e:#}"));
        store.put(&user("kept")).unwrap_or_else(|e| panic!("{e:#}"));
        let leftover = store.path("torn").with_extension("json.tmp");
        fs::write(&leftover, b"{\"user_id\": \"to").unwrap_or_else(|e| panic!("{e}"));
        let other = dir.path().join("users").join("README");
        fs::write(&other, b"not ours").unwrap_or_else(|e| panic!("{e}"));
        let users = store.load_all().unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].user_id, "kept");
        assert!(!leftover.exists());
        assert!(other.exists());
    }

    /// Ids up to the limit of 128 bytes, ASCII and multi-byte, are stored, read back,
    /// listed and deleted; a short id keeps its hex name (existing stores stay valid).
    #[test]
    fn every_id_up_to_the_limit_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = FileStore::open(dir.path()).unwrap_or_else(|e| panic!("{e:#}"));
        let ids = [
            "alice".to_string(),
            "a".repeat(HEX_NAME_MAX_BYTES),
            "a".repeat(HEX_NAME_MAX_BYTES + 1),
            "b".repeat(128),
            "é".repeat(64),
        ];
        for id in &ids {
            store
                .put(&user(id))
                .unwrap_or_else(|e| panic!("{} bytes: {e:#}", id.len()));
            let back = store.get(id).unwrap_or_else(|e| panic!("{e:#}"));
            assert_eq!(back.map(|u| u.user_id), Some(id.clone()));
        }
        assert!(store.path("alice").ends_with("616c696365.json"));
        let listed: Vec<String> = store
            .load_all()
            .unwrap_or_else(|e| panic!("{e:#}"))
            .into_iter()
            .map(|u| u.user_id)
            .collect();
        let mut expected = ids.to_vec();
        expected.sort();
        assert_eq!(listed, expected);
        for id in &ids {
            assert!(store.delete(id).unwrap_or_else(|e| panic!("{e:#}")));
        }
        assert!(
            store
                .load_all()
                .unwrap_or_else(|e| panic!("{e:#}"))
                .is_empty()
        );
    }
}
