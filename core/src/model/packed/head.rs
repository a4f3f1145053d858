//! The reward head over packed rows (paper §4.2): `r = w · pool(h) + b`, and its
//! backward for the packed training step (the head trains; ∂ of the row's states goes
//! on into the adapted layers).

use super::bert::Packed;
use crate::model::head::Pooling;

/// The head's weights as buffers, and how it pools.
#[derive(Clone, Debug)]
pub struct PackedHead {
    /// `[h]`.
    pub weight: Vec<f32>,
    pub bias: f32,
    pub pooling: Pooling,
}

/// ∂ of the head's weights, summed over a step's rows.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadGrad {
    pub weight: Vec<f32>,
    pub bias: f32,
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl PackedHead {
    /// The head of a reward model (`Linear(h → 1)`) with its pooling.
    pub fn new(linear: &candle_nn::Linear, pooling: Pooling) -> candle_core::Result<Self> {
        let weight = super::layer::values(linear.weight())?;
        let bias = match linear.bias() {
            Some(b) => super::layer::values(b)?.first().copied().unwrap_or(0.0),
            None => 0.0,
        };
        Ok(Self {
            weight,
            bias,
            pooling,
        })
    }

    /// A row's pooled state from its `[len × h]` states.
    pub fn pool(&self, states: &[f32]) -> Vec<f32> {
        let h = self.weight.len();
        match self.pooling {
            Pooling::Mean => {
                let n = (states.len() / h) as f32;
                (0..h)
                    .map(|c| states.iter().skip(c).step_by(h).sum::<f32>() / n)
                    .collect()
            }
            Pooling::LastToken => states[states.len() - h..].to_vec(),
        }
    }

    /// Row `i`'s reward.
    pub fn reward(&self, x: &Packed, i: usize) -> f32 {
        dot(&self.weight, &self.pool(x.row(i))) + self.bias
    }

    /// Every row's reward.
    pub fn rewards(&self, x: &Packed) -> Vec<f32> {
        (0..x.spans.len()).map(|i| self.reward(x, i)).collect()
    }

    pub fn zero_grad(&self) -> HeadGrad {
        HeadGrad {
            weight: vec![0.0; self.weight.len()],
            bias: 0.0,
        }
    }

    /// From ∂r per row: adds ∂w, ∂b to `grad` and writes ∂ of the states into `d_states`
    /// (`[T × h]`, laid out as `x.states`): the row's tokens share w·∂r/len under mean
    /// pooling, its last token takes w·∂r under last-token pooling, the rest 0.
    pub fn backward(
        &self,
        x: &Packed,
        d_rewards: &[f32],
        grad: &mut HeadGrad,
        d_states: &mut [f32],
    ) {
        let h = self.weight.len();
        d_states.fill(0.0);
        for (i, (&span, &dr)) in x.spans.iter().zip(d_rewards).enumerate() {
            let pooled = self.pool(x.row(i));
            grad.weight
                .iter_mut()
                .zip(&pooled)
                .for_each(|(g, p)| *g += dr * p);
            grad.bias += dr;
            let rows = &mut d_states[span.start * h..(span.start + span.len) * h];
            match self.pooling {
                Pooling::Mean => {
                    let share = dr / span.len as f32;
                    for row in rows.chunks_exact_mut(h) {
                        row.iter_mut()
                            .zip(&self.weight)
                            .for_each(|(d, w)| *d = w * share);
                    }
                }
                Pooling::LastToken => {
                    let last = rows.len() - h;
                    rows[last..]
                        .iter_mut()
                        .zip(&self.weight)
                        .for_each(|(d, w)| *d = w * dr);
                }
            }
        }
    }
}
