//! One side (users or responses) of one layer, forward and backward, a chunk of rows at
//! a time: eq. 2's transform is row-wise, so the aggregates Z±, the pre-activation m and
//! its gradient exist only for [`CHUNK_ROWS`] rows at once. What stays whole is what
//! crosses sides: the layer's output, and ∂Z±, which the transposed products read.

use std::ops::Range;

use copl_core::model::packed::gemm::{View, matmul};
use rayon::prelude::*;

use super::{SideParams, masked::Masked};

/// Rows a chunk: small enough that a chunk's temporaries are megabytes at 1 000 000
/// users, large enough that its GEMMs run at full speed.
const CHUNK_ROWS: usize = 16_384;

fn chunks(n: usize) -> impl Iterator<Item = Range<usize>> {
    (0..n)
        .step_by(CHUNK_ROWS)
        .map(move |start| start..(start + CHUNK_ROWS).min(n))
}

fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// What one side of a layer reads: its own input e, the other side's input (which its
/// aggregates sum), its products and its transform.
pub(super) struct Side<'a> {
    pub e: &'a [f32],
    pub other: &'a [f32],
    pub pos: &'a Masked<'a>,
    pub neg: Option<&'a Masked<'a>>,
    pub params: &'a SideParams,
}

/// Rows `rows` of a side's input and aggregates (Z⁻ empty without negative edges).
struct ChunkInputs<'a> {
    e: &'a [f32],
    z_pos: Vec<f32>,
    z_neg: Vec<f32>,
}

impl<'a> Side<'a> {
    fn rows(&self, d: usize) -> usize {
        self.e.len() / d.max(1)
    }

    fn chunk(&self, rows: Range<usize>, d: usize) -> ChunkInputs<'a> {
        let mut z_pos = vec![0.0; rows.len() * d];
        self.pos
            .product_rows(self.other, d, rows.clone(), &mut z_pos);
        let z_neg = self.neg.map_or_else(Vec::new, |neg| {
            let mut z = vec![0.0; rows.len() * d];
            neg.product_rows(self.other, d, rows.clone(), &mut z);
            z
        });
        ChunkInputs {
            e: &self.e[rows.start * d..rows.end * d],
            z_pos,
            z_neg,
        }
    }

    fn negatives(&self) -> bool {
        self.neg.is_some()
    }
}

/// Block j of eq. 2's input X = [Z⁺, Z⁺⊙e, Z⁻, Z⁻⊙e, e] (without negative edges
/// [Z⁺, Z⁺⊙e, e]): the buffer it reads, and whether that is multiplied by e.
fn block<'a>(j: usize, x: &'a ChunkInputs<'_>, negatives: bool) -> (&'a [f32], bool) {
    match (j, negatives) {
        (0, _) => (&x.z_pos, false),
        (1, _) => (&x.z_pos, true),
        (2, true) => (&x.z_neg, false),
        (3, true) => (&x.z_neg, true),
        _ => (x.e, false),
    }
}

/// Block j as a slice: borrowed, or the product with e computed into `scratch`.
fn block_values<'a>(
    j: usize,
    x: &'a ChunkInputs<'_>,
    negatives: bool,
    scratch: &'a mut Vec<f32>,
) -> &'a [f32] {
    let (z, times_e) = block(j, x, negatives);
    if !times_e {
        return z;
    }
    scratch.clear();
    scratch.par_extend(z.par_iter().zip(x.e).map(|(z, e)| z * e));
    scratch
}

fn blocks_of(negatives: bool) -> usize {
    if negatives { 5 } else { 3 }
}

/// m = Σⱼ Xⱼ Wⱼᵀ + b for a chunk (one block materialised at a time).
fn transform(x: &ChunkInputs<'_>, negatives: bool, p: &SideParams, d: usize) -> Vec<f32> {
    let n = x.e.len() / d.max(1);
    let k = blocks_of(negatives);
    let w = View::dense(d, k * d);
    let mut m = vec![0.0; n * d];
    let mut scratch = Vec::new();
    for j in 0..k {
        let xj = block_values(j, x, negatives, &mut scratch);
        matmul(
            &mut m,
            View::dense(n, d),
            j > 0,
            xj,
            View::dense(n, d),
            &p.w,
            w.columns(j * d, d).t(),
            1.0,
            threads(),
        );
    }
    m.par_chunks_mut(d.max(1))
        .for_each(|row| row.iter_mut().zip(&p.b).for_each(|(v, b)| *v += b));
    m
}

/// The side's output ψ(m) for every row.
pub(super) fn forward(side: &Side<'_>, slope: f32, d: usize) -> Vec<f32> {
    let mut out = vec![0.0; side.e.len()];
    for rows in chunks(side.rows(d)) {
        let x = side.chunk(rows.clone(), d);
        let m = transform(&x, side.negatives(), side.params, d);
        out[rows.start * d..rows.end * d]
            .par_iter_mut()
            .zip(&m)
            .for_each(|(o, &v)| *o = if v > 0.0 { v } else { slope * v });
    }
    out
}

/// Where a side's backward writes: ∂W, ∂b of its transform, and the gradients (added
/// to) of its own input and of the other side's input.
pub(super) struct SideGrads<'a> {
    pub params: &'a mut SideParams,
    pub e: &'a mut [f32],
    pub other: &'a mut [f32],
}

/// Which entries of a layer's output are positive, one bit each: all ψ′ needs of the
/// output (LeakyReLU with a positive slope keeps the sign), at 1/32 of its memory.
pub(super) struct Positive {
    bits: Vec<u64>,
}

