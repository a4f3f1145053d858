#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! MoLE projections (eq. 6–10): top-1 routing with the paper's weight, eq. 10 term by
//! term, mixed-user batch invariance, gradients by finite differences.

use std::collections::HashMap;

use candle_core::{DType, Device, IndexOp, Tensor, Var};
use candle_nn::{Linear, VarBuilder, VarMap};
use copl_core::model::{MoleConfig, MoleLinear, population_routing, route};

const IN: usize = 6;
const OUT: usize = 5;

fn config() -> MoleConfig {
    MoleConfig {
        rank: 2,
        alpha: 6.0,
        experts: 3,
        gate_hidden: 4,
        user_dim: 3,
        ..MoleConfig::default()
    }
}

/// A projection whose every tensor (B included) is random, in f64.
fn random_projection(seed: u64) -> (MoleLinear, HashMap<String, Tensor>) {
    let dev = Device::Cpu;
    let c = config();
    let blocks = (c.experts + 1) * c.rank;
    let mut k = seed as f64;
    let mut rand = |shape: &[usize]| {
        let n: usize = shape.iter().product();
        let values: Vec<f64> = (0..n)
            .map(|_| {
                k += 1.0;
                (k * 12.9898).sin() * 0.8
            })
            .collect();
        Tensor::from_vec(values, shape, &dev).unwrap()
    };
    let tensors: HashMap<String, Tensor> = [
        ("lora_a", vec![blocks, IN]),
        ("lora_b", vec![OUT, blocks]),
        ("gate.hidden.weight", vec![c.gate_hidden, c.user_dim]),
        ("gate.hidden.bias", vec![c.gate_hidden]),
        ("gate.out.weight", vec![c.experts, c.gate_hidden]),
        ("gate.out.bias", vec![c.experts]),
        ("base.weight", vec![OUT, IN]),
        ("base.bias", vec![OUT]),
    ]
    .into_iter()
    .map(|(name, shape)| (name.to_string(), rand(&shape)))
    .collect();
    let base = Linear::new(
        tensors["base.weight"].clone(),
        Some(tensors["base.bias"].clone()),
    );
    let vb = VarBuilder::from_tensors(tensors.clone(), DType::F64, &dev);
    (MoleLinear::new(base, &c, vb).unwrap(), tensors)
}

fn users(n: usize) -> Tensor {
    let values: Vec<f64> = (0..n * 3).map(|i| ((i as f64) * 0.7).cos()).collect();
    Tensor::from_vec(values, (n, 3), &Device::Cpu).unwrap()
}

fn inputs(n: usize, seq: usize) -> Tensor {
    let values: Vec<f64> = (0..n * seq * IN)
        .map(|i| ((i as f64) * 0.31).sin())
        .collect();
    Tensor::from_vec(values, (n, seq, IN), &Device::Cpu).unwrap()
}

#[test]
fn routing_is_top_1_with_the_softmax_probability_as_weight() {
    let logits = Tensor::new(&[[0.1f64, 2.0, -1.0], [3.0, 0.0, 2.9]], &Device::Cpu).unwrap();
    let r = route(&logits, 1.0, None).unwrap();
    assert_eq!(r.experts, vec![1, 0]);
    let w: Vec<Vec<f64>> = r.weights.to_vec2().unwrap();
    let p = |row: [f64; 3], e: usize| row[e].exp() / row.iter().map(|x| x.exp()).sum::<f64>();
    assert!((w[0][1] - p([0.1, 2.0, -1.0], 1)).abs() < 1e-12);
    assert!((w[1][0] - p([3.0, 0.0, 2.9], 0)).abs() < 1e-12);
    assert_eq!((w[0][0], w[0][2], w[1][1], w[1][2]), (0.0, 0.0, 0.0, 0.0));
    // Temperature τ sharpens or flattens the weight, not the choice.
    let sharp = route(&logits, 0.1, None).unwrap();
    assert_eq!(sharp.experts, vec![1, 0]);
    let ws: Vec<Vec<f64>> = sharp.weights.to_vec2().unwrap();
    assert!(ws[0][1] > w[0][1] && ws[0][1] > 0.99);
}

#[test]
fn the_forward_is_eq_10_term_by_term() {
    let (proj, t) = random_projection(1);
    let c = config();
    let u = users(2);
    let routing = route(&proj.gate().logits(&u).unwrap(), 1.0, None).unwrap();
    let mask = proj.mask(&routing).unwrap();
    let x = inputs(2, 3);
    let y = proj.forward(&x, &mask).unwrap();
    let s = c.alpha / c.rank as f64;
    for row in 0..2 {
        let xr = x.i(row).unwrap(); // [seq, in]
        let e = routing.experts[row] as usize;
        let w: f64 = routing.weights.i((row, e)).unwrap().to_scalar().unwrap();
        let block = |k: usize| {
            let a = t["lora_a"].narrow(0, k * c.rank, c.rank).unwrap();
            let b = t["lora_b"].narrow(1, k * c.rank, c.rank).unwrap();
            xr.matmul(&a.t().unwrap())
                .unwrap()
                .matmul(&b.t().unwrap())
                .unwrap()
        };
        let expected = (xr
            .matmul(&t["base.weight"].t().unwrap())
            .unwrap()
            .broadcast_add(&t["base.bias"])
            .unwrap()
            + (block(0) * s).unwrap()
            + (block(1 + e) * (s * w)).unwrap())
        .unwrap();
        let diff: f64 = (y.i(row).unwrap() - expected)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!(diff < 1e-12, "row {row}: {diff}");
    }
}

