//! Atomic, durable file replacement — the one rule for every file the project writes
//! in place (checkpoint sections and manifest, data JSONL, the server's user records):
//! write a temporary sibling, flush it to disk, rename it over the target, flush the
//! directory. Readers see the old file or the complete new one, never a half-written
//! file, and once [`replace`] returns the new file survives a power cut.

use std::{
    fs::{self, File, OpenOptions},
    io,
    path::{Path, PathBuf},
};

/// The suffix of the temporary sibling a file is written to first (`NAME.tmp`).
pub const TEMPORARY_SUFFIX: &str = ".tmp";

/// The temporary sibling `path` is written to first (`NAME.tmp`).
pub fn temporary_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(TEMPORARY_SUFFIX);
    path.with_file_name(name)
}

/// Calls `write` on the temporary sibling of `path`, flushes that file, renames it to
/// `path` and flushes the directory; on an error the temporary file is removed and the
/// target left as it was.
pub fn replace<E: From<io::Error>>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let tmp = temporary_sibling(path);
    let result = write(&tmp).and_then(|()| {
        // fsync needs a descriptor, not write access; opened for writing all the same
        // (some systems refuse fsync on a read-only one).
        OpenOptions::new().write(true).open(&tmp)?.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_directory(path)?;
        Ok(())
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes `bytes` to `path` with [`replace`].
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, |tmp| fs::write(tmp, bytes))
}

/// Flushes the directory holding `path` (a rename or removal there then survives a
/// crash).
pub fn sync_directory(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_replacement_is_whole_and_a_failed_one_leaves_the_old_file_and_no_temporary() {
        let dir = std::env::temp_dir().join(format!("copl-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("record.json");
        write(&path, b"old").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"old");
        // A writer that fails half-way: the target keeps its old bytes, the sibling goes.
        let failed: io::Result<()> = replace(&path, |tmp| {
            fs::write(tmp, b"half")?;
            Err(io::Error::other("disk full"))
        });
        assert_eq!(failed.unwrap_err().to_string(), "disk full");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert!(!temporary_sibling(&path).exists());
        write(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert!(!temporary_sibling(&path).exists());
        assert_eq!(temporary_sibling(&path), dir.join("record.json.tmp"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
