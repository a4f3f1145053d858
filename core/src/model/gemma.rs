//! The Gemma family — gemma, gemma-2, gemma-3 (the paper's backbone family; Gemma 3 270M
//! is the real decoder we test with) — with MoLE projections in attention. Written as
//! candle-transformers' `gemma*.rs` are and loads the same tensor names
//! (`model.layers.{i}.self_attn.q_proj` …), but reads the whole sequence at once (no KV cache: a reward model scores, it does
//! not generate), returns the final-norm hidden states of every position, masks padded
//! keys, and is differentiable throughout (norms, rotary embedding and softmax from
//! basic ops: candle's fused kernels have no backward). With every LoRA B = 0 its
//! last-position logits equal candle-transformers' for each generation (tested).
//!
//! The generations differ in: q/k norms (3), "sandwich" norms after attention and MLP
//! (2, 3; in gemma the `post_attention_layernorm` is the MLP's input norm), attention
//! logit soft-capping (2), which layers slide (2: even layers; 3: five of six) and their
//! rotary base (3: local layers 10 000), and the attention scale (2, 3:
//! `query_pre_attn_scalar`^−½, as Hugging Face; candle's gemma-2 uses head_dim^−½).

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::Activation;
use candle_nn::{Embedding, VarBuilder, embedding, linear_b, linear_no_bias};
pub use candle_transformers::models::gemma3::Config;
use candle_transformers::models::{gemma, gemma2};

use super::frozen::FrozenLinear;

/// A Gemma config of any generation, as its `config.json` gives it.
#[derive(Clone, Debug)]
pub enum GemmaConfig {
    V1(gemma::Config),
    V2(gemma2::Config),
    V3(Config),
}

/// What the forward needs, whatever the generation.
#[derive(Clone, Debug)]
struct Spec {
    hidden: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    intermediate: usize,
    eps: f64,
    vocab: usize,
    act: Activation,
    bias: bool,
    qk_norm: bool,
    sandwich: bool,
    softcap: Option<f64>,
    scale: f64,
    /// Per layer: sliding window (None: global) and rotary base.
    layers: Vec<(Option<usize>, f64)>,
    positions: usize,
}

impl GemmaConfig {
    fn spec(&self) -> Result<Spec> {
        Ok(match self {
            Self::V1(c) => Spec {
                hidden: c.hidden_size,
                heads: c.num_attention_heads,
                kv_heads: c.num_key_value_heads,
                head_dim: c.head_dim,
                intermediate: c.intermediate_size,
                eps: c.rms_norm_eps,
                vocab: c.vocab_size,
                act: match (c.hidden_act, c.hidden_activation) {
                    (Some(a), None) | (None, Some(a)) => a,
                    _ => candle_core::bail!(
                        "gemma config: set exactly one of hidden_act, hidden_activation"
                    ),
                },
                bias: c.attention_bias,
                qk_norm: false,
                sandwich: false,
                softcap: None,
                scale: 1.0 / (c.head_dim as f64).sqrt(),
                layers: vec![(None, c.rope_theta); c.num_hidden_layers],
                positions: c.max_position_embeddings,
            },
            Self::V2(c) => Spec {
                hidden: c.hidden_size,
                heads: c.num_attention_heads,
                kv_heads: c.num_key_value_heads,
                head_dim: c.head_dim,
                intermediate: c.intermediate_size,
                eps: c.rms_norm_eps,
                vocab: c.vocab_size,
                act: c.hidden_activation,
                bias: c.attention_bias,
                qk_norm: false,
                sandwich: true,
                softcap: c.attn_logit_softcapping,
                scale: 1.0 / (c.query_pre_attn_scalar as f64).sqrt(),
                layers: (0..c.num_hidden_layers)
                    .map(|i| {
                        (
                            (i % 2 == 0).then_some(c.sliding_window).flatten(),
                            c.rope_theta,
                        )
                    })
                    .collect(),
                positions: c.max_position_embeddings,
            },
            Self::V3(c) => Spec {
                hidden: c.hidden_size,
                heads: c.num_attention_heads,
                kv_heads: c.num_key_value_heads,
                head_dim: c.head_dim,
                intermediate: c.intermediate_size,
                eps: c.rms_norm_eps,
                vocab: c.vocab_size,
                act: c.hidden_activation,
                bias: c.attention_bias,
                qk_norm: true,
                sandwich: true,
                softcap: c.attn_logit_softcapping,
                scale: 1.0 / (c.query_pre_attn_scalar as f64).sqrt(),
                layers: (0..c.num_hidden_layers)
                    .map(|i| {
                        if (i + 1) % c.sliding_window_pattern > 0 {
                            (Some(c.sliding_window), c.rope_local_base_freq)
                        } else {
                            (None, c.rope_theta)
                        }
                    })
                    .collect(),
                positions: c.max_position_embeddings,
            },
        })
    }

