//! The GCF network (paper §4.1, eq. 2–4, 12–13) and the matrix-factorisation baseline.
//!
//! Where we follow the paper and where the authors' code (docs/authors-implementation.md):
//! - **Paper**: separate transforms for users (W₁…W₄, W_self, eq. 2) and responses
//!   (Ŵ₁…Ŵ₄, Ŵ_self, eq. 12), and a transform W₁/W₃ on the plain message. The authors'
//!   code shares one W⁺, W⁻, W_self between users and responses and passes the plain
//!   message through untransformed. We compute eq. 2 as one product per side and layer:
//!   `m = [Z⁺ | Z⁺⊙e | Z⁻ | Z⁻⊙e | e] · Wᵀ + b` with `Z± = Â± E` (aggregate first).
//! - **Code**: LeakyReLU(0.2) as ψ after every layer including the last; the final
//!   embedding is the last layer's (no layer averaging); Xavier-uniform initial
//!   embeddings; biases on every transform; edge dropout on the normalised values.
//! - Ablations (Table A4): without negative edges (Z⁻ terms dropped); without activation
//!   and transform (`e' = e + Z⁺ + Z⁺⊙e − Z⁻ − Z⁻⊙e`, LightGCN-like, negative messages
//!   subtracted since no learnt transform can flip their sign).
//! - `layers = 0` is the matrix-factorisation baseline (the paper's "w/o GNN"): the
//!   initial embeddings are the final ones.

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Tensor, Var};
use copl_core::graph::PreferenceGraph;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::spmm::SparsePair;

/// Architecture of the GCF network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GcfArch {
    /// Embedding size d.
    pub dim: usize,
    /// Message-passing layers L (0: matrix factorisation).
    pub layers: usize,
    /// Use negative edges (eq. 2's m⁻).
    pub negative_edges: bool,
    /// Use the learnt transforms and the activation ψ.
    pub transform: bool,
    /// LeakyReLU slope of ψ.
    pub leaky_slope: f64,
}

impl Default for GcfArch {
    fn default() -> Self {
        Self {
            dim: 512,
            layers: 4,
            negative_edges: true,
            transform: true,
            leaky_slope: 0.2,
        }
    }
}

/// The four sparse products of a layer.
pub struct GraphOps {
    pub(super) pos_user: SparsePair,
    pub(super) pos_response: SparsePair,
    pub(super) neg_user: SparsePair,
    pub(super) neg_response: SparsePair,
}

impl GraphOps {
    pub fn new(graph: &PreferenceGraph) -> Self {
        let (pos_user, pos_response) = SparsePair::both_directions(&graph.positive);
        let (neg_user, neg_response) = SparsePair::both_directions(&graph.negative);
        Self {
            pos_user,
            pos_response,
            neg_user,
            neg_response,
        }
    }
}

/// Entries of the four adjacency matrices left out of one step's propagation: the
/// edges of the pairs that step is trained on (see [`GraphOps::mask_of`]).
#[derive(Clone, Debug, Default)]
pub struct EdgeMask {
    pos_user: Vec<u32>,
    pos_response: Vec<u32>,
    neg_user: Vec<u32>,
    neg_response: Vec<u32>,
}

impl EdgeMask {
    /// The masked entries of (users ← responses positive, negative; responses ← users
    /// positive, negative).
    pub(super) fn parts(&self) -> (&[u32], &[u32], &[u32], &[u32]) {
        (
            &self.pos_user,
            &self.neg_user,
            &self.pos_response,
            &self.neg_response,
        )
    }
}

