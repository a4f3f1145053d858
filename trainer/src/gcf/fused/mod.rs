//! The GCF network's training step with a hand-written backward pass: eq. 2–3 for every
//! node at once, eq. 4's scores, eq. 5's loss, and the gradients of all of them, on plain
//! row-major `f32` buffers. Candle's autograd (`GcfModel::propagate`) stays the reference
//! (tests hold this to it) and the path for the ablations without transforms.
//!
//! Why: the autograd step spent most of its time in element-wise work on `n × 5d`
//! tensors (the `cat` of eq. 2's five terms, LeakyReLU from relu/neg/mul, and their
//! backward) and memory on keeping them. Here eq. 2's transform is five GEMMs against
//! column blocks of W (no `cat`, one block materialised at a time), ψ and ψ′ are one pass
//! each, and a layer keeps only its inputs. Measured side by side (docs/benchmarks.md,
//! "GCF step against PyTorch", 10 000 users): 0.32 s a step at d = 64 against autograd's
//! 0.55 and PyTorch's 0.50–0.56; 6.9 s at d = 512 (2.3 GB) against 9.3 s (10.6 GB) and
//! 13.7 s (6.2 GB).
//!
//! Per side and layer, with blocks X = [Z⁺, Z⁺⊙e, Z⁻, Z⁻⊙e, e] (without negative edges
//! [Z⁺, Z⁺⊙e, e]) and W = [W₁ … W_k] (`d × k·d`):
//!
//! - forward: m = Σⱼ Xⱼ Wⱼᵀ + b, e′ = ψ(m);
//! - backward: ∂m = ∂e′ ⊙ ψ′(m), ∂b = Σ_rows ∂m, ∂Wⱼ = ∂mᵀ Xⱼ, ∂Xⱼ = ∂m Wⱼ, then
//!   ∂Z⁺ = ∂X₁ + ∂X₂ ⊙ e, ∂Z⁻ = ∂X₃ + ∂X₄ ⊙ e, ∂e = ∂X₂ ⊙ Z⁺ + ∂X₄ ⊙ Z⁻ + ∂X_k, and the
//!   aggregates' inputs get Âᵀ ∂Z through the transposed sparse matrices (same edge
//!   dropout mask as the forward).

use copl_core::model::packed::gemm::{View, matmul};
use rand::Rng;
use rayon::prelude::*;

use super::{model::GraphOps, spmm::SparsePair};

mod params;

pub use params::{AdamW, Params, SideParams, clear};

/// A sparse matrix as one product uses it: its values after edge dropout (and the
/// step's removed edges), for the matrix and for its transpose; the structure stays the
/// shared [`SparsePair`]'s.
struct Masked<'a> {
    pair: &'a SparsePair,
    values: Option<(Vec<f32>, Vec<f32>)>,
}

impl<'a> Masked<'a> {
    fn new(pair: &'a SparsePair, dropout: f32, removed: &[u32], rng: &mut impl Rng) -> Self {
        Self {
            pair,
            values: pair.masked_values(dropout, removed, rng),
        }
    }

    fn plain(pair: &'a SparsePair) -> Self {
        Self { pair, values: None }
    }

    /// `A · x`.
    fn product(&self, x: &[f32], d: usize) -> Vec<f32> {
        let a = &self.pair.matrix;
        let mut out = vec![0.0; a.rows() * d];
        match &self.values {
            Some((values, _)) => a.matmul_dense_values(values, x, d, &mut out),
            None => a.matmul_dense(x, d, &mut out),
        }
        out
    }

    /// `acc += Aᵀ · y`.
    fn add_transposed(&self, y: &[f32], d: usize, acc: &mut [f32]) {
        let at = &self.pair.transpose;
        let mut out = vec![0.0; at.rows() * d];
        match &self.values {
            Some((_, values)) => at.matmul_dense_values(values, y, d, &mut out),
            None => at.matmul_dense(y, d, &mut out),
        }
        acc.par_iter_mut().zip(&out).for_each(|(a, o)| *a += o);
    }
}

/// What a layer keeps for its backward: its inputs (none for the first layer, whose
/// inputs are the parameters) and the four products' matrices as the forward used them.
/// Z± are recomputed in the backward (two sparse products a side, cheap next to the
/// GEMMs) and ψ′(m) is read from the sign of the layer's output (ψ keeps the sign), so a
/// layer holds one `n × d` buffer a side instead of four.
struct LayerCache<'a> {
    users: Option<Vec<f32>>,
    responses: Option<Vec<f32>>,
    /// users ← responses (A⁺, A⁻) and responses ← users (B⁺, B⁻).
    pos_user: Masked<'a>,
    neg_user: Option<Masked<'a>>,
    pos_response: Masked<'a>,
    neg_response: Option<Masked<'a>>,
}

fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// Block j of eq. 2's input X = [Z⁺, Z⁺⊙e, Z⁻, Z⁻⊙e, e] (without negative edges
/// [Z⁺, Z⁺⊙e, e]): the buffer it reads, and whether that is multiplied by e.
fn block<'a>(j: usize, side: &SideInputs<'a>, negatives: bool) -> (&'a [f32], bool) {
    match (j, negatives) {
        (0, _) => (side.z_pos, false),
        (1, _) => (side.z_pos, true),
        (2, true) => (side.z_neg, false),
        (3, true) => (side.z_neg, true),
        _ => (side.e, false),
    }
}

/// Block j as a slice: borrowed, or the product with e computed into `scratch`.
fn block_values<'a>(
    j: usize,
    side: &SideInputs<'a>,
    negatives: bool,
    scratch: &'a mut Vec<f32>,
) -> &'a [f32] {
    let (z, times_e) = block(j, side, negatives);
    if !times_e {
        return z;
    }
    scratch.clear();
    scratch.par_extend(z.par_iter().zip(side.e).map(|(z, e)| z * e));
    scratch
}

fn blocks_of(negatives: bool) -> usize {
    if negatives { 5 } else { 3 }
}

/// m = Σⱼ Xⱼ Wⱼᵀ + b for one side (one block materialised at a time).
fn transform(side: &SideInputs<'_>, negatives: bool, p: &SideParams, d: usize) -> Vec<f32> {
    let n = side.e.len() / d.max(1);
    let k = blocks_of(negatives);
    let w = View::dense(d, k * d);
    let mut m = vec![0.0; n * d];
    for j in 0..k {
        let mut scratch = Vec::new();
        let xj = block_values(j, side, negatives, &mut scratch);
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

fn leaky(m: &[f32], slope: f32) -> Vec<f32> {
    m.par_iter()
        .map(|&v| if v > 0.0 { v } else { slope * v })
        .collect()
}

/// The network's forward pass, optionally keeping what the backward needs.
struct Forward<'a> {
    users: Vec<f32>,
    responses: Vec<f32>,
    layers: Vec<LayerCache<'a>>,
}

/// Edge dropout and masking for one training step.
pub struct StepNoise<'a, R: Rng> {
    pub dropout: f32,
    pub rng: &'a mut R,
    pub mask: &'a super::model::EdgeMask,
}

fn forward<'a, R: Rng>(
    params: &Params,
    ops: &'a GraphOps,
    mut noise: Option<StepNoise<'_, R>>,
    keep: bool,
) -> Forward<'a> {
    let d = params.dim;
    let negatives = params.blocks == 5;
    let mut users = params.user0.clone();
    let mut responses = params.response0.clone();
    let mut layers: Vec<LayerCache<'a>> = Vec::new();
    for (pu, pr) in &params.layers {
        let (mu, mnu, mr, mnr) = match noise.as_ref().map(|n| n.mask) {
            Some(mask) => mask.parts(),
            None => (&[][..], &[][..], &[][..], &[][..]),
        };
        let mut masked = |pair: &'a SparsePair, removed: &[u32]| match noise.as_mut() {
            Some(n) => Masked::new(pair, n.dropout, removed, n.rng),
            None => Masked::plain(pair),
        };
        // The autograd path's order of draws (`GcfModel::propagate_masked`).
        let pos_user = masked(&ops.pos_user, mu);
        let pos_response = masked(&ops.pos_response, mr);
        let neg_user = negatives.then(|| masked(&ops.neg_user, mnu));
        let neg_response = negatives.then(|| masked(&ops.neg_response, mnr));
        let zu_pos = pos_user.product(&responses, d);
        let zu_neg = neg_user
            .as_ref()
            .map_or_else(Vec::new, |m| m.product(&responses, d));
        let zr_pos = pos_response.product(&users, d);
        let zr_neg = neg_response
            .as_ref()
            .map_or_else(Vec::new, |m| m.product(&users, d));
        let side = |e, z_pos, z_neg| SideInputs { e, z_pos, z_neg };
        let mu_ = transform(&side(&users, &zu_pos, &zu_neg), negatives, pu, d);
        let mr_ = transform(&side(&responses, &zr_pos, &zr_neg), negatives, pr, d);
        let next_users = leaky(&mu_, params.leaky_slope);
        let next_responses = leaky(&mr_, params.leaky_slope);
        drop((zu_pos, zu_neg, zr_pos, zr_neg, mu_, mr_));
        let (e_users, e_responses) = (
            std::mem::replace(&mut users, next_users),
            std::mem::replace(&mut responses, next_responses),
        );
        if keep {
            let first = layers.is_empty();
            layers.push(LayerCache {
                users: (!first).then_some(e_users),
                responses: (!first).then_some(e_responses),
                pos_user,
                neg_user,
                pos_response,
                neg_response,
            });
        }
    }
    Forward {
        users,
        responses,
        layers,
    }
}

