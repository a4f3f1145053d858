//! The GCF network's training step with a hand-written backward pass: eq. 2–3 for every
//! node at once, eq. 4's scores, eq. 5's loss, and the gradients of all of them, on plain
//! row-major `f32` buffers. Candle's autograd (`GcfModel::propagate`) stays the reference
//! (tests hold this to it) and the path for the ablations without transforms.
//!
//! Why: the autograd step spent most of its time in element-wise work on `n × 5d`
//! tensors (the `cat` of eq. 2's five terms, LeakyReLU from relu/neg/mul, and their
//! backward), 6–17× over its GEMM time (docs/benchmarks.md). Here eq. 2's transform is
//! five GEMMs against column blocks of W (no `cat`), the bias and ψ are one pass, the
//! backward of ψ one pass, and each layer keeps only what its backward reads (the layer's
//! input e, the aggregates Z±, the pre-activation m).
//!
//! Per side and layer, with blocks X = [Z⁺, Z⁺⊙e, Z⁻, Z⁻⊙e, e] (without negative edges
//! [Z⁺, Z⁺⊙e, e]) and W = [W₁ … W_k] (`d × k·d`):
//!
//! - forward: m = Σⱼ Xⱼ Wⱼᵀ + b, e′ = ψ(m);
//! - backward: ∂m = ∂e′ ⊙ ψ′(m), ∂b = Σ_rows ∂m, ∂Wⱼ = ∂mᵀ Xⱼ, ∂Xⱼ = ∂m Wⱼ, then
//!   ∂Z⁺ = ∂X₁ + ∂X₂ ⊙ e, ∂Z⁻ = ∂X₃ + ∂X₄ ⊙ e, ∂e = ∂X₂ ⊙ Z⁺ + ∂X₄ ⊙ Z⁻ + ∂X_k, and the
//!   aggregates' inputs get Âᵀ ∂Z through the transposed sparse matrices (same edge
//!   dropout mask as the forward).

use copl_core::{
    graph::Csr,
    model::packed::gemm::{View, matmul},
};
use rand::Rng;
use rayon::prelude::*;

use super::{model::GraphOps, spmm::SparsePair};

/// One layer's transforms for one side, as row-major buffers: `w` is `d × k·d`.
#[derive(Clone, Debug, PartialEq)]
pub struct SideParams {
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

/// Every parameter of a GCF network with transforms, as buffers.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub dim: usize,
    /// Blocks of eq. 2: 5 with negative edges, 3 without.
    pub blocks: usize,
    pub leaky_slope: f32,
    pub user0: Vec<f32>,
    pub response0: Vec<f32>,
    /// Per layer: (users, responses).
    pub layers: Vec<(SideParams, SideParams)>,
}

impl Params {
    /// Zeros shaped like `self` (a gradient buffer).
    pub fn zeros_like(&self) -> Self {
        let zero = |v: &[f32]| vec![0.0; v.len()];
        Self {
            dim: self.dim,
            blocks: self.blocks,
            leaky_slope: self.leaky_slope,
            user0: zero(&self.user0),
            response0: zero(&self.response0),
            layers: self
                .layers
                .iter()
                .map(|(u, r)| {
                    (
                        SideParams {
                            w: zero(&u.w),
                            b: zero(&u.b),
                        },
                        SideParams {
                            w: zero(&r.w),
                            b: zero(&r.b),
                        },
                    )
                })
                .collect(),
        }
    }

    /// Every buffer, in `GcfModel::named_vars` order.
    pub fn buffers(&self) -> Vec<&Vec<f32>> {
        let mut all = vec![&self.user0, &self.response0];
        for (u, r) in &self.layers {
            all.extend([&u.w, &u.b, &r.w, &r.b]);
        }
        all
    }

