//! The CoPL reward model assembled (paper §4.2): template → tokenizer → backbone with
//! MoLE projections (routed per row by the user) → reward head → one scalar per row.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{VarBuilder, VarMap};
use tokenizers::Tokenizer;

pub use super::config::{BackboneFamily, RewardModelConfig, Template, Variant, fill};
use super::{
    MoleSet, Routing, UserRouting,
    backbone::{self, BackboneError},
    bert::BertMole,
    gemma::{GemmaConfig, GemmaMole},
    gguf,
    head::RewardHead,
    packed::PackedRewardModel,
};
use crate::checkpoint::{self, CheckpointError, Manifest};

/// A reward model that cannot be built or loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Backbone(#[from] BackboneError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
}

/// Refuses a token limit (`setting`: its name, for the message) that the template alone
/// fills: every input would be cut to the template's own tokens, the response never read,
/// and every response of a prompt given the same reward (a tiny byte-level Gemma at 48
/// tokens did exactly that, 2026-12-07: its chat template is 73 tokens; validation
/// accuracy 0.0, every pair a tie). The one check of the model's `max_tokens` at build
/// and of a server's `limits.max_input_tokens` at start.
pub fn check_token_limit(
    template_tokens: usize,
    limit: usize,
    setting: &str,
) -> Result<(), LoadError> {
    if template_tokens >= limit {
        return Err(LoadError::Invalid(format!(
            "{setting} = {limit} leaves no room for the response: the template alone is \
             {template_tokens} tokens"
        )));
    }
    Ok(())
}

/// Tokens of the template alone (an empty prompt and response) with `tokenizer`.
fn template_tokens(
    tokenizer: &Tokenizer,
    template: &Template,
    dir: &Path,
) -> Result<usize, LoadError> {
    Ok(tokenizer
        .encode(template.input("", ""), true)
        .map_err(|e| LoadError::Invalid(format!("{}: tokenizer: {e}", dir.display())))?
        .get_ids()
        .len())
}

/// What each row of a batch is scored for.
#[derive(Clone, Debug)]
pub struct Conditioning {
    /// Per MoLE projection, each row's expert and weight (eq. 8–9).
    pub routings: Vec<Routing>,
    /// `UserToken` only: each row's user as one token `[n, h]`.
    pub user_token: Option<Tensor>,
}

impl Conditioning {
    /// Rows conditioned by routing alone (CoPL, Uniform; cached user routings).
    pub fn routed(routings: Vec<Routing>) -> Self {
        Self {
            routings,
            user_token: None,
        }
    }
}

/// One templated, tokenised input (a row of a [`Batch`] before padding).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tokens {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
}

/// A tokenised batch.
#[derive(Clone, Debug)]
pub struct Batch {
    pub ids: Tensor,
    pub type_ids: Tensor,
    pub attention_mask: Tensor,
    /// Tokens of each row before padding.
    pub lengths: Vec<usize>,
}

/// An input the model refuses.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("item {index}: {}{tokens} tokens, more than the limit of {limit}", if *at_least { "at least " } else { "" })]
    TooLong {
        index: usize,
        tokens: usize,
        limit: usize,
        /// `tokens` counts a window of the text only (the text is longer still).
        at_least: bool,
    },
    #[error("item {index}: tokenizer: {message}")]
    Tokenizer { index: usize, message: String },
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
}

/// A backbone family with MoLE projections.
#[derive(Clone, Debug)]
pub enum Backbone {
    /// `bert`: encoders (MiniLM).
    Bert(BertMole),
    /// `gemma`: decoders (gemma, gemma-2, gemma-3 from a Hugging Face directory; Gemma 3
    /// from a GGUF).
    Gemma(GemmaMole),
}

impl Backbone {
    pub fn adapters(&self) -> &MoleSet {
        match self {
            Self::Bert(m) => m.adapters(),
            Self::Gemma(m) => m.adapters(),
        }
    }

    /// Hidden states `[n, t, h]` of a batch, rows routed by `masks`.
    pub fn forward(&self, batch: &Batch, masks: &[Tensor]) -> candle_core::Result<Tensor> {
        match self {
            Self::Bert(m) => m.forward(&batch.ids, &batch.type_ids, &batch.attention_mask, masks),
            Self::Gemma(m) => m.forward(&batch.ids, &batch.attention_mask, masks),
        }
    }

