//! The signed graph of a hand-written example has the expected normalised weights.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use copl_core::graph::{Csr, PreferenceGraph};

#[test]
fn hand_written_graph_has_eq2_weights() {
    // Users 0, 1; responses 0, 1, 2.
    // u0: 0 ≻ 1, 0 ≻ 2 (twice: duplicate edges sum); u1: 1 ≻ 0.
    let pairs = [(0, 0, 1), (0, 0, 2), (0, 0, 2), (1, 1, 0)];
    let g = PreferenceGraph::from_pairs(2, 3, &pairs);

    // Positive raw adjacency: u0–r0 weight 3, u1–r1 weight 1.
    // deg(u0)=3, deg(u1)=1, deg(r0)=3, deg(r1)=1 → α(u0,r0)=3/√9=1, α(u1,r1)=1.
    let pos = &g.positive.user_to_response;
    assert_eq!(pos.row(0), (&[0u32][..], &[1.0f32][..]));
    assert_eq!(pos.row(1), (&[1u32][..], &[1.0f32][..]));
    assert_eq!(g.positive.user_degree, [3.0, 1.0]);
    assert_eq!(g.positive.response_degree, [3.0, 1.0, 0.0]);

    // Negative raw: u0–r1 1, u0–r2 2, u1–r0 1. deg(u0)=3, deg(u1)=1, deg(r0)=1, deg(r1)=1, deg(r2)=2.
    let neg = &g.negative.user_to_response;
    let (cols, vals) = neg.row(0);
    assert_eq!(cols, [1, 2]);
    assert!((vals[0] - 1.0 / 3f32.sqrt()).abs() < 1e-6);
    assert!((vals[1] - 2.0 / 6f32.sqrt()).abs() < 1e-6);
    assert_eq!(neg.row(1), (&[0u32][..], &[1.0f32][..]));

    // The reverse direction holds the same weights, and maps back to their entries.
    let back = &g.negative.response_to_user;
    assert_eq!(back.rows(), 3);
    assert_eq!(back.row(0), (&[1u32][..], &[1.0f32][..]));
    assert_eq!(back.row(2).0, [0]);
    assert!((back.row(2).1[0] - 2.0 / 6f32.sqrt()).abs() < 1e-6);
    for (k, &src) in g.negative.transpose_source.iter().enumerate() {
        assert_eq!(back.values[k], neg.values[src as usize]);
    }
}

#[test]
fn sparse_product_matches_dense() {
    let a = Csr::from_triples(
        2,
        3,
        vec![(0, 2, 2.0), (1, 0, -1.0), (1, 2, 0.5), (0, 2, 1.0)],
    );
    let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // 3 × 2
    let mut out = [0f32; 4];
    a.matmul_dense(&x, 2, &mut out);
    // Row 0: 3·[5,6]; row 1: −[1,2] + 0.5·[5,6].
    assert_eq!(out, [15.0, 18.0, 1.5, 1.0]);
    let (t, _) = a.transpose();
    let mut out_t = [0f32; 6];
    t.matmul_dense(&[1.0, 1.0, 1.0, 1.0], 2, &mut out_t);
    assert_eq!(out_t, [-1.0, -1.0, 0.0, 0.0, 3.5, 3.5]);
}
