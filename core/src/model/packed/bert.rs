//! BERT with MoLE projections over packed sequences: the served forward of
//! [`crate::model::bert::BertMole`], same weights, same mathematics.
//!
//! Every row's tokens are stacked into one `[T × h]` matrix, `T` the sum of the rows'
//! lengths: no padding is computed. Per layer: one GEMM for Q, K and V together, the
//! MoLE low-rank terms as two small GEMMs over all tokens with each token's routing
//! applied between them (eq. 10, as [`crate::model::mole::MoleLinear::forward`]),
//! attention per sequence and head ([`super::attention`]), then the output and
//! feed-forward GEMMs, each followed by one fused pass (bias + residual + layer norm,
//! bias + GELU).

use candle_core::{DType, Result, Tensor};
use candle_transformers::models::bert::HiddenAct;

use super::attention::{Span, attention};
use super::gemm::{View, matmul};
use super::kernels::{self, Activation, Norm};
use crate::model::bert::{BertMole, LayerNorm};
use crate::model::frozen::FrozenLinear;
use crate::model::mole::{MoleLinear, Projection, UserRouting};
use crate::model::reward::Tokens;

/// The values of a tensor, row-major, as f32.
pub(crate) fn values(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()
}

/// A linear map `y = x·Wᵀ + b`, W `[out × in]` row-major as Hugging Face stores it.
#[derive(Clone, Debug)]
pub(crate) struct Dense {
    pub(crate) weight: Vec<f32>,
    pub(crate) bias: Vec<f32>,
    pub(crate) out: usize,
    pub(crate) input: usize,
}

impl Dense {
    pub(crate) fn new(weight: &Tensor, bias: Option<&Tensor>) -> Result<Self> {
        let (out, input) = weight.dims2()?;
        let bias = match bias {
            Some(b) => values(b)?,
            None => vec![0.0; out],
        };
        Ok(Self {
            weight: values(weight)?,
            bias,
            out,
            input,
        })
    }

    fn frozen(linear: &FrozenLinear) -> Result<Self> {
        Self::new(linear.weight(), linear.bias())
    }

    /// Maps stacked on their outputs (Q, K, V → one `[3h × h]` map).
    fn stacked(parts: &[Dense]) -> Self {
        Self {
            weight: parts
                .iter()
                .flat_map(|p| p.weight.iter().copied())
                .collect(),
            bias: parts.iter().flat_map(|p| p.bias.iter().copied()).collect(),
            out: parts.iter().map(|p| p.out).sum(),
            input: parts.first().map_or(0, |p| p.input),
        }
    }

    /// `y ← x·Wᵀ` for `rows` rows of `x` (no bias: the fused pass after adds it).
    fn product(&self, x: &[f32], rows: usize, y: &mut [f32], threads: usize) {
        matmul(
            y,
            View::dense(rows, self.out),
            false,
            x,
            View::dense(rows, self.input),
            &self.weight,
            View::dense(self.out, self.input).t(),
            1.0,
            threads,
        );
    }
}

/// The low-rank terms of one MoLE projection (eq. 10), writing into its columns of the
/// fused Q/K/V output.
#[derive(Clone, Debug)]
struct LowRank {
    /// `[(M + 1)·r × in]`: A_s, A_1 … A_M.
    a: Vec<f32>,
    /// `[out × (M + 1)·r]`: B_s, B_1 … B_M.
    b: Vec<f32>,
    rank: usize,
    experts: usize,
    scale: f32,
    /// The projection's index in a [`UserRouting`].
    index: usize,
    /// Its first column in the fused Q/K/V output.
    column: usize,
}

impl LowRank {
    fn new(mole: &MoleLinear, index: usize, column: usize) -> Result<Self> {
        Ok(Self {
            a: values(&mole.a)?,
            b: values(&mole.b)?,
            rank: mole.rank,
            experts: mole.experts,
            scale: mole.scale as f32,
            index,
            column,
        })
    }

    /// `qkv[:, column..column + out] += s·(m ⊙ x·Aᵀ)·Bᵀ`, m per token from its row's
    /// routing: 1 on the shared block, w_u on the chosen expert's, 0 elsewhere.
    fn add(
        &self,
        x: &[f32],
        hidden: usize,
        spans: &[Span],
        routings: &[&UserRouting],
        qkv: &mut [f32],
        threads: usize,
    ) {
        let blocks = (self.experts + 1) * self.rank;
        let tokens: usize = spans.iter().map(|s| s.len).sum();
        let mut low = vec![0f32; tokens * blocks];
        matmul(
            &mut low,
            View::dense(tokens, blocks),
            false,
            x,
            View::dense(tokens, hidden),
            &self.a,
            View::dense(blocks, hidden).t(),
            1.0,
            threads,
        );
        for (span, routing) in spans.iter().zip(routings) {
            let expert = routing.experts[self.index] as usize;
            let weight = routing.weights[self.index];
            let chosen = self.rank * (1 + expert)..self.rank * (2 + expert);
            for row in
                low[span.start * blocks..(span.start + span.len) * blocks].chunks_exact_mut(blocks)
            {
                for (c, v) in row.iter_mut().enumerate() {
                    *v *= if c < self.rank {
                        self.scale
                    } else if chosen.contains(&c) {
                        self.scale * weight
                    } else {
                        0.0
                    };
                }
            }
        }
        let out = self.b.len() / blocks;
        matmul(
            qkv,
            View::dense(tokens, 3 * hidden).columns(self.column, out),
            true,
            &low,
            View::dense(tokens, blocks),
            &self.b,
            View::dense(out, blocks).t(),
            1.0,
            threads,
        );
    }
}

