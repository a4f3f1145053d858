#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! The served (packed) forward against the reference (candle's op-by-op, padded)
//! forward: equal rewards within 1e-4 for rows of mixed lengths and users, every pooling,
//! MoLE in all or the top layers, the user-token variant, a row's reward independent of
//! its batch, bad rows named; and the kernels it is built from against plain formulas.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use copl_core::model::{
    MoleConfig, UserRouting,
    head::Pooling,
    packed::{
        gemm::{View, matmul},
        kernels,
    },
    reward::{RewardModel, RewardModelConfig, ServedRow, Template, Tokens, Variant},
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn minilm() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../backbones/minilm")
}

/// A small random BERT (4 heads, 3 layers) with MiniLM's tokenizer, in `dir`.
fn small_bert(dir: &Path) {
    use candle_transformers::models::bert::{BertModel, Config};
    assert!(
        minilm().join("VERIFIED").exists(),
        "run scripts/fetch-backbone.sh minilm (make test does)"
    );
    let config = serde_json::json!({
        "vocab_size": 2000, "hidden_size": 32, "num_hidden_layers": 3,
        "num_attention_heads": 4, "intermediate_size": 64, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0, "max_position_embeddings": 128, "type_vocab_size": 2,
        "initializer_range": 0.5, "layer_norm_eps": 1e-12, "pad_token_id": 0,
        "model_type": "bert"
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::copy(minilm().join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    let varmap = VarMap::new();
    let parsed: Config = serde_json::from_value(config).unwrap();
    BertModel::load(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &parsed,
    )
    .unwrap();
    varmap.save(dir.join("model.safetensors")).unwrap();
}

fn config(variant: Variant, pooling: Pooling, adapt_layers: Option<usize>) -> RewardModelConfig {
    RewardModelConfig {
        variant,
        family: copl_core::model::reward::BackboneFamily::Bert,
        mole: MoleConfig {
            user_dim: 8,
            adapt_layers,
            ..MoleConfig::default()
        },
        pooling,
        template: Template::Pair,
        max_tokens: 128,
    }
}

/// A fresh model whose LoRA B factors are random too (fresh ones are 0, which would
/// leave the low-rank path untested).
fn model(dir: &Path, config: RewardModelConfig, seed: u64) -> RewardModel {
    let vars = VarMap::new();
    let model = RewardModel::fresh(dir, config, &vars, &Device::Cpu).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (name, var) in vars.data().lock().unwrap().iter() {
        if name.contains("lora_b") || name.contains("user_token") {
            let values: Vec<f32> = (0..var.elem_count())
                .map(|_| rng.random_range(-0.2..0.2))
                .collect();
            let t = Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap();
            var.set(&t).unwrap();
        }
    }
    model
}

fn rows(lengths: &[usize], vocab: u32, seed: u64) -> Vec<Tokens> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    lengths
        .iter()
        .map(|&n| Tokens {
            ids: (0..n).map(|_| rng.random_range(1..vocab)).collect(),
            type_ids: (0..n).map(|i| u32::from(i >= n / 2)).collect(),
        })
        .collect()
}

/// Each row's user: routings from the gates of random users, and the population.
fn users(model: &RewardModel, n: usize) -> (Vec<UserRouting>, Vec<Vec<f32>>) {
    let embeddings = Tensor::randn(0f32, 1.0, (n, 8), &Device::Cpu).unwrap();
    let mut routings = model.user_routings(&embeddings).unwrap();
    let projections = model.backbone.adapters().moles.len();
    routings[n - 1] = UserRouting::population(projections);
    (routings, embeddings.to_vec2().unwrap())
}

fn served<'a>(
    tokens: &'a [Tokens],
    routings: &'a [UserRouting],
    embeddings: &'a [Vec<f32>],
) -> Vec<ServedRow<'a>> {
    tokens
        .iter()
        .zip(routings)
        .zip(embeddings)
        .map(|((t, r), e)| ServedRow {
            tokens: t,
            routing: r,
            embedding: e,
        })
        .collect()
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn packed_rewards_equal_the_reference_for_every_setting() {
    let dir = tempfile::tempdir().unwrap();
    small_bert(dir.path());
    let lengths = [1, 7, 40, 3, 128, 17];
    let tokens = rows(&lengths, 2000, 1);
    for (seed, (variant, pooling, adapt_layers)) in [
        (Variant::Copl, Pooling::Mean, None),
        (Variant::Copl, Pooling::LastToken, None),
        (Variant::Copl, Pooling::Mean, Some(1)),
        (Variant::Uniform, Pooling::Mean, Some(2)),
        (Variant::UserToken, Pooling::Mean, Some(1)),
        (Variant::UserToken, Pooling::LastToken, None),
    ]
    .into_iter()
    .enumerate()
    {
        let model = model(
            dir.path(),
            config(variant, pooling, adapt_layers),
            seed as u64,
        );
        let (routings, embeddings) = users(&model, lengths.len());
        let batch = served(&tokens, &routings, &embeddings);
        let packed = model.score_served(&batch).unwrap();
        let reference = model.score_served_reference(&batch).unwrap();
        let spread = reference.iter().fold(0f32, |m, r| m.max(r.abs()));
        assert!(spread > 1e-3, "rewards too small to compare: {reference:?}");
        let d = max_difference(&packed, &reference);
        assert!(
            d < 1e-4,
            "{variant:?} {pooling:?} {adapt_layers:?}: packed {packed:?} reference {reference:?}"
        );
        // Different users get different rewards for the same text (the routing is used).
        if variant == Variant::Copl {
            let same_text = vec![tokens[2].clone(); lengths.len()];
            let by_user = model
                .score_served(&served(&same_text, &routings, &embeddings))
                .unwrap();
            let distinct = by_user.iter().any(|r| (r - by_user[0]).abs() > 1e-4);
            assert!(distinct, "every user scored the same: {by_user:?}");
        }
    }
}

#[test]
fn a_rows_packed_reward_does_not_depend_on_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    small_bert(dir.path());
    let model = model(dir.path(), config(Variant::Copl, Pooling::Mean, None), 7);
    let lengths = [5, 60, 11, 33];
    let tokens = rows(&lengths, 2000, 2);
    let (routings, embeddings) = users(&model, lengths.len());
    let together = model
        .score_served(&served(&tokens, &routings, &embeddings))
        .unwrap();
    for i in 0..lengths.len() {
        let alone = model
            .score_served(&served(
                &tokens[i..=i],
                &routings[i..=i],
                &embeddings[i..=i],
            ))
            .unwrap();
        assert!(
            (alone[0] - together[i]).abs() < 1e-5,
            "row {i}: alone {} in the batch {}",
            alone[0],
            together[i]
        );
    }
}

