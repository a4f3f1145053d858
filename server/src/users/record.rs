//! An onboarded user's record as every store keeps it, and a store's errors: the leaf
//! the stores ([`super::files`], [`super::redis_store`]) and [`super::store`] share.

use serde::{Deserialize, Serialize};

/// An onboarded user as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredUser {
    pub user_id: String,
    /// The adapted, L2-normalised embedding the gates read (eq. 11).
    pub embedding: Vec<f32>,
    /// False under the population fallback.
    pub personalised: bool,
    pub created_unix_ms: i64,
    /// Answers given at onboarding.
    pub answers: u32,
    /// The checkpoint's embedding space (GCF data hash and size): users adapted in
    /// another space are not served.
    pub space: String,
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached (Redis down or slow): retry later.
    #[error("the user store is unavailable: {0}")]
    Unavailable(String),
    #[error("{0:#}")]
    Failed(anyhow::Error),
}
