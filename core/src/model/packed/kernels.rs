//! Fused element-wise kernels of the served forward, on f32 rows.
//!
//! Each kernel makes one pass over its rows where candle's op-by-op forward makes
//! several (and allocates a tensor for each): bias + activation, bias + residual + layer
//! norm, row softmax. Rows are split across rayon's threads; inside a job the loop runs
//! under [`crate::simd::dispatch`] (the best instruction set the CPU has, picked at run
//! time). `exp` and `erf` are written out branch-free so that those loops
//! vectorise.

use rayon::prelude::*;

use crate::simd::{RowLoop, dispatch};

/// Rows per rayon job: big enough to amortise the job, small enough to balance.
const ROWS_PER_JOB: usize = 16;

/// The hidden activation of the feed-forward block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Exact GELU, `x·Φ(x)` (BERT's `gelu`).
    GeluErf,
    /// GELU with the tanh approximation (`gelu_new`).
    GeluTanh,
    Relu,
}

/// `eˣ` in f32, relative error ≈ 1e-7 over the clamped range [−87, 88]: Cody–Waite
/// range reduction `x = n·ln 2 + r`, a degree-6 polynomial for `eʳ` (Cephes' `expf`
/// coefficients) and `2ⁿ` built in the exponent bits. No branch, so it vectorises.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let exponent = shifted.to_bits() as i32 - 0x4B40_0000; // = n as an integer
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let er = p * r * r + r + 1.0;
    er * f32::from_bits(((exponent + 127) << 23) as u32)
}

/// The error function, absolute error < 2e-7 (Abramowitz & Stegun 7.1.26), branch-free.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = ((((1.061_405_4 * t - 1.453_152) * t + 1.421_413_8) * t - 0.284_496_74) * t
        + 0.254_829_6)
        * t;
    (1.0 - poly * exp(-a * a)).copysign(x)
}

#[inline(always)]
fn activate(x: f32, activation: Activation) -> f32 {
    match activation {
        Activation::GeluErf => 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2)),
        Activation::GeluTanh => {
            let z = 0.797_884_6 * (x + 0.044_715 * x * x * x);
            // tanh(z) = 1 − 2 / (e^{2z} + 1)
            0.5 * x * (2.0 - 2.0 / (exp(2.0 * z) + 1.0))
        }
        Activation::Relu => x.max(0.0),
    }
}

struct BiasActivation<'a>(&'a mut [f32], &'a [f32], Activation);

impl RowLoop for BiasActivation<'_> {
    #[inline(always)]
    fn run(self) {
        let Self(rows, bias, activation) = self;
        for row in rows.chunks_exact_mut(bias.len()) {
            for (v, &b) in row.iter_mut().zip(bias) {
                *v = activate(*v + b, activation);
            }
        }
    }
}

/// `h ← activation(h + bias)` on rows of `bias.len()` values.
pub fn bias_activation(h: &mut [f32], bias: &[f32], activation: Activation) {
    h.par_chunks_mut(bias.len() * ROWS_PER_JOB)
        .for_each(|rows| dispatch(BiasActivation(rows, bias, activation)));
}

/// Layer norm parameters (γ, β, ε).
#[derive(Clone, Debug)]
pub struct Norm {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub eps: f32,
}

/// Σ xs, in eight lanes (a sequential float sum does not vectorise).
#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = xs.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += v;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// max xs, in eight lanes.
#[inline(always)]
fn max(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let chunks = xs.chunks_exact(8);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for chunk in chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l = l.max(v);
        }
    }
    lanes.iter().fold(tail, |m, &v| m.max(v))
}

/// One row normalised in place.
#[inline(always)]
fn normalise(row: &mut [f32], norm: &Norm) {
    normalise_with(row, norm, |_, _| {});
}

/// One row normalised in place, x̂ (before γ and β) written to `kept`; returns 1/σ. The
/// training forward's layer norm ([`super::backward`]).
#[inline(always)]
pub(super) fn normalise_keeping(row: &mut [f32], norm: &Norm, kept: &mut [f32]) -> f32 {
    normalise_with(row, norm, |i, x| kept[i] = x)
}

