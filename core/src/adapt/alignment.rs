//! The alignment score γ and the weights of eq. 11, on plain `f32` rows.

/// ⟨a, b⟩, with eight independent partial sums so the compiler vectorises it (a plain
/// `.sum()` must add in order and stays scalar: 4–5× slower at d = 64).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The direction of each answer a ≻ b, `e_a − e_b` (rows of `dim`), so that
/// s(v, a) − s(v, b) = ⟨e_v, e_a − e_b⟩ (eq. 4).
pub(crate) fn answer_directions(
    responses: &[f32],
    dim: usize,
    answers: impl Iterator<Item = (u32, u32)>,
) -> Vec<f32> {
    let mut directions = Vec::new();
    for (a, b) in answers {
        let ea = &responses[a as usize * dim..(a as usize + 1) * dim];
        let eb = &responses[b as usize * dim..(b as usize + 1) * dim];
        directions.extend(ea.iter().zip(eb).map(|(x, y)| x - y));
    }
    directions
}

/// γ(v, u*) of eq. 11: the mean over u*'s answers of log σ(s(v, a) − s(v, b)).
///
/// Σ log σ(xᵢ) = −ln Πᵢ (1 + e^{−xᵢ}): the product is taken in f64 over blocks of 8
/// answers, so one logarithm serves eight answers (the logarithms were 40 % of an
/// onboarding's time). Margins below −80 count as −80, which keeps each block's product
/// finite; such a neighbour's softmax weight is e^{−80/κ}-small either way.
pub(crate) fn alignment(user: &[f32], directions: &[f32]) -> f32 {
    const BLOCK: usize = 8;
    let dim = user.len();
    let answers = directions.len() / dim.max(1);
    if answers == 0 {
        return 0.0;
    }
    let mut total = 0f64;
    for block in directions.chunks(BLOCK * dim) {
        let product: f64 = block
            .chunks_exact(dim)
            .map(|d| 1.0 + (-f64::from(dot(user, d).max(-80.0))).exp())
            .product();
        total -= product.ln();
    }
    (total / answers as f64) as f32
}

/// softmax(γ / κ), computed stably.
pub(crate) fn softmax_weights(gammas: &[f32], temperature: f32) -> Vec<f32> {
    let max = gammas.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut weights: Vec<f32> = gammas
        .iter()
        .map(|g| ((g - max) / temperature).exp())
        .collect();
    let total: f32 = weights.iter().sum();
    for w in &mut weights {
        *w /= total;
    }
    weights
}

/// P(p > ½ | `agree` of `used` answers reproduced) under a uniform prior on the
/// embedding's accuracy p: the posterior is Beta(agree + 1, used − agree + 1), and for
/// integer parameters P(p > ½) = P(Binomial(used + 1, ½) ≤ agree).
pub(crate) fn better_than_chance(agree: usize, used: usize) -> f64 {
    let n = used + 1;
    // Σ_{i ≤ agree} C(n, i) / 2ⁿ, by the running binomial coefficient in f64.
    let mut term = 0.5f64.powi(n as i32);
    let mut total = 0.0;
    for i in 0..=agree.min(n) {
        total += term;
        term *= (n - i) as f64 / (i + 1) as f64;
    }
    total.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// log σ(x), stable for large |x|.
    #[inline]
    pub(crate) fn log_sigmoid(x: f32) -> f32 {
        if x >= 0.0 {
            -(-x).exp().ln_1p()
        } else {
            x - x.exp().ln_1p()
        }
    }

    #[test]
    fn dot_matches_the_sequential_sum_for_every_length() {
        for n in [0usize, 1, 7, 8, 9, 64, 67] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-5, "n = {n}");
        }
    }

    #[test]
    fn log_sigmoid_matches_the_definition_and_stays_finite() {
        for x in [-30.0f32, -2.0, 0.0, 1.5, 30.0] {
            let direct = (1.0 / (1.0 + (-x as f64).exp())).ln() as f32;
            assert!((log_sigmoid(x) - direct).abs() < 1e-5, "x = {x}");
        }
        assert!(log_sigmoid(-1000.0).is_finite());
        assert_eq!(log_sigmoid(1000.0), 0.0);
    }

    #[test]
    fn alignment_is_the_mean_log_sigmoid_of_the_margins() {
        // 11 answers (one full block of 8 and a partial one), d = 2, user (1, 0):
        // margins are the directions' first coordinates.
        let margins = [
            -3.0f32, -1.0, -0.5, 0.0, 0.25, 1.0, 2.0, 4.0, 7.5, -2.0, 0.1,
        ];
        let directions: Vec<f32> = margins.iter().flat_map(|&m| [m, 5.0]).collect();
        let expected = margins.iter().map(|&m| log_sigmoid(m)).sum::<f32>() / 11.0;
        assert!((alignment(&[1.0, 0.0], &directions) - expected).abs() < 1e-6);
        // A hopeless margin stays finite.
        assert!(alignment(&[1.0, 0.0], &[-1e6, 0.0]).is_finite());
    }

    #[test]
    fn better_than_chance_is_the_beta_posterior() {
        // Beta(2, 1): P(p > ½) = 1 − ¼.
        assert!((better_than_chance(1, 1) - 0.75).abs() < 1e-12);
        // Beta(1, 2): P(p > ½) = ¼.
        assert!((better_than_chance(0, 1) - 0.25).abs() < 1e-12);
        // Half right: symmetric posterior.
        assert!((better_than_chance(4, 8) - 0.5).abs() < 1e-12);
        // Beta(17, 1): 1 − 2⁻¹⁷.
        assert!((better_than_chance(16, 16) - (1.0 - 0.5f64.powi(17))).abs() < 1e-12);
    }

    #[test]
    fn softmax_weights_sum_to_one_and_follow_the_temperature() {
        let w = softmax_weights(&[0.0, -0.07], 0.07);
        assert!((w[0] + w[1] - 1.0).abs() < 1e-6);
        assert!((w[0] / w[1] - std::f32::consts::E).abs() < 1e-4);
    }
}
