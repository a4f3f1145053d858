//! The BERT family (the default backbone, all-MiniLM-L6-v2) with MoLE projections in
//! self-attention (paper §4.2). Written as candle-transformers' `bert.rs` is, and loads
//! the same Hugging Face tensor names; with every LoRA B = 0 its hidden states equal
//! candle-transformers' (tested).

use candle_core::{D, Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder, embedding, linear};
pub use candle_transformers::models::bert::Config;
use candle_transformers::models::bert::HiddenAct;

use super::frozen::FrozenLinear;
use super::mole::{MoleConfig, MoleSet, Projection};

/// Layer norm over the last dimension: candle's fused kernel, or (for training, which
/// needs a backward the fused kernel lacks) the same formula from differentiable parts.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub(crate) weight: Tensor,
    pub(crate) bias: Tensor,
    pub(crate) eps: f64,
}

impl LayerNorm {
    pub fn new(size: usize, eps: f64, vb: VarBuilder<'_>) -> Result<Self> {
        Ok(Self {
            weight: vb.get_with_hints(size, "weight", candle_nn::Init::Const(1.0))?,
            bias: vb.get_with_hints(size, "bias", candle_nn::Init::Const(0.0))?,
            eps,
        })
    }

    pub fn forward(&self, x: &Tensor, differentiable: bool) -> Result<Tensor> {
        if !differentiable {
            return candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps as f32);
        }
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
        centred
            .broadcast_div(&(variance + self.eps)?.sqrt()?)?
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Attention {
    pub(crate) query: Projection,
    pub(crate) key: Projection,
    pub(crate) value: Projection,
    pub(crate) output: FrozenLinear,
    pub(crate) output_norm: LayerNorm,
    pub(crate) heads: usize,
    pub(crate) head_size: usize,
}

impl Attention {
    fn forward(
        &self,
        x: &Tensor,
        attention_mask: &Tensor,
        masks: &[Tensor],
        differentiable: bool,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let split = |y: Tensor| -> Result<Tensor> {
            y.reshape((b, t, self.heads, self.head_size))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(self.query.forward(x, masks)?)?;
        let k = split(self.key.forward(x, masks)?)?;
        let v = split(self.value.forward(x, masks)?)?;
        let scores =
            (q.matmul(&k.t()?)? / (self.head_size as f64).sqrt())?.broadcast_add(attention_mask)?;
        let probabilities = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let context = probabilities
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .flatten_from(D::Minus2)?;
        let y = self.output.forward(&context)?;
        self.output_norm.forward(&(y + x)?, differentiable)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Layer {
    pub(crate) attention: Attention,
    pub(crate) intermediate: FrozenLinear,
    pub(crate) output: FrozenLinear,
    pub(crate) output_norm: LayerNorm,
    pub(crate) act: HiddenAct,
}

impl Layer {
    fn forward(
        &self,
        x: &Tensor,
        attention_mask: &Tensor,
        masks: &[Tensor],
        differentiable: bool,
    ) -> Result<Tensor> {
        let x = self
            .attention
            .forward(x, attention_mask, masks, differentiable)?;
        let h = self.intermediate.forward(&x)?;
        let h = match self.act {
            HiddenAct::Gelu => h.gelu_erf()?,
            HiddenAct::GeluApproximate => h.gelu()?,
            HiddenAct::Relu => h.relu()?,
        };
        let y = self.output.forward(&h)?;
        self.output_norm.forward(&(y + x)?, differentiable)
    }
}

/// BERT encoder with MoLE self-attention projections.
#[derive(Clone, Debug)]
pub struct BertMole {
    pub(crate) word_embeddings: Embedding,
    pub(crate) position_embeddings: Embedding,
    pub(crate) token_type_embeddings: Embedding,
    pub(crate) embeddings_norm: LayerNorm,
    pub(crate) layers: Vec<Layer>,
    /// Every MoLE projection in routing-mask order (layer by layer, target order).
    adapters: MoleSet,
    /// Use differentiable layer norms (training).
    pub differentiable: bool,
}

impl BertMole {
    /// Loads from Hugging Face names (`embeddings.*`, `encoder.layer.{i}.*`, with or
    /// without a `bert.` prefix); MoLE tensors live under
    /// `encoder.layer.{i}.attention.self.{projection}.mole.*`, in the same builder.
    pub fn load(vb: VarBuilder<'_>, config: &Config, mole: &MoleConfig) -> Result<Self> {
        Self::load_with_fresh_moles(vb.clone(), vb, config, mole)
    }

    /// Base weights from `backbone`, MoLE tensors from `adapters` (e.g. a `VarMap`
    /// builder: fresh, trainable adapters over a frozen backbone).
    pub fn load_with_fresh_moles(
        backbone: VarBuilder<'_>,
        adapters: VarBuilder<'_>,
        config: &Config,
        mole: &MoleConfig,
    ) -> Result<Self> {
        let vb = if backbone.contains_tensor("bert.embeddings.word_embeddings.weight") {
            backbone.pp("bert")
        } else {
            backbone
        };
        let h = config.hidden_size;
        let e = vb.pp("embeddings");
        let mut set = MoleSet {
            moles: Vec::new(),
            names: Vec::new(),
            config: mole.clone(),
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let s = l.pp("attention.self");
            let a = adapters.pp(format!("encoder.layer.{i}.attention.self"));
            let adapted = mole.adapts_layer(i, config.num_hidden_layers);
            let projection = |name: &str, set: &mut MoleSet| {
                Projection::new(
                    linear(h, h, s.pp(name))?,
                    name,
                    format!("encoder.layer.{i}.attention.self.{name}"),
                    &a.pp(name),
                    set,
                    adapted,
                )
            };
            let attention = Attention {
                query: projection("query", &mut set)?,
                key: projection("key", &mut set)?,
                value: projection("value", &mut set)?,
                output: FrozenLinear::new(linear(h, h, l.pp("attention.output.dense"))?),
                output_norm: LayerNorm::new(
                    h,
                    config.layer_norm_eps,
                    l.pp("attention.output.LayerNorm"),
                )?,
                heads: config.num_attention_heads,
                head_size: h / config.num_attention_heads,
            };
            layers.push(Layer {
                attention,
                intermediate: FrozenLinear::new(linear(
                    h,
                    config.intermediate_size,
                    l.pp("intermediate.dense"),
                )?),
                output: FrozenLinear::new(linear(
                    config.intermediate_size,
                    h,
                    l.pp("output.dense"),
                )?),
                output_norm: LayerNorm::new(h, config.layer_norm_eps, l.pp("output.LayerNorm"))?,
                act: config.hidden_act,
            });
        }
        Ok(Self {
            word_embeddings: embedding(config.vocab_size, h, e.pp("word_embeddings"))?,
            position_embeddings: embedding(
                config.max_position_embeddings,
                h,
                e.pp("position_embeddings"),
            )?,
            token_type_embeddings: embedding(
                config.type_vocab_size,
                h,
                e.pp("token_type_embeddings"),
            )?,
            embeddings_norm: LayerNorm::new(h, config.layer_norm_eps, e.pp("LayerNorm"))?,
            layers,
            adapters: set,
            differentiable: false,
        })
    }

    /// The MoLE projections, their names and routing.
    pub fn adapters(&self) -> &MoleSet {
        &self.adapters
    }

    /// The device the weights live on.
    pub fn device(&self) -> &candle_core::Device {
        self.word_embeddings.embeddings().device()
    }

    /// Layers below this one carry no MoLE projection: their output depends on the
    /// text alone ([`Self::frozen_forward`]).
    pub fn first_adapted_layer(&self) -> usize {
        self.adapters.config.first_adapted_layer(self.layers.len())
    }

    /// Hidden states `[n, t, h]` for token ids and attention mask `[n, t]` (1 = token,
    /// 0 = padding), each row with its own routing masks.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        token_type_ids: &Tensor,
        attention_mask: &Tensor,
        masks: &[Tensor],
    ) -> Result<Tensor> {
        let x = self.frozen_forward(input_ids, token_type_ids, attention_mask)?;
        self.adapted_forward(&x, attention_mask, masks)
    }

    /// The embeddings and the layers below [`Self::first_adapted_layer`]: the same for
    /// every user. A row's states do not depend on the batch's padding (padded keys are
    /// masked), so they can be cached per text and re-padded.
    pub fn frozen_forward(
        &self,
        input_ids: &Tensor,
        token_type_ids: &Tensor,
        attention_mask: &Tensor,
    ) -> Result<Tensor> {
        let (_, t) = input_ids.dims2()?;
        let positions = Tensor::arange(0u32, t as u32, input_ids.device())?;
        let x = (self.word_embeddings.forward(input_ids)?
            + self.token_type_embeddings.forward(token_type_ids)?)?
        .broadcast_add(&self.position_embeddings.forward(&positions)?)?;
        // Nothing below the first adapted layer is trained: the fused layer norm is
        // right even while training.
        let mut x = self.embeddings_norm.forward(&x, false)?;
        let extended = Self::extended_mask(attention_mask, x.dtype())?;
        for layer in &self.layers[..self.first_adapted_layer()] {
            x = layer.forward(&x, &extended, &[], false)?;
        }
        Ok(x)
    }

    /// The layers from [`Self::first_adapted_layer`] on, over its input `hidden`.
    pub fn adapted_forward(
        &self,
        hidden: &Tensor,
        attention_mask: &Tensor,
        masks: &[Tensor],
    ) -> Result<Tensor> {
        let extended = Self::extended_mask(attention_mask, hidden.dtype())?;
        let mut x = hidden.clone();
        for layer in &self.layers[self.first_adapted_layer()..] {
            x = layer.forward(&x, &extended, masks, self.differentiable)?;
        }
        Ok(x)
    }

    /// (1 − mask) · dtype-min on the padded keys, as Hugging Face's BERT: `[n, 1, 1, t]`.
    fn extended_mask(attention_mask: &Tensor, dtype: candle_core::DType) -> Result<Tensor> {
        let extended = attention_mask.unsqueeze(1)?.unsqueeze(1)?.to_dtype(dtype)?;
        (extended.ones_like()? - &extended)? * super::blocked_score(dtype)
    }
}
