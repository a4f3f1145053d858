//! Backward passes of the fused kernels ([`super::kernels`]), for the packed training
//! step (issue #19): what trains in CoPL's reward model is the LoRA experts, the gates
//! and the head, so the backbone's layer norms, biases and activations need only the
//! gradient of their input. Each pass is one sweep over its rows, in place on the
//! incoming gradient, compiled for the CPU's best instruction set
//! ([`crate::simd::dispatch`]) like the forward kernels.
//!
//! The forward keeps what each backward reads: the pre-activation for GELU, the
//! normalised rows and 1/σ for layer norm ([`NormSaved`], filled by
//! [`residual_norm_saving`] and [`layer_norm_saving`]), the probabilities for softmax.

use rayon::prelude::*;

use super::attention::Span;
use super::gemm::{View, matmul};
use super::kernels::{Activation, Norm, erf, exp, normalise_keeping, softmax_rows};
use crate::simd::{RowLoop, dispatch};

/// Rows per rayon job: as the forward kernels.
const ROWS_PER_JOB: usize = 16;

/// d/dx of the activation at `x`.
#[inline(always)]
fn activation_derivative(x: f32, activation: Activation) -> f32 {
    match activation {
        // d/dx ½x(1 + erf(x/√2)) = Φ(x) + x·φ(x)
        Activation::GeluErf => {
            let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
            let pdf = 0.398_942_3 * exp(-0.5 * x * x);
            cdf + x * pdf
        }
        // y = ½x(1 + tanh z), z = c(x + 0.044715x³):
        // dy/dx = ½(1 + tanh z) + ½x(1 − tanh² z)·c(1 + 3·0.044715x²)
        Activation::GeluTanh => {
            const C: f32 = 0.797_884_6;
            let z = C * (x + 0.044_715 * x * x * x);
            let t = 1.0 - 2.0 / (exp(2.0 * z) + 1.0);
            0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * C * (1.0 + 3.0 * 0.044_715 * x * x)
        }
        Activation::Relu => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
    }
}

struct ActivationBackward<'a>(&'a mut [f32], &'a [f32], Activation);

impl RowLoop for ActivationBackward<'_> {
    #[inline(always)]
    fn run(self) {
        let Self(grad, pre, activation) = self;
        for (g, &x) in grad.iter_mut().zip(pre) {
            *g *= activation_derivative(x, activation);
        }
    }
}

/// `grad ← grad ⊙ activation′(pre)`: through `h = activation(pre)` (bias included in
/// `pre`), the gradient of `pre` (and of the bias, summed over rows) from that of `h`.
pub fn activation_backward(grad: &mut [f32], pre: &[f32], width: usize, activation: Activation) {
    assert_eq!(grad.len(), pre.len(), "activation_backward: shapes differ");
    let job = width.max(1) * ROWS_PER_JOB;
    grad.par_chunks_mut(job)
        .zip(pre.par_chunks(job))
        .for_each(|(g, p)| dispatch(ActivationBackward(g, p, activation)));
}

/// What a layer norm's backward reads: each row normalised (before γ and β) and 1/σ.
#[derive(Clone, Debug, Default)]
pub struct NormSaved {
    pub normalised: Vec<f32>,
    pub inv_std: Vec<f32>,
}

impl NormSaved {
    fn resize(&mut self, values: usize, width: usize) {
        self.normalised.resize(values, 0.0);
        self.inv_std.resize(values / width.max(1), 0.0);
    }
}

struct NormSaving<'a> {
    x: &'a mut [f32],
    y: Option<(&'a [f32], &'a [f32])>,
    norm: &'a Norm,
    normalised: &'a mut [f32],
    inv_std: &'a mut [f32],
}

impl RowLoop for NormSaving<'_> {
    #[inline(always)]
    fn run(self) {
        let width = self.norm.weight.len();
        let rows = self
            .x
            .chunks_exact_mut(width)
            .zip(self.normalised.chunks_exact_mut(width))
            .zip(self.inv_std.iter_mut())
            .enumerate();
        for (i, ((row, kept), inv)) in rows {
            if let Some((y, bias)) = self.y {
                let out = &y[i * width..(i + 1) * width];
                for ((v, &o), &b) in row.iter_mut().zip(out).zip(bias) {
                    *v += o + b;
                }
            }
            *inv = normalise_keeping(row, self.norm, kept);
        }
    }
}