    /// Layers below this one are frozen and user-independent (`mole.adapt_layers`).
    pub fn first_adapted_layer(&self) -> usize {
        match self {
            Self::Bert(m) => m.first_adapted_layer(),
            Self::Gemma(m) => m.first_adapted_layer(),
        }
    }

    /// The input of the first adapted layer `[n, t, h]`: the same for every user.
    pub fn frozen_forward(&self, batch: &Batch) -> candle_core::Result<Tensor> {
        match self {
            Self::Bert(m) => m.frozen_forward(&batch.ids, &batch.type_ids, &batch.attention_mask),
            Self::Gemma(m) => m.frozen_forward(&batch.ids, &batch.attention_mask),
        }
    }

    /// The adapted layers over [`Self::frozen_forward`]'s output.
    pub fn adapted_forward(
        &self,
        hidden: &Tensor,
        attention_mask: &Tensor,
        masks: &[Tensor],
    ) -> candle_core::Result<Tensor> {
        match self {
            Self::Bert(m) => m.adapted_forward(hidden, attention_mask, masks),
            Self::Gemma(m) => m.adapted_forward(hidden, attention_mask, masks),
        }
    }
}

/// Backbone + head + tokenizer + template.
#[derive(Clone, Debug)]
pub struct RewardModel {
    pub backbone: Backbone,
    pub head: RewardHead,
    /// `UserToken` only: the user embedding's projection into the token space.
    pub user_token: Option<candle_nn::Linear>,
    pub tokenizer: Tokenizer,
    /// Tokens of the template alone (no prompt, no response) with this tokenizer.
    pub template_tokens: usize,
    pub config: RewardModelConfig,
    pub device: Device,
    /// The dtype of every weight and activation: F32 for training and on the CPU; BF16
    /// where a GPU serves ([`Self::load_as`]). Scores come out in F32 either way.
    pub dtype: DType,
    /// The served forward's copy of the weights, made at the first
    /// [`Self::score_served`] (None inside: no packed form for this backbone/device).
    served: Arc<OnceLock<Result<Option<PackedRewardModel>, String>>>,
}

impl RewardModel {
    /// A fresh model over the backbone in `dir`: the backbone frozen (from its files),
    /// adapters and head new in `trainable` (A Kaiming-uniform, B = 0).
    pub fn fresh(
        dir: &Path,
        config: RewardModelConfig,
        trainable: &VarMap,
        device: &Device,
    ) -> Result<Self, LoadError> {
        let vars = VarBuilder::from_varmap(trainable, DType::F32, device);
        Self::assemble(dir, config, vars, device, DType::F32)
    }

    /// As [`Self::fresh`], the trainable tensors made by `trainable` (e.g. a backend that
    /// registers them in a `VarMap` with seeded initial values).
    pub fn fresh_from(
        dir: &Path,
        config: RewardModelConfig,
        trainable: VarBuilder<'_>,
        device: &Device,
    ) -> Result<Self, LoadError> {
        let dtype = trainable.dtype();
        Self::fresh_as(dir, config, trainable, device, dtype)
    }

    /// As [`Self::fresh_from`], the frozen backbone in `dtype` while the trainable
    /// tensors keep `trainable`'s: BF16 compute over F32 master weights (training on a
    /// GPU, issue #14). The adapters and the head are cast to the activations' dtype
    /// inside the forward, so their gradients reach the F32 variables.
    pub fn fresh_as(
        dir: &Path,
        config: RewardModelConfig,
        trainable: VarBuilder<'_>,
        device: &Device,
        dtype: DType,
    ) -> Result<Self, LoadError> {
        Self::assemble(dir, config, trainable, device, dtype)
    }

    /// Loads a trained model: the manifest's `model` section, `mole.safetensors`, and
    /// the backbone in `backbone_dir` (its sha256 must be the one trained on), in F32.
    pub fn load(ckpt: &Path, backbone_dir: &Path, device: &Device) -> Result<Self, LoadError> {
        Self::load_as(ckpt, backbone_dir, device, DType::F32)
    }