    /// The hidden size.
    pub fn hidden_size(&self) -> usize {
        match self {
            Self::V1(c) => c.hidden_size,
            Self::V2(c) => c.hidden_size,
            Self::V3(c) => c.hidden_size,
        }
    }

    /// Caps the rotary tables' length (positions) at `max`.
    pub fn cap_positions(&mut self, max: usize) {
        match self {
            Self::V1(c) => c.max_position_embeddings = c.max_position_embeddings.min(max),
            Self::V2(c) => c.max_position_embeddings = c.max_position_embeddings.min(max),
            Self::V3(c) => c.max_position_embeddings = c.max_position_embeddings.min(max),
        }
    }
}

use super::mole::{MoleConfig, MoleSet, Projection};

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
struct Layer {
    q: Projection,
    k: Projection,
    v: Projection,
    o: FrozenLinear,
    /// Gemma 3 only.
    qk_norms: Option<(RmsNorm, RmsNorm)>,
    gate: FrozenLinear,
    up: FrozenLinear,
    down: FrozenLinear,
    input_norm: RmsNorm,
    /// The MLP's input norm.
    pre_feedforward_norm: RmsNorm,
    /// Gemma 2 and 3: norms of the attention and MLP outputs.
    sandwich: Option<(RmsNorm, RmsNorm)>,
    rotary: std::sync::Arc<Rotary>,
    sliding_window: Option<usize>,
}

/// Gemma decoder (any generation) with MoLE attention projections.
#[derive(Clone, Debug)]
pub struct GemmaMole {
    embed: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    spec: Spec,
    adapters: MoleSet,
}

