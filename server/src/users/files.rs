//! The embedded durable store of onboarded users (one server): one JSON file per user under
//! `<data_dir>/users/`, named by the hex of the id's bytes (any id is a safe file name).
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
        self.dir
            .join(format!("{}.json", hex::encode(user_id.as_bytes())))
    }

    /// Every stored user; a file that cannot be read or whose name does not match its
    /// id is an error naming the file (nothing is dropped silently).
    pub fn load_all(&self) -> Result<Vec<StoredUser>> {
        let mut users = Vec::new();
        for entry in
            fs::read_dir(&self.dir).with_context(|| format!("reading {}", self.dir.display()))?
        {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue; // temporary siblings of interrupted writes
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
