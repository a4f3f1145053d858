//! The embedded durable store of onboarded users (one server): one JSON file per user under
//! `<data_dir>/users/`, named by the hex of the id's bytes (any id is a safe file name);
//! an id whose hex would pass the file-name limit (over [`HEX_NAME_MAX_BYTES`] bytes:
//! 124–128-byte ids failed OnboardUser with "File name too long", issue #15) is named
//! `h-<sha256 of the id>` instead. The record holds the id either way.
//! A write goes through `copl_core::atomic` (a temporary sibling flushed to disk, renamed
//! over the old file, the directory flushed) before OnboardUser answers: a crash leaves the old
//! record or the new one, never a torn one. Delete removes the file and flushes the
//! directory. At start a file that cannot be read as its user's record is quarantined:
//! renamed to `<name>.corrupt` (its bytes kept for the operator) and reported, while the
//! other users are served (issue #15: one unreadable file stopped the server).

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, anyhow};

use super::record::StoredUser;

/// The longest id named by its hex: `<hex>.json.tmp` (the write's temporary sibling)
/// then fits the 255-byte file-name limit of Linux file systems.
pub const HEX_NAME_MAX_BYTES: usize =
    (255 - ".json".len() - copl_core::atomic::TEMPORARY_SUFFIX.len()) / 2;

/// What loading the store found: the users, and the files set aside.
#[derive(Debug, Default)]
pub struct Loaded {
    pub users: Vec<StoredUser>,
    pub quarantined: Vec<Quarantined>,
}

