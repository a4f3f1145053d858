//! The embedding space a user's adapted embedding lives in: which checkpoint's GCF
//! embeddings eq. 11 averaged. A stored user of another space is re-adapted from its
//! answers ([`super::readapt`]), never served its embedding (issue #18).

use std::path::Path;

use anyhow::{Context, Result};
use copl_core::checkpoint::{GCF_FILE, GcfManifest};
use sha2::{Digest, Sha256};

/// A checkpoint's embedding space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddingSpace {
    /// `<data hash>:<d>:<first 16 hex digits of the sha256 of gcf.safetensors>`: the
    /// embeddings themselves, so that two GCF runs on the same data (another seed, more
    /// epochs) are two spaces. Until 2026-12-06 the id was the data hash and d alone,
    /// and such runs shared a space: a stored embedding was served against embeddings it
    /// was not averaged from.
    pub id: String,
    /// `<data hash>:<d>`, the id records written before 2026-12-06 carry: they are held
    /// to be of this space (what the server did with them before; most have no answers
    /// to re-adapt from).
    pub legacy: String,
}

impl EmbeddingSpace {
    /// The space of the checkpoint in `dir` whose GCF section is `gcf`.
    pub fn of_checkpoint(dir: &Path, gcf: &GcfManifest) -> Result<Self> {
        let path = dir.join(GCF_FILE);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let digest = hex::encode(Sha256::digest(&bytes));
        let legacy = format!("{}:{}", gcf.data_hash, gcf.dim);
        Ok(Self {
            id: format!("{legacy}:{}", &digest[..16]),
            legacy,
        })
    }

    /// Whether an embedding stored with space `stored` is one of this space.
    pub fn holds(&self, stored: &str) -> bool {
        stored == self.id || stored == self.legacy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_gcf_run_on_the_same_data_is_another_space() {
        let dir = tempfile::tempdir().unwrap();
        let gcf = GcfManifest {
            model: "gcf".into(),
            dim: 8,
            users: 1,
            responses: 1,
            data_hash: "abc".into(),
            hyper_parameters: serde_json::Value::Null,
            metrics: serde_json::Value::Null,
        };
        std::fs::write(dir.path().join(GCF_FILE), b"one run").unwrap();
        let one = EmbeddingSpace::of_checkpoint(dir.path(), &gcf).unwrap();
        std::fs::write(dir.path().join(GCF_FILE), b"another run").unwrap();
        let two = EmbeddingSpace::of_checkpoint(dir.path(), &gcf).unwrap();
        assert_ne!(one.id, two.id);
        assert_eq!(one.legacy, "abc:8");
        assert!(one.id.starts_with("abc:8:"));
        assert!(one.holds(&one.id) && one.holds("abc:8") && !one.holds(&two.id));
    }
}
