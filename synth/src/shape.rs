//! Training pairs of ufp4's shape at any number of users, without texts or preferences:
//! for speed and memory benchmarks (onboarding, the GCF step) at sizes the text
//! generator would take long to write.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `users` users with `answers` pairs each, over 4.58 responses and 2.6 survey pairs per
/// user (ufp4 at 10 000 users); each answer a random survey pair in a random order.
/// Returns the number of responses, the survey pool and the pairs (user, chosen,
/// rejected).
pub fn ufp4_shaped_pairs(users: usize, answers: usize, seed: u64) -> GeneratedPairs {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let responses = ((users as f64 * 4.58).round() as usize).max(2);
    let pool_size = ((users as f64 * 2.6).round() as usize).max(1);
    let pool: Vec<(u32, u32)> = (0..pool_size)
        .map(|_| {
            let a = rng.random_range(0..responses as u32);
            let mut b = rng.random_range(0..responses as u32 - 1);
            if b >= a {
                b += 1;
            }
            (a, b)
        })
        .collect();
    let mut pairs = Vec::with_capacity(users * answers);
    for u in 0..users as u32 {
        for _ in 0..answers {
            let (a, b) = draw(&mut rng, &pool);
            pairs.push((u, a, b));
        }
    }
    GeneratedPairs {
        responses,
        pool,
        pairs,
        rng,
    }
}

/// What [`ufp4_shaped_pairs`] made, and its generator to draw more answers from the pool.
pub struct GeneratedPairs {
    pub responses: usize,
    pub pool: Vec<(u32, u32)>,
    pub pairs: Vec<(u32, u32, u32)>,
    pub rng: ChaCha8Rng,
}

/// A random survey pair of `pool` in a random order (chosen, rejected).
pub fn draw(rng: &mut ChaCha8Rng, pool: &[(u32, u32)]) -> (u32, u32) {
    let (a, b) = pool[rng.random_range(0..pool.len())];
    if rng.random_bool(0.5) { (a, b) } else { (b, a) }
}