    /// [`Self::load`] with every weight in `dtype` (the backbone's, the experts', the
    /// gates' and the head's): BF16 is what a GPU serves in (issue #14; candle's CUDA
    /// matmuls accumulate in F32). Gates read F32 user embeddings, converted at the gate.
    pub fn load_as(
        ckpt: &Path,
        backbone_dir: &Path,
        device: &Device,
        dtype: DType,
    ) -> Result<Self, LoadError> {
        let manifest = Manifest::load(ckpt)?;
        let model = manifest.model.ok_or_else(|| {
            LoadError::Invalid(format!(
                "{}: the manifest has no model section (train one with copl-train mole)",
                ckpt.display()
            ))
        })?;
        let sha = checkpoint::file_sha256(&backbone::weights_file(backbone_dir))?;
        if sha != model.backbone_sha256 {
            return Err(LoadError::Invalid(format!(
                "{}: the weights have sha256 {sha}, but {} was trained on {} ({})",
                backbone_dir.display(),
                ckpt.display(),
                model.backbone,
                model.backbone_sha256
            )));
        }
        let trained = checkpoint::load_mole(ckpt)?;
        Self::assemble(
            backbone_dir,
            model.config,
            VarBuilder::from_tensors(trained, dtype, device),
            device,
            dtype,
        )
    }

    fn assemble(
        dir: &Path,
        config: RewardModelConfig,
        trainable: VarBuilder<'_>,
        device: &Device,
        dtype: DType,
    ) -> Result<Self, LoadError> {
        let (backbone, hidden) = match config.family {
            BackboneFamily::Bert => {
                let bert_config = backbone::bert_config(dir)?;
                let weights = backbone::weights(dir, dtype, device)?;
                let model = BertMole::load_with_fresh_moles(
                    VarBuilder::from_tensors(weights, dtype, device),
                    trainable.clone(),
                    &bert_config,
                    &config.mole,
                )?;
                (Backbone::Bert(model), bert_config.hidden_size)
            }
            BackboneFamily::Gemma => {
                let (mut gemma_config, weights) = if dir.join("model.gguf").exists() {
                    let (c, w) =
                        gguf::load_gemma3(&dir.join("model.gguf"), config.max_tokens, device)?;
                    (GemmaConfig::V3(c), w)
                } else {
                    (
                        backbone::gemma_config(dir)?,
                        backbone::weights(dir, dtype, device)?,
                    )
                };
                gemma_config.cap_positions(config.max_tokens);
                let model = GemmaMole::load(
                    VarBuilder::from_tensors(weights, dtype, device),
                    trainable.clone(),
                    &gemma_config,
                    &config.mole,
                )?;
                (Backbone::Gemma(model), gemma_config.hidden_size())
            }
        };
        let head = RewardHead::new(hidden, config.pooling, trainable.pp("head"))?;
        let user_token = match config.variant {
            Variant::UserToken => Some(candle_nn::linear(
                config.mole.user_dim,
                hidden,
                trainable.pp("user_token"),
            )?),
            Variant::Copl | Variant::Uniform => None,
        };
        let tokenizer = backbone::tokenizer(dir)?;
        let template_tokens = template_tokens(&tokenizer, &config.template, dir)?;
        check_token_limit(template_tokens, config.max_tokens, "max_tokens")?;
        Ok(Self {
            backbone,
            head,
            user_token,
            tokenizer,
            template_tokens,
            config,
            device: device.clone(),
            dtype,
            served: Arc::default(),
        })
    }

    /// Tokenises `(prompt, response)` items with the template, padded to the longest.
    /// An item longer than `max_tokens` is refused (`truncate = false`, naming it) or cut.
    pub fn encode(&self, items: &[(&str, &str)], truncate: bool) -> Result<Batch, InputError> {
        let rows = self.tokenize(items, truncate)?;
        Ok(self.pad(&rows.iter().collect::<Vec<_>>())?)
    }