#[test]
fn a_mixed_user_batch_gives_each_row_its_own_score() {
    // Users spread in all directions; the first projection seed that routes them to
    // more than one expert (deterministic).
    let u = (users(4) * 4.0).unwrap();
    let (proj, logits, batch) = (2..50)
        .map(|seed| {
            let (proj, _) = random_projection(seed);
            let logits = proj.gate().logits(&u).unwrap();
            let batch = route(&logits, 1.0, None).unwrap();
            (proj, logits, batch)
        })
        .find(|(_, _, b)| b.experts.iter().any(|&e| e != b.experts[0]))
        .unwrap();
    assert!(
        batch
            .experts
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len()
            > 1,
        "the test needs users routed to different experts: {:?}",
        batch.experts
    );
    let x = inputs(4, 3);
    let together = proj.forward(&x, &proj.mask(&batch).unwrap()).unwrap();
    for row in 0..4 {
        let alone_routing = route(&logits.narrow(0, row, 1).unwrap(), 1.0, None).unwrap();
        let alone = proj
            .forward(
                &x.narrow(0, row, 1).unwrap(),
                &proj.mask(&alone_routing).unwrap(),
            )
            .unwrap();
        let diff: f64 = (together.narrow(0, row, 1).unwrap() - alone)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!(diff < 1e-12, "row {row}: {diff}");
    }
}

#[test]
fn with_b_zero_the_projection_is_its_base_and_population_rows_use_the_shared_expert_only() {
    let dev = Device::Cpu;
    let c = config();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F64, &dev);
    let (_, t) = random_projection(3);
    let base = Linear::new(t["base.weight"].clone(), Some(t["base.bias"].clone()));
    let proj = MoleLinear::new(base.clone(), &c, vb).unwrap();
    let x = inputs(2, 3);
    let routing = route(&proj.gate().logits(&users(2)).unwrap(), 1.0, None).unwrap();
    let y = proj.forward(&x, &proj.mask(&routing).unwrap()).unwrap();
    let base_y = candle_core::Module::forward(&base, &x).unwrap();
    let diff: f64 = (y - base_y)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert_eq!(diff, 0.0);

    let (proj, _) = random_projection(4);
    let population = population_routing(2, c.experts, &dev).unwrap();
    let mask: Vec<Vec<f64>> = proj
        .mask(&population)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec2()
        .unwrap();
    for row in mask {
        assert_eq!(&row[..c.rank], &[1.0, 1.0]);
        assert!(row[c.rank..].iter().all(|&m| m == 0.0));
    }
}

#[test]
fn gradients_of_lora_factors_and_gates_match_finite_differences() {
    let dev = Device::Cpu;
    let c = config();
    let (_, t) = random_projection(5);
    let vars: HashMap<String, Var> = t
        .iter()
        .map(|(k, v)| (k.clone(), Var::from_tensor(v).unwrap()))
        .collect();
    let u = users(3);
    let x = inputs(3, 2);
    let weights = Tensor::from_vec(
        (0..3 * 2 * OUT)
            .map(|i| ((i as f64) * 0.17).cos())
            .collect::<Vec<_>>(),
        (3, 2, OUT),
        &dev,
    )
    .unwrap();
    let loss = |vars: &HashMap<String, Var>| -> Tensor {
        let tensors: HashMap<String, Tensor> = vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect();
        let base = Linear::new(
            tensors["base.weight"].clone(),
            Some(tensors["base.bias"].clone()),
        );
        let vb = VarBuilder::from_tensors(tensors, DType::F64, &dev);
        let proj = MoleLinear::new(base, &c, vb).unwrap();
        let routing = route(&proj.gate().logits(&u).unwrap(), c.temperature, None).unwrap();
        let y = proj.forward(&x, &proj.mask(&routing).unwrap()).unwrap();
        (y * &weights).unwrap().sum_all().unwrap()
    };
    let grads = loss(&vars).backward().unwrap();
    let eps = 1e-6;
    for name in [
        "lora_a",
        "lora_b",
        "gate.out.weight",
        "gate.hidden.weight",
        "gate.out.bias",
    ] {
        let var = &vars[name];
        let analytic = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap();
        let analytic: Vec<f64> = analytic.to_vec1().unwrap();
        let original: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let mut worst = 0f64;
        for i in (0..original.len()).step_by(3) {
            let at = |delta: f64| {
                let mut v = original.clone();
                v[i] += delta;
                var.set(&Tensor::from_vec(v, var.as_tensor().shape(), &dev).unwrap())
                    .unwrap();
                let l: f64 = loss(&vars).to_scalar().unwrap();
                l
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            worst = worst.max((numeric - analytic[i]).abs() / (1.0 + numeric.abs()));
        }
        var.set(&Tensor::from_vec(original, var.as_tensor().shape(), &dev).unwrap())
            .unwrap();
        assert!(worst < 1e-6, "{name}: relative error {worst}");
    }
    // The gate's gradient is not zero: the weight w_u carries it (eq. 10).
    let gate: f64 = grads
        .get(vars["gate.out.weight"].as_tensor())
        .unwrap()
        .abs()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!(gate > 1e-6);
}
