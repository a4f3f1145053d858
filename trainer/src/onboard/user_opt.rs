//! The paper's "User Opt." baseline (Table 5): instead of eq. 11, a fresh user embedding
//! is fitted to the answers by gradient steps on eq. 5's BTL loss, the response
//! embeddings frozen; 50 steps as in the paper (Appendix D.3). Evaluation only.
//!
//! Two implementations of the same optimisation: [`optimise_user`] with the gradient
//! written out (what a tuned service would run), and [`optimise_user_autograd`] with
//! candle's autograd and AdamW (how a training framework runs it, as the authors' code
//! does). They agree to float precision; both are timed by `copl-train bench onboard`.

use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use copl_core::adapt::{Adapter, Answer, dot};
use serde::{Deserialize, Serialize};

/// Adam settings of the baseline. Zero initial embedding (deterministic); λ of eq. 5.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserOptConfig {
    pub steps: usize,
    pub lr: f64,
    pub l2: f64,
}

impl Default for UserOptConfig {
    fn default() -> Self {
        Self {
            steps: 50,
            lr: 0.05,
            l2: 1e-6,
        }
    }
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// Fits e_u by Adam on −mean log σ(⟨e_u, e_a − e_b⟩) + λ‖e_u‖², gradient by hand.
pub fn optimise_user(adapter: &Adapter, answers: &[Answer], config: &UserOptConfig) -> Vec<f32> {
    let dim = adapter.dim();
    let directions: Vec<Vec<f32>> = answers
        .iter()
        .map(|a| {
            adapter
                .response_embedding(a.chosen)
                .iter()
                .zip(adapter.response_embedding(a.rejected))
                .map(|(x, y)| x - y)
                .collect()
        })
        .collect();
    let n = directions.len().max(1) as f32;
    let mut user = vec![0f32; dim];
    let (mut m, mut v) = (vec![0f32; dim], vec![0f32; dim]);
    let mut grad = vec![0f32; dim];
    for step in 1..=config.steps {
        for (g, u) in grad.iter_mut().zip(&user) {
            *g = 2.0 * config.l2 as f32 * u;
        }
        for d in &directions {
            let x = dot(&user, d);
            // d/du of −log σ(x) / n = −(1 − σ(x)) d / n = −σ(−x) d / n.
            let coefficient = -1.0 / (1.0 + x.exp()) / n;
            for (g, di) in grad.iter_mut().zip(d) {
                *g += coefficient * di;
            }
        }
        let (c1, c2) = (1.0 - BETA1.powi(step as i32), 1.0 - BETA2.powi(step as i32));
        for i in 0..dim {
            m[i] = BETA1 as f32 * m[i] + (1.0 - BETA1 as f32) * grad[i];
            v[i] = BETA2 as f32 * v[i] + (1.0 - BETA2 as f32) * grad[i] * grad[i];
            let m_hat = m[i] as f64 / c1;
            let v_hat = v[i] as f64 / c2;
            user[i] -= (config.lr * m_hat / (v_hat.sqrt() + EPS)) as f32;
        }
    }
    user
}

/// The same fit with candle's autograd and AdamW (weight decay 0, so Adam).
pub fn optimise_user_autograd(
    adapter: &Adapter,
    answers: &[Answer],
    config: &UserOptConfig,
) -> candle_core::Result<Vec<f32>> {
    let device = Device::Cpu;
    let dim = adapter.dim();
    let mut flat = Vec::with_capacity(answers.len() * dim);
    for a in answers {
        flat.extend(
            adapter
                .response_embedding(a.chosen)
                .iter()
                .zip(adapter.response_embedding(a.rejected))
                .map(|(x, y)| x - y),
        );
    }
    let directions = Tensor::from_vec(flat, (answers.len(), dim), &device)?;
    let user = Var::zeros((dim, 1), candle_core::DType::F32, &device)?;
    let mut optimiser = AdamW::new(
        vec![user.clone()],
        ParamsAdamW {
            lr: config.lr,
            beta1: BETA1,
            beta2: BETA2,
            eps: EPS,
            weight_decay: 0.0,
        },
    )?;
    for _ in 0..config.steps {
        let x = directions.matmul(user.as_tensor())?;
        // −log σ(x) = softplus(−x), from differentiable parts.
        let minus = x.neg()?;
        let nll = (minus.relu()? + (minus.abs()?.neg()?.exp()? + 1.0)?.log()?)?.mean_all()?;
        let loss = (nll + (user.as_tensor().sqr()?.sum_all()? * config.l2)?)?;
        optimiser.backward_step(&loss)?;
    }
    user.as_tensor().flatten_all()?.to_vec1()
}