/// Final user and response embeddings (eq. 2–3, no dropout): the evaluation forward.
pub fn propagate(params: &Params, ops: &GraphOps) -> (Vec<f32>, Vec<f32>) {
    let f = forward::<rand_chacha::ChaCha8Rng>(params, ops, None, false);
    (f.users, f.responses)
}

/// One side's layer: its input e and the aggregates Z± (empty without negative edges).
struct SideInputs<'a> {
    e: &'a [f32],
    z_pos: &'a [f32],
    z_neg: &'a [f32],
}

/// One side's backward through ψ and the transform: accumulates ∂W, ∂b into `grad` and
/// returns (∂Z⁺, ∂Z⁻, ∂e through the blocks).
#[allow(clippy::too_many_arguments)]
fn side_backward(
    cache: &SideInputs<'_>,
    out: &[f32],
    p: &SideParams,
    grad: &mut SideParams,
    g_out: &[f32],
    slope: f32,
    negatives: bool,
    d: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = cache.e.len() / d.max(1);
    // ψ′(m) from ψ(m): LeakyReLU with a positive slope keeps the sign.
    let gm: Vec<f32> = g_out
        .par_iter()
        .zip(out)
        .map(|(g, &o)| if o > 0.0 { *g } else { slope * g })
        .collect();
    for row in gm.chunks(d.max(1)) {
        grad.b.iter_mut().zip(row).for_each(|(b, g)| *b += g);
    }
    // One block at a time: Xⱼ (a product materialised only while it is used), ∂Wⱼ, ∂Xⱼ,
    // folded at once into ∂Z⁺, ∂Z⁻ and ∂e, so at most two n × d temporaries live.
    let k = blocks_of(negatives);
    let w = View::dense(d, k * d);
    let zeros = || vec![0.0f32; n * d];
    let (mut g_z_pos, mut g_e) = (zeros(), zeros());
    let mut g_z_neg = if negatives { zeros() } else { Vec::new() };
    let mut gx = zeros();
    for j in 0..k {
        let (z, times_e) = block(j, cache, negatives);
        let mut scratch = Vec::new();
        let xj = block_values(j, cache, negatives, &mut scratch);
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
        let g_z: &mut Vec<f32> = if j < 2 { &mut g_z_pos } else { &mut g_z_neg };
        match (times_e, j == k - 1) {
            // ∂Z += ∂Xⱼ ⊙ e, ∂e += ∂Xⱼ ⊙ Z
            (true, _) => g_z
                .par_iter_mut()
                .zip(g_e.par_iter_mut())
                .zip(gx.par_iter().zip(cache.e).zip(z))
                .for_each(|((gz, ge), ((g, e), z))| {
                    *gz += g * e;
                    *ge += g * z;
                }),
            // ∂e += ∂X_k
            (false, true) => g_e.par_iter_mut().zip(&gx).for_each(|(a, g)| *a += g),
            // ∂Z += ∂Xⱼ
            (false, false) => g_z.par_iter_mut().zip(&gx).for_each(|(a, g)| *a += g),
        }
    }
    (g_z_pos, g_z_neg, g_e)
}

