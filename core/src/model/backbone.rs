//! A backbone directory (Hugging Face layout: `config.json`, `tokenizer.json`,
//! `model.safetensors`), as `scripts/fetch-backbone.sh` lays it out. The reward model
//! (`reward::RewardModel`) builds on these readers.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use candle_core::{DType, Device, Tensor};
use tokenizers::Tokenizer;

use super::bert;

/// A backbone directory that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BackboneError {
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Tensor {
        path: PathBuf,
        source: candle_core::Error,
    },
}

fn invalid(path: &Path, message: impl std::fmt::Display) -> BackboneError {
    BackboneError::Invalid {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Reads `dir/config.json` as a BERT config, refusing other model types by name.
pub fn bert_config(dir: &Path) -> Result<bert::Config, BackboneError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| invalid(&path, e))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| invalid(&path, e))?;
    match value["model_type"].as_str() {
        Some("bert") => {}
        other => {
            return Err(invalid(
                &path,
                format!("model_type {other:?} is not a BERT-family backbone"),
            ));
        }
    }
    serde_json::from_value(value).map_err(|e| invalid(&path, e))
}

/// Reads `dir/config.json` as a Gemma 3 config (`model_type` `gemma3_text`).
pub fn gemma3_config(dir: &Path) -> Result<super::gemma::Config, BackboneError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| invalid(&path, e))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| invalid(&path, e))?;
    match value["model_type"].as_str() {
        Some("gemma3_text") => {}
        other => {
            return Err(invalid(
                &path,
                format!("model_type {other:?} is not a Gemma 3 text backbone"),
            ));
        }
    }
    serde_json::from_value(value).map_err(|e| invalid(&path, e))
}

/// The backbone's weights file: `model.gguf` where there is one, else
/// `model.safetensors` (its sha256 ties a checkpoint to its backbone).
pub fn weights_file(dir: &Path) -> PathBuf {
    let gguf = dir.join("model.gguf");
    if gguf.exists() {
        gguf
    } else {
        dir.join("model.safetensors")
    }
}

/// Reads `dir/tokenizer.json`, without its own padding and truncation (sentence-
/// transformers' files pad every input to 128): the model pads to the batch's longest
/// row and refuses or cuts long input itself.
pub fn tokenizer(dir: &Path) -> Result<Tokenizer, BackboneError> {
    let path = dir.join("tokenizer.json");
    let mut tokenizer = Tokenizer::from_file(&path).map_err(|e| invalid(&path, e))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(|e| invalid(&path, e))?;
    Ok(tokenizer)
}

/// The tensors of `dir/model.safetensors` in `dtype`.
pub fn weights(
    dir: &Path,
    dtype: DType,
    device: &Device,
) -> Result<HashMap<String, Tensor>, BackboneError> {
    let path = dir.join("model.safetensors");
    let tensors =
        candle_core::safetensors::load(&path, device).map_err(|source| BackboneError::Tensor {
            path: path.clone(),
            source,
        })?;
    tensors
        .into_iter()
        .map(|(k, t)| {
            let t = t.to_dtype(dtype).map_err(|source| BackboneError::Tensor {
                path: path.clone(),
                source,
            })?;
            Ok((k, t))
        })
        .collect()
}