    /// Rows right-padded to the longest, with the attention mask.
    pub fn pad(&self, rows: &[&Tokens]) -> candle_core::Result<Batch> {
        let lengths: Vec<usize> = rows.iter().map(|r| r.ids.len()).collect();
        if let Some(row) = lengths.iter().position(|&n| n == 0) {
            candle_core::bail!("row {row} has no token");
        }
        let width = lengths.iter().copied().max().unwrap_or(0).max(1);
        let pad = |v: &[u32]| {
            let mut v = v.to_vec();
            v.resize(width, 0);
            v
        };
        let ids: Vec<Vec<u32>> = rows.iter().map(|r| pad(&r.ids)).collect();
        let types: Vec<Vec<u32>> = rows.iter().map(|r| pad(&r.type_ids)).collect();
        Ok(Batch {
            ids: Tensor::new(ids, &self.device)?,
            type_ids: Tensor::new(types, &self.device)?,
            attention_mask: attention_mask(&lengths, width, &self.device)?,
            lengths,
        })
    }

    /// Rewards `[n]` of a batch whose rows are conditioned by `conditioning` (routings
    /// one per MoLE projection, rows in batch order).
    pub fn score(&self, batch: &Batch, conditioning: &Conditioning) -> candle_core::Result<Tensor> {
        let hidden = self.backbone.frozen_forward(batch)?;
        self.score_frozen(&hidden, &batch.attention_mask, conditioning)
    }

    /// Rewards from the first adapted layer's input `hidden` `[n, t, h]`: the user
    /// token (if any) prepended, the adapted layers, the head.
    pub(crate) fn score_frozen(
        &self,
        hidden: &Tensor,
        attention_mask: &Tensor,
        conditioning: &Conditioning,
    ) -> candle_core::Result<Tensor> {
        let (hidden, attention_mask) = match &conditioning.user_token {
            Some(token) => {
                let token = token.unsqueeze(1)?.to_dtype(hidden.dtype())?;
                let ones = attention_mask.narrow(1, 0, 1)?.ones_like()?;
                (
                    Tensor::cat(&[&token, hidden], 1)?,
                    Tensor::cat(&[&ones, attention_mask], 1)?,
                )
            }
            None => (hidden.clone(), attention_mask.clone()),
        };
        let masks = self.backbone.adapters().masks(&conditioning.routings)?;
        let hidden = self
            .backbone
            .adapted_forward(&hidden, &attention_mask, &masks)?;
        self.head.forward(&hidden, &attention_mask)
    }

    /// What rows for users `[n, d_user]` are scored for: the gates' routing (with the
    /// training noise `noise`, per projection `[n × M]`, when given) under CoPL; the
    /// shared expert only under Uniform and UserToken, the latter with each user
    /// projected to a token.
    pub fn condition(
        &self,
        users: &Tensor,
        noise: Option<&[Vec<f32>]>,
    ) -> candle_core::Result<Conditioning> {
        let adapters = self.backbone.adapters();
        let (n, _) = users.dims2()?;
        let shared_only = || -> candle_core::Result<Vec<Routing>> {
            (0..adapters.moles.len())
                .map(|_| super::population_routing(n, adapters.config.experts, &self.device))
                .collect()
        };
        Ok(match self.config.variant {
            Variant::Copl => Conditioning::routed(adapters.route_users(users, noise)?),
            Variant::Uniform => Conditioning::routed(shared_only()?),
            Variant::UserToken => {
                let projection = self.user_token.as_ref().ok_or_else(|| {
                    candle_core::Error::Msg("UserToken model without a user projection".into())
                })?;
                Conditioning {
                    routings: shared_only()?,
                    user_token: Some(
                        projection.forward(&users.to_dtype(projection.weight().dtype())?)?,
                    ),
                }
            }
        })
    }

    /// Each user's cached routing (rows of `users`, L2-normalised GCF embeddings): the
    /// gates' under CoPL, the shared expert only otherwise. Computed once per user (at
    /// load or onboarding); a batch then runs no gate.
    pub fn user_routings(&self, users: &Tensor) -> candle_core::Result<Vec<UserRouting>> {
        let adapters = self.backbone.adapters();
        if self.config.variant.uses_gates() {
            adapters.user_routings(users)
        } else {
            let (n, _) = users.dims2()?;
            Ok(vec![UserRouting::population(adapters.moles.len()); n])
        }
    }

