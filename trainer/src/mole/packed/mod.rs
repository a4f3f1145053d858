//! The packed training step (issue #19): one step's loss and gradients through the
//! packed forward (`copl_core::model::packed`) and its hand-written backward passes,
//! instead of candle's padded op-by-op autograd graph. What trains is what the autograd
//! path trains — every MoLE projection's LoRA factors, the gates (CoPL) and the head —
//! and `trainer/tests/mole_packed.rs` holds the loss and every gradient to the autograd
//! path's.
//!
//! A step: the frozen layers' output per row (`PackedBert::frozen_forward`, cached per
//! text: `cache.rs`), each row's routing from the gates (`PackedGate::route`, the rows
//! of a pair routed separately as the autograd path does) or the user-token variant's
//! token, the adapted layers keeping what their backward reads, the head's rewards, the
//! BTL loss (mean over pairs of weight · −log σ(r_chosen − r_rejected), with the §7
//! options: focal factor, gate load balancing), then back through the head, the adapted
//! layers, the token projection and the gates. The loop is `train.rs`.

use anyhow::{Result, bail};
use candle_core::Tensor;
use candle_nn::VarMap;
use copl_core::model::{
    mole::UserRouting,
    packed::{
        bert::PackedBert,
        gate::{GateSaved, PackedGate, user_routings},
        head::{HeadGrad, PackedHead},
        layer::LowRankGrad,
    },
    reward::{Backbone, RewardModel, Tokens, Variant},
};

use super::{objective::Reweight, train::TextPair};

mod cache;
mod train;

pub use cache::PackedFrozenCache;
pub use train::train_packed;

/// A reward model's trainable state as the packed step reads it (a copy of the model's
/// weights).
pub struct PackedStep {
    pub bert: PackedBert,
    pub head: PackedHead,
    /// One gate a MoLE projection under CoPL; none otherwise (no routing to learn).
    pub gates: Vec<PackedGate>,
    pub temperature: f32,
    pub experts: usize,
    /// The user-token variant's projection of the user embedding into a token
    /// prepended at the first adapted layer (the w/o-MoLE ablation).
    pub user_token: Option<UserToken>,
    /// The gates route but do not train (oracle routing, `super::oracle`): no gate
    /// gradients, and the gates are left out of the trainable buffers.
    pub frozen_gates: bool,
}

/// `token = W·e + b`: `weight` `[h × d_user]`, `bias` `[h]`.
#[derive(Clone, Debug, PartialEq)]
pub struct UserToken {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// A gate's buffers in the step's order: W₁, b₁, W₂, b₂.
fn gate_buffers(g: &mut PackedGate) -> [&mut [f32]; 4] {
    [
        g.w1.as_mut_slice(),
        g.b1.as_mut_slice(),
        g.w2.as_mut_slice(),
        g.b2.as_mut_slice(),
    ]
}

impl UserToken {
    fn buffers_mut(&mut self) -> [&mut [f32]; 2] {
        [self.weight.as_mut_slice(), self.bias.as_mut_slice()]
    }

    fn tokens(&self, users: &[f32]) -> Vec<Vec<f32>> {
        let h = self.bias.len();
        let d = self.weight.len() / h.max(1);
        users
            .chunks_exact(d.max(1))
            .map(|u| {
                self.weight
                    .chunks_exact(d)
                    .zip(&self.bias)
                    .map(|(w, b)| w.iter().zip(u).map(|(w, x)| w * x).sum::<f32>() + b)
                    .collect()
            })
            .collect()
    }
}

/// One step's gradients, in the shapes of [`PackedStep`]'s parameters.
pub struct StepGrads {
    /// Per MoLE projection, in routing order.
    pub low_rank: Vec<LowRankGrad>,
    pub gates: Vec<PackedGate>,
    pub head: HeadGrad,
    pub user_token: Option<UserToken>,
}

impl PackedStep {
    /// The packed form of `model`'s trainable state: BERT backbones, every variant.
    pub fn new(model: &RewardModel) -> Result<Self> {
        let Backbone::Bert(bert) = &model.backbone else {
            bail!("the packed training step runs BERT backbones only");
        };
        let adapters = bert.adapters();
        let gates = if model.config.variant.uses_gates() {
            adapters
                .moles
                .iter()
                .map(|m| PackedGate::new(m.gate()))
                .collect::<candle_core::Result<_>>()?
        } else {
            Vec::new()
        };
        let user_token = match (&model.user_token, model.config.variant) {
            (Some(linear), Variant::UserToken) => Some(UserToken {
                weight: linear.weight().flatten_all()?.to_vec1()?,
                bias: match linear.bias() {
                    Some(b) => b.to_vec1()?,
                    None => vec![0.0; linear.weight().dim(0)?],
                },
            }),
            _ => None,
        };
        Ok(Self {
            bert: PackedBert::new(bert)?,
            head: PackedHead::new(model.head.linear(), model.config.pooling)?,
            gates,
            temperature: adapters.config.temperature as f32,
            experts: adapters.config.experts,
            user_token,
            frozen_gates: false,
        })
    }

