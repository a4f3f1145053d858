#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! The reward head reads the right hidden states whatever the padding.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use copl_core::model::head::{Pooling, RewardHead};

fn hidden() -> Tensor {
    // [2 rows, 4 tokens, 3]: token k of row r is (r, k, 1) + 10·k.
    let v: Vec<f32> = (0..2)
        .flat_map(|r| (0..4).flat_map(move |k| [r as f32 + 10.0 * k as f32, k as f32, 1.0]))
        .collect();
    Tensor::from_vec(v, (2, 4, 3), &Device::Cpu).unwrap()
}

fn head(pooling: Pooling) -> RewardHead {
    let varmap = VarMap::new();
    RewardHead::new(
        3,
        pooling,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap()
}

#[test]
fn last_token_is_found_from_the_mask_for_right_and_left_padding() {
    let mask = Tensor::new(&[[1u32, 1, 1, 0], [0, 1, 1, 0]], &Device::Cpu).unwrap();
    let pooled: Vec<Vec<f32>> = head(Pooling::LastToken)
        .pool(&hidden(), &mask)
        .unwrap()
        .to_vec2()
        .unwrap();
    assert_eq!(pooled, vec![vec![20.0, 2.0, 1.0], vec![21.0, 2.0, 1.0]]);
}

#[test]
fn mean_pooling_ignores_padding_and_scores_do_not_depend_on_it() {
    let mask = Tensor::new(&[[1u32, 1, 0, 0], [1, 1, 1, 1]], &Device::Cpu).unwrap();
    let h = head(Pooling::Mean);
    let pooled: Vec<Vec<f32>> = h.pool(&hidden(), &mask).unwrap().to_vec2().unwrap();
    assert_eq!(pooled, vec![vec![5.0, 0.5, 1.0], vec![16.0, 1.5, 1.0]]);
    // Row 0 alone, without its padding, scores the same.
    let alone = h
        .forward(
            &hidden().narrow(0, 0, 1).unwrap().narrow(1, 0, 2).unwrap(),
            &Tensor::new(&[[1u32, 1]], &Device::Cpu).unwrap(),
        )
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let together = h
        .forward(&hidden(), &mask)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!((alone[0] - together[0]).abs() < 1e-5);
    assert_eq!(together.len(), 2);
}

#[test]
fn a_row_without_tokens_is_refused_by_index() {
    let mask = Tensor::new(&[[1u32, 0, 0, 0], [0, 0, 0, 0]], &Device::Cpu).unwrap();
    let err = head(Pooling::LastToken)
        .forward(&hidden(), &mask)
        .unwrap_err();
    assert!(err.to_string().contains("row 1 has no token"), "{err}");
}
