//! An onboarded user's record (copl-core's [`copl_core::stored_user`], shared with the
//! trainer's refresh) and a store's errors: the leaf the stores ([`super::files`],
//! [`super::redis_store`]) and [`super::store`] share.

pub use copl_core::stored_user::{KeptAnswer, KeptOptions, StoredUser};

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached (Redis down or slow): retry later.
    #[error("the user store is unavailable: {0}")]
    Unavailable(String),
    #[error("{0:#}")]
    Failed(anyhow::Error),
}
