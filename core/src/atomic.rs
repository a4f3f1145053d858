//! Atomic file replacement: write a temporary sibling, then rename it over the target,
//! so readers see the old file or the complete new one, never a half-written file.

use std::{
    fs,
    path::{Path, PathBuf},
};

/// The temporary sibling `path` is written to first (`NAME.tmp`).
pub(crate) fn temporary_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Calls `write` on the temporary sibling of `path`, then renames it to `path`; on an
/// error the temporary file is removed and the target left as it was.
pub(crate) fn replace<E: From<std::io::Error>>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let tmp = temporary_sibling(path);
    match write(&tmp) {
        Ok(()) => Ok(fs::rename(&tmp, path)?),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}
