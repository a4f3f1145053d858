//! One BERT layer over packed sequences, with MoLE low-rank terms in its Q/K/V
//! projections: the served forward, and the training forward and backward of the packed
//! training step (issue #19).

use candle_core::{DType, Result, Tensor};

use super::attention::{Span, attention};
use super::backward::{
    LowRankGrads, LowRankTerms, NormSaved, SpanRouting, activation_backward, attention_backward,
    layer_norm_backward, low_rank_backward, residual_norm_saving,
};
use super::gemm::{View, matmul};
use super::kernels::{self, Activation, Norm};
use crate::model::frozen::FrozenLinear;
use crate::model::mole::{MoleLinear, UserRouting};

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

    pub(super) fn frozen(linear: &FrozenLinear) -> Result<Self> {
        Self::new(linear.weight(), linear.bias())
    }

    /// Maps stacked on their outputs (Q, K, V → one `[3h × h]` map).
    pub(super) fn stacked(parts: &[Dense]) -> Self {
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
    pub(crate) fn product(&self, x: &[f32], rows: usize, y: &mut [f32], threads: usize) {
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
pub(super) struct LowRank {
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
    pub(super) fn new(mole: &MoleLinear, index: usize, column: usize) -> Result<Self> {
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

#[derive(Clone, Debug)]
pub(super) struct PackedLayer {
    /// Q, K, V stacked: `[3h × h]`.
    pub(super) qkv: Dense,
    pub(super) low_rank: Vec<LowRank>,
    pub(super) attention_output: Dense,
    pub(super) attention_norm: Norm,
    pub(super) intermediate: Dense,
    pub(super) output: Dense,
    pub(super) output_norm: Norm,
    pub(super) activation: Activation,
    pub(super) heads: usize,
}

/// Buffers one forward reuses across its layers.
pub(super) struct Scratch {
    pub(super) qkv: Vec<f32>,
    pub(super) context: Vec<f32>,
    pub(super) out: Vec<f32>,
    pub(super) intermediate: Vec<f32>,
}

impl PackedLayer {
    pub(super) fn forward(
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

/// What a layer's training forward keeps for its backward.
#[derive(Clone, Debug, Default)]
pub struct LayerSaved {
    /// The layer's input `[T × h]` (the low-rank terms' backward reads it).
    input: Vec<f32>,
    /// Q, K, V as attention read them (bias and low-rank terms in) `[T × 3h]`.
    qkv: Vec<f32>,
    attention_norm: NormSaved,
    /// The feed-forward pre-activation, bias in `[T × inner]`.
    intermediate: Vec<f32>,
    output_norm: NormSaved,
}

/// The gradients of one MoLE projection's trainable terms, summed over a step: ∂A, ∂B
/// (shapes of the stacked experts) and ∂w_u per row (what reaches the gate).
#[derive(Clone, Debug, PartialEq)]
pub struct LowRankGrad {
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    pub weights: Vec<f32>,
}

impl Dense {
    /// `dx (+)= dy·W`: the input gradient of `y = x·Wᵀ` (W frozen: no weight gradient).
    fn input_gradient(
        &self,
        dy: &[f32],
        rows: usize,
        dx: &mut [f32],
        accumulate: bool,
        threads: usize,
    ) {
        matmul(
            dx,
            View::dense(rows, self.input),
            accumulate,
            dy,
            View::dense(rows, self.out),
            &self.weight,
            View::dense(self.out, self.input),
            1.0,
            threads,
        );
    }
}

impl LowRank {
    pub(super) fn index(&self) -> usize {
        self.index
    }

    /// The trainable terms: A then B.
    pub(super) fn parameters_mut(&mut self) -> (&mut Vec<f32>, &mut Vec<f32>) {
        (&mut self.a, &mut self.b)
    }

    pub(super) fn parameters(&self) -> (&[f32], &[f32]) {
        (&self.a, &self.b)
    }

    pub(super) fn zero_grad(&self, rows: usize) -> LowRankGrad {
        LowRankGrad {
            a: vec![0.0; self.a.len()],
            b: vec![0.0; self.b.len()],
            weights: vec![0.0; rows],
        }
    }
}

impl PackedLayer {
    /// [`Self::forward`], keeping what [`Self::backward`] reads in `saved`.
    pub(super) fn forward_saving(
        &self,
        x: &mut [f32],
        spans: &[Span],
        routings: &[&UserRouting],
        saved: &mut LayerSaved,
        threads: usize,
    ) {
        let h = self.qkv.input;
        let tokens = x.len() / h;
        saved.input.clear();
        saved.input.extend_from_slice(x);
        saved.qkv.resize(tokens * 3 * h, 0.0);
        self.qkv.product(x, tokens, &mut saved.qkv, threads);
        kernels::add_bias(&mut saved.qkv, &self.qkv.bias);
        for low_rank in &self.low_rank {
            low_rank.add(x, h, spans, routings, &mut saved.qkv, threads);
        }
        let mut context = vec![0f32; tokens * h];
        attention(&saved.qkv, h, self.heads, spans, &mut context);
        let mut out = vec![0f32; tokens * h];
        self.attention_output
            .product(&context, tokens, &mut out, threads);
        residual_norm_saving(
            x,
            &out,
            &self.attention_output.bias,
            &self.attention_norm,
            &mut saved.attention_norm,
        );
        let inner = self.intermediate.out;
        saved.intermediate.resize(tokens * inner, 0.0);
        self.intermediate
            .product(x, tokens, &mut saved.intermediate, threads);
        kernels::add_bias(&mut saved.intermediate, &self.intermediate.bias);
        let mut activated = saved.intermediate.clone();
        kernels::bias_activation(&mut activated, &vec![0.0; inner], self.activation);
        self.output.product(&activated, tokens, &mut out, threads);
        residual_norm_saving(
            x,
            &out,
            &self.output.bias,
            &self.output_norm,
            &mut saved.output_norm,
        );
    }

    /// The layer's backward: `d` holds ∂ of its output and is left holding ∂ of its
    /// input (when `input_gradient`; otherwise its content is unspecified and the
    /// products that only make it, the Q/K/V map's and the low-rank terms' ∂x, are
    /// skipped); each projection's ∂A, ∂B and per-row ∂w_u are added to `grads` (in the
    /// order of the layer's low-rank terms). Only the low-rank terms train: the frozen
    /// maps and layer norms pass input gradients only.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn backward(
        &self,
        d: &mut [f32],
        spans: &[Span],
        routings: &[&UserRouting],
        saved: &LayerSaved,
        grads: &mut [LowRankGrad],
        input_gradient: bool,
        threads: usize,
    ) {
        let h = self.qkv.input;
        let tokens = d.len() / h;
        let inner = self.intermediate.out;
        // Through the second residual + layer norm, the output map, the activation and
        // the intermediate map; the residual carries d on.
        layer_norm_backward(d, &self.output_norm, &saved.output_norm);
        let mut d_inner = vec![0f32; tokens * inner];
        self.output
            .input_gradient(d, tokens, &mut d_inner, false, threads);
        activation_backward(&mut d_inner, &saved.intermediate, inner, self.activation);
        self.intermediate
            .input_gradient(&d_inner, tokens, d, true, threads);
        drop(d_inner);
        // Through the first residual + layer norm, the attention output map, attention.
        layer_norm_backward(d, &self.attention_norm, &saved.attention_norm);
        let mut d_context = vec![0f32; tokens * h];
        self.attention_output
            .input_gradient(d, tokens, &mut d_context, false, threads);
        let mut d_qkv = vec![0f32; tokens * 3 * h];
        attention_backward(&saved.qkv, &d_context, h, self.heads, spans, &mut d_qkv);
        drop(d_context);
        // Into the input: the low-rank terms, then the frozen Q/K/V maps.
        let qkv_view = View::dense(tokens, 3 * h);
        for (low_rank, grad) in self.low_rank.iter().zip(grads.iter_mut()) {
            let routings: Vec<SpanRouting> = routings
                .iter()
                .map(|r| SpanRouting {
                    expert: r.experts[low_rank.index] as usize,
                    weight: r.weights[low_rank.index],
                })
                .collect();
            let out = low_rank.b.len() / ((low_rank.experts + 1) * low_rank.rank).max(1);
            low_rank_backward(
                &LowRankTerms {
                    a: &low_rank.a,
                    b: &low_rank.b,
                    rank: low_rank.rank,
                    experts: low_rank.experts,
                    scale: low_rank.scale,
                },
                &saved.input,
                h,
                spans,
                &routings,
                &d_qkv,
                qkv_view.columns(low_rank.column, out),
                LowRankGrads {
                    a: &mut grad.a,
                    b: &mut grad.b,
                    weights: &mut grad.weights,
                    x: input_gradient.then_some(&mut *d),
                },
                threads,
            );
        }
        if input_gradient {
            self.qkv.input_gradient(&d_qkv, tokens, d, true, threads);
        }
    }
}