#[test]
fn the_real_minilm_packed_equals_the_reference() {
    let mut config = config(Variant::Copl, Pooling::Mean, None);
    config.mole.user_dim = 8;
    let model = model(&minilm(), config, 3);
    let items = [
        (
            "How do I boil an egg?",
            "Put it in boiling water for nine minutes.",
        ),
        ("How do I boil an egg?", "Eggs."),
        (
            "Any tips for a first marathon?",
            "Start slowly, drink at every station, and trust the training you did in the \
             months before; the last six miles are run with the head, not the legs.",
        ),
    ];
    let tokens = model.tokenize(&items, false).unwrap();
    let (routings, embeddings) = users(&model, items.len());
    let batch = served(&tokens, &routings, &embeddings);
    let packed = model.score_served(&batch).unwrap();
    let reference = model.score_served_reference(&batch).unwrap();
    let d = max_difference(&packed, &reference);
    assert!(d < 1e-4, "packed {packed:?} reference {reference:?}");
}

#[test]
fn bad_rows_are_named() {
    let dir = tempfile::tempdir().unwrap();
    small_bert(dir.path());
    let model = model(dir.path(), config(Variant::Copl, Pooling::Mean, None), 1);
    let (routings, embeddings) = users(&model, 2);
    let good = rows(&[4], 2000, 3).remove(0);
    let cases = [
        (
            Tokens {
                ids: vec![5, 2000],
                type_ids: vec![0, 0],
            },
            "row 1: token id 2000 outside the vocabulary of 2000",
        ),
        (
            Tokens {
                ids: vec![],
                type_ids: vec![],
            },
            "row 1 has no token",
        ),
        (
            Tokens {
                ids: vec![5; 129],
                type_ids: vec![0; 129],
            },
            "row 1: 129 tokens, more than 128 positions",
        ),
    ];
    for (bad, expected) in cases {
        let tokens = [good.clone(), bad];
        let e = model
            .score_served(&served(&tokens, &routings, &embeddings))
            .unwrap_err()
            .to_string();
        assert!(e.contains(expected), "{e}");
    }
    let mut wrong = routings.clone();
    wrong[0].experts[0] = 99;
    let tokens = [good.clone(), good];
    let e = model
        .score_served(&served(&tokens, &wrong, &embeddings))
        .unwrap_err()
        .to_string();
    assert!(e.contains("row 0: expert 99"), "{e}");
}