fn norm_saving(x: &mut [f32], y: Option<(&[f32], &[f32])>, norm: &Norm, saved: &mut NormSaved) {
    let width = norm.weight.len();
    saved.resize(x.len(), width);
    let job = width * ROWS_PER_JOB;
    let ys: Vec<Option<(&[f32], &[f32])>> = match y {
        Some((y, bias)) => y.chunks(job).map(|c| Some((c, bias))).collect(),
        None => vec![None; x.len().div_ceil(job)],
    };
    x.par_chunks_mut(job)
        .zip(saved.normalised.par_chunks_mut(job))
        .zip(saved.inv_std.par_chunks_mut(ROWS_PER_JOB))
        .zip(ys)
        .for_each(|(((x, normalised), inv_std), y)| {
            dispatch(NormSaving {
                x,
                y,
                norm,
                normalised,
                inv_std,
            })
        });
}

/// [`super::kernels::residual_norm`] (`x ← LayerNorm(y + bias + x)`), keeping what
/// [`layer_norm_backward`] reads.
pub fn residual_norm_saving(
    x: &mut [f32],
    y: &[f32],
    bias: &[f32],
    norm: &Norm,
    saved: &mut NormSaved,
) {
    assert_eq!(x.len(), y.len(), "residual_norm_saving: shapes differ");
    norm_saving(x, Some((y, bias)), norm, saved);
}

/// [`super::kernels::layer_norm`] (`x ← LayerNorm(x)`), keeping what
/// [`layer_norm_backward`] reads.
pub fn layer_norm_saving(x: &mut [f32], norm: &Norm, saved: &mut NormSaved) {
    norm_saving(x, None, norm, saved);
}

struct NormBackward<'a>(&'a mut [f32], &'a [f32], &'a [f32], &'a Norm);

impl RowLoop for NormBackward<'_> {
    #[inline(always)]
    fn run(self) {
        let Self(grad, normalised, inv_std, norm) = self;
        let width = norm.weight.len();
        let n = width as f32;
        for ((g, xh), &inv) in grad
            .chunks_exact_mut(width)
            .zip(normalised.chunks_exact(width))
            .zip(inv_std)
        {
            // g ← dy ⊙ γ; dx = (g − mean(g) − x̂ · mean(g ⊙ x̂)) / σ
            let (mut sum_g, mut sum_gx) = (0.0f32, 0.0f32);
            for ((v, &w), &x) in g.iter_mut().zip(&norm.weight).zip(xh) {
                *v *= w;
                sum_g += *v;
                sum_gx += *v * x;
            }
            let (mean_g, mean_gx) = (sum_g / n, sum_gx / n);
            for (v, &x) in g.iter_mut().zip(xh) {
                *v = (*v - mean_g - x * mean_gx) * inv;
            }
        }
    }
}

/// Through `y = x̂ ⊙ γ + β` with x̂ the row normalised (γ and β frozen):
/// `grad ← ∂x` from `grad = ∂y`, row by row.
pub fn layer_norm_backward(grad: &mut [f32], norm: &Norm, saved: &NormSaved) {
    let width = norm.weight.len();
    assert_eq!(
        grad.len(),
        saved.normalised.len(),
        "layer_norm_backward: the gradient and the saved rows differ"
    );
    let job = width * ROWS_PER_JOB;
    grad.par_chunks_mut(job)
        .zip(saved.normalised.par_chunks(job))
        .zip(saved.inv_std.par_chunks(ROWS_PER_JOB))
        .for_each(|((g, xh), inv)| dispatch(NormBackward(g, xh, inv, norm)));
}

struct SoftmaxBackward<'a>(&'a mut [f32], &'a [f32], usize);

impl RowLoop for SoftmaxBackward<'_> {
    #[inline(always)]
    fn run(self) {
        let Self(grad, p, width) = self;
        for (g, p) in grad.chunks_exact_mut(width).zip(p.chunks_exact(width)) {
            let dot: f32 = g.iter().zip(p).map(|(g, p)| g * p).sum();
            for (g, &p) in g.iter_mut().zip(p) {
                *g = p * (*g - dot);
            }
        }
    }
}

