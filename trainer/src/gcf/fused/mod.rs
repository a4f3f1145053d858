//! The GCF network's training step with a hand-written backward pass: eq. 2–3 for every
//! node at once, eq. 4's scores, eq. 5's loss, and the gradients of all of them, on plain
//! row-major `f32` buffers. Candle's autograd (`GcfModel::propagate`) stays the reference
//! (tests hold this to it) and the path for the ablations without transforms.
//!
//! Memory: a step keeps the parameters, their gradients and AdamW's moments (four node
//! buffers; the training loop holds no candle copy), the gradients flowing back (two),
//! ∂Z± of the side being differentiated, and the inputs of the layers it must go back
//! through; eq. 2's aggregates, pre-activations and their gradients live one chunk of
//! rows at a time (`side.rs`), a layer's output only as its signs (ψ′), dropout masks
//! as bits (`masked.rs`), and with [`LayerInputs::EveryOther`] only every other layer's
//! input is kept (the others recomputed: two more layer forwards of four at L = 4).
//! That fits 1 000 000 users at d = 64 in 16 GiB (docs/benchmarks.md).
//!
//! Why: the autograd step spent most of its time in element-wise work on `n × 5d`
//! tensors (the `cat` of eq. 2's five terms, LeakyReLU from relu/neg/mul, and their
//! backward) and memory on keeping them. Here eq. 2's transform is five GEMMs against
//! column blocks of W (no `cat`, one block materialised at a time), ψ and ψ′ are one pass
//! each. Measured side by side (docs/benchmarks.md,
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

use rand::Rng;

use super::model::GraphOps;

mod masked;
mod params;
mod side;

use masked::LayerProducts;
pub use masked::StepNoise;
pub use params::{AdamW, Params, SideParams, clear};
use side::{Positive, Side, SideGrads};

/// Which layer inputs the forward keeps for the backward.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum LayerInputs {
    /// All of them (the fastest step).
    #[default]
    All,
    /// Every other one; the rest are recomputed from the one below in the backward
    /// (the same dropout masks). At L = 4 one node buffer instead of three: at
    /// 1 000 000 users and d = 64, 2.9 GB less for ≈ 17 % more time.
    EveryOther,
}

impl LayerInputs {
    fn keeps(self, layer: usize) -> bool {
        layer > 0 && (self == LayerInputs::All || layer.is_multiple_of(2))
    }
}

/// A layer's input: users and responses.
type Embeddings = (Vec<f32>, Vec<f32>);

/// Layer `l` forward: the next users and responses (eq. 2–3).
fn layer_forward(
    params: &Params,
    l: usize,
    products: &LayerProducts<'_>,
    users: &[f32],
    responses: &[f32],
) -> Embeddings {
    let d = params.dim;
    let (pu, pr) = &params.layers[l];
    let slope = params.leaky_slope;
    let next_users = side::forward(
        &Side {
            e: users,
            other: responses,
            pos: &products.pos_user,
            neg: products.neg_user.as_ref(),
            params: pu,
        },
        slope,
        d,
    );
    let next_responses = side::forward(
        &Side {
            e: responses,
            other: users,
            pos: &products.pos_response,
            neg: products.neg_response.as_ref(),
            params: pr,
        },
        slope,
        d,
    );
    (next_users, next_responses)
}

/// The network's forward pass, with what the backward needs.
struct Forward<'a> {
    users: Vec<f32>,
    responses: Vec<f32>,
    /// Per layer: its products (the masks the forward drew) and, where kept, its input.
    layers: Vec<(LayerProducts<'a>, Option<Embeddings>)>,
}

