//! The Gemma 3 family (the paper's backbone family; Gemma 3 270M is the real decoder we
//! test with) with MoLE projections in attention. Written as candle-transformers'
//! `gemma3.rs` is and loads the same tensor names (`model.layers.{i}.self_attn.q_proj`
//! …), but reads the whole sequence at once (no KV cache: a reward model scores, it does
//! not generate), returns the final-norm hidden states of every position, masks padded
//! keys, and is differentiable throughout (norms, rotary embedding and softmax from
//! basic ops: candle's fused kernels have no backward). With every LoRA B = 0 its
//! last-position logits equal candle-transformers' (tested).

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder, embedding, linear_b, linear_no_bias};
pub use candle_transformers::models::gemma3::Config;

use super::mole::{MoleConfig, MoleLinear, MoleSet};

/// Gemma's RMS norm: x / √(mean x² + ε) · (1 + w).
#[derive(Clone, Debug)]
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn new(size: usize, eps: f64, vb: VarBuilder<'_>) -> Result<Self> {
        Ok(Self {
            weight: vb.get_with_hints(size, "weight", candle_nn::Init::Const(0.0))?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mean_square = x.sqr()?.mean_keepdim(D::Minus1)?;
        x.broadcast_div(&(mean_square + self.eps)?.sqrt()?)?
            .broadcast_mul(&(&self.weight + 1.0)?)
    }
}

/// Rotary position embedding tables for one base frequency.
#[derive(Clone, Debug)]
struct Rotary {
    sin: Tensor,
    cos: Tensor,
}

impl Rotary {
    fn new(head_dim: usize, base: f64, positions: usize, vb: &VarBuilder<'_>) -> Result<Self> {
        let inv: Vec<f32> = (0..head_dim)
            .step_by(2)
            .map(|i| 1.0 / base.powf(i as f64 / head_dim as f64) as f32)
            .collect();
        let inv = Tensor::from_vec(inv, (1, head_dim / 2), vb.device())?;
        let t = Tensor::arange(0u32, positions as u32, vb.device())?
            .to_dtype(DType::F32)?
            .reshape((positions, 1))?;
        let freqs = t.matmul(&inv)?.to_dtype(vb.dtype())?;
        Ok(Self {
            sin: freqs.sin()?,
            cos: freqs.cos()?,
        })
    }

    /// Non-interleaved rotation of `x` `[n, heads, t, d]` (candle's `rope`), from parts.
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, t, d) = x.dims4()?;
        let cos = self.cos.narrow(0, 0, t)?;
        let sin = self.sin.narrow(0, 0, t)?;
        let x1 = x.narrow(D::Minus1, 0, d / 2)?;
        let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
        let first = (x1.broadcast_mul(&cos)? - x2.broadcast_mul(&sin)?)?;
        let second = (x2.broadcast_mul(&cos)? + x1.broadcast_mul(&sin)?)?;
        Tensor::cat(&[first, second], D::Minus1)
    }
}

#[derive(Clone, Debug)]
enum Projection {
    Plain(Linear),
    Mole(Box<MoleLinear>, usize),
}

impl Projection {
    fn forward(&self, x: &Tensor, masks: &[Tensor]) -> Result<Tensor> {
        match self {
            Self::Plain(l) => l.forward(x),
            Self::Mole(m, index) => match masks.get(*index) {
                Some(mask) => m.forward(x, mask),
                None => candle_core::bail!("no routing mask for MoLE projection {index}"),
            },
        }
    }
}

#[derive(Clone, Debug)]
struct Layer {
    q: Projection,
    k: Projection,
    v: Projection,
    o: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    gate: Linear,
    up: Linear,
    down: Linear,
    input_norm: RmsNorm,
    post_attention_norm: RmsNorm,
    pre_feedforward_norm: RmsNorm,
    post_feedforward_norm: RmsNorm,
    rotary: std::sync::Arc<Rotary>,
    sliding_window: Option<usize>,
}