/// Through `p = softmax(x)` per row of `width`: `grad ← p ⊙ (grad − Σ grad ⊙ p)` (on the
/// caller's thread, as the forward: attention runs it per job).
pub fn softmax_backward_rows(grad: &mut [f32], p: &[f32], width: usize) {
    assert_eq!(grad.len(), p.len(), "softmax_backward_rows: shapes differ");
    dispatch(SoftmaxBackward(grad, p, width));
}

/// A MoLE projection's low-rank terms (eq. 10) as the packed training step holds them:
/// the stacked experts `a` `[(M+1)·r × h]` (shared first) and `b` `[out × (M+1)·r]`.
pub struct LowRankTerms<'a> {
    pub a: &'a [f32],
    pub b: &'a [f32],
    pub rank: usize,
    pub experts: usize,
    /// s = α / r.
    pub scale: f32,
}

/// One sequence's routing in one projection: its expert and weight w_u (eq. 9).
#[derive(Clone, Copy, Debug)]
pub struct SpanRouting {
    pub expert: usize,
    pub weight: f32,
}

/// Where [`low_rank_backward`] adds its gradients: ∂A and ∂B (shapes of the terms'),
/// ∂w_u per sequence, and ∂x `[T × h]` (None: not wanted, the product is skipped).
pub struct LowRankGrads<'a> {
    pub a: &'a mut [f32],
    pub b: &'a mut [f32],
    pub weights: &'a mut [f32],
    pub x: Option<&'a mut [f32]>,
}

/// The backward of `out += s·((x·Aᵀ) ⊙ m)·Bᵀ` (m per token: 1 on the shared block, w_u
/// on the routed expert's, 0 elsewhere), `out` being `d_out`'s view (a column block of
/// the fused Q/K/V gradient). With L = x·Aᵀ recomputed and L̃ = s·L ⊙ m:
/// ∂B += ∂outᵀ·L̃, ∂L̃ = ∂out·B, ∂w_u += s·Σ_{tokens, routed block} ∂L̃ ⊙ L,
/// ∂L = s·∂L̃ ⊙ m, ∂A += ∂Lᵀ·x, ∂x += ∂L·A.
#[allow(clippy::too_many_arguments)]
pub fn low_rank_backward(
    terms: &LowRankTerms<'_>,
    x: &[f32],
    hidden: usize,
    spans: &[Span],
    routings: &[SpanRouting],
    d_out: &[f32],
    d_out_view: View,
    grads: LowRankGrads<'_>,
    threads: usize,
) {
    let blocks = (terms.experts + 1) * terms.rank;
    let out = terms.b.len() / blocks.max(1);
    let tokens: usize = spans.iter().map(|s| s.len).sum();
    let low_view = View::dense(tokens, blocks);
    let mut low = vec![0f32; tokens * blocks];
    matmul(
        &mut low,
        low_view,
        false,
        x,
        View::dense(tokens, hidden),
        terms.a,
        View::dense(blocks, hidden).t(),
        1.0,
        threads,
    );
    // The mask's value on block column c of a token routed to `expert` with `weight`.
    let r = terms.rank;
    let mask = |c: usize, routing: &SpanRouting| {
        if c < r {
            terms.scale
        } else if (c - r) / r == routing.expert {
            terms.scale * routing.weight
        } else {
            0.0
        }
    };
    let mut masked = low.clone();
    for (span, routing) in spans.iter().zip(routings) {
        for row in
            masked[span.start * blocks..(span.start + span.len) * blocks].chunks_exact_mut(blocks)
        {
            for (c, v) in row.iter_mut().enumerate() {
                *v *= mask(c, routing);
            }
        }
    }
    // ∂B += ∂outᵀ · L̃
    matmul(
        grads.b,
        View::dense(out, blocks),
        true,
        d_out,
        d_out_view.t(),
        &masked,
        low_view,
        1.0,
        threads,
    );
    // ∂L̃ = ∂out · B, then ∂w_u and ∂L in place.
    let mut d_low = masked;
    matmul(
        &mut d_low,
        low_view,
        false,
        d_out,
        d_out_view,
        terms.b,
        View::dense(out, blocks),
        1.0,
        threads,
    );
    for ((span, routing), d_weight) in spans.iter().zip(routings).zip(grads.weights.iter_mut()) {
        let range = span.start * blocks..(span.start + span.len) * blocks;
        let routed = r * (1 + routing.expert)..r * (2 + routing.expert);
        for (d_row, row) in d_low[range.clone()]
            .chunks_exact_mut(blocks)
            .zip(low[range].chunks_exact(blocks))
        {
            *d_weight += terms.scale
                * d_row[routed.clone()]
                    .iter()
                    .zip(&row[routed.clone()])
                    .map(|(d, l)| d * l)
                    .sum::<f32>();
            for (c, v) in d_row.iter_mut().enumerate() {
                *v *= mask(c, routing);
            }
        }
    }
    // ∂A += ∂Lᵀ · x, ∂x += ∂L · A
    matmul(
        grads.a,
        View::dense(blocks, hidden),
        true,
        &d_low,
        low_view.t(),
        x,
        View::dense(tokens, hidden),
        1.0,
        threads,
    );
    let Some(dx) = grads.x else {
        return;
    };
    matmul(
        dx,
        View::dense(tokens, hidden),
        true,
        &d_low,
        low_view,
        terms.a,
        View::dense(blocks, hidden),
        1.0,
        threads,
    );
}

