#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! The backward passes of the packed kernels (`core/src/model/packed/backward.rs`, the
//! first part of the packed training step) against candle's autograd through plain ops:
//! GELU (erf and tanh) and ReLU, residual + layer norm, softmax — on more rows than one
//! job, so the jobs' seams are crossed.
//! The model's parts (adapted layers, head, gates) are in `model`.

mod model;

use candle_core::{D, Device, Tensor, Var};
use copl_core::model::packed::{
    backward::{self, NormSaved},
    kernels::{self, Activation, Norm},
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ROWS: usize = 37;

fn random(rng: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

fn tensor(values: &[f32], width: usize) -> Tensor {
    Tensor::from_slice(values, (values.len() / width, width), &Device::Cpu).unwrap()
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// The largest difference, as a share of the largest expected magnitude.
fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1e-6f32, |m, x| m.max(x.abs()));
    let worst = got
        .iter()
        .zip(want)
        .fold(0f32, |m, (g, w)| m.max((g - w).abs()));
    assert!(worst <= 1e-4 * scale, "{what}: off by {worst} of {scale}");
}

/// ∂(Σ f(x) ⊙ upstream)/∂x by candle's autograd.
fn autograd(x: &[f32], width: usize, upstream: &[f32], f: impl Fn(&Tensor) -> Tensor) -> Vec<f32> {
    let var = Var::from_tensor(&tensor(x, width)).unwrap();
    let y = f(var.as_tensor());
    let loss = (y * tensor(upstream, width)).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    flat(grads.get(var.as_tensor()).unwrap())
}

#[test]
fn activation_backward_equals_autograd() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let width = 24;
    let pre = random(&mut rng, ROWS * width, 4.0);
    let upstream = random(&mut rng, ROWS * width, 1.0);
    for activation in [Activation::GeluErf, Activation::GeluTanh, Activation::Relu] {
        let want = autograd(&pre, width, &upstream, |x| match activation {
            Activation::GeluErf => x.gelu_erf().unwrap(),
            Activation::GeluTanh => x.gelu().unwrap(),
            Activation::Relu => x.relu().unwrap(),
        });
        let mut got = upstream.clone();
        backward::activation_backward(&mut got, &pre, width, activation);
        assert_close(&got, &want, &format!("{activation:?}"));
    }
}

/// Layer norm in plain candle ops (γ, β frozen).
fn layer_norm_reference(x: &Tensor, norm: &Norm) -> Tensor {
    let width = norm.weight.len();
    let mean = x.mean_keepdim(D::Minus1).unwrap();
    let centred = x.broadcast_sub(&mean).unwrap();
    let variance = centred.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
    let normalised = centred
        .broadcast_div(&(variance + f64::from(norm.eps)).unwrap().sqrt().unwrap())
        .unwrap();
    normalised
        .broadcast_mul(&tensor(&norm.weight, width))
        .unwrap()
        .broadcast_add(&tensor(&norm.bias, width))
        .unwrap()
}

#[test]
fn residual_layer_norm_backward_equals_autograd() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let width = 40;
    let norm = Norm {
        weight: random(&mut rng, width, 2.0),
        bias: random(&mut rng, width, 1.0),
        eps: 1e-12,
    };
    let residual = random(&mut rng, ROWS * width, 3.0);
    let output = random(&mut rng, ROWS * width, 3.0);
    let bias = random(&mut rng, width, 1.0);
    let upstream = random(&mut rng, ROWS * width, 1.0);

    // The saving forward equals the served one.
    let mut served = residual.clone();
    kernels::residual_norm(&mut served, &output, &bias, &norm);
    let mut x = residual.clone();
    let mut saved = NormSaved::default();
    backward::residual_norm_saving(&mut x, &output, &bias, &norm, &mut saved);
    assert_eq!(x, served, "the saving forward changes the result");

    // ∂ of LayerNorm(residual + output + bias) with respect to the residual (the same
    // as with respect to the output).
    let summed: Vec<f32> = residual
        .iter()
        .zip(&output)
        .enumerate()
        .map(|(i, (r, o))| r + o + bias[i % width])
        .collect();
    let want = autograd(&summed, width, &upstream, |x| {
        layer_norm_reference(x, &norm)
    });
    let mut got = upstream.clone();
    backward::layer_norm_backward(&mut got, &norm, &saved);
    assert_close(&got, &want, "residual + layer norm");

    // The plain layer norm keeps the same.
    let mut plain = summed.clone();
    let mut plain_saved = NormSaved::default();
    backward::layer_norm_saving(&mut plain, &norm, &mut plain_saved);
    assert_close(&plain, &served, "layer_norm_saving");
    let mut got = upstream.clone();
    backward::layer_norm_backward(&mut got, &norm, &plain_saved);
    assert_close(&got, &want, "layer norm");
}

#[test]
fn softmax_backward_equals_autograd() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let width = 13;
    let x = random(&mut rng, ROWS * width, 5.0);
    let upstream = random(&mut rng, ROWS * width, 1.0);
    let want = autograd(&x, width, &upstream, |x| {
        candle_nn::ops::softmax(x, D::Minus1).unwrap()
    });
    let mut p = x.clone();
    kernels::softmax_rows(&mut p, width);
    let mut got = upstream.clone();
    backward::softmax_backward_rows(&mut got, &p, width);
    assert_close(&got, &want, "softmax");
}