impl GraphOps {
    /// The edges of `pairs` (user, chosen, rejected): u–chosen positive, u–rejected
    /// negative, in both directions. Propagating without them, a step must predict its
    /// pairs through other users' edges (collaboratively) instead of reading each pair's
    /// answer back from its own edge, the target leakage of link prediction.
    pub fn mask_of(&self, pairs: &[(u32, u32, u32)]) -> EdgeMask {
        let mut mask = EdgeMask::default();
        for &(u, a, b) in pairs {
            mask.pos_user.extend(self.pos_user.entry(u, a));
            mask.pos_response.extend(self.pos_response.entry(a, u));
            mask.neg_user.extend(self.neg_user.entry(u, b));
            mask.neg_response.extend(self.neg_response.entry(b, u));
        }
        mask
    }
}

/// One message-passing layer's transforms: `W` is `d × k·d` for users and responses.
struct Layer {
    user_w: Var,
    user_b: Var,
    response_w: Var,
    response_b: Var,
}

/// The checkpoint names of the layer-0 (initial) embeddings e^(0).
pub const INITIAL_USERS: &str = "initial.user_embeddings";
pub const INITIAL_RESPONSES: &str = "initial.response_embeddings";

/// The GCF network's parameters.
pub struct GcfModel {
    pub arch: GcfArch,
    user0: Var,
    response0: Var,
    layers: Vec<Layer>,
}

fn xavier(
    rng: &mut impl Rng,
    rows: usize,
    cols: usize,
    dtype: DType,
    device: &Device,
) -> Result<Var> {
    let bound = (6.0 / (rows + cols) as f64).sqrt();
    let values: Vec<f64> = (0..rows * cols)
        .map(|_| rng.random_range(-bound..bound))
        .collect();
    Var::from_tensor(&Tensor::from_vec(values, (rows, cols), device)?.to_dtype(dtype)?)
}

impl GcfModel {
    /// A fresh model with Xavier-uniform parameters drawn from `rng`.
    pub fn new(
        arch: GcfArch,
        users: usize,
        responses: usize,
        rng: &mut impl Rng,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let d = arch.dim;
        let user0 = xavier(rng, users, d, dtype, device)?;
        let response0 = xavier(rng, responses, d, dtype, device)?;
        let k = if arch.negative_edges { 5 } else { 3 };
        let mut layers = Vec::new();
        if arch.transform {
            for _ in 0..arch.layers {
                layers.push(Layer {
                    user_w: xavier(rng, d, k * d, dtype, device)?,
                    user_b: Var::zeros(d, dtype, device)?,
                    response_w: xavier(rng, d, k * d, dtype, device)?,
                    response_b: Var::zeros(d, dtype, device)?,
                });
            }
        }
        Ok(Self {
            arch,
            user0,
            response0,
            layers,
        })
    }

    /// The device the parameters live on.
    pub fn device(&self) -> Device {
        self.user0.device().clone()
    }

    /// Every trainable variable with its name (the names of `gcf.safetensors`).
    pub fn named_vars(&self) -> Vec<(String, &Var)> {
        let mut vars = vec![
            (INITIAL_USERS.to_string(), &self.user0),
            (INITIAL_RESPONSES.to_string(), &self.response0),
        ];
        for (l, layer) in self.layers.iter().enumerate() {
            vars.push((format!("layers.{l}.user.weight"), &layer.user_w));
            vars.push((format!("layers.{l}.user.bias"), &layer.user_b));
            vars.push((format!("layers.{l}.response.weight"), &layer.response_w));
            vars.push((format!("layers.{l}.response.bias"), &layer.response_b));
        }
        vars
    }

    /// Current values of every variable, by name.
    pub fn snapshot(&self) -> Result<HashMap<String, Tensor>> {
        self.named_vars()
            .into_iter()
            .map(|(name, var)| Ok((name, var.as_tensor().copy()?)))
            .collect()
    }

    /// Sets every variable from a snapshot.
    pub fn restore(&self, snapshot: &HashMap<String, Tensor>) -> Result<()> {
        for (name, var) in self.named_vars() {
            let value = snapshot
                .get(&name)
                .ok_or_else(|| candle_core::Error::Msg(format!("snapshot lacks {name}")))?;
            var.set(value)?;
        }
        Ok(())
    }

