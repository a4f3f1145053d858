//! The CoPL reward model (paper §4.2): MoLE projections inside transformer backbones.
//!
//! - [`mole`]: the mixture-of-LoRA-experts projection, its gates and top-1 routing
//!   (eq. 6–10), with mixed-user batches.
//!
//! Still to come (issue #4, see docs/next.md): the BERT and Gemma backbones with MoLE
//! q/v projections, the reward head, the text template, the backbone fetcher.

pub mod mole;

pub use mole::{Gate, MoleConfig, MoleLinear, Routing, population_routing, route};