/// The backward of [`super::attention::attention`]: `d_qkv` `[T × 3·hidden]` (∂Q, ∂K, ∂V in the columns
/// `qkv` has them) from `d_context` `[T × hidden]`. Per (sequence, head), with
/// S = Q·Kᵀ/√d and P = softmax(S) recomputed (t × t per job, as in the forward, instead
/// of kept for every layer): ∂V = Pᵀ·∂O, ∂P = ∂O·Vᵀ, ∂S = P ⊙ (∂P − rowsum(∂P ⊙ P)),
/// ∂Q = ∂S·K/√d, ∂K = ∂Sᵀ·Q/√d.
pub fn attention_backward(
    qkv: &[f32],
    d_context: &[f32],
    hidden: usize,
    heads: usize,
    spans: &[Span],
    d_qkv: &mut [f32],
) {
    let d = hidden / heads;
    let total: usize = spans.iter().map(|s| s.len).sum();
    let all = View::dense(total, 3 * hidden);
    let context = View::dense(total, hidden);
    let scale = 1.0 / (d as f32).sqrt();
    let jobs: Vec<(Span, usize)> = spans
        .iter()
        .flat_map(|&span| (0..heads).map(move |head| (span, head)))
        .collect();
    let gradients: Vec<[Vec<f32>; 3]> = jobs
        .par_iter()
        .map(|&(span, head)| {
            let t = span.len;
            let rows = all.rows(span.start, t);
            let q = rows.columns(head * d, d);
            let k = rows.columns(hidden + head * d, d);
            let v = rows.columns(2 * hidden + head * d, d);
            let d_out = context.rows(span.start, t).columns(head * d, d);
            let square = View::dense(t, t);
            let block = View::dense(t, d);
            let mut p = vec![0f32; t * t];
            matmul(&mut p, square, false, qkv, q, qkv, k.t(), scale, 1);
            softmax_rows(&mut p, t);
            // ∂V = Pᵀ ∂O
            let mut d_v = vec![0f32; t * d];
            matmul(
                &mut d_v,
                block,
                false,
                &p,
                square.t(),
                d_context,
                d_out,
                1.0,
                1,
            );
            // ∂P = ∂O Vᵀ, then ∂S in place
            let mut d_s = vec![0f32; t * t];
            matmul(
                &mut d_s,
                square,
                false,
                d_context,
                d_out,
                qkv,
                v.t(),
                1.0,
                1,
            );
            softmax_backward_rows(&mut d_s, &p, t);
            // ∂Q = ∂S K / √d, ∂K = ∂Sᵀ Q / √d
            let mut d_q = vec![0f32; t * d];
            matmul(&mut d_q, block, false, &d_s, square, qkv, k, scale, 1);
            let mut d_k = vec![0f32; t * d];
            matmul(&mut d_k, block, false, &d_s, square.t(), qkv, q, scale, 1);
            [d_q, d_k, d_v]
        })
        .collect();
    for ((span, head), parts) in jobs.iter().zip(gradients) {
        for (part, values) in parts.iter().enumerate() {
            for (i, row) in values.chunks_exact(d).enumerate() {
                let at = (span.start + i) * 3 * hidden + part * hidden + head * d;
                d_qkv[at..at + d].copy_from_slice(row);
            }
        }
    }
}