    /// The loss of `pairs` and its gradients. `noise`: per gate, N(0, σ²) draws for its
    /// logits `[2n × M]` (rows: the chosen texts, then the rejected ones), or `None`
    /// (evaluation, tests). `model` tokenises (its template and truncation).
    pub fn loss_and_gradients(
        &self,
        model: &RewardModel,
        pairs: &[&TextPair],
        noise: Option<&[Vec<f32>]>,
        reweight: Reweight,
        load_balance: f64,
        frozen: &mut PackedFrozenCache,
    ) -> Result<(f64, StepGrads)> {
        let items = super::train::chosen_then_rejected(pairs);
        let rows = model.tokenize(&items, true)?;
        let users: Vec<f32> = pairs
            .iter()
            .chain(pairs)
            .flat_map(|p| p.user.iter().copied())
            .collect();
        let weights: Vec<f32> = pairs.iter().map(|p| p.weight).collect();
        self.rows_loss_and_gradients(
            &rows.iter().collect::<Vec<_>>(),
            &users,
            &weights,
            noise,
            reweight,
            load_balance,
            frozen,
        )
    }

    /// [`Self::loss_and_gradients`] on tokenised rows: `rows` the n chosen then the n
    /// rejected texts, `users` `[2n × d_user]` their users' L2-normalised embeddings,
    /// `weights` the pairs' loss weights, `reweight` the focal factor if any
    /// (`objective::pair_loss`'s; the other re-weightings are in `weights`),
    /// `load_balance` the coefficient of the gates' load-balancing term
    /// (`objective::load_balance`, 0 = off).
    #[allow(clippy::too_many_arguments)]
    pub fn rows_loss_and_gradients(
        &self,
        rows: &[&Tokens],
        users: &[f32],
        weights: &[f32],
        noise: Option<&[Vec<f32>]>,
        reweight: Reweight,
        load_balance: f64,
        frozen: &mut PackedFrozenCache,
    ) -> Result<(f64, StepGrads)> {
        let n = weights.len();
        if rows.len() != 2 * n {
            bail!("{} rows for {n} pairs", rows.len());
        }
        // Routing: the gates under CoPL, the shared expert only otherwise.
        let projections = self.bert.projections();
        let mut gate_saved: Vec<GateSaved> = Vec::new();
        let routings: Vec<UserRouting> = if self.gates.is_empty() {
            vec![UserRouting::population(projections); 2 * n]
        } else {
            let mut per_projection = Vec::with_capacity(projections);
            for (p, gate) in self.gates.iter().enumerate() {
                let z = noise.map(|z| z[p].as_slice());
                let (routes, saved) = gate.route(users, self.temperature, z);
                per_projection.push(routes);
                gate_saved.push(saved);
            }
            user_routings(&per_projection)
        };
        let refs: Vec<&UserRouting> = routings.iter().collect();

        // Forward.
        let mut x = frozen.states(&self.bert, rows)?;
        if let Some(projection) = &self.user_token {
            x = x.prepend(&projection.tokens(users));
        }
        let saved = self.bert.adapted_forward_saving(&mut x, &refs)?;
        let rewards = self.head.rewards(&x);

        // The BTL loss and ∂ of each row's reward.
        let mut loss = 0f64;
        let mut d_rewards = vec![0f32; 2 * n];
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        for (i, &weight) in weights.iter().enumerate() {
            let margin = f64::from(rewards[i] - rewards[n + i]);
            let weight = f64::from(weight);
            // −log σ(m) = softplus(−m); ∂/∂m = −σ(−m). Focal: × σ(−m)^γ, and
            // ∂/∂m = −σ(−m)^γ (σ(−m) + γ σ(m) softplus(−m)).
            let softplus = (-margin).max(0.0) + (-margin.abs()).exp().ln_1p();
            let (term, slope) = match reweight {
                Reweight::Focal { gamma } => {
                    let factor = sigmoid(-margin).powf(gamma);
                    (
                        softplus * factor,
                        -factor * (sigmoid(-margin) + gamma * sigmoid(margin) * softplus),
                    )
                }
                Reweight::None | Reweight::InverseFrequency => (softplus, -sigmoid(-margin)),
            };
            loss += weight * term;
            let d_margin = (weight * slope / n as f64) as f32;
            d_rewards[i] = d_margin;
            d_rewards[n + i] = -d_margin;
        }
        loss /= n.max(1) as f64;
        // The Switch load-balancing term, averaged over projections:
        // M · Σₑ fₑ · Pₑ (fₑ the share of rows routed to e, no gradient; Pₑ the mean
        // probability of e), so ∂/∂p_{row,e} = coefficient · M · fₑ / rows / projections.
        let mut d_probabilities: Vec<Vec<f32>> = Vec::new();
        if load_balance > 0.0 && !gate_saved.is_empty() {
            let projections = gate_saved.len() as f64;
            let rows_n = 2 * n;
            for saved in &gate_saved {
                let m = self.experts;
                let mut share = vec![0f64; m];
                for &e in &saved.experts {
                    share[e as usize] += 1.0 / rows_n as f64;
                }
                let mut mean = vec![0f64; m];
                for p in saved.probabilities.chunks_exact(m) {
                    for (a, &x) in mean.iter_mut().zip(p) {
                        *a += f64::from(x) / rows_n as f64;
                    }
                }
                let term: f64 = share.iter().zip(&mean).map(|(f, p)| f * p).sum::<f64>() * m as f64;
                loss += load_balance * term / projections;
                let per_row: Vec<f32> = share
                    .iter()
                    .map(|f| (load_balance * m as f64 * f / rows_n as f64 / projections) as f32)
                    .collect();
                d_probabilities.push(per_row.iter().copied().cycle().take(rows_n * m).collect());
            }
        }

        // Backward: the head, the adapted layers, the gates.
        let mut head = self.head.zero_grad();
        let mut d = vec![0f32; x.states.len()];
        self.head.backward(&x, &d_rewards, &mut head, &mut d);
        // ∂ of the adapted layers' input only where something below trains on it.
        let low_rank =
            self.bert
                .adapted_backward(&mut d, &x.spans, &refs, &saved, self.user_token.is_some());
        let trained_gates = if self.frozen_gates {
            &[][..]
        } else {
            &self.gates[..]
        };
        let gates = trained_gates
            .iter()
            .zip(&gate_saved)
            .zip(&low_rank)
            .enumerate()
            .map(|(p, ((gate, saved), grad))| {
                let mut g = gate.zero_grad();
                let dp = d_probabilities.get(p).map(Vec::as_slice);
                gate.backward(users, saved, &grad.weights, dp, self.temperature, &mut g);
                g
            })
            .collect();
        // The prepended token's gradient (each row's first state) into its projection.
        let user_token = self.user_token.as_ref().map(|projection| {
            let h = projection.bias.len();
            let d_user = projection.weight.len() / h.max(1);
            let mut grad = UserToken {
                weight: vec![0.0; projection.weight.len()],
                bias: vec![0.0; h],
            };
            for (span, u) in x.spans.iter().zip(users.chunks_exact(d_user.max(1))) {
                let d_token = &d[span.start * h..(span.start + 1) * h];
                for ((w, b), &g) in grad
                    .weight
                    .chunks_exact_mut(d_user)
                    .zip(grad.bias.iter_mut())
                    .zip(d_token)
                {
                    *b += g;
                    w.iter_mut().zip(u).for_each(|(w, x)| *w += g * x);
                }
            }
            grad
        });
        Ok((
            loss,
            StepGrads {
                low_rank,
                gates,
                head,
                user_token,
            },
        ))
    }
}

impl PackedStep {
    /// Every trainable buffer, in one fixed order: each projection's A and B, then each
    /// gate's W₁, b₁, W₂, b₂, then the head's weight and bias.
    pub fn parameters_mut(&mut self) -> Vec<&mut [f32]> {
        let mut all = Vec::new();
        for (a, b) in self.bert.loras_mut() {
            all.push(a.as_mut_slice());
            all.push(b.as_mut_slice());
        }
        if !self.frozen_gates {
            all.extend(self.gates.iter_mut().flat_map(gate_buffers));
        }
        all.push(self.head.weight.as_mut_slice());
        all.push(std::slice::from_mut(&mut self.head.bias));
        all.extend(self.user_token.iter_mut().flat_map(UserToken::buffers_mut));
        all
    }
}

impl StepGrads {
    /// Every buffer, in [`PackedStep::parameters_mut`]'s order (no gates when they are
    /// frozen: the step then returns none).
    pub fn buffers_mut(&mut self) -> Vec<&mut [f32]> {
        let mut all = Vec::new();
        for g in &mut self.low_rank {
            all.push(g.a.as_mut_slice());
            all.push(g.b.as_mut_slice());
        }
        all.extend(self.gates.iter_mut().flat_map(gate_buffers));
        all.push(self.head.weight.as_mut_slice());
        all.push(std::slice::from_mut(&mut self.head.bias));
        all.extend(self.user_token.iter_mut().flat_map(UserToken::buffers_mut));
        all
    }
}

impl PackedStep {
    /// The buffer behind trainable tensor `name` of the model's `VarMap` (`names`: the
    /// MoLE projections in routing order), if the packed step trains it.
    fn buffer_of(&self, name: &str, names: &[String]) -> Option<Vec<f32>> {
        let last = name.rsplit('.').next()?;
        if let Some(p) = names.iter().position(|n| name.starts_with(n.as_str())) {
            let (a, b) = self.bert.lora(p)?;
            return match last {
                "lora_a" => Some(a.to_vec()),
                "lora_b" => Some(b.to_vec()),
                _ if name.contains(".gate.") => {
                    let g = self.gates.get(p)?;
                    Some(match (name.contains(".hidden."), last) {
                        (true, "weight") => g.w1.clone(),
                        (true, _) => g.b1.clone(),
                        (false, "weight") => g.w2.clone(),
                        (false, _) => g.b2.clone(),
                    })
                }
                _ => None,
            };
        }
        if name.starts_with("user_token") {
            let t = self.user_token.as_ref()?;
            return match last {
                "weight" => Some(t.weight.clone()),
                "bias" => Some(t.bias.clone()),
                _ => None,
            };
        }
        match (name.starts_with("head"), last) {
            (true, "weight") => Some(self.head.weight.clone()),
            (true, "bias") => Some(vec![self.head.bias]),
            _ => None,
        }
    }

    /// Sets the model's trainable tensors (`vars`, which built it) to the step's
    /// buffers: for validation through the model and for its checkpoint.
    pub fn write_back(&self, model: &RewardModel, vars: &VarMap) -> Result<()> {
        let names = model.backbone.adapters().names.clone();
        let data = vars
            .data()
            .lock()
            .map_err(|_| anyhow::anyhow!("var map poisoned"))?;
        for (name, var) in data.iter() {
            if let Some(values) = self.buffer_of(name, &names) {
                let t = Tensor::from_vec(values, var.shape(), var.device())?;
                var.set(&t)?;
            }
        }
        Ok(())
    }
}
