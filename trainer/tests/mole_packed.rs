#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! The packed training step (`trainer/src/mole/packed.rs`) against the autograd path
//! (`mole::train`'s): one step's loss and the gradient of every trainable tensor — each
//! MoLE projection's LoRA factors, the gates, the head — on a tiny random BERT, for CoPL
//! and Uniform, MoLE in every layer and in the top one, and on the real MiniLM.

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use copl_core::model::{
    MoleConfig,
    frozen_cache::FrozenCache,
    head::Pooling,
    reward::{Backbone, RewardModel, RewardModelConfig, Template, Variant},
};
use copl_trainer::{
    mole::{
        objective::{self, Reweight, pair_loss},
        packed::{PackedFrozenCache, PackedStep},
        train::TextPair,
    },
    optim::BufferAdamW,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn pairs(rng: &mut ChaCha8Rng) -> Vec<TextPair> {
    let texts = [
        "Start with ten minutes a day and keep a log.",
        "Honestly, it depends; I might be wrong, but try a short routine first.",
        "1. Warm up. 2. Practise scales. 3. Rest.",
        "One should, with all due respect, consult a qualified instructor.",
        "Just do it.",
    ];
    (0..6)
        .map(|i| {
            let user: Vec<f32> = (0..8).map(|_| rng.random_range(-1.0..1.0)).collect();
            let norm = user.iter().map(|x| x * x).sum::<f32>().sqrt();
            TextPair {
                user: user.iter().map(|x| x / norm).collect(),
                prompt: format!("How do I learn the piano, question {i}?"),
                chosen: texts[i % texts.len()].to_string(),
                rejected: texts[(i + 2) % texts.len()].to_string(),
                weight: if i == 3 { 2.0 } else { 1.0 },
            }
        })
        .collect()
}

/// `got` within `rel` of `want`'s largest entry (plus 1e-6): the engines sum f32 in
/// different orders, and their difference varies run to run on one seeded model (the
/// threads' split of the work, not found further); a real defect exceeds it by orders
/// of magnitude.
fn assert_close(got: &[f32], want: &[f32], rel: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1e-6f32, |m, x| m.max(x.abs()));
    let worst = got
        .iter()
        .zip(want)
        .fold(0f32, |m, (g, w)| m.max((g - w).abs()));
    assert!(
        worst <= rel * scale + 1e-6,
        "{what}: off by {worst} of {scale}"
    );
}

/// The tolerance on the tiny BERT (2 layers).
const TINY: f32 = 1e-4;
/// On the real MiniLM's six layers: one run in ≈ 13 was off by up to 7.3e-4 of a
/// tensor's largest entry (a layer-0 gate bias whose gradient cancels across rows; 2.2e-4
/// on a gate weight), run to run on one seed, 2026-12-07.
const MINILM: f32 = 2e-3;

fn step_equals_autograd(
    variant: Variant,
    adapt_layers: Option<usize>,
    load_balance: f64,
    reweight: Reweight,
) {
    let dir = tempfile::tempdir().unwrap();
    copl_tests::tiny_bert(dir.path());
    step_equals_autograd_on(
        dir.path(),
        variant,
        adapt_layers,
        load_balance,
        reweight,
        TINY,
    );
}