    /// What a batch's rows are scored for, from each row's cached routing and (read by
    /// the user-token variant only) its user embedding.
    pub fn condition_cached(
        &self,
        routings: &[&UserRouting],
        embeddings: &[&[f32]],
    ) -> candle_core::Result<Conditioning> {
        let routed = self
            .backbone
            .adapters()
            .cached_routings(routings, &self.device)?;
        let user_token = match &self.user_token {
            Some(projection) => {
                let dim = self.config.mole.user_dim;
                if let Some((row, e)) = embeddings.iter().enumerate().find(|(_, e)| e.len() != dim)
                {
                    candle_core::bail!(
                        "row {row}: user embedding of {} values, not {dim}",
                        e.len()
                    );
                }
                if embeddings.len() != routings.len() {
                    candle_core::bail!(
                        "{} user embeddings for {} rows",
                        embeddings.len(),
                        routings.len()
                    );
                }
                let flat: Vec<f32> = embeddings.iter().flat_map(|e| e.iter().copied()).collect();
                let users = Tensor::from_vec(flat, (embeddings.len(), dim), &self.device)?
                    .to_dtype(projection.weight().dtype())?;
                Some(projection.forward(&users)?)
            }
            None => None,
        };
        Ok(Conditioning {
            routings: routed,
            user_token,
        })
    }

    /// Rewards of tokenised rows, each scored for its user's cached routing and embedding
    /// (a [`ServedRow`]): what the server runs per batch. A row's reward does not depend
    /// on the other rows. BERT on the CPU takes the packed forward ([`PackedRewardModel`]:
    /// no padding, fused kernels; equal to [`Self::score_served_reference`] within 1e-4),
    /// everything else the reference. The packed weights are copied at the first call:
    /// a model still in training (variables changing) must use the reference.
    pub fn score_served(&self, rows: &[ServedRow<'_>]) -> candle_core::Result<Vec<f32>> {
        let served = self
            .served
            .get_or_init(|| PackedRewardModel::new(self).map_err(|e| e.to_string()));
        match served {
            Ok(Some(packed)) => packed.score(rows),
            Ok(None) => self.score_served_reference(rows),
            Err(e) => candle_core::bail!("building the packed forward: {e}"),
        }
    }

    /// Whether [`Self::score_served`] pads a batch to its longest row (the reference
    /// forward: Gemma, or a device other than the CPU) rather than packing its rows.
    pub fn pads_served_batches(&self) -> bool {
        !PackedRewardModel::applies(self)
    }

    /// [`Self::score_served`] through candle's op-by-op forward: padded, conditioned
    /// without running a gate, one forward. The reference the packed forward is held to.
    pub fn score_served_reference(&self, rows: &[ServedRow<'_>]) -> candle_core::Result<Vec<f32>> {
        let tokens: Vec<&Tokens> = rows.iter().map(|r| r.tokens).collect();
        let routings: Vec<&UserRouting> = rows.iter().map(|r| r.routing).collect();
        let embeddings: Vec<&[f32]> = rows.iter().map(|r| r.embedding).collect();
        let batch = self.pad(&tokens)?;
        let conditioning = self.condition_cached(&routings, &embeddings)?;
        self.score(&batch, &conditioning)?
            .to_dtype(DType::F32)?
            .to_vec1()
    }

    /// Rewards of `(prompt, response)` items for users `[n, d_user]` (L2-normalised GCF
    /// embeddings), one user per item.
    pub fn score_texts(
        &self,
        items: &[(&str, &str)],
        users: &Tensor,
        truncate: bool,
    ) -> Result<Vec<f32>, InputError> {
        let batch = self.encode(items, truncate)?;
        let conditioning = self.condition(users, None)?;
        Ok(self
            .score(&batch, &conditioning)?
            .to_dtype(DType::F32)?
            .to_vec1()?)
    }
}

/// One row of a served batch: its tokens and whom it is scored for (the user's cached
/// routing and L2-normalised GCF embedding).
#[derive(Clone, Copy, Debug)]
pub struct ServedRow<'a> {
    pub tokens: &'a Tokens,
    pub routing: &'a UserRouting,
    pub embedding: &'a [f32],
}

/// `[n, width]`: 1 on each row's first `length` positions, 0 on its padding.
pub(crate) fn attention_mask(
    lengths: &[usize],
    width: usize,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let mask: Vec<u32> = lengths
        .iter()
        .flat_map(|&n| (0..width).map(move |i| u32::from(i < n)))
        .collect();
    Tensor::from_vec(mask, (lengths.len(), width), device)
}
