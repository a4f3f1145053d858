//! A backbone directory (Hugging Face layout: `config.json`, `tokenizer.json`,
//! `model.safetensors`), as `scripts/fetch-backbone.sh` lays it out. The reward model
//! (`reward::RewardModel`) builds on these readers.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use candle_core::{DType, Device, Tensor};
use tokenizers::Tokenizer;

use super::{bert, config::BackboneFamily};

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

/// The family of the backbone in `dir`: Gemma when it holds a `model.gguf` (Gemma 3 from
/// llama.cpp's format), else by `config.json`'s `model_type` (`bert`; `gemma`, `gemma2`,
/// `gemma3_text`), refusing any other by name.
pub fn family(dir: &Path) -> Result<BackboneFamily, BackboneError> {
    if dir.join("model.gguf").exists() {
        return Ok(BackboneFamily::Gemma);
    }
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| invalid(&path, e))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| invalid(&path, e))?;
    match value["model_type"].as_str() {
        Some("bert") => Ok(BackboneFamily::Bert),
        Some("gemma" | "gemma2" | "gemma3_text") => Ok(BackboneFamily::Gemma),
        other => Err(invalid(
            &path,
            format!("model_type {other:?} is not supported (bert; gemma, gemma2, gemma3_text)"),
        )),
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

/// Reads `dir/config.json` as a Gemma config of the generation its `model_type` names
/// (`gemma`, `gemma2`, `gemma3_text`).
pub fn gemma_config(dir: &Path) -> Result<super::gemma::GemmaConfig, BackboneError> {
    use super::gemma::GemmaConfig;
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| invalid(&path, e))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| invalid(&path, e))?;
    fn parse<T: serde::de::DeserializeOwned>(
        path: &Path,
        v: serde_json::Value,
    ) -> Result<T, BackboneError> {
        serde_json::from_value(v).map_err(|e| invalid(path, e))
    }
    match value["model_type"].as_str() {
        Some("gemma") => Ok(GemmaConfig::V1(parse(&path, value)?)),
        Some("gemma2") => Ok(GemmaConfig::V2(parse(&path, value)?)),
        Some("gemma3_text") => Ok(GemmaConfig::V3(parse(&path, value)?)),
        other => Err(invalid(
            &path,
            format!(
                "model_type {other:?} is not a Gemma text backbone (gemma, gemma2, gemma3_text)"
            ),
        )),
    }
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

/// The Gemma chat template (a decoder reads prompt and response as one turn each).
pub const GEMMA_TEMPLATE: &str = "<bos><start_of_turn>user\n{prompt}<end_of_turn>\n<start_of_turn>model\n{response}<end_of_turn>";

/// The reward model's settings for the backbone in `dir`: family, pooling and template
/// by family (BERT: mean pooling, the sentence-pair template; Gemma: last-token pooling,
/// [`GEMMA_TEMPLATE`]); MoLE on the family's query and value projections with the
/// authors' other settings ([`MoleConfig::default`]).
pub fn reward_config(
    dir: &Path,
    variant: super::config::Variant,
    user_dim: usize,
    max_tokens: usize,
    adapt_layers: Option<usize>,
) -> Result<super::config::RewardModelConfig, BackboneError> {
    use super::{config::Template, head::Pooling};
    let family = family(dir)?;
    let (targets, pooling, template) = match family {
        BackboneFamily::Bert => (["query", "value"], Pooling::Mean, Template::Pair),
        BackboneFamily::Gemma => (
            ["q_proj", "v_proj"],
            Pooling::LastToken,
            Template::Format {
                format: GEMMA_TEMPLATE.to_string(),
            },
        ),
    };
    Ok(super::config::RewardModelConfig {
        variant,
        family,
        mole: super::MoleConfig {
            targets: targets.iter().map(|t| t.to_string()).collect(),
            user_dim,
            adapt_layers,
            ..super::MoleConfig::default()
        },
        pooling,
        template,
        max_tokens,
    })
}