/// A user file that could not be loaded, renamed out of the store's way.
#[derive(Debug)]
pub struct Quarantined {
    /// Where it is now (`<file>.corrupt`, or `<file>.corrupt.<n>` beside earlier ones).
    pub file: PathBuf,
    /// Why it could not be loaded (the file's original path leads).
    pub why: String,
}

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

    /// Every stored user. A file that cannot be read, is not a stored user, or whose
    /// name does not match its id is quarantined ([`Quarantined`]: renamed, reported,
    /// never deleted); its user is then unknown until onboarded again. Run at start,
    /// before any write: it also removes the `.json.tmp` siblings that interrupted
    /// writes left (their rename never happened, so no client was told the record was
    /// stored).
    /// With `quarantine` false (`store.on_corrupt = "refuse"`) such a file is an error
    /// naming it instead.
    pub fn load_all(&self, quarantine: bool) -> Result<Loaded> {
        let mut loaded = Loaded::default();
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
            match self.read_record(&path) {
                Ok(user) => loaded.users.push(user),
                Err(why) if !quarantine => return Err(why),
                Err(why) => {
                    let file = set_aside(&path)?;
                    loaded.quarantined.push(Quarantined {
                        file,
                        why: format!("{why:#}"),
                    });
                }
            }
        }
        loaded.users.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        Ok(loaded)
    }

    /// The user record in `path`, which must be the file its id names.
    fn read_record(&self, path: &Path) -> Result<StoredUser> {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let user: StoredUser = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a stored user", path.display()))?;
        if self.path(&user.user_id) != path {
            return Err(anyhow!(
                "{}: holds user {:?}, whose file name differs",
                path.display(),
                user.user_id
            ));
        }
        Ok(user)
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
        let text = serde_json::to_vec(user)?;
        copl_core::atomic::write(&path, &text)
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Removes `user_id` for good; false when it was not stored.
    pub fn delete(&self, user_id: &str) -> Result<bool> {
        let path = self.path(user_id);
        match fs::remove_file(&path) {
            Ok(()) => {
                copl_core::atomic::sync_directory(&path)
                    .with_context(|| format!("flushing {}", self.dir.display()))?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
        }
    }
}

/// Renames `path` to the first free `<path>.corrupt[.<n>]` and returns it.
fn set_aside(path: &Path) -> Result<PathBuf> {
    let name = path.as_os_str().to_owned();
    let target = (0..)
        .map(|n| {
            let mut t = name.clone();
            t.push(if n == 0 {
                ".corrupt".to_string()
            } else {
                format!(".corrupt.{n}")
            });
            PathBuf::from(t)
        })
        .find(|t| !t.exists())
        .unwrap_or_else(|| path.with_extension("corrupt"));
    fs::rename(path, &target)
        .with_context(|| format!("quarantining {} as {}", path.display(), target.display()))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::record::KeptAnswer;
    use copl_core::file_version::FileVersion;

    fn user(id: &str) -> StoredUser {
        StoredUser {
            format_version: FileVersion::CURRENT,
            user_id: id.to_string(),
            embedding: vec![0.6, 0.8],
            personalised: true,
            created_unix_ms: 1,
            answers: 1,
            space: "s".into(),
            answer_log: Some(vec![KeptAnswer {
                chosen: "r000001".into(),
                rejected: "r000002".into(),
                answered_unix_ms: 1,
            }]),
            options: None,
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
        let users = store
            .load_all(true)
            .unwrap_or_else(|e| panic!("{e:#}"))
            .users;
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].user_id, "kept");
        assert!(!leftover.exists());
        assert!(other.exists());
    }

    /// A torn record, a file that is not a record and a record under another id's name
    /// are each renamed to `.corrupt` (bytes kept) and named with why; the good users
    /// load, and a second start finds nothing more to set aside.
    #[test]
    fn unreadable_files_are_quarantined_and_the_rest_load() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = FileStore::open(dir.path()).unwrap_or_else(|e| panic!("{e:#}"));
        store.put(&user("kept")).unwrap_or_else(|e| panic!("{e:#}"));
        let torn = store.path("torn");
        fs::write(&torn, b"{\"user_id\": \"to").unwrap_or_else(|e| panic!("{e}"));
        let misnamed = store.path("bob");
        let alice = serde_json::to_vec(&user("alice")).unwrap_or_default();
        fs::write(&misnamed, &alice).unwrap_or_else(|e| panic!("{e}"));
        // An earlier quarantine of the same name is kept too.
        let earlier = PathBuf::from(format!("{}.corrupt", torn.display()));
        fs::write(&earlier, b"older").unwrap_or_else(|e| panic!("{e}"));

        // store.on_corrupt = "refuse": the start fails, naming a file; nothing moves.
        let refused = store.load_all(false).err().map(|e| format!("{e:#}"));
        assert!(
            refused.as_deref().is_some_and(|m| m.contains(".json")),
            "{refused:?}"
        );
        assert!(torn.exists() && misnamed.exists());

        let loaded = store.load_all(true).unwrap_or_else(|e| panic!("{e:#}"));
        let ids: Vec<&str> = loaded.users.iter().map(|u| u.user_id.as_str()).collect();
        assert_eq!(ids, ["kept"]);
        assert_eq!(loaded.quarantined.len(), 2);
        for q in &loaded.quarantined {
            assert!(q.file.exists(), "{q:?}");
            assert!(q.file.to_string_lossy().contains(".json.corrupt"), "{q:?}");
        }
        let why = |path: &Path| {
            loaded
                .quarantined
                .iter()
                .find(|q| q.why.contains(&path.display().to_string()))
                .map(|q| (q.why.clone(), fs::read(&q.file).unwrap_or_default()))
                .unwrap_or_else(|| panic!("{} not reported: {loaded:?}", path.display()))
        };
        let (message, bytes) = why(&torn);
        assert!(message.contains("not a stored user"), "{message}");
        assert_eq!(bytes, b"{\"user_id\": \"to");
        let (message, bytes) = why(&misnamed);
        assert!(message.contains("file name differs"), "{message}");
        assert_eq!(bytes, alice);
        assert_eq!(fs::read(&earlier).unwrap_or_default(), b"older");
        assert!(!torn.exists() && !misnamed.exists());

        let again = store.load_all(true).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(again.users.len(), 1);
        assert!(again.quarantined.is_empty());
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
            .load_all(true)
            .unwrap_or_else(|e| panic!("{e:#}"))
            .users
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
                .load_all(true)
                .unwrap_or_else(|e| panic!("{e:#}"))
                .users
                .is_empty()
        );
    }

    /// A record written before answers were kept (no `format_version`, no `answer_log`)
    /// still loads, as version 1 with its answers unknown; a new one keeps its answers
    /// in order through a write and a read.
    #[test]
    #[allow(clippy::unwrap_used)] // a panic is the failure report
    fn old_records_load_with_answers_unknown_and_new_ones_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let old = r#"{"user_id": "old", "embedding": [0.6, 0.8], "personalised": true,
            "created_unix_ms": 5, "answers": 8, "space": "s"}"#;
        std::fs::write(store.path("old"), old).unwrap();
        let read = store.get("old").unwrap().unwrap();
        assert_eq!(read.format_version, FileVersion(1));
        assert!(!read.answers_known());
        assert_eq!(read.answers, 8);
        let mut new = user("new");
        new.answer_log = Some(vec![
            KeptAnswer {
                chosen: "r000007".into(),
                rejected: "r000003".into(),
                answered_unix_ms: 10,
            },
            KeptAnswer {
                chosen: "r000011".into(),
                rejected: "r000012".into(),
                answered_unix_ms: 11,
            },
        ]);
        store.put(&new).unwrap();
        let back = store.get("new").unwrap().unwrap();
        assert_eq!(back, new);
        assert!(back.answers_known());
        let loaded = store.load_all(true).unwrap();
        assert_eq!(loaded.users.len(), 2);
        assert!(loaded.quarantined.is_empty());
    }
}