/// Gemma 3 decoder with MoLE attention projections.
#[derive(Clone, Debug)]
pub struct GemmaMole {
    embed: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    config: Config,
    adapters: MoleSet,
}

impl GemmaMole {
    /// Base weights from `backbone` (Hugging Face names under `model.`), MoLE tensors
    /// from `adapters` under `model.layers.{i}.self_attn.{projection}.mole.*`.
    pub fn load(
        backbone: VarBuilder<'_>,
        adapters: VarBuilder<'_>,
        config: &Config,
        mole: &MoleConfig,
    ) -> Result<Self> {
        let vb = backbone.pp("model");
        let (h, hd) = (config.hidden_size, config.head_dim);
        let (heads, kv) = (config.num_attention_heads, config.num_key_value_heads);
        let bias = config.attention_bias;
        let mut moles = Vec::new();
        let mut mole_names = Vec::new();
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        // One rotary table per base frequency (local and global), shared by the layers.
        let local = std::sync::Arc::new(Rotary::new(
            hd,
            config.rope_local_base_freq,
            config.max_position_embeddings,
            &vb,
        )?);
        let global = std::sync::Arc::new(Rotary::new(
            hd,
            config.rope_theta,
            config.max_position_embeddings,
            &vb,
        )?);
        for i in 0..config.num_hidden_layers {
            let l = vb.pp(format!("layers.{i}"));
            let a = l.pp("self_attn");
            let adapter = adapters.pp(format!("model.layers.{i}.self_attn"));
            let mut projection = |name: &str, out: usize| -> Result<Projection> {
                let base = linear_b(h, out, bias, a.pp(name))?;
                if mole.targets.iter().any(|t| t == name) {
                    let m = MoleLinear::new(base, mole, adapter.pp(name).pp("mole"))?;
                    moles.push(m.clone());
                    mole_names.push(format!("model.layers.{i}.self_attn.{name}"));
                    Ok(Projection::Mole(Box::new(m), moles.len() - 1))
                } else {
                    Ok(Projection::Plain(base))
                }
            };
            let (q, k, v) = (
                projection("q_proj", heads * hd)?,
                projection("k_proj", kv * hd)?,
                projection("v_proj", kv * hd)?,
            );
            let sliding = (i + 1) % config.sliding_window_pattern > 0;
            let norm =
                |name: &str, size: usize| RmsNorm::new(size, config.rms_norm_eps, l.pp(name));
            layers.push(Layer {
                q,
                k,
                v,
                o: linear_b(heads * hd, h, bias, a.pp("o_proj"))?,
                q_norm: RmsNorm::new(hd, config.rms_norm_eps, a.pp("q_norm"))?,
                k_norm: RmsNorm::new(hd, config.rms_norm_eps, a.pp("k_norm"))?,
                gate: linear_no_bias(h, config.intermediate_size, l.pp("mlp.gate_proj"))?,
                up: linear_no_bias(h, config.intermediate_size, l.pp("mlp.up_proj"))?,
                down: linear_no_bias(config.intermediate_size, h, l.pp("mlp.down_proj"))?,
                input_norm: norm("input_layernorm", h)?,
                post_attention_norm: norm("post_attention_layernorm", h)?,
                pre_feedforward_norm: norm("pre_feedforward_layernorm", h)?,
                post_feedforward_norm: norm("post_feedforward_layernorm", h)?,
                rotary: if sliding {
                    local.clone()
                } else {
                    global.clone()
                },
                sliding_window: sliding.then_some(config.sliding_window),
            });
        }
        Ok(Self {
            embed: embedding(config.vocab_size, h, vb.pp("embed_tokens"))?,
            layers,
            norm: RmsNorm::new(h, config.rms_norm_eps, vb.pp("norm"))?,
            config: config.clone(),
            adapters: MoleSet {
                moles,
                names: mole_names,
                config: mole.clone(),
            },
        })
    }