    /// Every buffer, mutably, in `GcfModel::named_vars` order.
    pub fn buffers_mut(&mut self) -> Vec<&mut Vec<f32>> {
        let mut all = vec![&mut self.user0, &mut self.response0];
        for (u, r) in &mut self.layers {
            all.extend([&mut u.w, &mut u.b, &mut r.w, &mut r.b]);
        }
        all
    }

    fn users(&self) -> usize {
        self.user0.len() / self.dim.max(1)
    }

    fn responses(&self) -> usize {
        self.response0.len() / self.dim.max(1)
    }
}

/// A sparse matrix as one product uses it (edge dropout applied), with its transpose.
struct Masked {
    a: Csr,
    at: Csr,
}

impl Masked {
    fn new(pair: &SparsePair, dropout: f32, removed: &[u32], rng: &mut impl Rng) -> Self {
        let mut a = Csr::clone(&pair.matrix);
        if dropout > 0.0 {
            let scale = 1.0 / (1.0 - dropout);
            for v in &mut a.values {
                *v = if rng.random::<f32>() < dropout {
                    0.0
                } else {
                    *v * scale
                };
            }
        }
        for &k in removed {
            a.values[k as usize] = 0.0;
        }
        let mut at = Csr::clone(&pair.transpose);
        for (v, &src) in at.values.iter_mut().zip(&pair.transpose_source) {
            *v = a.values[src as usize];
        }
        Self { a, at }
    }

    fn plain(pair: &SparsePair) -> Self {
        Self {
            a: Csr::clone(&pair.matrix),
            at: Csr::clone(&pair.transpose),
        }
    }
}

/// `out = a · x` (`x`: `a.cols × d`).
fn spmm(a: &Csr, x: &[f32], d: usize) -> Vec<f32> {
    let mut out = vec![0.0; a.rows() * d];
    a.matmul_dense(x, d, &mut out);
    out
}

/// `acc += a · x`.
fn spmm_add(a: &Csr, x: &[f32], d: usize, acc: &mut [f32]) {
    let y = spmm(a, x, d);
    acc.par_iter_mut().zip(&y).for_each(|(a, y)| *a += y);
}

/// What one side's layer keeps for its backward.
struct SideCache {
    e: Vec<f32>,
    z_pos: Vec<f32>,
    z_neg: Vec<f32>,
    m: Vec<f32>,
}

/// One layer: the two sides' caches and the four products' matrices.
struct LayerCache {
    users: SideCache,
    responses: SideCache,
    /// users ← responses (A⁺, A⁻) and responses ← users (B⁺, B⁻).
    pos_user: Masked,
    neg_user: Option<Masked>,
    pos_response: Masked,
    neg_response: Option<Masked>,
}

fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// The blocks Xⱼ of eq. 2 for one side, materialised where they are products.
fn blocks<'a>(
    e: &'a [f32],
    z_pos: &'a [f32],
    z_neg: &'a [f32],
    negatives: bool,
) -> Vec<std::borrow::Cow<'a, [f32]>> {
    use std::borrow::Cow;
    let product = |z: &[f32]| -> Vec<f32> { z.par_iter().zip(e).map(|(z, e)| z * e).collect() };
    let mut x: Vec<Cow<'_, [f32]>> = vec![Cow::Borrowed(z_pos), Cow::Owned(product(z_pos))];
    if negatives {
        x.push(Cow::Borrowed(z_neg));
        x.push(Cow::Owned(product(z_neg)));
    }
    x.push(Cow::Borrowed(e));
    x
}

