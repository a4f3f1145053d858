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
//! - [`reward`]: the assembled model: template, tokenizer, backbone, head (its
//!   tokenisation and truncation in `tokenize`);
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
mod tokenize;
pub mod window;

pub use mole::{
    Gate, MoleConfig, MoleLinear, MoleSet, Routing, UserRouting, population_routing, route,
    route_soft,
};

/// An additive attention mask's value on a blocked key: the dtype's lowest finite number
/// (Hugging Face's `finfo(dtype).min`). F32's own minimum rounds to −∞ in BF16, and
/// 0 · −∞ is NaN on every key that is not blocked.
pub(crate) fn blocked_score(dtype: candle_core::DType) -> f64 {
    match dtype {
        // (2 − 2⁻⁷) · 2¹²⁷ and (2 − 2⁻¹⁰) · 2¹⁵.
        candle_core::DType::BF16 => -3.389_531_389_251_535_5e38,
        candle_core::DType::F16 => -65_504.0,
        _ => f64::from(f32::MIN),
    }
}