/// Loss and gradients of one training step on `pairs` (user, chosen, rejected): the mean
/// BTL loss of eq. 4–5 plus λ times the mean over pairs of the squared norms of their
/// final embeddings, as `train` computes it with autograd.
pub fn loss_and_gradients<R: Rng>(
    params: &Params,
    ops: &GraphOps,
    pairs: &[(u32, u32, u32)],
    l2: f64,
    noise: Option<StepNoise<'_, R>>,
    grad: &mut Params,
) -> f64 {
    let d = params.dim;
    let negatives = params.blocks == 5;
    let mut f = forward(params, ops, noise, true);
    let batch = pairs.len().max(1) as f64;
    let mut g_users = vec![0.0f32; f.users.len()];
    let mut g_responses = vec![0.0f32; f.responses.len()];
    let mut loss = 0.0f64;
    let l2_scale = (2.0 * l2 / batch) as f32;
    for &(u, a, b) in pairs {
        let (u, a, b) = (u as usize * d, a as usize * d, b as usize * d);
        let eu = &f.users[u..u + d];
        let ea = &f.responses[a..a + d];
        let eb = &f.responses[b..b + d];
        let margin: f64 = eu
            .iter()
            .zip(ea.iter().zip(eb))
            .map(|(x, (y, z))| f64::from(x * (y - z)))
            .sum();
        // −log σ(margin) = softplus(−margin)
        loss += (-margin).max(0.0) + (-margin.abs()).exp().ln_1p();
        let sq = |v: &[f32]| v.iter().map(|x| f64::from(x * x)).sum::<f64>();
        loss += l2 * (sq(eu) + sq(ea) + sq(eb));
        // ∂/∂margin of the mean: −σ(−margin) / B
        let dm = (-1.0 / (1.0 + margin.exp()) / batch) as f32;
        for i in 0..d {
            let (x, y, z) = (eu[i], ea[i], eb[i]);
            g_users[u + i] += dm * (y - z) + l2_scale * x;
            g_responses[a + i] += dm * x + l2_scale * y;
            g_responses[b + i] += -dm * x + l2_scale * z;
        }
    }
    loss /= batch;
    let slope = params.leaky_slope;
    // The output of the layer being differentiated: the final embeddings first.
    let (mut out_users, mut out_responses) = (f.users, f.responses);
    while let Some(layer) = f.layers.pop() {
        let l = f.layers.len();
        let (pu, pr) = &params.layers[l];
        let (gu, gr) = &mut grad.layers[l];
        let e_users = layer.users.as_deref().unwrap_or(&params.user0);
        let e_responses = layer.responses.as_deref().unwrap_or(&params.response0);
        let zu_pos = layer.pos_user.product(e_responses, d);
        let zr_pos = layer.pos_response.product(e_users, d);
        let (zu_neg, zr_neg) = match (&layer.neg_user, &layer.neg_response) {
            (Some(nu), Some(nr)) => (nu.product(e_responses, d), nr.product(e_users, d)),
            _ => (Vec::new(), Vec::new()),
        };
        let users_side = SideInputs {
            e: e_users,
            z_pos: &zu_pos,
            z_neg: &zu_neg,
        };
        let (gzu_pos, gzu_neg, mut g_e_users) = side_backward(
            &users_side,
            &out_users,
            pu,
            gu,
            &g_users,
            slope,
            negatives,
            d,
        );
        let responses_side = SideInputs {
            e: e_responses,
            z_pos: &zr_pos,
            z_neg: &zr_neg,
        };
        let (gzr_pos, gzr_neg, mut g_e_responses) = side_backward(
            &responses_side,
            &out_responses,
            pr,
            gr,
            &g_responses,
            slope,
            negatives,
            d,
        );
        // Z_u = A e_r → ∂e_r += Aᵀ ∂Z_u;  Z_r = B e_u → ∂e_u += Bᵀ ∂Z_r.
        layer
            .pos_user
            .add_transposed(&gzu_pos, d, &mut g_e_responses);
        layer
            .pos_response
            .add_transposed(&gzr_pos, d, &mut g_e_users);
        if let (Some(nu), Some(nr)) = (&layer.neg_user, &layer.neg_response) {
            nu.add_transposed(&gzu_neg, d, &mut g_e_responses);
            nr.add_transposed(&gzr_neg, d, &mut g_e_users);
        }
        g_users = g_e_users;
        g_responses = g_e_responses;
        if let (Some(u), Some(r)) = (layer.users, layer.responses) {
            (out_users, out_responses) = (u, r);
        }
    }
    grad.user0
        .iter_mut()
        .zip(&g_users)
        .for_each(|(g, x)| *g += x);
    grad.response0
        .iter_mut()
        .zip(&g_responses)
        .for_each(|(g, x)| *g += x);
    loss
}
