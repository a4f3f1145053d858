//! What both training loops (GCF, MoLE) share: the BTL loss term, the learning-rate
//! schedule, gradient clipping, and AdamW over plain buffers (the fused GCF step and the
//! packed MoLE step).

use candle_core::{Result, Tensor, Var, backprop::GradStore};
use rayon::prelude::*;

/// −log σ(x) = softplus(−x), from differentiable parts (the BTL loss of a margin x).
pub fn neg_log_sigmoid(x: &Tensor) -> Result<Tensor> {
    let minus = x.neg()?;
    minus.relu()? + (minus.abs()?.neg()?.exp()? + 1.0)?.log()?
}

/// Linear warm-up to `lr` over `warmup` steps, then cosine decay to 0 at `total`.
pub fn schedule(lr: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        lr * (step + 1) as f64 / warmup as f64
    } else {
        let progress = (step - warmup) as f64 / (total - warmup).max(1) as f64;
        lr * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
    }
}

/// Scales the gradients of `vars` so that their global L2 norm is at most `max_norm`;
/// returns the norm before clipping. A variable without gradient is reported by name.
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[(String, Var)], max_norm: f64) -> Result<f64> {
    let mut total = 0f64;
    for (name, var) in vars {
        let Some(g) = grads.get(var.as_tensor()) else {
            candle_core::bail!("{name} received no gradient");
        };
        total += g
            .sqr()?
            .sum_all()?
            .to_dtype(candle_core::DType::F64)?
            .to_scalar::<f64>()?;
    }
    let norm = total.sqrt();
    if norm > max_norm && norm > 0.0 {
        let scale = max_norm / norm;
        for (_, var) in vars {
            if let Some(g) = grads.remove(var.as_tensor()) {
                grads.insert(var.as_tensor(), (g * scale)?);
            }
        }
    }
    Ok(norm)
}

/// AdamW over plain `f32` buffers, the update of `candle_nn::AdamW` (decoupled weight
/// decay θ ← θ(1 − lr·λ) − lr·m̂/(√v̂ + ε), β = (0.9, 0.999), ε = 1e-8) in one pass per
/// buffer; its moments are allocated at the first step, shaped like the buffers.
pub struct BufferAdamW {
    pub lr: f64,
    pub weight_decay: f64,
    step: i32,
    first: Vec<Vec<f32>>,
    second: Vec<Vec<f32>>,
}

impl BufferAdamW {
    pub fn new(lr: f64, weight_decay: f64) -> Self {
        Self {
            lr,
            weight_decay,
            step: 0,
            first: Vec::new(),
            second: Vec::new(),
        }
    }

    /// One update of `params` by `grads` (the same buffers, in the same order, every
    /// step).
    pub fn step(&mut self, params: Vec<&mut [f32]>, grads: Vec<&[f32]>) {
        assert_eq!(params.len(), grads.len(), "a gradient for every buffer");
        if self.first.is_empty() {
            self.first = params.iter().map(|p| vec![0.0; p.len()]).collect();
            self.second = self.first.clone();
        }
        self.step += 1;
        let (beta1, beta2) = (0.9f64, 0.999f64);
        let (b1, b2) = (beta1 as f32, beta2 as f32);
        let scale_m = (1.0 / (1.0 - beta1.powi(self.step))) as f32;
        let scale_v = (1.0 / (1.0 - beta2.powi(self.step))) as f32;
        let decay = (1.0 - self.lr * self.weight_decay) as f32;
        let (lr, eps) = (self.lr as f32, 1e-8f32);
        for (((theta, g), m), v) in params
            .into_iter()
            .zip(grads)
            .zip(&mut self.first)
            .zip(&mut self.second)
        {
            assert_eq!(theta.len(), g.len(), "a gradient shaped like its buffer");
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

/// Scales `grads` so that their global L2 norm is at most `max_norm`; returns the norm
/// before clipping (buffers' form of [`clip_grad_norm`]).
pub fn clip_buffers(grads: Vec<&mut [f32]>, max_norm: f64) -> f64 {
    let total: f64 = grads
        .iter()
        .map(|g| g.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>())
        .sum();
    let norm = total.sqrt();
    if norm > max_norm && norm > 0.0 {
        let scale = (max_norm / norm) as f32;
        for g in grads {
            g.iter_mut().for_each(|x| *x *= scale);
        }
    }
    norm
}
