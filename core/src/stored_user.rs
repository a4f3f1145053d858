//! An onboarded user's record as the server's stores keep it (one JSON value per user),
//! shared by the server, which writes and serves it, and the trainer, whose refresh reads
//! the answers back as training annotations (issue #18).

use crate::file_version::FileVersion;
use serde::{Deserialize, Serialize};

/// One pairwise answer as kept: the catalogue ids of the response the user chose and the
/// one they rejected, and when the answer reached the server. The answers are what a
/// user is re-adapted from in another checkpoint's embedding space (eq. 11 on the new
/// graph) and what refresh training exports as annotations (issue #18). Personal data:
/// DeleteUser removes them with the record (docs/security.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptAnswer {
    pub chosen: String,
    pub rejected: String,
    pub answered_unix_ms: i64,
}

/// The onboarding options a user was adapted with (eq. 11's k and κ): a re-adaptation
/// on another checkpoint's graph uses the same ones. Absent in records written before
/// 2026-12-06: the defaults then (k = 2, κ = 0.07, what OnboardUser uses unless told).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeptOptions {
    pub hops: u32,
    pub temperature: f32,
}

impl Default for KeptOptions {
    fn default() -> Self {
        Self {
            hops: 2,
            temperature: 0.07,
        }
    }
}

/// An onboarded user as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredUser {
    /// The record's format ([`FileVersion`]; a record from before the field reads as 1,
    /// and one newer than this build is refused naming its version).
    #[serde(default)]
    pub format_version: FileVersion,
    pub user_id: String,
    /// The adapted, L2-normalised embedding the gates read (eq. 11).
    pub embedding: Vec<f32>,
    /// False under the population fallback.
    pub personalised: bool,
    pub created_unix_ms: i64,
    /// Answers given at onboarding.
    pub answers: u32,
    /// The embedding space the embedding lives in (the checkpoint's GCF data hash and
    /// size). A server on another space re-adapts the user from [`Self::answer_log`]
    /// (issue #18) and leaves the record as it is.
    pub space: String,
    /// The answers themselves, in the order given (since 2026-12-06). `None` in a record
    /// written before: its answers are unknown ([`Self::answers_known`]), so it can be
    /// served in its own space but never re-adapted or exported.
    #[serde(default)]
    pub answer_log: Option<Vec<KeptAnswer>>,
    /// The options of the adaptation (absent before 2026-12-06: the defaults).
    #[serde(default)]
    pub options: Option<KeptOptions>,
}

impl StoredUser {
    /// Whether the record holds the answers it was adapted from (records written before
    /// answers were kept do not).
    pub fn answers_known(&self) -> bool {
        self.answer_log.is_some()
    }
}
