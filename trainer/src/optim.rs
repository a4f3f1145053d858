//! What both training loops (GCF, MoLE) share: the BTL loss term, the learning-rate
//! schedule, gradient clipping.

use candle_core::{Result, Tensor, Var, backprop::GradStore};

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