#[test]
fn attention_backward_equals_autograd() {
    use copl_core::model::packed::{
        attention::{Span, attention},
        backward::attention_backward,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let (hidden, heads) = (12, 3);
    let d = hidden / heads;
    let spans = [
        Span { start: 0, len: 5 },
        Span { start: 5, len: 1 },
        Span { start: 6, len: 9 },
    ];
    let total = 15;
    let qkv = random(&mut rng, total * 3 * hidden, 1.5);
    let upstream = random(&mut rng, total * hidden, 1.0);

    // The reference: per sequence and head, softmax(Q Kᵀ/√d) V in plain candle ops.
    let var = Var::from_tensor(&tensor(&qkv, 3 * hidden)).unwrap();
    let x = var.as_tensor();
    let mut sequences = Vec::new();
    for span in &spans {
        let rows = x.narrow(0, span.start, span.len).unwrap();
        let mut per_head = Vec::new();
        for head in 0..heads {
            let part = |p: usize| rows.narrow(1, p * hidden + head * d, d).unwrap();
            let (q, k, v) = (part(0), part(1), part(2));
            let scores = (q.matmul(&k.t().unwrap()).unwrap() / (d as f64).sqrt()).unwrap();
            let p = candle_nn::ops::softmax(&scores, D::Minus1).unwrap();
            per_head.push(p.matmul(&v).unwrap());
        }
        sequences.push(Tensor::cat(&per_head, 1).unwrap());
    }
    let context = Tensor::cat(&sequences, 0).unwrap();
    let loss = (&context * tensor(&upstream, hidden))
        .unwrap()
        .sum_all()
        .unwrap();
    let want = flat(loss.backward().unwrap().get(x).unwrap());

    let mut ours = vec![0f32; total * hidden];
    attention(&qkv, hidden, heads, &spans, &mut ours);
    assert_close(&ours, &flat(&context), "attention forward");
    let mut got = vec![0f32; total * 3 * hidden];
    attention_backward(&qkv, &upstream, hidden, heads, &spans, &mut got);
    assert_close(&got, &want, "attention backward");
}

#[test]
fn low_rank_backward_equals_autograd() {
    use copl_core::model::packed::{
        attention::Span,
        backward::{LowRankGrads, LowRankTerms, SpanRouting, low_rank_backward},
        gemm::View,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (hidden, out, rank, experts, scale) = (10, 6, 2, 3, 1.5f32);
    let blocks = (experts + 1) * rank;
    let spans = [
        Span { start: 0, len: 4 },
        Span { start: 4, len: 3 },
        Span { start: 7, len: 5 },
    ];
    let routings = [
        SpanRouting {
            expert: 2,
            weight: 0.7,
        },
        SpanRouting {
            expert: 0,
            weight: 0.4,
        },
        SpanRouting {
            expert: 2,
            weight: 0.9,
        },
    ];
    let tokens = 12;
    let x = random(&mut rng, tokens * hidden, 1.0);
    let a = random(&mut rng, blocks * hidden, 1.0);
    let b = random(&mut rng, out * blocks, 1.0);
    let upstream = random(&mut rng, tokens * out, 1.0);

    // The reference: ((x Aᵀ) ⊙ m) Bᵀ with m built from the weights, in candle ops.
    let var = |v: &[f32], w: usize| Var::from_tensor(&tensor(v, w)).unwrap();
    let (xv, av, bv) = (var(&x, hidden), var(&a, hidden), var(&b, blocks));
    let wv = Var::from_tensor(
        &Tensor::new(routings.map(|r| r.weight).as_slice(), &Device::Cpu).unwrap(),
    )
    .unwrap();
    let (mut shared, mut routed, mut owner) = (Vec::new(), Vec::new(), Vec::new());
    for (s, (span, routing)) in spans.iter().zip(&routings).enumerate() {
        for _ in 0..span.len {
            owner.push(s as u32);
            for c in 0..blocks {
                shared.push(if c < rank { scale } else { 0.0 });
                let on = (c >= rank && (c - rank) / rank == routing.expert) as u8;
                routed.push(f32::from(on) * scale);
            }
        }
    }
    let per_token = wv
        .as_tensor()
        .index_select(&Tensor::new(owner.as_slice(), &Device::Cpu).unwrap(), 0)
        .unwrap()
        .unsqueeze(1)
        .unwrap();
    let mask =
        (tensor(&shared, blocks) + tensor(&routed, blocks).broadcast_mul(&per_token)).unwrap();
    let low = xv.as_tensor().matmul(&av.as_tensor().t().unwrap()).unwrap();
    let y = (low * mask)
        .unwrap()
        .matmul(&bv.as_tensor().t().unwrap())
        .unwrap();
    let loss = (y * tensor(&upstream, out)).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let want = |v: &Var| flat(grads.get(v.as_tensor()).unwrap());

    // Ours, with ∂out a column block of a wider buffer (as in the fused Q/K/V gradient).
    let width = 3 * out;
    let mut d_qkv = vec![0f32; tokens * width];
    for (row, up) in d_qkv
        .chunks_exact_mut(width)
        .zip(upstream.chunks_exact(out))
    {
        row[out..2 * out].copy_from_slice(up);
    }
    let (mut da, mut db, mut dw, mut dx) = (
        vec![0f32; a.len()],
        vec![0f32; b.len()],
        vec![0f32; spans.len()],
        vec![0f32; x.len()],
    );
    low_rank_backward(
        &LowRankTerms {
            a: &a,
            b: &b,
            rank,
            experts,
            scale,
        },
        &x,
        hidden,
        &spans,
        &routings,
        &d_qkv,
        View::dense(tokens, width).columns(out, out),
        LowRankGrads {
            a: &mut da,
            b: &mut db,
            weights: &mut dw,
            x: Some(&mut dx),
        },
        2,
    );
    assert_close(&da, &want(&av), "∂A");
    assert_close(&db, &want(&bv), "∂B");
    assert_close(&dw, &want(&wv), "∂w");
    assert_close(&dx, &want(&xv), "∂x");
}
