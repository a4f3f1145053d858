#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! Frozen linear maps: the same output and input gradient as a plain linear map, and no
//! gradient for the weight or bias.

use candle_core::{Device, Module, Tensor, Var};
use candle_nn::Linear;
use copl_core::model::frozen::FrozenLinear;

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap()
}

#[test]
fn a_frozen_linear_map_passes_the_input_gradient_and_nothing_else() {
    let dev = Device::Cpu;
    let weight = Var::from_tensor(&Tensor::randn(0f32, 1.0, (5, 3), &dev).unwrap()).unwrap();
    let bias = Var::from_tensor(&Tensor::randn(0f32, 1.0, 5, &dev).unwrap()).unwrap();
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 4, 3), &dev).unwrap()).unwrap();
    // A non-linear loss so the gradient depends on the output.
    let loss = |y: &Tensor| y.sqr().unwrap().sum_all().unwrap();

    let plain = Linear::new(weight.as_tensor().clone(), Some(bias.as_tensor().clone()));
    let y_plain = plain.forward(x.as_tensor()).unwrap();
    let g_plain = loss(&y_plain).backward().unwrap();

    let frozen = FrozenLinear::new(plain.clone());
    let y_frozen = frozen.forward(x.as_tensor()).unwrap();
    let g_frozen = loss(&y_frozen).backward().unwrap();

    assert_eq!(max_diff(&y_plain, &y_frozen), 0.0);
    let dx_plain = g_plain.get(x.as_tensor()).unwrap();
    let dx_frozen = g_frozen.get(x.as_tensor()).unwrap();
    assert!(max_diff(dx_plain, dx_frozen) < 1e-5);
    assert!(
        dx_frozen
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            > 0.1
    );
    // The plain map computes the weight's and bias's gradients; the frozen one does not.
    assert!(g_plain.get(weight.as_tensor()).is_some());
    assert!(g_plain.get(bias.as_tensor()).is_some());
    assert!(g_frozen.get(weight.as_tensor()).is_none());
    assert!(g_frozen.get(bias.as_tensor()).is_none());

    // Weights loaded from files (not variables) and an untracked input: the plain map,
    // nothing recorded for a backward (inference).
    let loaded = FrozenLinear::new(Linear::new(weight.as_tensor().detach(), None));
    let constant = x.as_tensor().detach();
    let y = loaded.forward(&constant).unwrap();
    assert!(!y.track_op());
    let by_hand = constant
        .reshape((8, 3))
        .unwrap()
        .matmul(&weight.as_tensor().t().unwrap())
        .unwrap()
        .reshape((2, 4, 5))
        .unwrap();
    assert!(max_diff(&y, &by_hand) < 1e-6);
}
