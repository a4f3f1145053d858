//! Mixture of LoRA experts (paper §4.2, eq. 6–10).
//!
//! A MoLE projection replaces a frozen linear map W₀ (eq. 6) by
//!
//! `y = W₀x + b₀ + s·B_s A_s x + s·w_u·B_e A_e x`        (eq. 10)
//!
//! with one shared expert (A_s, B_s), M experts (A_i, B_i) of rank r, scale s = α / r,
//! and the user's expert e = argmax of the gate's softmax at temperature τ (eq. 8–9,
//! top-1) whose probability is the weight w_u. Each projection has its own gate
//! `Linear(d_user → 256) → ReLU → Linear(256 → M)` reading the L2-normalised GCF user
//! embedding. The authors' code weights the expert by w_u² (docs/authors-implementation.md); we
//! follow the paper: w_u.
//!
//! **Mixed users in one batch.** Routing is per row, so the low-rank terms run with the
//! experts stacked: `((x·[A_s; A_1 … A_M]ᵀ) ⊙ m) · [B_s, B_1 … B_M]ᵀ`, where the row mask
//! m is 1 on the shared block, w_u on the chosen expert's block, 0 elsewhere. A batch of
//! many users costs one base product and one stacked low-rank product per projection.

use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use super::frozen::FrozenLinear;
use serde::{Deserialize, Serialize};

/// MoLE settings, stored in the checkpoint manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MoleConfig {
    /// Names of the adapted projections inside an attention block, e.g. `query`, `value`.
    pub targets: Vec<String>,
    /// LoRA rank r.
    pub rank: usize,
    /// LoRA α; the scale is s = α / r.
    pub alpha: f64,
    /// Experts M (besides the shared one).
    pub experts: usize,
    /// Hidden width of each gate MLP.
    pub gate_hidden: usize,
    /// Gate softmax temperature τ.
    pub temperature: f64,
    /// Standard deviation of the N(0, σ²) noise on gate logits while training.
    pub gate_noise: f64,
    /// Size of the user embedding the gates read.
    pub user_dim: usize,
    /// Adapt only the top this many layers (None: all, the paper). The layers below
    /// are then the frozen backbone alone, and their output depends on the text only:
    /// training caches it per response ([`super::frozen_cache`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapt_layers: Option<usize>,
    /// Every expert weighted by its gate probability instead of the paper's top-1
    /// (eq. 9): the soft-mixture oracle's routing (`copl-train mole --routing
    /// oracle-soft`, issue #13 item 1), a training-time diagnostic on the autograd path.
    /// Never stored: a loaded model routes top-1, and [`MoleSet::user_routings`] (a
    /// served user's cached routing is one expert a projection) refuses it.
    #[serde(skip)]
    pub soft_routing: bool,
}

impl Default for MoleConfig {
    /// The authors' settings (docs/authors-implementation.md), for a 64-dimensional user embedding.
    fn default() -> Self {
        Self {
            targets: vec!["query".into(), "value".into()],
            rank: 8,
            alpha: 16.0,
            experts: 8,
            gate_hidden: 256,
            temperature: 1.0,
            gate_noise: 0.1,
            user_dim: 64,
            adapt_layers: None,
            soft_routing: false,
        }
    }
}

impl MoleConfig {
    pub fn scale(&self) -> f64 {
        self.alpha / self.rank as f64
    }

    /// Whether layer `layer` of `layers` carries MoLE projections.
    pub fn adapts_layer(&self, layer: usize, layers: usize) -> bool {
        self.adapt_layers.is_none_or(|k| layer + k >= layers)
    }

    /// The first layer with MoLE projections, of `layers` (everything below it is
    /// frozen).
    pub fn first_adapted_layer(&self, layers: usize) -> usize {
        self.adapt_layers.map_or(0, |k| layers.saturating_sub(k))
    }
}

/// The gate of one projection (eq. 8).
#[derive(Clone, Debug)]
pub struct Gate {
    hidden: Linear,
    out: Linear,
}

impl Gate {
    pub fn new(config: &MoleConfig, vb: VarBuilder<'_>) -> Result<Self> {
        Ok(Self {
            hidden: candle_nn::linear(config.user_dim, config.gate_hidden, vb.pp("hidden"))?,
            out: candle_nn::linear(config.gate_hidden, config.experts, vb.pp("out"))?,
        })
    }

    /// Its two maps: `Linear(d_user → hidden)` and `Linear(hidden → M)`.
    pub fn layers(&self) -> (&Linear, &Linear) {
        (&self.hidden, &self.out)
    }

