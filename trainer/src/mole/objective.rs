//! The reward model's training objective: the BTL loss of eq. (1) per pair, and the two
//! options the paper names as limitations (§7) but does not use: loss re-weighting for
//! minority groups (inverse group frequency, or focal weighting, Lin et al. 2017) and a
//! load-balancing loss on the gates (Switch Transformer, Fedus et al. 2022, eq. 4).

use std::collections::HashMap;

use candle_core::{D, DType, Result, Tensor};
use copl_core::model::Routing;
use serde::{Deserialize, Serialize};

use crate::optim::neg_log_sigmoid;

/// How each training pair's BTL term is weighted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Reweight {
    /// Every pair 1 (the paper).
    #[default]
    None,
    /// A pair weighs N / (G · n_g): N training pairs, G groups, n_g pairs of the user's
    /// group (`users.jsonl`'s `group`), so each group weighs the same in total.
    InverseFrequency,
    /// Focal: a pair weighs (1 − σ(margin))^γ, so pairs the model already orders
    /// confidently count little; needs no group labels.
    Focal { gamma: f64 },
}

/// The weighted BTL loss of a batch: mean over pairs of wᵢ · fᵢ · −log σ(mᵢ), with
/// `weights` [n] the pairs' fixed weights and fᵢ the focal factor (1 under the others).
pub fn pair_loss(margin: &Tensor, weights: &Tensor, reweight: Reweight) -> Result<Tensor> {
    let btl = neg_log_sigmoid(margin)?;
    let btl = match reweight {
        // (1 − σ(m))^γ = σ(−m)^γ = exp(−γ · softplus(m)) = exp(−γ · −log σ(−m)).
        Reweight::Focal { gamma } => {
            let factor = (neg_log_sigmoid(&margin.neg()?)? * -gamma)?.exp()?;
            (btl * factor)?
        }
        Reweight::None | Reweight::InverseFrequency => btl,
    };
    (btl * weights)?.mean_all()
}

/// Inverse-frequency weights of pairs whose users belong to `groups` (one entry a
/// pair): N / (G · n_g). Their mean is 1.
pub fn inverse_frequency(groups: &[&str]) -> Vec<f32> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for g in groups {
        *counts.entry(g).or_default() += 1;
    }
    let (n, g) = (groups.len() as f64, counts.len() as f64);
    groups
        .iter()
        .map(|group| (n / (g * counts[group] as f64)) as f32)
        .collect()
}

/// The Switch Transformer's load-balancing loss averaged over MoLE projections:
/// M · Σₑ fₑ · Pₑ, with fₑ the share of rows routed to expert e (top-1, no gradient)
/// and Pₑ the mean gate probability of e (differentiable). 1 when routing is uniform
/// over the M experts, M when every row goes to one. `None` when no routing carries
/// its gate's probabilities (Uniform, user token).
pub fn load_balance(routings: &[Routing]) -> Result<Option<Tensor>> {
    let mut terms = Vec::new();
    for routing in routings {
        let Some(probabilities) = &routing.probabilities else {
            continue;
        };
        let (rows, experts) = probabilities.dims2()?;
        let mut share = vec![0f32; experts];
        for &e in &routing.experts {
            share[e as usize] += 1.0 / rows as f32;
        }
        let share = Tensor::from_vec(share, experts, probabilities.device())?
            .to_dtype(probabilities.dtype())?;
        let mean_probability = probabilities.mean(0)?;
        terms.push(((mean_probability * share)?.sum(D::Minus1)? * experts as f64)?);
    }
    if terms.is_empty() {
        return Ok(None);
    }
    let n = terms.len() as f64;
    Ok(Some(
        (Tensor::stack(&terms, 0)?.sum_all()? / n)?.to_dtype(DType::F32)?,
    ))
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    fn scalar(t: &Tensor) -> f32 {
        t.to_scalar::<f32>().expect("scalar")
    }

    #[test]
    fn unweighted_loss_is_btl_mean() {
        let m = Tensor::new(&[0.0f32, 2.0], &Device::Cpu).expect("m");
        let w = Tensor::new(&[1.0f32, 1.0], &Device::Cpu).expect("w");
        let expected = (2f32.ln() + (1.0 + (-2f32).exp()).ln()) / 2.0;
        let got = scalar(&pair_loss(&m, &w, Reweight::None).expect("loss"));
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
        let weighted = Tensor::new(&[3.0f32, 0.0], &Device::Cpu).expect("w");
        let got = scalar(&pair_loss(&m, &weighted, Reweight::InverseFrequency).expect("loss"));
        assert!((got - 3.0 * 2f32.ln() / 2.0).abs() < 1e-6);
    }

    #[test]
    fn focal_weights_by_the_error_probability() {
        let m = Tensor::new(&[1.5f32], &Device::Cpu).expect("m");
        let w = Tensor::new(&[1.0f32], &Device::Cpu).expect("w");
        let p = 1.0 / (1.0 + (-1.5f32).exp());
        let expected = (1.0 - p).powi(2) * -p.ln();
        let got = scalar(&pair_loss(&m, &w, Reweight::Focal { gamma: 2.0 }).expect("loss"));
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
        // γ = 0 is the plain BTL loss.
        let plain = scalar(&pair_loss(&m, &w, Reweight::Focal { gamma: 0.0 }).expect("loss"));
        assert!((plain + p.ln()).abs() < 1e-6);
    }

    #[test]
    fn inverse_frequency_equalises_groups() {
        let w = inverse_frequency(&["a", "a", "a", "b"]);
        assert_eq!(w.len(), 4);
        let a: f32 = w[..3].iter().sum();
        assert!((a - w[3]).abs() < 1e-6, "group totals {a} and {}", w[3]);
        assert!((w.iter().sum::<f32>() / 4.0 - 1.0).abs() < 1e-6);
    }

    #[test]
    fn load_balance_is_one_when_uniform_and_m_when_collapsed() {
        let device = Device::Cpu;
        let routing = |experts: Vec<u32>, p: Vec<f32>| Routing {
            weights: Tensor::zeros((experts.len(), 4), DType::F32, &device).expect("w"),
            probabilities: Some(Tensor::from_vec(p, (experts.len(), 4), &device).expect("p")),
            experts,
        };
        let uniform = routing((0..4).collect(), vec![0.25; 16]);
        let got = scalar(&load_balance(&[uniform]).expect("loss").expect("some"));
        assert!((got - 1.0).abs() < 1e-6, "{got}");
        let mut one_hot = vec![0f32; 16];
        for row in 0..4 {
            one_hot[row * 4] = 1.0;
        }
        let collapsed = routing(vec![0; 4], one_hot);
        let got = scalar(&load_balance(&[collapsed]).expect("loss").expect("some"));
        assert!((got - 4.0).abs() < 1e-6, "{got}");
        let cached = Routing {
            experts: vec![0],
            weights: Tensor::zeros((1, 4), DType::F32, &device).expect("w"),
            probabilities: None,
        };
        assert!(load_balance(&[cached]).expect("loss").is_none());
    }
}
