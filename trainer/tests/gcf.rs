//! GCF: gradients through the sparse products and layers match finite differences;
//! a tiny synthetic set trains well above chance; a saved checkpoint reproduces its
//! reported accuracy exactly.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use candle_core::{DType, Device, Tensor};
use copl_core::graph::PreferenceGraph;
use copl_synth::{Preset, SynthConfig, generate};
use copl_trainer::gcf::{GcfArch, GcfModel, GraphOps, TrainConfig, eval_gcf, run_gcf, scores};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn tiny_graph() -> PreferenceGraph {
    let pairs = [
        (0, 0, 1),
        (0, 2, 3),
        (1, 1, 0),
        (1, 3, 2),
        (2, 0, 3),
        (2, 2, 1),
        (2, 0, 1),
    ];
    PreferenceGraph::from_pairs(3, 4, &pairs)
}

/// A scalar loss of the model's output: Σ_u s(u, r_u) for fixed pairs.
fn loss(model: &GcfModel, ops: &GraphOps) -> Tensor {
    let (users, responses) = model.propagate(ops, None).unwrap();
    let r = responses.narrow(0, 1, 3).unwrap();
    let s = scores(&users, &r).unwrap();
    // A non-linear function of the scores so second-order mistakes would show.
    (s.clone() * s.tanh().unwrap()).unwrap().sum_all().unwrap()
}