/// The one layer norm: `row ← x̂ ⊙ γ + β`, `keep(i, x̂ᵢ)` for each entry; returns 1/σ.
#[inline(always)]
fn normalise_with(row: &mut [f32], norm: &Norm, mut keep: impl FnMut(usize, f32)) -> f32 {
    let n = row.len() as f32;
    let mean = sum(row) / n;
    let mut lanes = [0f32; 8];
    let chunks = row.chunks_exact(8);
    let tail: f32 = chunks
        .remainder()
        .iter()
        .map(|v| (v - mean) * (v - mean))
        .sum();
    for chunk in chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += (v - mean) * (v - mean);
        }
    }
    let variance = (lanes.iter().sum::<f32>() + tail) / n;
    let inv = 1.0 / (variance + norm.eps).sqrt();
    for (i, ((v, &g), &b)) in row.iter_mut().zip(&norm.weight).zip(&norm.bias).enumerate() {
        let normalised = (*v - mean) * inv;
        keep(i, normalised);
        *v = normalised * g + b;
    }
    inv
}

struct ResidualNorm<'a>(&'a mut [f32], &'a [f32], &'a [f32], &'a Norm);

impl RowLoop for ResidualNorm<'_> {
    #[inline(always)]
    fn run(self) {
        let Self(xs, ys, bias, norm) = self;
        let width = bias.len();
        for (row, out) in xs.chunks_exact_mut(width).zip(ys.chunks_exact(width)) {
            for ((v, &o), &b) in row.iter_mut().zip(out).zip(bias) {
                *v += o + b;
            }
            normalise(row, norm);
        }
    }
}

/// `x ← LayerNorm(y + bias + x)` row by row (a block's output, its bias, the residual).
pub fn residual_norm(x: &mut [f32], y: &[f32], bias: &[f32], norm: &Norm) {
    let width = bias.len();
    assert_eq!(
        x.len(),
        y.len(),
        "residual_norm: the residual and the output differ"
    );
    x.par_chunks_mut(width * ROWS_PER_JOB)
        .zip(y.par_chunks(width * ROWS_PER_JOB))
        .for_each(|(xs, ys)| dispatch(ResidualNorm(xs, ys, bias, norm)));
}

struct LayerNormRows<'a>(&'a mut [f32], &'a Norm);

impl RowLoop for LayerNormRows<'_> {
    #[inline(always)]
    fn run(self) {
        let Self(xs, norm) = self;
        for row in xs.chunks_exact_mut(norm.weight.len()) {
            normalise(row, norm);
        }
    }
}

/// `x ← LayerNorm(x)` row by row.
pub fn layer_norm(x: &mut [f32], norm: &Norm) {
    x.par_chunks_mut(norm.weight.len() * ROWS_PER_JOB)
        .for_each(|xs| dispatch(LayerNormRows(xs, norm)));
}

struct Softmax<'a>(&'a mut [f32], usize);

impl RowLoop for Softmax<'_> {
    #[inline(always)]
    fn run(self) {
        let Self(x, width) = self;
        for row in x.chunks_exact_mut(width) {
            let top = max(row);
            for v in row.iter_mut() {
                *v = exp(*v - top);
            }
            let inv = 1.0 / sum(row);
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
    }
}

/// `row ← softmax(row)` for every row of `width` values (on the caller's thread).
pub fn softmax_rows(x: &mut [f32], width: usize) {
    dispatch(Softmax(x, width));
}

struct AddBias<'a>(&'a mut [f32], &'a [f32]);

impl RowLoop for AddBias<'_> {
    #[inline(always)]
    fn run(self) {
        let Self(rows, bias) = self;
        for row in rows.chunks_exact_mut(bias.len()) {
            for (v, &b) in row.iter_mut().zip(bias) {
                *v += b;
            }
        }
    }
}

/// `x ← x + bias` on rows of `bias.len()` values.
pub fn add_bias(x: &mut [f32], bias: &[f32]) {
    x.par_chunks_mut(bias.len() * ROWS_PER_JOB)
        .for_each(|rows| dispatch(AddBias(rows, bias)));
}