fn norm(n: &LayerNorm) -> Result<Norm> {
    Ok(Norm {
        weight: values(&n.weight)?,
        bias: values(&n.bias)?,
        eps: n.eps as f32,
    })
}

#[derive(Clone, Debug)]
struct PackedLayer {
    /// Q, K, V stacked: `[3h × h]`.
    qkv: Dense,
    low_rank: Vec<LowRank>,
    attention_output: Dense,
    attention_norm: Norm,
    intermediate: Dense,
    output: Dense,
    output_norm: Norm,
    activation: Activation,
    heads: usize,
}

/// Buffers one forward reuses across its layers.
struct Scratch {
    qkv: Vec<f32>,
    context: Vec<f32>,
    out: Vec<f32>,
    intermediate: Vec<f32>,
}

impl PackedLayer {
    fn forward(
        &self,
        x: &mut [f32],
        spans: &[Span],
        routings: &[&UserRouting],
        scratch: &mut Scratch,
        threads: usize,
    ) {
        let h = self.qkv.input;
        let tokens = x.len() / h;
        let qkv = &mut scratch.qkv[..tokens * 3 * h];
        self.qkv.product(x, tokens, qkv, threads);
        kernels::add_bias(qkv, &self.qkv.bias);
        for low_rank in &self.low_rank {
            low_rank.add(x, h, spans, routings, qkv, threads);
        }
        let context = &mut scratch.context[..tokens * h];
        attention(qkv, h, self.heads, spans, context);
        let out = &mut scratch.out[..tokens * h];
        self.attention_output.product(context, tokens, out, threads);
        kernels::residual_norm(x, out, &self.attention_output.bias, &self.attention_norm);
        let inner = &mut scratch.intermediate[..tokens * self.intermediate.out];
        self.intermediate.product(x, tokens, inner, threads);
        kernels::bias_activation(inner, &self.intermediate.bias, self.activation);
        self.output.product(inner, tokens, out, threads);
        kernels::residual_norm(x, out, &self.output.bias, &self.output_norm);
    }
}

/// Packed hidden states: row `i`'s tokens are `spans[i]` of `states` (`[T × width]`).
#[derive(Clone, Debug)]
pub struct Packed {
    pub states: Vec<f32>,
    pub spans: Vec<Span>,
    pub width: usize,
}

impl Packed {
    /// Row `i`'s `[len × width]` states.
    pub fn row(&self, i: usize) -> &[f32] {
        let s = self.spans[i];
        &self.states[s.start * self.width..(s.start + s.len) * self.width]
    }

    /// One state prepended to every row (the user-token variant's token).
    pub fn prepend(&self, firsts: &[Vec<f32>]) -> Self {
        let mut states = Vec::with_capacity(self.states.len() + firsts.len() * self.width);
        let mut spans = Vec::with_capacity(self.spans.len());
        for (i, first) in firsts.iter().enumerate() {
            spans.push(Span {
                start: states.len() / self.width,
                len: self.spans[i].len + 1,
            });
            states.extend_from_slice(first);
            states.extend_from_slice(self.row(i));
        }
        Self {
            states,
            spans,
            width: self.width,
        }
    }
}

/// [`BertMole`]'s weights laid out for the packed forward.
#[derive(Clone, Debug)]
pub struct PackedBert {
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    embeddings_norm: Norm,
    layers: Vec<PackedLayer>,
    hidden: usize,
    first_adapted: usize,
    projections: usize,
    experts: usize,
}