impl Positive {
    pub fn of(values: &[f32]) -> Self {
        Self {
            bits: values
                .par_chunks(64)
                .map(|chunk| {
                    chunk
                        .iter()
                        .enumerate()
                        .fold(0u64, |bits, (i, &v)| bits | (u64::from(v > 0.0) << i))
                })
                .collect(),
        }
    }

    fn get(&self, i: usize) -> bool {
        (self.bits[i / 64] >> (i % 64)) & 1 == 1
    }
}

/// The side's backward: from `g_out` (∂ of its output, whose signs are `out`) through ψ and the
/// transform, chunk by chunk, then ∂Z± through the transposed products into the other
/// side's input gradient.
pub(super) fn backward(
    side: &Side<'_>,
    out: &Positive,
    g_out: &[f32],
    grads: SideGrads<'_>,
    slope: f32,
    d: usize,
) {
    let n = side.rows(d);
    let negatives = side.negatives();
    let mut g_z_pos = vec![0.0f32; n * d];
    let mut g_z_neg = if negatives {
        vec![0.0f32; n * d]
    } else {
        Vec::new()
    };
    for rows in chunks(n) {
        let span = rows.start * d..rows.end * d;
        let x = side.chunk(rows.clone(), d);
        chunk_backward(
            &x,
            (out, span.start),
            &g_out[span.clone()],
            side.params,
            grads.params,
            ChunkGrads {
                z_pos: &mut g_z_pos[span.clone()],
                z_neg: g_z_neg.get_mut(span.clone()).unwrap_or_default(),
                e: &mut grads.e[span],
            },
            slope,
            negatives,
            d,
        );
    }
    // Z = A · other  →  ∂other += Aᵀ ∂Z.
    side.pos.add_transposed(&g_z_pos, d, grads.other);
    drop(g_z_pos);
    if let Some(neg) = side.neg {
        neg.add_transposed(&g_z_neg, d, grads.other);
    }
}

/// A chunk's ∂Z⁺, ∂Z⁻ and ∂e (rows of the side's whole buffers).
struct ChunkGrads<'a> {
    z_pos: &'a mut [f32],
    z_neg: &'a mut [f32],
    e: &'a mut [f32],
}

/// One chunk's backward through ψ and the transform: accumulates ∂W, ∂b into `grad`,
/// writes ∂Z± and adds to ∂e:
/// ∂m = ∂e′ ⊙ ψ′(m), ∂b = Σ_rows ∂m, ∂Wⱼ = ∂mᵀ Xⱼ, ∂Xⱼ = ∂m Wⱼ, then
/// ∂Z⁺ = ∂X₁ + ∂X₂ ⊙ e, ∂Z⁻ = ∂X₃ + ∂X₄ ⊙ e, ∂e = ∂X₂ ⊙ Z⁺ + ∂X₄ ⊙ Z⁻ + ∂X_k.
#[allow(clippy::too_many_arguments)]
fn chunk_backward(
    x: &ChunkInputs<'_>,
    (out, offset): (&Positive, usize),
    g_out: &[f32],
    p: &SideParams,
    grad: &mut SideParams,
    g: ChunkGrads<'_>,
    slope: f32,
    negatives: bool,
    d: usize,
) {
    let n = x.e.len() / d.max(1);
    // ψ′(m) from the sign of ψ(m).
    let gm: Vec<f32> = g_out
        .par_iter()
        .enumerate()
        .map(|(i, g)| if out.get(offset + i) { *g } else { slope * g })
        .collect();
    for row in gm.chunks(d.max(1)) {
        grad.b.iter_mut().zip(row).for_each(|(b, g)| *b += g);
    }
    // One block at a time: Xⱼ (a product materialised only while it is used), ∂Wⱼ, ∂Xⱼ,
    // folded at once into ∂Z⁺, ∂Z⁻ and ∂e.
    let k = blocks_of(negatives);
    let w = View::dense(d, k * d);
    let mut gx = vec![0.0f32; n * d];
    let mut scratch = Vec::new();
    let ChunkGrads { z_pos, z_neg, e } = g;
    for j in 0..k {
        let (z, times_e) = block(j, x, negatives);
        let xj = block_values(j, x, negatives, &mut scratch);
        // ∂Wⱼ += ∂mᵀ Xⱼ
        matmul(
            &mut grad.w,
            w.columns(j * d, d),
            true,
            &gm,
            View::dense(n, d).t(),
            xj,
            View::dense(n, d),
            1.0,
            threads(),
        );
        // ∂Xⱼ = ∂m Wⱼ
        matmul(
            &mut gx,
            View::dense(n, d),
            false,
            &gm,
            View::dense(n, d),
            &p.w,
            w.columns(j * d, d),
            1.0,
            threads(),
        );
        let g_z: &mut [f32] = if j < 2 { &mut *z_pos } else { &mut *z_neg };
        match (times_e, j == k - 1) {
            // ∂Z += ∂Xⱼ ⊙ e, ∂e += ∂Xⱼ ⊙ Z
            (true, _) => g_z
                .par_iter_mut()
                .zip(e.par_iter_mut())
                .zip(gx.par_iter().zip(x.e).zip(z))
                .for_each(|((gz, ge), ((g, e), z))| {
                    *gz += g * e;
                    *ge += g * z;
                }),
            // ∂e += ∂X_k
            (false, true) => e.par_iter_mut().zip(&gx).for_each(|(a, g)| *a += g),
            // ∂Z += ∂Xⱼ
            (false, false) => g_z.par_iter_mut().zip(&gx).for_each(|(a, g)| *a += g),
        }
    }
}