fn check_gradients(arch: GcfArch) {
    let graph = tiny_graph();
    let ops = GraphOps::new(&graph);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let model = GcfModel::new(arch.clone(), 3, 4, &mut rng, DType::F64, &Device::Cpu).unwrap();
    let grads = loss(&model, &ops).backward().unwrap();
    let eps = 1e-6;
    for (name, var) in model.named_vars() {
        let grad = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} received no gradient ({arch:?})"));
        let analytic: Vec<f64> = grad.flatten_all().unwrap().to_vec1().unwrap();
        let base: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        // A few coordinates of each parameter.
        for i in [0, base.len() / 2, base.len() - 1] {
            let at = |delta: f64| {
                let mut v = base.clone();
                v[i] += delta;
                var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
                    .unwrap();
                let l: f64 = loss(&model, &ops).to_scalar().unwrap();
                l
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            at(0.0);
            let err = (numeric - analytic[i]).abs() / (1e-6 + numeric.abs().max(analytic[i].abs()));
            assert!(
                err < 1e-4,
                "{name}[{i}] ({arch:?}): analytic {} numeric {numeric}",
                analytic[i]
            );
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    let base = GcfArch {
        dim: 5,
        layers: 2,
        ..GcfArch::default()
    };
    check_gradients(base.clone());
    check_gradients(GcfArch {
        negative_edges: false,
        ..base.clone()
    });
    check_gradients(GcfArch {
        transform: false,
        ..base.clone()
    });
    check_gradients(GcfArch { layers: 0, ..base });
}

#[test]
fn tiny_training_beats_chance_and_checkpoint_reproduces_accuracy() {
    let data = tempfile::tempdir().unwrap();
    let ckpt = tempfile::tempdir().unwrap();
    let synthetic = generate(&SynthConfig {
        users: 300,
        unseen_users: 4,
        survey_pairs: Some(300),
        seed: 5,
        ..SynthConfig::new(Preset::Tldr)
    })
    .unwrap();
    synthetic.dataset.save(data.path()).unwrap();
    let config = TrainConfig {
        arch: GcfArch {
            dim: 16,
            layers: 2,
            ..GcfArch::default()
        },
        epochs: 30,
        batch_size: 256,
        lr: 1e-2,
        ..TrainConfig::default()
    };
    let summary = run_gcf(data.path(), ckpt.path(), &config, |_, _| {}).unwrap();
    assert!(
        summary.val_accuracy > 0.75,
        "val accuracy {}",
        summary.val_accuracy
    );
    assert!(
        summary.test_accuracy > 0.65,
        "test accuracy {}",
        summary.test_accuracy
    );
    assert_eq!(summary.history.len(), 30);

    let eval = eval_gcf(data.path(), ckpt.path()).unwrap();
    assert_eq!(
        eval.overall.accuracy, summary.test_accuracy,
        "reloaded embeddings give the same accuracy"
    );
    assert_eq!(eval.overall.pairs, 300 * 10);
    assert_eq!(eval.by_group.len(), 2);
    assert_eq!(
        eval.ground_truth_bound, None,
        "no synth.json was written here"
    );
    // Two groups the embeddings order pairs by must be told apart by them, and the
    // noiseless answers identify every tldr user's group.
    let id = eval.identification.expect("users.jsonl has groups");
    assert_eq!(id.groups, 2);
    assert_eq!(
        id.seen.users, 60,
        "the probe scores the held-out 20 % of 300"
    );
    assert!(id.seen.probe_accuracy.unwrap() > 0.8, "{id:?}");
    assert!(id.seen.kmeans_nmi.unwrap() > 0.2, "{id:?}");
    assert_eq!(id.unseen.as_ref().unwrap().users, 4);
    assert_eq!(id.bayes_bound, Some(1.0));
    let manifest = copl_core::checkpoint::Manifest::load(ckpt.path()).unwrap();
    let gcf = manifest.gcf.unwrap();
    assert_eq!((gcf.dim, gcf.users, gcf.model.as_str()), (16, 300, "gcf"));
    assert_eq!(gcf.metrics["test_accuracy"], summary.test_accuracy);
    let graph = copl_core::checkpoint::load_graph(ckpt.path()).unwrap();
    let (rebuilt, _) =
        copl_core::graph::graph_of(&copl_core::data::Dataset::load(data.path()).unwrap());
    assert_eq!(graph, rebuilt, "graph.safetensors round-trips");
}

/// `keep_last` keeps the last epoch's embeddings whatever validation says; by default
/// the best epoch's are kept (and both say which epoch they are).
#[test]
fn keep_last_keeps_the_last_epoch_and_the_default_the_best() {
    let synthetic = generate(&SynthConfig {
        users: 200,
        unseen_users: 0,
        survey_pairs: Some(200),
        label_noise: 0.3,
        seed: 3,
        ..SynthConfig::new(Preset::Tldr)
    })
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    synthetic.dataset.save(data.path()).unwrap();
    let config = TrainConfig {
        arch: GcfArch {
            dim: 8,
            layers: 1,
            ..GcfArch::default()
        },
        epochs: 12,
        batch_size: 256,
        lr: 3e-2,
        ..TrainConfig::default()
    };
    let best = run_gcf(
        data.path(),
        tempfile::tempdir().unwrap().path(),
        &config,
        |_, _| {},
    )
    .unwrap();
    let top = best
        .history
        .iter()
        .map(|e| e.val_accuracy)
        .fold(f64::MIN, f64::max);
    assert_eq!(best.val_accuracy, top, "the default keeps the best epoch");
    let last_config = TrainConfig {
        keep_last: true,
        ..config
    };
    let last = run_gcf(
        data.path(),
        tempfile::tempdir().unwrap().path(),
        &last_config,
        |_, _| {},
    )
    .unwrap();
    assert_eq!(last.best_epoch, 12);
    assert_eq!(last.val_accuracy, last.history[11].val_accuracy);
}

#[test]
fn masking_a_users_pairs_leaves_only_the_other_users_messages() {
    // Without transforms, one layer gives e_u' = e_u + Z⁺ + Z⁺⊙e_u − Z⁻ − Z⁻⊙e_u: a
    // user whose every edge is masked keeps their initial embedding, and the others'
    // embeddings are those of the unmasked propagation.
    let graph = tiny_graph();
    let ops = GraphOps::new(&graph);
    let arch = GcfArch {
        dim: 3,
        layers: 1,
        transform: false,
        ..GcfArch::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let model = GcfModel::new(arch, 3, 4, &mut rng, DType::F64, &Device::Cpu).unwrap();
    let initial: Vec<Vec<f64>> = model.named_vars()[0].1.as_tensor().to_vec2().unwrap();
    let (full, _) = model.propagate(&ops, None).unwrap();
    let full: Vec<Vec<f64>> = full.to_vec2().unwrap();
    let mask = ops.mask_of(&[(0, 0, 1), (0, 2, 3)]);
    let (masked, _) = model.propagate_masked(&ops, None, &mask).unwrap();
    let masked: Vec<Vec<f64>> = masked.to_vec2().unwrap();
    assert_eq!(masked[0], initial[0], "user 0 lost every edge");
    assert_ne!(full[0], initial[0]);
    assert_eq!(masked[1..], full[1..], "users 1 and 2 read responses only");
}

/// A random graph: `users` users with `per` pairs each among `responses` responses.
fn random_pairs(users: u32, responses: u32, per: usize, seed: u64) -> Vec<(u32, u32, u32)> {
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pairs = Vec::new();
    for u in 0..users {
        for _ in 0..per {
            let a = rng.random_range(0..responses);
            let b = (a + rng.random_range(1..responses)) % responses;
            pairs.push((u, a, b));
        }
    }
    pairs
}

#[test]
fn fused_step_equals_autograd_loss_and_gradients() {
    use copl_trainer::gcf::fused::LayerInputs;
    for layer_inputs in [LayerInputs::All, LayerInputs::EveryOther] {
        for (negative_edges, dropout, mask) in
            [(true, 0.0, false), (false, 0.0, false), (true, 0.3, true)]
        {
            fused_equals_autograd(30, 40, 5, negative_edges, dropout, mask, layer_inputs);
        }
    }
}

/// More responses than one chunk of the fused step's rows (16 384): the chunks' seams.
#[test]
fn fused_step_equals_autograd_across_row_chunks() {
    use copl_trainer::gcf::fused::LayerInputs;
    fused_equals_autograd(300, 17_000, 20, true, 0.3, true, LayerInputs::EveryOther);
}

/// The fused step's loss and every gradient against autograd's, on `users` × `responses`
/// random pairs (`answers` a user), L = 3, d = 8.
fn fused_equals_autograd(
    users: usize,
    responses: usize,
    answers: usize,
    negative_edges: bool,
    dropout: f32,
    mask: bool,
    layer_inputs: copl_trainer::gcf::fused::LayerInputs,
) {
    use copl_trainer::{gcf::fused, optim::neg_log_sigmoid};
    let pairs = random_pairs(users as u32, responses as u32, answers, 3);
    let graph = PreferenceGraph::from_pairs(users, responses, &pairs);
    let ops = GraphOps::new(&graph);
    let batch: Vec<(u32, u32, u32)> = pairs.iter().step_by(3).copied().collect();
    let l2 = 1e-2;
    {
        let arch = GcfArch {
            dim: 8,
            layers: 3,
            negative_edges,
            ..GcfArch::default()
        };
        let model = GcfModel::new(
            arch,
            users,
            responses,
            &mut ChaCha8Rng::seed_from_u64(1),
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        let edge_mask = if mask {
            ops.mask_of(&batch)
        } else {
            Default::default()
        };
        // The autograd step, as `train` computes it.
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let noise: Option<(f32, &mut dyn rand::RngCore)> = Some((dropout, &mut rng));
        let (users, responses) = model.propagate_masked(&ops, noise, &edge_mask).unwrap();
        let column = |k: usize| {
            Tensor::new(
                batch
                    .iter()
                    .map(|p| [p.0, p.1, p.2][k])
                    .collect::<Vec<u32>>(),
                &Device::Cpu,
            )
            .unwrap()
        };
        let eu = users.index_select(&column(0), 0).unwrap();
        let ea = responses.index_select(&column(1), 0).unwrap();
        let eb = responses.index_select(&column(2), 0).unwrap();
        let margin = (scores(&eu, &ea).unwrap() - scores(&eu, &eb).unwrap()).unwrap();
        let btl = neg_log_sigmoid(&margin).unwrap().mean_all().unwrap();
        let norms = ((eu.sqr().unwrap().sum_all().unwrap() + ea.sqr().unwrap().sum_all().unwrap())
            .unwrap()
            + eb.sqr().unwrap().sum_all().unwrap())
        .unwrap();
        let loss = (btl + (norms * (l2 / batch.len() as f64)).unwrap()).unwrap();
        let grads = loss.backward().unwrap();

        let params = fused::Params::from_model(&model).unwrap().unwrap();
        let mut grad = params.zeros_like();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let noise = fused::StepNoise {
            dropout,
            rng: &mut rng,
            mask: &edge_mask,
        };
        let fused_loss = fused::loss_and_gradients(
            &params,
            &ops,
            &batch,
            l2,
            Some(noise),
            layer_inputs,
            &mut grad,
        );
        let expected = f64::from(loss.to_scalar::<f32>().unwrap());
        assert!(
            (fused_loss - expected).abs() < 1e-5 * (1.0 + expected.abs()),
            "loss {fused_loss} against autograd {expected}"
        );
        for ((name, var), got) in model.named_vars().into_iter().zip(grad.buffers()) {
            let want: Vec<f32> = grads
                .get(var.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let scale = want.iter().fold(0f32, |m, x| m.max(x.abs()));
            assert!(scale > 0.0, "{name}: no gradient to compare");
            let worst = want
                .iter()
                .zip(got)
                .fold(0f32, |m, (w, g)| m.max((w - g).abs()));
            assert!(
                worst <= 1e-4 * scale,
                "{name} (negatives {negative_edges}, dropout {dropout}, {layer_inputs:?}): gradient off by {worst} of {scale}"
            );
        }
    }
}

/// The two products of a polarity share the graph's matrices, and each is exactly what a
/// transpose computed afresh would be (entries, values, and the entry correspondence).
#[test]
fn both_directions_equal_transposes_computed_afresh() {
    use copl_trainer::gcf::spmm::SparsePair;
    let pairs = random_pairs(40, 60, 6, 5);
    let graph = PreferenceGraph::from_pairs(40, 60, &pairs);
    for adjacency in [&graph.positive, &graph.negative] {
        let (users, responses) = SparsePair::both_directions(adjacency);
        for (shared, matrix) in [
            (users, &adjacency.user_to_response),
            (responses, &adjacency.response_to_user),
        ] {
            let fresh = SparsePair::new(matrix.clone());
            assert_eq!(*shared.matrix, *fresh.matrix);
            assert_eq!(*shared.transpose, *fresh.transpose);
            assert_eq!(shared.transpose_source, fresh.transpose_source);
        }
    }
}

/// The gather–scatter product (what runs off the CPU, `gcf --device cuda:N`), run on
/// the CPU, equals the CSR product in value and in its gradient, plain and with an
/// edge-dropout mask.
#[test]
fn the_gather_scatter_product_equals_the_csr_product_and_its_gradient() {
    use candle_core::Var;
    use copl_trainer::gcf::spmm::SparsePair;
    let pairs = random_pairs(30, 50, 6, 9);
    let graph = PreferenceGraph::from_pairs(30, 50, &pairs);
    let (to_users, _) = SparsePair::both_directions(&graph.positive);
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (50, 7), &Device::Cpu).unwrap()).unwrap();
    let weights = Tensor::randn(0f32, 1.0, (30, 7), &Device::Cpu).unwrap();
    let value_and_grad = |y: Tensor| {
        let grads = (y.clone() * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        (y, grads.get(x.as_tensor()).unwrap().clone())
    };
    let close = |a: &Tensor, b: &Tensor| {
        let d: f32 = (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!(d < 1e-5, "max |diff| {d}");
    };
    let (csr, csr_grad) = value_and_grad(to_users.matmul(&x).unwrap());
    let (gather, gather_grad) = value_and_grad(to_users.matmul_gather(&x, None).unwrap());
    close(&csr, &gather);
    close(&csr_grad, &gather_grad);
    let masked = to_users
        .matmul_dropout(&x, 0.3, &mut ChaCha8Rng::seed_from_u64(4))
        .unwrap();
    let (values, _) = to_users
        .masked_values(0.3, &[], &mut ChaCha8Rng::seed_from_u64(4))
        .unwrap();
    let (masked, masked_grad) = value_and_grad(masked);
    let (gathered, gathered_grad) =
        value_and_grad(to_users.matmul_gather(&x, Some(values)).unwrap());
    close(&masked, &gathered);
    close(&masked_grad, &gathered_grad);
    // The mask dropped something: the masked product is not the plain one.
    assert!(
        (&masked - &csr)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            > 1e-3
    );
}

/// Edge dropout drawn on the device (what a GPU step runs), here on the CPU: entries kept
/// with probability 1 − p and scaled by 1/(1 − p), so on a ones vector the product's
/// total is the plain one's within sampling noise (≈ 1 % at these 4 000-odd entries;
/// a wrong scale or share is off by 30 %+), and each product draws a fresh mask.
#[test]
fn device_drawn_edge_dropout_keeps_one_minus_p_scaled_to_the_same_total() {
    use copl_trainer::gcf::spmm::SparsePair;
    let pairs = random_pairs(200, 300, 20, 3);
    let graph = PreferenceGraph::from_pairs(200, 300, &pairs);
    let (to_users, _) = SparsePair::both_directions(&graph.positive);
    let ones = Tensor::ones((300, 1), DType::F32, &Device::Cpu).unwrap();
    let total = |t: Tensor| t.sum_all().unwrap().to_scalar::<f32>().unwrap();
    let plain = total(to_users.matmul(&ones).unwrap());
    let first = to_users.matmul_dropout_on_device(&ones, 0.3).unwrap();
    let second = to_users.matmul_dropout_on_device(&ones, 0.3).unwrap();
    let relative = (total(first.clone()) - plain).abs() / plain;
    assert!(relative < 0.05, "dropout total off by {relative}");
    let differ: f32 = total((first - second).unwrap().abs().unwrap());
    assert!(differ > 0.0);
}

/// `fixed_user_init` leaves every user's layer-0 embedding at its initial draw, on both
/// engines, while the responses' and the layers' train on; without it the users' move.
/// Matrix factorisation (no layers: users would never train) is refused.
#[test]
fn a_fixed_user_init_stays_at_its_draw_and_the_rest_trains() {
    use copl_trainer::gcf::{
        StepEngine,
        model::{INITIAL_RESPONSES, INITIAL_USERS},
        train,
    };
    let graph = PreferenceGraph::from_pairs(20, 12, &random_pairs(20, 12, 6, 5));
    let pairs = random_pairs(20, 12, 6, 5);
    let initial = |config: &TrainConfig, epochs: usize| {
        let config = TrainConfig {
            epochs,
            ..config.clone()
        };
        let trained = train(&graph, &pairs, &pairs, &config, &Device::Cpu, |_, _| {}).unwrap();
        let vars = trained.model.snapshot().unwrap();
        let values =
            |name: &str| -> Vec<f32> { vars[name].flatten_all().unwrap().to_vec1().unwrap() };
        (values(INITIAL_USERS), values(INITIAL_RESPONSES))
    };
    for engine in [StepEngine::Fused, StepEngine::Autograd] {
        let config = TrainConfig {
            arch: GcfArch {
                dim: 8,
                layers: 2,
                ..GcfArch::default()
            },
            batch_size: 16,
            lr: 1e-2,
            fixed_user_init: true,
            keep_last: true,
            engine,
            ..TrainConfig::default()
        };
        let (users_1, responses_1) = initial(&config, 1);
        let (users_4, responses_4) = initial(&config, 4);
        assert_eq!(users_1, users_4, "{engine:?}: the users' layer 0 moved");
        assert_ne!(
            responses_1, responses_4,
            "{engine:?}: the responses' did not"
        );
        let free = TrainConfig {
            fixed_user_init: false,
            ..config
        };
        let (free_1, _) = initial(&free, 1);
        let (free_4, _) = initial(&free, 4);
        assert_eq!(free_1.len(), users_1.len());
        assert_ne!(free_1, free_4, "{engine:?}: trained users did not move");
    }
    let mf = TrainConfig {
        arch: GcfArch {
            dim: 8,
            layers: 0,
            ..GcfArch::default()
        },
        fixed_user_init: true,
        ..TrainConfig::default()
    };
    let err = train(&graph, &pairs, &pairs, &mf, &Device::Cpu, |_, _| {})
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("needs message-passing layers"), "{err}");
}
