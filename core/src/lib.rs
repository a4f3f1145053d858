//! copl-core: what both the CoPL trainer and the server need.
//!
//! This crate knows nothing of gRPC, tokio or command lines. Modules follow the paper
//! ("CoPL: Collaborative Preference Learning for Personalizing LLMs"):
//! - [`data`]: the preference data model (users, responses, pairwise annotations);
//! - [`graph`]: the signed user–response graph with eq. 2's normalisation, as CSR;
//! - [`adapt`]: optimisation-free onboarding of unseen users (eq. 11) and survey choice;
//! - [`device`]: the device and dtype a model runs in (`cpu`, `cuda:N`; `f32`, `bf16`);
//! - [`model`]: the reward model's MoLE projections (eq. 6–10);
//! - [`checkpoint`]: the checkpoint directory (manifest, ids, graph, embeddings);
//! - [`stored_user`]: an onboarded user's record (the server stores it, refresh reads it).

pub mod adapt;
pub mod atomic;
pub mod checkpoint;
pub mod data;
pub mod device;
pub mod file_version;
pub mod graph;
pub mod model;
pub mod redact;
mod simd;
pub mod stored_user;