    /// Gate logits for users `[n, d_user]` → `[n, M]`.
    pub fn logits(&self, users: &Tensor) -> Result<Tensor> {
        // Users come as F32 embeddings; a model served in BF16 has BF16 gates.
        let users = users.to_dtype(self.hidden.weight().dtype())?;
        self.out.forward(&self.hidden.forward(&users)?.relu()?)
    }
}

/// Which expert each row uses in one projection, and with what weight (eq. 9).
#[derive(Clone, Debug)]
pub struct Routing {
    /// Top-1 expert per row.
    pub experts: Vec<u32>,
    /// `[n, M]`: w_u at the chosen expert, 0 elsewhere. Differentiable in the gate's
    /// parameters when computed by [`route`] from a variable.
    pub weights: Tensor,
    /// `[n, M]`: the gate's whole distribution softmax(logits / τ) when [`route`] made
    /// it (a training-time load-balancing loss reads it); `None` for cached or
    /// population routings.
    pub probabilities: Option<Tensor>,
}

/// One user's routing in every MoLE projection of a model: the top-1 expert and its
/// weight w_u per projection (eq. 8–9). It depends on the user alone, so it is computed
/// once (at onboarding or load) and cached; a batch then needs no gate at all.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRouting {
    pub experts: Vec<u32>,
    pub weights: Vec<f32>,
}

impl UserRouting {
    /// The population reward's routing over `projections`: shared expert only.
    pub fn population(projections: usize) -> Self {
        Self {
            experts: vec![0; projections],
            weights: vec![0.0; projections],
        }
    }

    /// Routings of `users` (one per projection, one row per user), for a batch.
    pub fn batch(users: &[&UserRouting], experts: usize, device: &Device) -> Result<Vec<Routing>> {
        let projections = users.first().map_or(0, |u| u.experts.len());
        (0..projections)
            .map(|p| {
                let mut weights = vec![0f32; users.len() * experts];
                let mut chosen = Vec::with_capacity(users.len());
                for (row, u) in users.iter().enumerate() {
                    let (Some(&e), Some(&w)) = (u.experts.get(p), u.weights.get(p)) else {
                        candle_core::bail!("row {row}: routing has no projection {p}");
                    };
                    if e as usize >= experts {
                        candle_core::bail!("row {row}: expert {e} of projection {p} >= {experts}");
                    }
                    weights[row * experts + e as usize] = w;
                    chosen.push(e);
                }
                Ok(Routing {
                    experts: chosen,
                    weights: Tensor::from_vec(weights, (users.len(), experts), device)?,
                    probabilities: None,
                })
            })
            .collect()
    }
}

/// Top-1 routing from gate logits `[n, M]` at temperature τ, with optional logit noise
/// `[n × M]` row-major (training: N(0, σ²) draws the trainer makes from its seeded
/// generator; candle's `randn_like` is unseeded, which made two runs with one `--seed`
/// train different models, 2026-12-07): w_u = softmax((logits + noise) / τ)[e], e = argmax.
pub fn route(logits: &Tensor, temperature: f64, noise: Option<&[f32]>) -> Result<Routing> {
    let logits = match noise {
        Some(noise) => {
            let noise = Tensor::from_slice(noise, logits.shape(), logits.device())?;
            (logits + noise.to_dtype(logits.dtype())?)?
        }
        None => logits.clone(),
    };
    let probabilities = candle_nn::ops::softmax(&(&logits / temperature)?, D::Minus1)?;
    let experts: Vec<u32> = probabilities.argmax(D::Minus1)?.to_vec1()?;
    let m = probabilities.dim(D::Minus1)?;
    let mut one_hot = vec![0f32; experts.len() * m];
    for (row, &e) in experts.iter().enumerate() {
        one_hot[row * m + e as usize] = 1.0;
    }
    let one_hot = Tensor::from_vec(one_hot, (experts.len(), m), logits.device())?
        .to_dtype(probabilities.dtype())?;
    Ok(Routing {
        experts,
        weights: (&probabilities * one_hot)?,
        probabilities: Some(probabilities),
    })
}

/// Soft routing from gate logits `[n, M]`: every expert weighted by its probability
/// softmax((logits + noise) / τ) (a mixture over experts, not eq. 9's top-1; the
/// experts' list names each row's most probable one). See [`MoleConfig::soft_routing`].
pub fn route_soft(logits: &Tensor, temperature: f64, noise: Option<&[f32]>) -> Result<Routing> {
    let top1 = route(logits, temperature, noise)?;
    let probabilities = top1
        .probabilities
        .ok_or_else(|| candle_core::Error::Msg("route made no distribution".into()))?;
    Ok(Routing {
        experts: top1.experts,
        weights: probabilities.clone(),
        probabilities: Some(probabilities),
    })
}

