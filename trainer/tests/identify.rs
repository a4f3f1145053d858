//! The identification measures of `eval-gcf` (linear probe, k-means NMI, ridge R², Bayes
//! bound) on data whose answer is known.

use copl_trainer::gcf::identify::{
    Probe, Ridge, bayes_bound, identify_groups, kmeans, nearest, nmi, normalised,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `per` users a group around `groups` orthogonal directions in `dim` dimensions, with
/// Gaussian-ish noise of scale `noise`.
fn planted(groups: usize, per: usize, dim: usize, noise: f32, seed: u64) -> Vec<(Vec<f32>, usize)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..groups * per)
        .map(|i| {
            let g = i % groups;
            let e = (0..dim)
                .map(|d| f32::from(u8::from(d == g)) + noise * (rng.random::<f32>() - 0.5))
                .collect();
            (e, g)
        })
        .collect()
}

#[test]
fn separable_groups_are_identified_and_noise_is_not() {
    let users = planted(4, 100, 16, 0.3, 1);
    let unseen = planted(4, 10, 16, 0.3, 2);
    let (seen, onboarded) = identify_groups(&users, &unseen, 4, 0);
    assert_eq!(seen.users, 80);
    assert!(seen.probe_accuracy.unwrap() > 0.97, "{seen:?}");
    assert!(seen.kmeans_nmi.unwrap() > 0.95, "{seen:?}");
    let onboarded = onboarded.unwrap();
    assert_eq!(onboarded.users, 40);
    assert!(onboarded.probe_accuracy.unwrap() > 0.97, "{onboarded:?}");

    // Labels unrelated to the embeddings: chance, not better.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let shuffled: Vec<(Vec<f32>, usize)> = users
        .iter()
        .map(|(e, _)| (e.clone(), rng.random_range(0..4)))
        .collect();
    let (random, _) = identify_groups(&shuffled, &[], 4, 0);
    assert!(random.probe_accuracy.unwrap() < 0.45, "{random:?}");
    assert!(random.kmeans_nmi.unwrap() < 0.1, "{random:?}");
}

#[test]
fn nmi_is_one_for_a_renaming_and_zero_for_independence() {
    let a = [0, 0, 1, 1, 2, 2];
    assert!((nmi(&a, &[2, 2, 0, 0, 1, 1]) - 1.0).abs() < 1e-12);
    assert!(nmi(&[0, 1, 0, 1], &[0, 0, 1, 1]).abs() < 1e-12);
    let half = nmi(&[0, 0, 1, 1], &[0, 0, 0, 1]);
    assert!(half > 0.1 && half < 0.9, "{half}");
}

#[test]
fn kmeans_recovers_planted_centres() {
    let users = planted(3, 50, 8, 0.2, 4);
    let x = normalised(&users.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>());
    let centroids = kmeans(&x, 3, 4, 0);
    assert_eq!(centroids.len(), 3);
    let clusters: Vec<usize> = x.iter().map(|r| nearest(&centroids, r)).collect();
    let labels: Vec<usize> = users.iter().map(|(_, g)| *g).collect();
    assert!((nmi(&clusters, &labels) - 1.0).abs() < 1e-9);
}

#[test]
fn ridge_recovers_a_linear_map_and_probe_a_linear_rule() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x: Vec<Vec<f64>> = (0..200)
        .map(|_| (0..5).map(|_| rng.random::<f64>() - 0.5).collect())
        .collect();
    let y: Vec<Vec<f64>> = x
        .iter()
        .map(|r| vec![2.0 * r[0] - r[3] + 0.5, r[1]])
        .collect();
    let ridge = Ridge::fit(&x, &y, 1e-6);
    assert!(ridge.r2(&x, &y) > 0.999);
    let p = ridge.predict(&[0.1, 0.2, 0.0, -0.1, 0.0]);
    assert!(
        (p[0] - 0.8).abs() < 1e-3 && (p[1] - 0.2).abs() < 1e-3,
        "{p:?}"
    );

    let labels: Vec<usize> = x.iter().map(|r| usize::from(r[2] > 0.0)).collect();
    let probe = Probe::fit(&x, &labels, 2);
    assert!(probe.accuracy(&x, &labels) > 0.95);
}

#[test]
fn bayes_bound_counts_ties_and_noise() {
    // Noiseless: user 0 consistent only with its group; user 1 ties two groups; user 2's
    // answers fit another group better.
    let users = vec![
        (0, vec![4, 2, 1], 4),
        (1, vec![3, 3, 0], 3),
        (0, vec![1, 0, 3], 3),
    ];
    let b = bayes_bound(&users, 0.0);
    assert!((b - (1.0 + 0.5 + 0.0) / 3.0).abs() < 1e-12, "{b}");
    // At label noise 0.5 the answers say nothing: chance among three groups.
    let chance = bayes_bound(&users, 0.5);
    assert!((chance - 1.0 / 3.0).abs() < 1e-12, "{chance}");
}