#[test]
fn exp_and_gelu_match_their_definitions() {
    for i in -2000..=2000 {
        let x = i as f32 * 0.04;
        let (ours, exact) = (kernels::exp(x), (x as f64).exp());
        assert!(
            ((ours as f64 - exact) / exact).abs() < 2e-7,
            "exp({x}) = {ours}, not {exact}"
        );
    }
    let xs: Vec<f32> = (-800..=800).map(|i| i as f32 * 0.01).collect();
    let reference: Vec<f32> = Tensor::new(xs.as_slice(), &Device::Cpu)
        .unwrap()
        .gelu_erf()
        .unwrap()
        .to_vec1()
        .unwrap();
    let mut ours = xs.clone();
    kernels::bias_activation(&mut ours, &[0.0], kernels::Activation::GeluErf);
    assert!(max_difference(&ours, &reference) < 1e-6);
    let tanh: Vec<f32> = Tensor::new(xs.as_slice(), &Device::Cpu)
        .unwrap()
        .gelu()
        .unwrap()
        .to_vec1()
        .unwrap();
    let mut ours = xs.clone();
    kernels::bias_activation(&mut ours, &[0.0], kernels::Activation::GeluTanh);
    assert!(max_difference(&ours, &tanh) < 1e-5);
}

#[test]
fn softmax_and_layer_norm_match_their_definitions() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let width = 37;
    let x: Vec<f32> = (0..width * 5)
        .map(|_| rng.random_range(-20.0..20.0))
        .collect();
    let mut ours = x.clone();
    kernels::softmax_rows(&mut ours, width);
    for (row, got) in x.chunks(width).zip(ours.chunks(width)) {
        let max = row.iter().fold(f64::MIN, |m, &v| m.max(v as f64));
        let total: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
        for (&v, &g) in row.iter().zip(got) {
            assert!(((v as f64 - max).exp() / total - g as f64).abs() < 1e-6);
        }
    }
    let norm = kernels::Norm {
        weight: (0..width).map(|i| 1.0 + i as f32 * 0.1).collect(),
        bias: (0..width).map(|i| i as f32 * -0.05).collect(),
        eps: 1e-5,
    };
    let residual: Vec<f32> = (0..width * 5)
        .map(|_| rng.random_range(-3.0..3.0))
        .collect();
    let bias: Vec<f32> = (0..width).map(|i| i as f32 * 0.01).collect();
    let mut ours = residual.clone();
    kernels::residual_norm(&mut ours, &x, &bias, &norm);
    for r in 0..5 {
        let v: Vec<f64> = (0..width)
            .map(|c| (x[r * width + c] + bias[c] + residual[r * width + c]) as f64)
            .collect();
        let mean = v.iter().sum::<f64>() / width as f64;
        let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / width as f64;
        for c in 0..width {
            let want =
                (v[c] - mean) / (var + 1e-5).sqrt() * norm.weight[c] as f64 + norm.bias[c] as f64;
            assert!((ours[r * width + c] as f64 - want).abs() < 1e-4);
        }
    }
}

#[test]
fn matmul_reads_and_writes_strided_views() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (m, k, n) = (13, 9, 11);
    // lhs: columns 2..2+k of a 13 × 20 matrix; rhs: the transpose of an 11 × 9 one.
    let lhs: Vec<f32> = (0..m * 20).map(|_| rng.random_range(-1.0..1.0)).collect();
    let rhs: Vec<f32> = (0..n * k).map(|_| rng.random_range(-1.0..1.0)).collect();
    let l = View::dense(m, 20).columns(2, k);
    let r = View::dense(n, k).t();
    // dst: columns 3..3+n of a 13 × 16 matrix, accumulated onto.
    let start: Vec<f32> = (0..m * 16).map(|i| i as f32).collect();
    for threads in [1, 2] {
        let mut dst = start.clone();
        matmul(
            &mut dst,
            View::dense(m, 16).columns(3, n),
            true,
            &lhs,
            l,
            &rhs,
            r,
            0.5,
            threads,
        );
        for i in 0..m {
            for j in 0..16 {
                let want = if (3..3 + n).contains(&j) {
                    let jj = j - 3;
                    let dot: f32 = (0..k).map(|c| lhs[i * 20 + 2 + c] * rhs[jj * k + c]).sum();
                    start[i * 16 + j] + 0.5 * dot
                } else {
                    start[i * 16 + j]
                };
                assert!((dst[i * 16 + j] - want).abs() < 1e-5, "({i}, {j})");
            }
        }
    }
}

#[test]
#[should_panic(expected = "outside its slice")]
fn matmul_refuses_a_view_outside_its_slice() {
    let mut dst = vec![0f32; 4];
    matmul(
        &mut dst,
        View::dense(2, 2),
        false,
        &[0.0; 4],
        View::dense(2, 3),
        &[0.0; 6],
        View::dense(3, 2),
        1.0,
        1,
    );
}