/// A frozen linear map with a shared LoRA expert and M routed ones (eq. 10).
#[derive(Clone, Debug)]
pub struct MoleLinear {
    pub(crate) base: FrozenLinear,
    /// `[(M + 1)·r, in]`: A_s first, then A_1 … A_M.
    pub(crate) a: Tensor,
    /// `[out, (M + 1)·r]`: B_s first, then B_1 … B_M.
    pub(crate) b: Tensor,
    gate: Gate,
    pub(crate) rank: usize,
    pub(crate) experts: usize,
    pub(crate) scale: f64,
}

impl MoleLinear {
    /// Wraps `base`; the LoRA factors and the gate come from `vb` (`lora_a`, `lora_b`,
    /// `gate.*`). With a `VarMap`-backed builder (fresh training) A is initialised
    /// Kaiming-uniform ([`init_a`]) and B to zero ([`init_b`]), as LoRA does.
    pub fn new(base: Linear, config: &MoleConfig, vb: VarBuilder<'_>) -> Result<Self> {
        let (out_dim, in_dim) = base.weight().dims2()?;
        let blocks = (config.experts + 1) * config.rank;
        let a = vb.get_with_hints((blocks, in_dim), "lora_a", init_a(in_dim))?;
        let b = vb.get_with_hints((out_dim, blocks), "lora_b", init_b())?;
        Ok(Self {
            base: FrozenLinear::new(base),
            a,
            b,
            gate: Gate::new(config, vb.pp("gate"))?,
            rank: config.rank,
            experts: config.experts,
            scale: config.scale(),
        })
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The stacked LoRA factors (A `[(M + 1)·r, in]`, B `[out, (M + 1)·r]`).
    pub fn lora(&self) -> (&Tensor, &Tensor) {
        (&self.a, &self.b)
    }

    pub fn base(&self) -> &Linear {
        self.base.linear()
    }

    /// The row mask `[n, (M + 1)·r]` of a routing: 1 on the shared block, the weight on
    /// the chosen expert's block.
    pub fn mask(&self, routing: &Routing) -> Result<Tensor> {
        let n = routing.experts.len();
        let dtype = routing.weights.dtype();
        let shared = Tensor::ones((n, self.rank), dtype, routing.weights.device())?;
        let experts = routing
            .weights
            .unsqueeze(2)?
            .broadcast_as((n, self.experts, self.rank))?
            .reshape((n, self.experts * self.rank))?;
        Tensor::cat(&[shared, experts], 1)
    }

    /// `x`: `[n, seq, in]`; `mask`: `[n, (M + 1)·r]` from [`Self::mask`]. The low-rank
    /// products run as two 2-D GEMMs over all n·seq tokens (a batched 3-D product per row
    /// was 5× slower here), with the scale s folded into the mask.
    pub fn forward(&self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let base = self.base.forward(x)?;
        let (n, t, i) = x.dims3()?;
        let k = self.a.dim(0)?;
        // F32 master factors under BF16 activations are cast here (a no-op when the
        // dtypes agree), so their gradients reach the F32 variables.
        let (a, b) = (self.a.to_dtype(x.dtype())?, self.b.to_dtype(x.dtype())?);
        let low = x.reshape((n * t, i))?.matmul(&a.t()?)?;
        // Routings are F32; the mask takes the activations' dtype (BF16 where served so).
        let mask = (mask * self.scale)?.to_dtype(low.dtype())?;
        let low = low
            .reshape((n, t, k))?
            .broadcast_mul(&mask.unsqueeze(1)?)?
            .reshape((n * t, k))?;
        let delta = low.matmul(&b.t()?)?;
        base + delta.reshape((n, t, ()))?
    }
}

/// A model's MoLE projections in routing order, with their names and settings: the
/// routing logic both backbone families share.
#[derive(Clone, Debug)]
pub struct MoleSet {
    pub moles: Vec<MoleLinear>,
    /// E.g. `encoder.layer.3.attention.self.query`.
    pub names: Vec<String>,
    pub config: MoleConfig,
}

impl MoleSet {
    /// Routes users `[n, d_user]` (L2-normalised GCF embeddings) through every
    /// projection's gate; `noise` (training), per projection `[n × M]`, is added to its
    /// gate's logits.
    pub fn route_users(&self, users: &Tensor, noise: Option<&[Vec<f32>]>) -> Result<Vec<Routing>> {
        if let Some(noise) = noise
            && noise.len() != self.moles.len()
        {
            candle_core::bail!(
                "gate noise for {} projections, the model has {}",
                noise.len(),
                self.moles.len()
            );
        }
        self.moles
            .iter()
            .enumerate()
            .map(|(p, m)| {
                let z = noise.map(|z| z[p].as_slice());
                let logits = m.gate().logits(users)?;
                if self.config.soft_routing {
                    route_soft(&logits, self.config.temperature, z)
                } else {
                    route(&logits, self.config.temperature, z)
                }
            })
            .collect()
    }

