//! A MoLE projection's gate (eq. 8–9) on buffers, forward and backward, for the packed
//! training step: `logits = W₂·ReLU(W₁·e + b₁) + b₂` on the L2-normalised user
//! embedding e, `p = softmax((logits + noise) / τ)`, the expert e* = argmax p, and the
//! weight w_u = p[e*] — what the low-rank terms read; a load-balancing term reads the
//! whole distribution p.

use super::gemm::{View, matmul};
use super::layer::values;
use crate::model::mole::{Gate, UserRouting};

/// One gate's weights: `w1` `[hidden × d_user]`, `w2` `[M × hidden]`.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedGate {
    pub w1: Vec<f32>,
    pub b1: Vec<f32>,
    pub w2: Vec<f32>,
    pub b2: Vec<f32>,
}

/// What the gate's backward reads: the hidden pre-activations `[n × hidden]`, the
/// distributions `[n × M]` and the chosen experts.
#[derive(Clone, Debug, Default)]
pub struct GateSaved {
    pub pre: Vec<f32>,
    pub probabilities: Vec<f32>,
    pub experts: Vec<u32>,
}

impl PackedGate {
    pub fn new(gate: &Gate) -> candle_core::Result<Self> {
        let (hidden, out) = gate.layers();
        Ok(Self {
            w1: values(hidden.weight())?,
            b1: hidden.bias().map(values).transpose()?.unwrap_or_default(),
            w2: values(out.weight())?,
            b2: out.bias().map(values).transpose()?.unwrap_or_default(),
        })
    }

    pub fn experts(&self) -> usize {
        self.b2.len()
    }

    fn hidden(&self) -> usize {
        self.b1.len()
    }

    pub fn zero_grad(&self) -> PackedGate {
        let zero = |v: &[f32]| vec![0.0; v.len()];
        PackedGate {
            w1: zero(&self.w1),
            b1: zero(&self.b1),
            w2: zero(&self.w2),
            b2: zero(&self.b2),
        }
    }

    /// Routes `n` users (`users` `[n × d_user]`, L2-normalised) at temperature τ, with
    /// `noise` `[n × M]` added to the logits when given (training: N(0, σ²) draws, made
    /// by the caller); returns each user's (expert, w_u) and what [`Self::backward`]
    /// reads.
    pub fn route(
        &self,
        users: &[f32],
        temperature: f32,
        noise: Option<&[f32]>,
    ) -> (Vec<(u32, f32)>, GateSaved) {
        let (hidden, m) = (self.hidden(), self.experts());
        let d_user = self.w1.len() / hidden.max(1);
        let n = users.len() / d_user.max(1);
        let mut pre = vec![0f32; n * hidden];
        matmul(
            &mut pre,
            View::dense(n, hidden),
            false,
            users,
            View::dense(n, d_user),
            &self.w1,
            View::dense(hidden, d_user).t(),
            1.0,
            1,
        );
        for row in pre.chunks_exact_mut(hidden) {
            row.iter_mut().zip(&self.b1).for_each(|(v, b)| *v += b);
        }
        let activated: Vec<f32> = pre.iter().map(|v| v.max(0.0)).collect();
        let mut logits = vec![0f32; n * m];
        matmul(
            &mut logits,
            View::dense(n, m),
            false,
            &activated,
            View::dense(n, hidden),
            &self.w2,
            View::dense(m, hidden).t(),
            1.0,
            1,
        );
        let mut routes = Vec::with_capacity(n);
        let mut experts = Vec::with_capacity(n);
        for (u, row) in logits.chunks_exact_mut(m).enumerate() {
            for (j, (v, b)) in row.iter_mut().zip(&self.b2).enumerate() {
                *v += b + noise.map_or(0.0, |z| z[u * m + j]);
                *v /= temperature;
            }
            let top = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            row.iter_mut().for_each(|v| *v = (*v - top).exp());
            let sum: f32 = row.iter().sum();
            row.iter_mut().for_each(|v| *v /= sum);
            let (e, &w) = row
                .iter()
                .enumerate()
                .fold((0, &f32::NEG_INFINITY), |best, cur| {
                    if cur.1 > best.1 { cur } else { best }
                });
            routes.push((e as u32, w));
            experts.push(e as u32);
        }
        let saved = GateSaved {
            pre,
            probabilities: logits,
            experts,
        };
        (routes, saved)
    }