    /// Runs the L layers (eq. 2–3, 12–13) and returns the final user and response
    /// embeddings. With `dropout = Some((p, rng))`, every sparse product gets a fresh
    /// edge-dropout mask.
    pub fn propagate(
        &self,
        ops: &GraphOps,
        dropout: Option<(f32, &mut dyn rand::RngCore)>,
    ) -> Result<(Tensor, Tensor)> {
        self.propagate_masked(ops, dropout, &EdgeMask::default())
    }

    /// [`Self::propagate`] without the edges of `mask`.
    pub fn propagate_masked(
        &self,
        ops: &GraphOps,
        mut dropout: Option<(f32, &mut dyn rand::RngCore)>,
        mask: &EdgeMask,
    ) -> Result<(Tensor, Tensor)> {
        let mut users = self.user0.as_tensor().clone();
        let mut responses = self.response0.as_tensor().clone();
        for l in 0..self.arch.layers {
            let mut product =
                |pair: &SparsePair, removed: &[u32], x: &Tensor| match dropout.as_mut() {
                    Some((p, rng)) => pair.matmul_masked(x, removed, *p, rng),
                    None if removed.is_empty() => pair.matmul(x),
                    None => pair.matmul_masked(x, removed, 0.0, &mut rand::rng()),
                };
            let zu_pos = product(&ops.pos_user, &mask.pos_user, &responses)?;
            let zr_pos = product(&ops.pos_response, &mask.pos_response, &users)?;
            let negatives = if self.arch.negative_edges {
                Some((
                    product(&ops.neg_user, &mask.neg_user, &responses)?,
                    product(&ops.neg_response, &mask.neg_response, &users)?,
                ))
            } else {
                None
            };
            let (zu_neg, zr_neg) = match &negatives {
                Some((u, r)) => (Some(u), Some(r)),
                None => (None, None),
            };
            let layer = self.layers.get(l);
            let new_users = self.message(
                &users,
                &zu_pos,
                zu_neg,
                layer.map(|x| (&x.user_w, &x.user_b)),
            )?;
            let new_responses = self.message(
                &responses,
                &zr_pos,
                zr_neg,
                layer.map(|x| (&x.response_w, &x.response_b)),
            )?;
            users = new_users;
            responses = new_responses;
        }
        Ok((users, responses))
    }

    /// eq. 2–3 for one side: the aggregated message, transformed and activated.
    fn message(
        &self,
        e: &Tensor,
        z_pos: &Tensor,
        z_neg: Option<&Tensor>,
        transform: Option<(&Var, &Var)>,
    ) -> Result<Tensor> {
        match transform {
            Some((w, b)) => {
                let mut parts = vec![z_pos.clone(), (z_pos * e)?];
                if let Some(z_neg) = z_neg {
                    parts.push(z_neg.clone());
                    parts.push((z_neg * e)?);
                }
                parts.push(e.clone());
                let x = Tensor::cat(&parts, 1)?;
                let m = x
                    .matmul(&w.as_tensor().t()?)?
                    .broadcast_add(b.as_tensor())?;
                leaky_relu(&m, self.arch.leaky_slope)
            }
            None => {
                let mut m = ((e + z_pos)? + (z_pos * e)?)?;
                if let Some(z_neg) = z_neg {
                    m = ((m - z_neg)? - (z_neg * e)?)?;
                }
                Ok(m)
            }
        }
    }
}

/// LeakyReLU from differentiable parts: relu(x) − slope·relu(−x).
fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    x.relu()? - (x.neg()?.relu()? * slope)?
}

/// s(u, r) = ⟨e_u, e_r⟩ (eq. 4) for rows of users and responses, elementwise.
pub fn scores(users: &Tensor, responses: &Tensor) -> Result<Tensor> {
    (users * responses)?.sum(1)
}
