//! The packed training step (issue #19): one step's loss and gradients through the
//! packed forward (`copl_core::model::packed`) and its hand-written backward passes,
//! instead of candle's padded op-by-op autograd graph. What trains is what the autograd
//! path trains — every MoLE projection's LoRA factors, the gates (CoPL) and the head —
//! and `trainer/tests/mole_packed.rs` holds the loss and every gradient to the autograd
//! path's.
//!
//! A step: the frozen layers' output per row (`PackedBert::frozen_forward`), each row's
//! routing from the gates (`PackedGate::route`, the rows of a pair routed separately as
//! the autograd path does), the adapted layers keeping what their backward reads, the
//! head's rewards, the BTL loss (eq. 5 of the reward model: mean over pairs of
//! weight · −log σ(r_chosen − r_rejected)), then back through the head, the adapted
//! layers and the gates.

use anyhow::{Result, bail};
use copl_core::model::{
    mole::UserRouting,
    packed::{
        bert::PackedBert,
        gate::{GateSaved, PackedGate, user_routings},
        head::{HeadGrad, PackedHead},
        layer::LowRankGrad,
    },
    reward::{Backbone, RewardModel, Variant},
};

use super::{objective::Reweight, train::TextPair};

/// A reward model's trainable state as the packed step reads it (a copy of the model's
/// weights).
pub struct PackedStep {
    pub bert: PackedBert,
    pub head: PackedHead,
    /// One gate a MoLE projection under CoPL; none otherwise (no routing to learn).
    pub gates: Vec<PackedGate>,
    pub temperature: f32,
    pub experts: usize,
}

/// One step's gradients, in the shapes of [`PackedStep`]'s parameters.
pub struct StepGrads {
    /// Per MoLE projection, in routing order.
    pub low_rank: Vec<LowRankGrad>,
    pub gates: Vec<PackedGate>,
    pub head: HeadGrad,
}

impl PackedStep {
    /// The packed form of `model`'s trainable state: BERT backbones, CoPL or Uniform.
    pub fn new(model: &RewardModel) -> Result<Self> {
        let Backbone::Bert(bert) = &model.backbone else {
            bail!("the packed training step runs BERT backbones only");
        };
        if model.config.variant == Variant::UserToken {
            bail!("the packed training step does not train the user-token variant yet");
        }
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
        Ok(Self {
            bert: PackedBert::new(bert)?,
            head: PackedHead::new(model.head.linear(), model.config.pooling)?,
            gates,
            temperature: adapters.config.temperature as f32,
            experts: adapters.config.experts,
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
    ) -> Result<(f64, StepGrads)> {
        if matches!(reweight, Reweight::Focal { .. }) {
            bail!("the packed training step has no focal re-weighting yet");
        }
        let n = pairs.len();
        let mut items: Vec<(&str, &str)> = pairs
            .iter()
            .map(|p| (p.prompt.as_str(), p.chosen.as_str()))
            .collect();
        items.extend(
            pairs
                .iter()
                .map(|p| (p.prompt.as_str(), p.rejected.as_str())),
        );
        let rows = model.tokenize(&items, true)?;
        let users: Vec<f32> = pairs
            .iter()
            .chain(pairs)
            .flat_map(|p| p.user.iter().copied())
            .collect();

        // Routing: the gates under CoPL, the shared expert only otherwise.
        let projections = self.bert.projections();
        let mut gate_saved: Vec<GateSaved> = Vec::new();
        let routings: Vec<UserRouting> = if self.gates.is_empty() {
            vec![UserRouting::population(projections); 2 * n]
        } else {
            let mut per_projection = Vec::with_capacity(projections);
            for (p, gate) in self.gates.iter().enumerate() {
                let z = noise.map(|z| z[p].as_slice());
                let (routes, saved) = gate.route(&users, self.temperature, z);
                per_projection.push(routes);
                gate_saved.push(saved);
            }
            user_routings(&per_projection)
        };
        let refs: Vec<&UserRouting> = routings.iter().collect();

        // Forward.
        let mut x = self.bert.frozen_forward(&rows.iter().collect::<Vec<_>>())?;
        let saved = self.bert.adapted_forward_saving(&mut x, &refs)?;
        let rewards = self.head.rewards(&x);

        // The BTL loss and ∂ of each row's reward.
        let mut loss = 0f64;
        let mut d_rewards = vec![0f32; 2 * n];
        for (i, pair) in pairs.iter().enumerate() {
            let margin = f64::from(rewards[i] - rewards[n + i]);
            let weight = f64::from(pair.weight);
            // −log σ(m) = softplus(−m); ∂/∂m = −σ(−m)
            loss += weight * ((-margin).max(0.0) + (-margin.abs()).exp().ln_1p());
            let d_margin = (-weight / (1.0 + margin.exp()) / n as f64) as f32;
            d_rewards[i] = d_margin;
            d_rewards[n + i] = -d_margin;
        }
        loss /= n.max(1) as f64;

        // Backward: the head, the adapted layers, the gates.
        let mut head = self.head.zero_grad();
        let mut d = vec![0f32; x.states.len()];
        self.head.backward(&x, &d_rewards, &mut head, &mut d);
        let low_rank = self.bert.adapted_backward(&mut d, &x.spans, &refs, &saved);
        let gates = self
            .gates
            .iter()
            .zip(&gate_saved)
            .zip(&low_rank)
            .map(|((gate, saved), grad)| {
                let mut g = gate.zero_grad();
                gate.backward(&users, saved, &grad.weights, self.temperature, &mut g);
                g
            })
            .collect();
        Ok((
            loss,
            StepGrads {
                low_rank,
                gates,
                head,
            },
        ))
    }
}