    /// The MoLE projections, their names and routing.
    pub fn adapters(&self) -> &MoleSet {
        &self.adapters
    }

    /// The token embedding matrix (tied to the language-model head).
    pub fn embeddings(&self) -> &Tensor {
        self.embed.embeddings()
    }

    /// Final-norm hidden states `[n, t, h]` of right-padded `input_ids` `[n, t]` with
    /// `attention_mask` (1 = token, 0 = padding).
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        masks: &[Tensor],
    ) -> Result<Tensor> {
        let (n, t) = input_ids.dims2()?;
        let c = &self.config;
        let mut x = (self.embed.forward(input_ids)? * (c.hidden_size as f64).sqrt())?;
        let dtype = x.dtype();
        let device = x.device().clone();
        let keys = attention_mask.to_dtype(DType::F32)?.reshape((n, 1, 1, t))?;
        let blocked = |window: Option<usize>| -> Result<Tensor> {
            let causal: Vec<f32> = (0..t)
                .flat_map(|i| {
                    (0..t).map(move |j| {
                        // A sliding layer sees the last `w` positions, itself included
                        // (Hugging Face's Gemma 3; candle's prefill mask admits one more).
                        let out = i < j || window.is_some_and(|w| j + w <= i);
                        if out { 1.0 } else { 0.0 }
                    })
                })
                .collect();
            let causal = Tensor::from_vec(causal, (1, 1, t, t), &device)?;
            // Blocked where causal says so or the key is padding; as an additive mask.
            let blocked = causal.broadcast_maximum(&(1.0 - &keys)?)?;
            (blocked * f64::from(f32::MIN))?.to_dtype(dtype)
        };
        let global = blocked(None)?;
        let local = blocked(Some(c.sliding_window))?;
        let scale = 1.0 / (c.query_pre_attn_scalar as f64).sqrt();
        let groups = c.num_attention_heads / c.num_key_value_heads;
        for layer in &self.layers {
            let residual = x.clone();
            let h = layer.input_norm.forward(&x)?;
            let split = |y: Tensor, heads: usize| -> Result<Tensor> {
                y.reshape((n, t, heads, c.head_dim))?.transpose(1, 2)
            };
            let q = split(layer.q.forward(&h, masks)?, c.num_attention_heads)?;
            let k = split(layer.k.forward(&h, masks)?, c.num_key_value_heads)?;
            let v = split(layer.v.forward(&h, masks)?, c.num_key_value_heads)?;
            let q = layer
                .rotary
                .apply(&layer.q_norm.forward(&q)?.contiguous()?)?;
            let k = layer
                .rotary
                .apply(&layer.k_norm.forward(&k)?.contiguous()?)?;
            let k = candle_transformers::utils::repeat_kv(k, groups)?.contiguous()?;
            let v = candle_transformers::utils::repeat_kv(v.contiguous()?, groups)?.contiguous()?;
            let mut scores = (q.matmul(&k.t()?)? * scale)?;
            if let Some(cap) = c.attn_logit_softcapping {
                scores = ((scores / cap)?.tanh()? * cap)?;
            }
            let mask = if layer.sliding_window.is_some() {
                &local
            } else {
                &global
            };
            let probabilities = candle_nn::ops::softmax(&scores.broadcast_add(mask)?, D::Minus1)?;
            let attended = probabilities
                .matmul(&v)?
                .transpose(1, 2)?
                .reshape((n, t, ()))?;
            let attended = layer
                .post_attention_norm
                .forward(&layer.o.forward(&attended)?)?;
            x = (attended + residual)?;
            let residual = x.clone();
            let h = layer.pre_feedforward_norm.forward(&x)?;
            let h =
                (c.hidden_activation.forward(&layer.gate.forward(&h)?)? * layer.up.forward(&h)?)?;
            let h = layer
                .post_feedforward_norm
                .forward(&layer.down.forward(&h)?)?;
            x = (residual + h)?;
        }
        self.norm.forward(&x)
    }
}
