//! The format version of the JSON files the tools exchange — evaluations, training
//! summaries, a synthetic data set's summary, allocations and projections: each writer's
//! struct carries a `format_version`, and a reader refuses a file written by a newer
//! format than it knows (naming the file) instead of misreading it. Files from before the
//! field read as version 1. Bump [`FileVersion::CURRENT`] when a field changes meaning or
//! goes away (adding an optional field needs no bump).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FileVersion(pub u32);

impl FileVersion {
    /// What this build writes and the newest it reads.
    pub const CURRENT: Self = Self(1);

    /// `Err` with the versions when this build cannot read a file of `self`.
    pub fn readable(self) -> Result<(), String> {
        if self <= Self::CURRENT {
            Ok(())
        } else {
            Err(format!(
                "format_version {} is newer than this build reads ({})",
                self.0,
                Self::CURRENT.0
            ))
        }
    }
}

/// A file without the field: written before it existed, version 1.
impl Default for FileVersion {
    fn default() -> Self {
        Self(1)
    }
}

/// Just the version of a file, to check before reading the rest.
#[derive(Debug, Default, Deserialize)]
pub struct VersionOnly {
    #[serde(default)]
    pub format_version: FileVersion,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_file_reads_as_version_one_and_a_newer_one_is_refused() {
        let old: VersionOnly = serde_json::from_str(r#"{"accuracy": 0.5}"#).unwrap_or_default();
        assert_eq!(old.format_version, FileVersion(1));
        assert!(old.format_version.readable().is_ok());
        let newer: VersionOnly =
            serde_json::from_str(r#"{"format_version": 99}"#).unwrap_or_default();
        let e = newer.format_version.readable().unwrap_err();
        assert!(e.contains("format_version 99"), "{e}");
    }
}
