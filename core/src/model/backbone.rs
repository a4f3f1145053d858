//! A backbone directory (Hugging Face layout: `config.json`, `tokenizer.json`,
//! `model.safetensors`), as `scripts/fetch-backbone.sh` lays it out, loaded into a
//! MoLE-adapted model.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use tokenizers::Tokenizer;

use super::{MoleConfig, bert};

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

/// Reads `dir/tokenizer.json`.
pub fn tokenizer(dir: &Path) -> Result<Tokenizer, BackboneError> {
    let path = dir.join("tokenizer.json");
    Tokenizer::from_file(&path).map_err(|e| invalid(&path, e))
}

/// The tensors of `dir/model.safetensors` in `dtype`, with `extra` (MoLE, head) added.
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

/// Loads a BERT backbone with MoLE projections; MoLE tensors come from `mole_tensors`
/// (a trained checkpoint) or, when absent, are fresh (A Kaiming-uniform, B = 0, so the
/// model is the backbone). Returns the model and its tokenizer.
pub fn load_bert(
    dir: &Path,
    mole: &MoleConfig,
    mole_tensors: Option<HashMap<String, Tensor>>,
    device: &Device,
) -> Result<(bert::BertMole, Tokenizer), BackboneError> {
    let config = bert_config(dir)?;
    let mut tensors = weights(dir, DType::F32, device)?;
    let fresh = candle_nn::VarMap::new();
    let model = match mole_tensors {
        Some(extra) => {
            tensors.extend(extra);
            let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
            bert::BertMole::load(vb, &config, mole)
        }
        None => {
            let backbone = VarBuilder::from_tensors(tensors, DType::F32, device);
            let vars = VarBuilder::from_varmap(&fresh, DType::F32, device);
            bert::BertMole::load_with_fresh_moles(backbone, vars, &config, mole)
        }
    }
    .map_err(|source| BackboneError::Tensor {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok((model, tokenizer(dir)?))
}
