//! The CoPL reward model (paper §4.2): MoLE projections inside transformer backbones.
//!
//! - [`mole`]: the mixture-of-LoRA-experts projection, its gates and top-1 routing
//!   (eq. 6–10), with mixed-user batches.
//!
//! - [`backbone`]: a Hugging Face backbone directory loaded with MoLE adapters;
//! - [`bert`]: the BERT family with MoLE self-attention projections;
//! - [`head`]: the reward head (mean or last-token pooling, then a scalar);
//! - [`reward`]: the assembled model: template, tokenizer, backbone, head.
//!
//! Still to come (issue #4, see docs/next.md): the Gemma backbones, the text template,
//! the backbone fetcher.

pub mod backbone;
pub mod bert;
pub mod head;
pub mod mole;
pub mod reward;

pub use mole::{Gate, MoleConfig, MoleLinear, Routing, population_routing, route};