impl PackedBert {
    /// Copies `model`'s weights (the backbone's and every MoLE projection's).
    pub fn new(model: &BertMole) -> Result<Self> {
        let hidden = model.word_embeddings.hidden_size();
        let mut layers = Vec::with_capacity(model.layers.len());
        for layer in &model.layers {
            let a = &layer.attention;
            let mut low_rank = Vec::new();
            let mut parts = Vec::with_capacity(3);
            for (block, projection) in [&a.query, &a.key, &a.value].into_iter().enumerate() {
                match projection {
                    Projection::Plain(linear) => parts.push(Dense::frozen(linear)?),
                    Projection::Mole(mole, index) => {
                        parts.push(Dense::frozen(&mole.base)?);
                        low_rank.push(LowRank::new(mole, *index, block * hidden)?);
                    }
                }
            }
            layers.push(PackedLayer {
                qkv: Dense::stacked(&parts),
                low_rank,
                attention_output: Dense::frozen(&a.output)?,
                attention_norm: norm(&a.output_norm)?,
                intermediate: Dense::frozen(&layer.intermediate)?,
                output: Dense::frozen(&layer.output)?,
                output_norm: norm(&layer.output_norm)?,
                activation: match layer.act {
                    HiddenAct::Gelu => Activation::GeluErf,
                    HiddenAct::GeluApproximate => Activation::GeluTanh,
                    HiddenAct::Relu => Activation::Relu,
                },
                heads: a.heads,
            });
        }
        Ok(Self {
            word: values(model.word_embeddings.embeddings())?,
            position: values(model.position_embeddings.embeddings())?,
            token_type: values(model.token_type_embeddings.embeddings())?,
            embeddings_norm: norm(&model.embeddings_norm)?,
            layers,
            hidden,
            first_adapted: model.first_adapted_layer(),
            projections: model.adapters().moles.len(),
            experts: model.adapters().config.experts,
        })
    }

    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// The embeddings of `rows` (word + position + token type, layer norm), packed.
    /// A row without tokens, a token id or type id outside the tables, or a row longer
    /// than the position table is an error naming the row.
    fn embed(&self, rows: &[&Tokens]) -> Result<Packed> {
        let h = self.hidden;
        let (vocab, positions, types) = (
            self.word.len() / h,
            self.position.len() / h,
            self.token_type.len() / h,
        );
        let mut spans = Vec::with_capacity(rows.len());
        let mut start = 0;
        for (i, row) in rows.iter().enumerate() {
            let len = row.ids.len();
            if len == 0 {
                candle_core::bail!("row {i} has no token");
            }
            if len > positions {
                candle_core::bail!("row {i}: {len} tokens, more than {positions} positions");
            }
            if row.type_ids.len() != len {
                candle_core::bail!("row {i}: {} type ids for {len} tokens", row.type_ids.len());
            }
            if let Some(id) = row.ids.iter().find(|&&id| id as usize >= vocab) {
                candle_core::bail!("row {i}: token id {id} outside the vocabulary of {vocab}");
            }
            if let Some(t) = row.type_ids.iter().find(|&&t| t as usize >= types) {
                candle_core::bail!("row {i}: token type {t} outside the {types} types");
            }
            spans.push(Span { start, len });
            start += len;
        }
        let mut states = Vec::with_capacity(start * h);
        for row in rows {
            for (p, (&id, &t)) in row.ids.iter().zip(&row.type_ids).enumerate() {
                let word = &self.word[id as usize * h..][..h];
                let position = &self.position[p * h..][..h];
                let token_type = &self.token_type[t as usize * h..][..h];
                states.extend(
                    word.iter()
                        .zip(position)
                        .zip(token_type)
                        .map(|((w, p), t)| w + p + t),
                );
            }
        }
        kernels::layer_norm(&mut states, &self.embeddings_norm);
        Ok(Packed {
            states,
            spans,
            width: h,
        })
    }

    /// Hidden states of `rows` after every layer, row `i` routed by `routings[i]`; with
    /// `user_tokens`, row `i`'s token is prepended at the first adapted layer (the
    /// user-token variant). The routings are checked and the layers' buffers allocated
    /// once for the whole forward.
    pub fn forward(
        &self,
        rows: &[&Tokens],
        routings: &[&UserRouting],
        user_tokens: Option<&[Vec<f32>]>,
    ) -> Result<Packed> {
        if routings.len() != rows.len() {
            candle_core::bail!("{} routings for {} rows", routings.len(), rows.len());
        }
        for (row, r) in routings.iter().enumerate() {
            if r.experts.len() != self.projections || r.weights.len() != self.projections {
                candle_core::bail!(
                    "row {row}: a routing for {} projections, the model has {}",
                    r.experts.len(),
                    self.projections
                );
            }
            if let Some(e) = r.experts.iter().find(|&&e| e as usize >= self.experts) {
                candle_core::bail!("row {row}: expert {e} >= {}", self.experts);
            }
        }
        let mut x = self.embed(rows)?;
        let tokens = x.states.len() / self.hidden + user_tokens.map_or(0, <[_]>::len);
        let widest = self
            .layers
            .iter()
            .map(|l| l.intermediate.out)
            .max()
            .unwrap_or(0);
        let mut scratch = Scratch {
            qkv: vec![0.0; tokens * 3 * self.hidden],
            context: vec![0.0; tokens * self.hidden],
            out: vec![0.0; tokens * self.hidden],
            intermediate: vec![0.0; tokens * widest],
        };
        let threads = rayon::current_num_threads();
        for (i, layer) in self.layers.iter().enumerate() {
            if i == self.first_adapted
                && let Some(firsts) = user_tokens
            {
                x = x.prepend(firsts);
            }
            layer.forward(&mut x.states, &x.spans, routings, &mut scratch, threads);
        }
        Ok(x)
    }

    pub fn layers(&self) -> usize {
        self.layers.len()
    }
}
