//! The preference data model: responses (graph nodes), annotations (pairwise
//! preferences, the edges' source) and users' ground truth (evaluation only).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A response to a prompt: a response node of the preference graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Unique id of the response.
    pub id: String,
    /// The prompt this response answers (the human turn; for TL;DR the post).
    pub prompt: String,
    /// The response text.
    pub response: String,
    /// Latent attribute levels the synthetic generator used to write the text
    /// (ground truth for analysis; never read by training).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, f64>>,
}

/// Which part of the experiment an annotation belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training pairs: the survey set. For seen users they build the graph (eq. 2); for
    /// unseen users they are the answers given at onboarding.
    Train,
    /// One held-out pair per seen user, for choosing the best epoch.
    Val,
    /// Test pairs, never also a training pair.
    Test,
}

impl Split {
    /// The name used in the JSONL files.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    /// Parses the JSONL name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "train" => Some(Split::Train),
            "val" => Some(Split::Val),
            "test" => Some(Split::Test),
            _ => None,
        }
    }
}

/// One pairwise preference: `user` prefers `chosen` over `rejected` (a ≻ b).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    /// The annotating user.
    pub user: String,
    /// Id of the preferred response.
    pub chosen: String,
    /// Id of the other response (same prompt).
    pub rejected: String,
    /// Train, val or test.
    pub split: Split,
    /// Whether the ground-truth preference groups disagree on this pair (the paper's
    /// *controversial* versus *common* pairs, Table 3). Set by the synthetic generator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controversial: Option<bool>,
}

/// A user's ground-truth preference, for evaluation only (never an input to training).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserTruth {
    /// The user id, as in annotations.
    pub user: String,
    /// The preference group (e.g. `short`, `long`, `detail`), where users have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Mixture weights over the preference dimensions (PersonalLLM-style users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<f64>>,
    /// True for users held out of training, to be onboarded (eq. 11).
    #[serde(default)]
    pub unseen: bool,
}
