#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! What the report's figures are made of, computed by `copl-train eval-projection` and
//! `eval-experts`: principal components of user embeddings (Fig. 1 / A2) and the expert
//! allocation by group (Fig. 6).

use copl_core::model::UserRouting;
use copl_trainer::{mole::allocation::Allocation, projection::Components};

#[test]
fn principal_components_find_the_spread_directions_in_order() {
    // Points spread 10× more along (1, 2, 0)/√5 than along (0, 0, 1), around (5, 5, 5).
    let rows: Vec<Vec<f32>> = (0..200)
        .map(|i| {
            // ±10 and ±1 in patterns that never correlate (exact principal axes).
            let a = if i % 2 == 0 { 10.0 } else { -10.0 };
            let b = if (i / 2) % 2 == 0 { 1.0 } else { -1.0 };
            let s = 5f32.sqrt();
            vec![5.0 + a / s, 5.0 + 2.0 * a / s, 5.0 + b]
        })
        .collect();
    let pca = Components::fit(&rows, 2);
    let first = &pca.directions[0];
    let s = 5f64.sqrt();
    for (got, want) in first.iter().zip([1.0 / s, 2.0 / s, 0.0]) {
        assert!((got - want).abs() < 1e-6, "{first:?}");
    }
    let second = &pca.directions[1];
    assert!((second[2].abs() - 1.0).abs() < 1e-6, "{second:?}");
    assert!(
        pca.variances[0] > 20.0 * pca.variances[1],
        "{:?}",
        pca.variances
    );
    // The mean projects to the origin; a point one unit along the first direction to 1.
    let centre: Vec<f32> = pca.mean.iter().map(|&m| m as f32).collect();
    assert!(pca.project(&centre).iter().all(|c| c.abs() < 1e-5));
    let along: Vec<f32> = centre
        .iter()
        .zip(first)
        .map(|(&c, &d)| c + d as f32)
        .collect();
    assert!((pca.project(&along)[0] - 1.0).abs() < 1e-5);
    assert!(Components::fit(&rows[..1], 2).directions.is_empty());
}

fn routing(experts: &[u32]) -> UserRouting {
    UserRouting {
        experts: experts.to_vec(),
        weights: vec![0.9; experts.len()],
    }
}

#[test]
fn expert_allocation_counts_each_groups_share_per_projection() {
    let (a, b, c) = (routing(&[0, 3]), routing(&[0, 1]), routing(&[2, 1]));
    let users = vec![
        ("detail".to_string(), &a),
        ("detail".to_string(), &b),
        ("hedging".to_string(), &c),
    ];
    let allocation = Allocation::count(&users, 4).unwrap();
    assert_eq!(
        allocation.shares["detail"],
        vec![vec![1.0, 0.0, 0.0, 0.0], vec![0.0, 0.5, 0.0, 0.5]]
    );
    assert_eq!(
        allocation.shares["hedging"],
        vec![vec![0.0, 0.0, 1.0, 0.0], vec![0.0, 1.0, 0.0, 0.0]]
    );
    assert_eq!(allocation.experts_used(), vec![2, 2]);
    // Projection 0 routes the groups apart, purely; in projection 1 detail splits over
    // experts 1 and 3 (its majority on the tie: 1, where hedging goes too).
    let purity = allocation.purity();
    assert_eq!(purity[0].majority_share, 1.0);
    assert_eq!(purity[0].entropy_bits, 0.0);
    assert_eq!(purity[0].distinct_majorities, 2);
    assert_eq!(purity[1].majority_share, 0.75);
    assert_eq!(purity[1].entropy_bits, 0.5);
    assert_eq!(purity[1].distinct_majorities, 1);
    let bad = routing(&[0, 4]);
    let e = Allocation::count(&[("x".to_string(), &bad)], 4).unwrap_err();
    assert!(e.to_string().contains("expert 4 in projection 1"), "{e}");
    let short = routing(&[0]);
    let e = Allocation::count(&[("x".into(), &a), ("y".into(), &short)], 4).unwrap_err();
    assert!(e.to_string().contains("user 1"), "{e}");
}