impl GemmaMole {
    /// Base weights from `backbone` (Hugging Face names under `model.`), MoLE tensors
    /// from `adapters` under `model.layers.{i}.self_attn.{projection}.mole.*`.
    pub fn load(
        backbone: VarBuilder<'_>,
        adapters: VarBuilder<'_>,
        config: &GemmaConfig,
        mole: &MoleConfig,
    ) -> Result<Self> {
        let spec = config.spec()?;
        let vb = backbone.pp("model");
        let (h, hd, eps) = (spec.hidden, spec.head_dim, spec.eps);
        let mut set = MoleSet {
            moles: Vec::new(),
            names: Vec::new(),
            config: mole.clone(),
        };
        let mut layers = Vec::with_capacity(spec.layers.len());
        // One rotary table per base frequency, shared by the layers that use it.
        let mut tables: Vec<(f64, std::sync::Arc<Rotary>)> = Vec::new();
        for (i, &(window, base)) in spec.layers.iter().enumerate() {
            let rotary = match tables.iter().find(|(b, _)| *b == base) {
                Some((_, t)) => t.clone(),
                None => {
                    let t = std::sync::Arc::new(Rotary::new(hd, base, spec.positions, &vb)?);
                    tables.push((base, t.clone()));
                    t
                }
            };
            let l = vb.pp(format!("layers.{i}"));
            let a = l.pp("self_attn");
            let adapter = adapters.pp(format!("model.layers.{i}.self_attn"));
            let adapted = mole.adapts_layer(i, spec.layers.len());
            let mut projection = |name: &str, out: usize| -> Result<Projection> {
                Projection::new(
                    linear_b(h, out, spec.bias, a.pp(name))?,
                    name,
                    format!("model.layers.{i}.self_attn.{name}"),
                    &adapter.pp(name),
                    &mut set,
                    adapted,
                )
            };
            let (q, k, v) = (
                projection("q_proj", spec.heads * hd)?,
                projection("k_proj", spec.kv_heads * hd)?,
                projection("v_proj", spec.kv_heads * hd)?,
            );
            let norm = |name: &str| RmsNorm::new(h, eps, l.pp(name));
            layers.push(Layer {
                q,
                k,
                v,
                o: FrozenLinear::new(linear_b(spec.heads * hd, h, spec.bias, a.pp("o_proj"))?),
                qk_norms: if spec.qk_norm {
                    Some((
                        RmsNorm::new(hd, eps, a.pp("q_norm"))?,
                        RmsNorm::new(hd, eps, a.pp("k_norm"))?,
                    ))
                } else {
                    None
                },
                gate: FrozenLinear::new(linear_no_bias(
                    h,
                    spec.intermediate,
                    l.pp("mlp.gate_proj"),
                )?),
                up: FrozenLinear::new(linear_no_bias(h, spec.intermediate, l.pp("mlp.up_proj"))?),
                down: FrozenLinear::new(linear_no_bias(
                    spec.intermediate,
                    h,
                    l.pp("mlp.down_proj"),
                )?),
                input_norm: norm("input_layernorm")?,
                pre_feedforward_norm: if spec.sandwich {
                    norm("pre_feedforward_layernorm")?
                } else {
                    norm("post_attention_layernorm")?
                },
                sandwich: if spec.sandwich {
                    Some((
                        norm("post_attention_layernorm")?,
                        norm("post_feedforward_layernorm")?,
                    ))
                } else {
                    None
                },
                rotary,
                sliding_window: window,
            });
        }
        Ok(Self {
            embed: embedding(spec.vocab, h, vb.pp("embed_tokens"))?,
            layers,
            norm: RmsNorm::new(h, eps, vb.pp("norm"))?,
            spec,
            adapters: set,
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

    /// Layers below this one carry no MoLE projection: their output depends on the
    /// text alone ([`Self::frozen_forward`]).
    pub fn first_adapted_layer(&self) -> usize {
        self.adapters.config.first_adapted_layer(self.layers.len())
    }

    /// Final-norm hidden states `[n, t, h]` of right-padded `input_ids` `[n, t]` with
    /// `attention_mask` (1 = token, 0 = padding).
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        masks: &[Tensor],
    ) -> Result<Tensor> {
        let x = self.frozen_forward(input_ids, attention_mask)?;
        self.adapted_forward(&x, attention_mask, masks)
    }

    /// The embeddings and the layers below [`Self::first_adapted_layer`]: the same for
    /// every user. Rows are right-padded and attention is causal with padded keys
    /// masked, so a row's states do not depend on the batch: they can be cached per
    /// text and re-padded.
    pub fn frozen_forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        let x = (self.embed.forward(input_ids)? * (self.spec.hidden as f64).sqrt())?;
        self.run_layers(x, attention_mask, &[], 0..self.first_adapted_layer())
    }

    /// The layers from [`Self::first_adapted_layer`] on and the final norm, over its
    /// input `hidden`.
    pub fn adapted_forward(
        &self,
        hidden: &Tensor,
        attention_mask: &Tensor,
        masks: &[Tensor],
    ) -> Result<Tensor> {
        let x = self.run_layers(
            hidden.clone(),
            attention_mask,
            masks,
            self.first_adapted_layer()..self.layers.len(),
        )?;
        self.norm.forward(&x)
    }

    fn run_layers(
        &self,
        mut x: Tensor,
        attention_mask: &Tensor,
        masks: &[Tensor],
        layers: std::ops::Range<usize>,
    ) -> Result<Tensor> {
        let (n, t) = attention_mask.dims2()?;
        let c = &self.spec;
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
            (blocked * super::blocked_score(dtype))?.to_dtype(dtype)
        };
        let global = blocked(None)?;
        let window = c.layers.iter().find_map(|(w, _)| *w);
        let local = match window {
            Some(w) => Some(blocked(Some(w))?),
            None => None,
        };
        let groups = c.heads / c.kv_heads;
        for layer in &self.layers[layers] {
            let residual = x.clone();
            let h = layer.input_norm.forward(&x)?;
            let split = |y: Tensor, heads: usize| -> Result<Tensor> {
                y.reshape((n, t, heads, c.head_dim))?.transpose(1, 2)
            };
            let q = split(layer.q.forward(&h, masks)?, c.heads)?;
            let k = split(layer.k.forward(&h, masks)?, c.kv_heads)?;
            let v = split(layer.v.forward(&h, masks)?, c.kv_heads)?;
            let (q, k) = match &layer.qk_norms {
                Some((qn, kn)) => (qn.forward(&q)?, kn.forward(&k)?),
                None => (q, k),
            };
            let q = layer.rotary.apply(&q.contiguous()?)?;
            let k = layer.rotary.apply(&k.contiguous()?)?;
            let k = candle_transformers::utils::repeat_kv(k, groups)?.contiguous()?;
            let v = candle_transformers::utils::repeat_kv(v.contiguous()?, groups)?.contiguous()?;
            let mut scores = (q.matmul(&k.t()?)? * c.scale)?;
            if let Some(cap) = c.softcap {
                scores = ((scores / cap)?.tanh()? * cap)?;
            }
            let mask = match (&layer.sliding_window, &local) {
                (Some(_), Some(local)) => local,
                _ => &global,
            };
            let probabilities = candle_nn::ops::softmax(&scores.broadcast_add(mask)?, D::Minus1)?;
            let attended = probabilities
                .matmul(&v)?
                .transpose(1, 2)?
                .reshape((n, t, ()))?;
            let mut attended = layer.o.forward(&attended)?;
            if let Some((after_attention, _)) = &layer.sandwich {
                attended = after_attention.forward(&attended)?;
            }
            x = (attended + residual)?;
            let residual = x.clone();
            let h = layer.pre_feedforward_norm.forward(&x)?;
            let h = (c.act.forward(&layer.gate.forward(&h)?)? * layer.up.forward(&h)?)?;
            let mut h = layer.down.forward(&h)?;
            if let Some((_, after_mlp)) = &layer.sandwich {
                h = after_mlp.forward(&h)?;
            }
            x = (residual + h)?;
        }
        Ok(x)
    }
}