fn forward<'a, R: Rng>(
    params: &Params,
    ops: &'a GraphOps,
    mut noise: Option<StepNoise<'_, R>>,
    keep: Option<LayerInputs>,
) -> Forward<'a> {
    let negatives = params.blocks == 5;
    let mut users = params.user0.clone();
    let mut responses = params.response0.clone();
    let mut layers = Vec::new();
    for l in 0..params.layers.len() {
        let products = LayerProducts::draw(ops, negatives, noise.as_mut());
        let (next_users, next_responses) = layer_forward(params, l, &products, &users, &responses);
        let input = (
            std::mem::replace(&mut users, next_users),
            std::mem::replace(&mut responses, next_responses),
        );
        if let Some(keep) = keep {
            layers.push((products, keep.keeps(l).then_some(input)));
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
    let f = forward::<rand_chacha::ChaCha8Rng>(params, ops, None, None);
    (f.users, f.responses)
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
    keep: LayerInputs,
    grad: &mut Params,
) -> f64 {
    let d = params.dim;
    let mut f = forward(params, ops, noise, Some(keep));
    let (loss, mut g_users, mut g_responses) = btl_loss(&f.users, &f.responses, pairs, l2, d);
    let slope = params.leaky_slope;
    // The signs of the output of the layer being differentiated: the final embeddings'
    // first (the embeddings themselves are no longer needed).
    let (mut out_users, mut out_responses) = (Positive::of(&f.users), Positive::of(&f.responses));
    drop((f.users, f.responses));
    while let Some((products, kept)) = f.layers.pop() {
        let l = f.layers.len();
        // This layer's input: the parameters, kept, or recomputed from the layer below
        // (whose input is kept when this one's is not).
        let recomputed = match (l, kept) {
            (0, _) => None,
            (_, Some(input)) => Some(input),
            (_, None) => {
                let (below, below_input) = &f.layers[l - 1];
                let (u, r) = below_input
                    .as_ref()
                    .map_or((&params.user0, &params.response0), |(u, r)| (u, r));
                Some(layer_forward(params, l - 1, below, u, r))
            }
        };
        let (e_users, e_responses) = recomputed
            .as_ref()
            .map_or((&params.user0, &params.response0), |(u, r)| (u, r));
        let (pu, pr) = &params.layers[l];
        let (gu, gr) = &mut grad.layers[l];
        let mut g_e_users = vec![0.0f32; e_users.len()];
        let mut g_e_responses = vec![0.0f32; e_responses.len()];
        side::backward(
            &Side {
                e: e_users,
                other: e_responses,
                pos: &products.pos_user,
                neg: products.neg_user.as_ref(),
                params: pu,
            },
            &out_users,
            &g_users,
            SideGrads {
                params: gu,
                e: &mut g_e_users,
                other: &mut g_e_responses,
            },
            slope,
            d,
        );
        side::backward(
            &Side {
                e: e_responses,
                other: e_users,
                pos: &products.pos_response,
                neg: products.neg_response.as_ref(),
                params: pr,
            },
            &out_responses,
            &g_responses,
            SideGrads {
                params: gr,
                e: &mut g_e_responses,
                other: &mut g_e_users,
            },
            slope,
            d,
        );
        g_users = g_e_users;
        g_responses = g_e_responses;
        if let Some((u, r)) = recomputed {
            (out_users, out_responses) = (Positive::of(&u), Positive::of(&r));
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

/// Eq. 4–5 on the final embeddings: the loss and its gradients with respect to them.
fn btl_loss(
    users: &[f32],
    responses: &[f32],
    pairs: &[(u32, u32, u32)],
    l2: f64,
    d: usize,
) -> (f64, Vec<f32>, Vec<f32>) {
    let batch = pairs.len().max(1) as f64;
    let mut g_users = vec![0.0f32; users.len()];
    let mut g_responses = vec![0.0f32; responses.len()];
    let mut loss = 0.0f64;
    let l2_scale = (2.0 * l2 / batch) as f32;
    for &(u, a, b) in pairs {
        let (u, a, b) = (u as usize * d, a as usize * d, b as usize * d);
        let eu = &users[u..u + d];
        let ea = &responses[a..a + d];
        let eb = &responses[b..b + d];
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
    (loss / batch, g_users, g_responses)
}