fn step_equals_autograd_on(
    backbone: &std::path::Path,
    variant: Variant,
    adapt_layers: Option<usize>,
    load_balance: f64,
    reweight: Reweight,
    rel: f32,
) {
    let vars = VarMap::new();
    let config = RewardModelConfig {
        variant,
        family: copl_core::model::reward::BackboneFamily::Bert,
        mole: MoleConfig {
            user_dim: 8,
            rank: 2,
            experts: 3,
            gate_hidden: 6,
            temperature: 0.8,
            adapt_layers,
            ..MoleConfig::default()
        },
        pooling: Pooling::Mean,
        template: Template::Pair,
        max_tokens: 64,
    };
    // Seeded (candle's own initial values are unseeded): each run compares one model.
    let builder = copl_trainer::mole::seeded::seeded_builder(&vars, 11, &Device::Cpu);
    let mut model = RewardModel::fresh_from(backbone, config, builder, &Device::Cpu).unwrap();
    // Random LoRA B factors and head (fresh B = 0 would leave ∂A at 0).
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for (name, var) in vars.data().lock().unwrap().iter() {
        if name.contains("lora_b") {
            let values: Vec<f32> = (0..var.elem_count())
                .map(|_| rng.random_range(-0.5..0.5))
                .collect();
            var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap())
                .unwrap();
        }
    }
    let pairs = pairs(&mut rng);
    let refs: Vec<&TextPair> = pairs.iter().collect();
    let n = pairs.len();

    // The autograd path, gate noise off.
    if let Backbone::Bert(bert) = &mut model.backbone {
        bert.differentiable = true;
    }
    let mut items: Vec<(&str, &str)> = pairs
        .iter()
        .map(|p| (p.prompt.as_str(), p.chosen.as_str()))
        .collect();
    items.extend(
        pairs
            .iter()
            .map(|p| (p.prompt.as_str(), p.rejected.as_str())),
    );
    let users: Vec<f32> = pairs
        .iter()
        .chain(&pairs)
        .flat_map(|p| p.user.clone())
        .collect();
    let users = Tensor::from_vec(users, (2 * n, 8), &Device::Cpu).unwrap();
    let mut cache = FrozenCache::new(0);
    let rows = model.tokenize(&items, true).unwrap();
    let conditioning = model.condition(&users, None).unwrap();
    let r = model
        .score_cached(&rows.iter().collect::<Vec<_>>(), &conditioning, &mut cache)
        .unwrap();
    let margin = (r.narrow(0, 0, n).unwrap() - r.narrow(0, n, n).unwrap()).unwrap();
    let weights = Tensor::new(
        pairs.iter().map(|p| p.weight).collect::<Vec<f32>>(),
        &Device::Cpu,
    )
    .unwrap();
    let mut loss = pair_loss(&margin, &weights, reweight).unwrap();
    if load_balance > 0.0
        && let Some(balance) = objective::load_balance(&conditioning.routings).unwrap()
    {
        loss = (loss + (balance * load_balance).unwrap()).unwrap();
    }
    let grads = loss.backward().unwrap();
    let want_loss = f64::from(loss.to_scalar::<f32>().unwrap());

    // The packed step.
    let step = PackedStep::new(&model).unwrap();
    let mut frozen = PackedFrozenCache::new(usize::MAX);
    let (got_loss, got) = step
        .loss_and_gradients(&model, &refs, None, reweight, load_balance, &mut frozen)
        .unwrap();
    // Again, every text's frozen states from the cache: the same step.
    let (again, _) = step
        .loss_and_gradients(&model, &refs, None, reweight, load_balance, &mut frozen)
        .unwrap();
    assert_eq!(again, got_loss, "the cached frozen states change the step");
    assert!(frozen.hit_rate() >= 0.5 && !frozen.is_empty());
    assert!(
        (got_loss - want_loss).abs() < 1e-5 * (1.0 + want_loss.abs()),
        "{variant:?}: loss {got_loss} against {want_loss}"
    );

    let names = model.backbone.adapters().names.clone();
    let mut compared = 0;
    for (name, var) in vars.data().lock().unwrap().iter() {
        let Some(grad) = grads.get(var.as_tensor()) else {
            continue;
        };
        let want: Vec<f32> = grad.flatten_all().unwrap().to_vec1().unwrap();
        let projection = names.iter().position(|p| name.starts_with(p.as_str()));
        let got: &[f32] = match (projection, name.rsplit('.').next().unwrap()) {
            (Some(p), "lora_a") => &got.low_rank[p].a,
            (Some(p), "lora_b") => &got.low_rank[p].b,
            (Some(p), last) if name.contains(".gate.") && !got.gates.is_empty() => {
                let g = &got.gates[p];
                match (name.contains(".hidden."), last) {
                    (true, "weight") => &g.w1,
                    (true, _) => &g.b1,
                    (false, "weight") => &g.w2,
                    (false, _) => &g.b2,
                }
            }
            (None, "weight") if name.starts_with("user_token") => {
                &got.user_token.as_ref().unwrap().weight
            }
            (None, "bias") if name.starts_with("user_token") => {
                &got.user_token.as_ref().unwrap().bias
            }
            (None, "weight") if name.starts_with("head") => &got.head.weight,
            (None, "bias") if name.starts_with("head") => {
                // A bias shared by both responses cancels in the margin: ∂b is 0 up to
                // rounding on both paths.
                assert!(got.head.bias.abs() < 1e-6 && want[0].abs() < 1e-6, "{name}");
                compared += 1;
                continue;
            }
            _ => {
                // Uniform's gates route nothing: no gradient reaches them.
                assert!(
                    want.iter().all(|&x| x == 0.0),
                    "{variant:?}: {name} has a gradient the packed step has no place for"
                );
                continue;
            }
        };
        assert_close(
            got,
            &want,
            rel,
            &format!("{variant:?} {adapt_layers:?} λ_lb {load_balance} {name}"),
        );
        compared += 1;
    }
    let expected = names.len() * if variant == Variant::Copl { 6 } else { 2 }
        + 2
        + if variant == Variant::UserToken { 2 } else { 0 };
    assert_eq!(compared, expected, "{variant:?}: tensors compared");

    // An update of the buffers, written back to the model, is what a fresh packed copy
    // of the model reads: the buffer order and the tensor names agree.
    let mut step = step;
    let mut got = got;
    let mut adam = BufferAdamW::new(1e-2, 0.0);
    let before: Vec<Vec<f32>> = step.parameters_mut().iter().map(|b| b.to_vec()).collect();
    adam.step(
        step.parameters_mut(),
        got.buffers_mut().into_iter().map(|g| &*g).collect(),
    );
    step.write_back(&model, &vars).unwrap();
    let after: Vec<Vec<f32>> = step.parameters_mut().iter().map(|b| b.to_vec()).collect();
    let mut reread = PackedStep::new(&model).unwrap();
    let reread: Vec<Vec<f32>> = reread.parameters_mut().iter().map(|b| b.to_vec()).collect();
    assert_ne!(before, after, "the update changed nothing");
    assert_eq!(
        reread, after,
        "{variant:?}: written back is not what was trained"
    );
}

