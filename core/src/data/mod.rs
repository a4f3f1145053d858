//! Preference data: the data model, JSONL readers and writers, and validation.
//!
//! A data set is a directory of three JSONL files (one JSON object a line):
//! - `responses.jsonl`: `{"id", "prompt", "response"}` — the response nodes;
//! - `annotations.jsonl`: `{"user", "chosen", "rejected", "split"}` — user prefers
//!   `chosen` over `rejected`; `split` is `train`, `val` or `test`;
//! - `users.jsonl` (optional): `{"user", "group" | "weights", "unseen"}` — ground truth
//!   for evaluation only.
//!
//! Reading validates everything and reports every problem with file, line and field.

mod dataset;
mod error;
mod jsonl;
mod types;

pub use dataset::{
    ANNOTATIONS_FILE, AnnotatedTexts, Dataset, RESPONSES_FILE, USERS_FILE, data_hash,
};
pub use error::{DataError, DataErrorKind, DataErrors};
pub use jsonl::write_jsonl;
pub use types::{Annotation, Response, Split, UserTruth};