    /// Row masks of the routings, one per projection.
    pub fn masks(&self, routings: &[Routing]) -> Result<Vec<Tensor>> {
        self.moles
            .iter()
            .zip(routings)
            .map(|(m, r)| m.mask(r))
            .collect()
    }

    /// Each user's routing (rows of `users`), for caching.
    pub fn user_routings(&self, users: &Tensor) -> Result<Vec<UserRouting>> {
        if self.config.soft_routing {
            candle_core::bail!(
                "soft routing weighs every expert; a cached user routing holds one a projection"
            );
        }
        let routings = self.route_users(users, None)?;
        let (n, _) = users.dims2()?;
        let weights: Vec<Vec<Vec<f32>>> = routings
            .iter()
            .map(|r| r.weights.to_dtype(DType::F32)?.to_vec2())
            .collect::<Result<_>>()?;
        Ok((0..n)
            .map(|row| UserRouting {
                experts: routings.iter().map(|r| r.experts[row]).collect(),
                weights: routings
                    .iter()
                    .zip(&weights)
                    .map(|(r, w)| w[row][r.experts[row] as usize])
                    .collect(),
            })
            .collect())
    }

    /// Routings of a batch from cached user routings (no gate runs).
    pub fn cached_routings(&self, users: &[&UserRouting], device: &Device) -> Result<Vec<Routing>> {
        if let Some(u) = users.iter().find(|u| u.experts.len() != self.moles.len()) {
            candle_core::bail!(
                "a routing for {} projections, the model has {}",
                u.experts.len(),
                self.moles.len()
            );
        }
        UserRouting::batch(users, self.config.experts, device)
    }
}

/// A backbone projection: MoLE when its name is a target, plain otherwise. Both
/// backbone families build theirs with [`Projection::new`], which also registers the
/// MoLE ones in routing order.
#[derive(Clone, Debug)]
pub(crate) enum Projection {
    Plain(FrozenLinear),
    /// The projection and its index in the routing masks.
    Mole(Box<MoleLinear>, usize),
}

impl Projection {
    /// Wraps `base` when `name` is one of `set.config.targets` and its layer is
    /// `adapted`; the MoLE tensors come from `adapters` (the projection's path) under
    /// `mole.*`, and the projection is registered in `set` as `path`.
    pub(crate) fn new(
        base: Linear,
        name: &str,
        path: String,
        adapters: &VarBuilder<'_>,
        set: &mut MoleSet,
        adapted: bool,
    ) -> Result<Self> {
        if !adapted || !set.config.targets.iter().any(|t| t == name) {
            return Ok(Self::Plain(FrozenLinear::new(base)));
        }
        let m = MoleLinear::new(base, &set.config, adapters.pp("mole"))?;
        set.moles.push(m.clone());
        set.names.push(path);
        Ok(Self::Mole(Box::new(m), set.moles.len() - 1))
    }

    pub(crate) fn forward(&self, x: &Tensor, masks: &[Tensor]) -> Result<Tensor> {
        match self {
            Self::Plain(linear) => linear.forward(x),
            Self::Mole(m, index) => match masks.get(*index) {
                Some(mask) => m.forward(x, mask),
                None => candle_core::bail!("no routing mask for MoLE projection {index}"),
            },
        }
    }
}

/// Kaiming-uniform for A (LoRA's initialisation): U(−1/√in, 1/√in)·√3·gain with
/// gain √(2/(1+5)) as in `nn.Linear`, i.e. U(−1/√in, 1/√in).
pub fn init_a(in_dim: usize) -> candle_nn::Init {
    let bound = 1.0 / (in_dim as f64).sqrt();
    candle_nn::Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// Zero B, so a fresh MoLE projection equals its base.
pub fn init_b() -> candle_nn::Init {
    candle_nn::Init::Const(0.0)
}

/// Routing of rows without a user (the population reward): shared expert only, every
/// routed weight 0.
pub fn population_routing(rows: usize, experts: usize, device: &Device) -> Result<Routing> {
    Ok(Routing {
        experts: vec![0; rows],
        weights: Tensor::zeros((rows, experts), DType::F32, device)?,
        probabilities: None,
    })
}