#[test]
fn packed_step_equals_autograd_for_copl() {
    step_equals_autograd(Variant::Copl, None, 0.0, Reweight::None);
    step_equals_autograd(Variant::Copl, Some(1), 0.0, Reweight::None);
    // The paper's §7 options: the gates' load-balancing term, focal re-weighting.
    step_equals_autograd(Variant::Copl, None, 0.3, Reweight::None);
    step_equals_autograd(Variant::Copl, None, 0.0, Reweight::Focal { gamma: 2.0 });
}

#[test]
fn packed_step_equals_autograd_for_uniform() {
    step_equals_autograd(Variant::Uniform, None, 0.0, Reweight::None);
}

#[test]
fn packed_step_equals_autograd_for_the_user_token_variant() {
    step_equals_autograd(Variant::UserToken, None, 0.0, Reweight::None);
    step_equals_autograd(Variant::UserToken, Some(1), 0.0, Reweight::None);
}

/// The real MiniLM (6 layers, hidden 384), MoLE in the top 2 layers and in all six.
#[test]
fn packed_step_equals_autograd_on_minilm() {
    let minilm = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../backbones/minilm");
    assert!(
        minilm.join("VERIFIED").exists(),
        "run scripts/fetch-backbone.sh minilm (make test does)"
    );
    step_equals_autograd_on(&minilm, Variant::Copl, Some(2), 0.0, Reweight::None, MINILM);
    step_equals_autograd_on(&minilm, Variant::Copl, None, 0.0, Reweight::None, MINILM);
}