/// m = Σⱼ Xⱼ Wⱼᵀ + b for `n` rows.
fn transform(x: &[std::borrow::Cow<'_, [f32]>], p: &SideParams, n: usize, d: usize) -> Vec<f32> {
    let k = x.len();
    let w = View::dense(d, k * d);
    let mut m = vec![0.0; n * d];
    for (j, xj) in x.iter().enumerate() {
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
struct Forward {
    users: Vec<f32>,
    responses: Vec<f32>,
    layers: Vec<LayerCache>,
}

/// Edge dropout and masking for one training step.
pub struct StepNoise<'a, R: Rng> {
    pub dropout: f32,
    pub rng: &'a mut R,
    pub mask: &'a super::model::EdgeMask,
}

fn forward<R: Rng>(
    params: &Params,
    ops: &GraphOps,
    mut noise: Option<StepNoise<'_, R>>,
    keep: bool,
) -> Forward {
    let d = params.dim;
    let negatives = params.blocks == 5;
    let (nu, nr) = (params.users(), params.responses());
    let mut users = params.user0.clone();
    let mut responses = params.response0.clone();
    let mut layers = Vec::new();
    for (pu, pr) in &params.layers {
        let (mu, mnu, mr, mnr) = match noise.as_ref().map(|n| n.mask) {
            Some(mask) => mask.parts(),
            None => (&[][..], &[][..], &[][..], &[][..]),
        };
        let mut masked = |pair: &SparsePair, removed: &[u32]| match noise.as_mut() {
            Some(n) => Masked::new(pair, n.dropout, removed, n.rng),
            None => Masked::plain(pair),
        };
        // The autograd path's order of draws (`GcfModel::propagate_masked`).
        let pos_user = masked(&ops.pos_user, mu);
        let pos_response = masked(&ops.pos_response, mr);
        let neg_user = negatives.then(|| masked(&ops.neg_user, mnu));
        let neg_response = negatives.then(|| masked(&ops.neg_response, mnr));
        let zu_pos = spmm(&pos_user.a, &responses, d);
        let zu_neg = neg_user
            .as_ref()
            .map_or_else(Vec::new, |m| spmm(&m.a, &responses, d));
        let zr_pos = spmm(&pos_response.a, &users, d);
        let zr_neg = neg_response
            .as_ref()
            .map_or_else(Vec::new, |m| spmm(&m.a, &users, d));
        let mu_ = transform(&blocks(&users, &zu_pos, &zu_neg, negatives), pu, nu, d);
        let mr_ = transform(&blocks(&responses, &zr_pos, &zr_neg, negatives), pr, nr, d);
        let next_users = leaky(&mu_, params.leaky_slope);
        let next_responses = leaky(&mr_, params.leaky_slope);
        let (e_users, e_responses) = (
            std::mem::replace(&mut users, next_users),
            std::mem::replace(&mut responses, next_responses),
        );
        if keep {
            layers.push(LayerCache {
                users: SideCache {
                    e: e_users,
                    z_pos: zu_pos,
                    z_neg: zu_neg,
                    m: mu_,
                },
                responses: SideCache {
                    e: e_responses,
                    z_pos: zr_pos,
                    z_neg: zr_neg,
                    m: mr_,
                },
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

/// One side's backward through ψ and the transform: accumulates ∂W, ∂b into `grad` and
/// returns (∂Z⁺, ∂Z⁻, ∂e through the blocks).
fn side_backward(
    cache: &SideCache,
    p: &SideParams,
    grad: &mut SideParams,
    g_out: &[f32],
    slope: f32,
    negatives: bool,
    d: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = cache.e.len() / d.max(1);
    let gm: Vec<f32> = g_out
        .par_iter()
        .zip(&cache.m)
        .map(|(g, &m)| if m > 0.0 { *g } else { slope * g })
        .collect();
    for row in gm.chunks(d.max(1)) {
        grad.b.iter_mut().zip(row).for_each(|(b, g)| *b += g);
    }
    let x = blocks(&cache.e, &cache.z_pos, &cache.z_neg, negatives);
    let k = x.len();
    let w = View::dense(d, k * d);
    let mut gx = Vec::with_capacity(k);
    for (j, xj) in x.iter().enumerate() {
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
        let mut g = vec![0.0; n * d];
        matmul(
            &mut g,
            View::dense(n, d),
            false,
            &gm,
            View::dense(n, d),
            &p.w,
            w.columns(j * d, d),
            1.0,
            threads(),
        );
        gx.push(g);
    }
    let combine = |a: &[f32], b: &[f32], c: &[f32]| -> Vec<f32> {
        a.par_iter()
            .zip(b)
            .zip(c)
            .map(|((a, b), c)| a + b * c)
            .collect()
    };
    let g_z_pos = combine(&gx[0], &gx[1], &cache.e);
    let mut g_e = combine(&gx[k - 1], &gx[1], &cache.z_pos);
    let g_z_neg = if negatives {
        g_e = combine(&g_e, &gx[3], &cache.z_neg);
        combine(&gx[2], &gx[3], &cache.e)
    } else {
        Vec::new()
    };
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
    while let Some(layer) = f.layers.pop() {
        let l = f.layers.len();
        let (pu, pr) = &params.layers[l];
        let (gu, gr) = &mut grad.layers[l];
        let (gzu_pos, gzu_neg, mut g_e_users) =
            side_backward(&layer.users, pu, gu, &g_users, slope, negatives, d);
        let (gzr_pos, gzr_neg, mut g_e_responses) =
            side_backward(&layer.responses, pr, gr, &g_responses, slope, negatives, d);
        // Z_u = A e_r → ∂e_r += Aᵀ ∂Z_u;  Z_r = B e_u → ∂e_u += Bᵀ ∂Z_r.
        spmm_add(&layer.pos_user.at, &gzu_pos, d, &mut g_e_responses);
        spmm_add(&layer.pos_response.at, &gzr_pos, d, &mut g_e_users);
        if let (Some(nu), Some(nr)) = (&layer.neg_user, &layer.neg_response) {
            spmm_add(&nu.at, &gzu_neg, d, &mut g_e_responses);
            spmm_add(&nr.at, &gzr_neg, d, &mut g_e_users);
        }
        g_users = g_e_users;
        g_responses = g_e_responses;
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

/// AdamW over [`Params`] buffers, the update of `candle_nn::AdamW` (decoupled weight
/// decay θ ← θ(1 − lr·λ) − lr·m̂/(√v̂ + ε)) in one pass per buffer, its moments kept.
pub struct AdamW {
    pub lr: f64,
    pub weight_decay: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    step: i32,
    first: Params,
    second: Params,
}

impl AdamW {
    pub fn new(params: &Params, lr: f64, weight_decay: f64) -> Self {
        Self {
            lr,
            weight_decay,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step: 0,
            first: params.zeros_like(),
            second: params.zeros_like(),
        }
    }

    pub fn step(&mut self, params: &mut Params, grad: &Params) {
        self.step += 1;
        let (b1, b2) = (self.beta1 as f32, self.beta2 as f32);
        let scale_m = (1.0 / (1.0 - self.beta1.powi(self.step))) as f32;
        let scale_v = (1.0 / (1.0 - self.beta2.powi(self.step))) as f32;
        let decay = (1.0 - self.lr * self.weight_decay) as f32;
        let (lr, eps) = (self.lr as f32, self.eps as f32);
        for (((theta, g), m), v) in params
            .buffers_mut()
            .into_iter()
            .zip(grad.buffers())
            .zip(self.first.buffers_mut())
            .zip(self.second.buffers_mut())
        {
            theta
                .par_iter_mut()
                .zip(g.par_iter())
                .zip(m.par_iter_mut())
                .zip(v.par_iter_mut())
                .for_each(|(((t, g), m), v)| {
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    let update = (*m * scale_m) / ((*v * scale_v).sqrt() + eps);
                    *t = *t * decay - lr * update;
                });
        }
    }
}

/// Sets every buffer of `grad` to zero (kept allocated across steps).
pub fn clear(grad: &mut Params) {
    for b in grad.buffers_mut() {
        b.par_iter_mut().for_each(|x| *x = 0.0);
    }
}