    /// From ∂w_u per user — and, when given, ∂ of each user's whole distribution p
    /// `[n × M]` (a load-balancing term reads it) — adds the gate's weight gradients to
    /// `grad`. Through the softmax: ∂logits = p ⊙ (∂p − Σ ∂p ⊙ p) / τ, ∂w_u being ∂p at
    /// the chosen expert.
    pub fn backward(
        &self,
        users: &[f32],
        saved: &GateSaved,
        d_weights: &[f32],
        d_probabilities: Option<&[f32]>,
        temperature: f32,
        grad: &mut PackedGate,
    ) {
        let (hidden, m) = (self.hidden(), self.experts());
        let d_user = self.w1.len() / hidden.max(1);
        let n = d_weights.len();
        let mut d_logits = vec![0f32; n * m];
        for (u, ((d, p), (&e, &dw))) in d_logits
            .chunks_exact_mut(m)
            .zip(saved.probabilities.chunks_exact(m))
            .zip(saved.experts.iter().zip(d_weights))
            .enumerate()
        {
            // ∂p: ∂w_u at the chosen expert, plus the distribution's own gradient.
            for (j, v) in d.iter_mut().enumerate() {
                *v = d_probabilities.map_or(0.0, |dp| dp[u * m + j])
                    + if j == e as usize { dw } else { 0.0 };
            }
            let dot: f32 = d.iter().zip(p).map(|(g, p)| g * p).sum();
            for (v, &pj) in d.iter_mut().zip(p) {
                *v = pj * (*v - dot) / temperature;
            }
        }
        let activated: Vec<f32> = saved.pre.iter().map(|v| v.max(0.0)).collect();
        for row in d_logits.chunks_exact(m) {
            grad.b2.iter_mut().zip(row).for_each(|(g, d)| *g += d);
        }
        // ∂W₂ += ∂logitsᵀ · a
        matmul(
            &mut grad.w2,
            View::dense(m, hidden),
            true,
            &d_logits,
            View::dense(n, m).t(),
            &activated,
            View::dense(n, hidden),
            1.0,
            1,
        );
        // ∂pre = ∂logits · W₂ ⊙ [pre > 0]
        let mut d_pre = vec![0f32; n * hidden];
        matmul(
            &mut d_pre,
            View::dense(n, hidden),
            false,
            &d_logits,
            View::dense(n, m),
            &self.w2,
            View::dense(m, hidden),
            1.0,
            1,
        );
        d_pre
            .iter_mut()
            .zip(&saved.pre)
            .for_each(|(d, &p)| *d = if p > 0.0 { *d } else { 0.0 });
        for row in d_pre.chunks_exact(hidden) {
            grad.b1.iter_mut().zip(row).for_each(|(g, d)| *g += d);
        }
        matmul(
            &mut grad.w1,
            View::dense(hidden, d_user),
            true,
            &d_pre,
            View::dense(n, hidden).t(),
            users,
            View::dense(n, d_user),
            1.0,
            1,
        );
    }
}

/// Users' routings in every projection from each projection's gate output.
pub fn user_routings(per_projection: &[Vec<(u32, f32)>]) -> Vec<UserRouting> {
    let n = per_projection.first().map_or(0, Vec::len);
    (0..n)
        .map(|u| UserRouting {
            experts: per_projection.iter().map(|p| p[u].0).collect(),
            weights: per_projection.iter().map(|p| p[u].1).collect(),
        })
        .collect()
}
