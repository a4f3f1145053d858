//! The CoPL reward model (paper §4.2): MoLE projections inside transformer backbones.
//!
//! - [`mole`]: the mixture-of-LoRA-experts projection, its gates and top-1 routing
//!   (eq. 6–10), with mixed-user batches.
//!
//! - [`backbone`]: a Hugging Face backbone directory loaded with MoLE adapters;
//! - [`bert`]: the BERT family with MoLE self-attention projections;
//! - [`gemma`]: the Gemma 3 family with MoLE attention projections;
//! - [`gguf`]: Gemma 3 from a llama.cpp GGUF, dequantised, under Hugging Face names;
//! - [`head`]: the reward head (mean or last-token pooling, then a scalar);
//! - [`reward`]: the assembled model: template, tokenizer, backbone, head;
//! - [`frozen`]: frozen backbone linear maps whose backward skips the weight gradient;
//! - [`packed`]: the served forward (BERT over packed rows, fused CPU kernels);
//! - [`frozen_cache`]: the frozen lower layers' output cached per text
//!   (`mole.adapt_layers`).

pub mod backbone;
pub mod bert;
pub mod config;
pub mod frozen;
pub mod frozen_cache;
pub mod gemma;
pub mod gguf;
pub mod head;
pub mod mole;
pub mod packed;
pub mod reward;
pub mod window;

pub use mole::{
    Gate, MoleConfig, MoleLinear, MoleSet, Routing, UserRouting, population_routing, route,
};
