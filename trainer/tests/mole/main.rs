#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! MoLE training end to end on a tiny random BERT (MiniLM's tokenizer): CoPL and Uniform
//! train (every trainable tensor must receive a gradient, or clipping fails naming it),
//! write a whole checkpoint, and the reloaded model recomputes the reported accuracy.
//! The oracles are in `oracle`.

mod oracle;

use std::path::{Path, PathBuf};

use candle_core::Device;
use copl_core::{
    adapt::Adapter,
    checkpoint::Manifest,
    data::{Dataset, Split},
    model::reward::{RewardModel, Variant},
};
use copl_synth::{Preset, SynthConfig, generate};
use copl_trainer::{
    gcf::{GcfArch, TrainConfig, run_gcf},
    mole::{
        eval::eval_mole,
        gate_init::GateInit,
        objective::Reweight,
        run::{MoleRun, run_mole, spread, text_pairs},
        train::{MoleTrainConfig, accuracy},
    },
};

/// A tiny BERT in `root/bb` and a small data set of `preset` in `root/data` with its GCF
/// checkpoint in `root/gcf`.
fn setup(root: &Path, preset: Preset) -> (PathBuf, PathBuf, PathBuf) {
    let (data, gcf, backbone) = (root.join("data"), root.join("gcf"), root.join("bb"));
    std::fs::create_dir_all(&backbone).unwrap();
    copl_tests::tiny_bert(&backbone);
    let synthetic = generate(&SynthConfig {
        users: 80,
        unseen_users: 2,
        seed: 1,
        ..SynthConfig::new(preset)
    })
    .unwrap();
    synthetic.dataset.save(&data).unwrap();
    let gcf_config = TrainConfig {
        arch: GcfArch {
            dim: 8,
            layers: 1,
            ..GcfArch::default()
        },
        epochs: 5,
        batch_size: 10_000,
        lr: 1e-2,
        ..TrainConfig::default()
    };
    run_gcf(&data, &gcf, &gcf_config, |_, _| {}).unwrap();
    (data, gcf, backbone)
}

#[test]
fn copl_and_uniform_train_and_the_checkpoint_recomputes_the_reported_accuracy() {
    let root = tempfile::tempdir().unwrap();
    let (data, gcf, backbone) = setup(root.path(), Preset::Ufp2);
    let config = MoleTrainConfig {
        steps: 6,
        batch_pairs: 4,
        lr: 1e-3,
        eval_every: 3,
        val_pairs: 16,
        ..MoleTrainConfig::default()
    };
    // CoPL on every layer, Uniform (at the default rank and at the paper's baselines'
    // larger one), CoPL on the top layer with the frozen one cached, and the user-token
    // ablation both ways.
    for (variant, adapt_layers, rank) in [
        (Variant::Copl, None, None),
        (Variant::Uniform, None, None),
        (Variant::Uniform, None, Some(16)),
        (Variant::Copl, Some(1), None),
        (Variant::UserToken, None, None),
        (Variant::UserToken, Some(1), None),
    ] {
        let out = root
            .path()
            .join(format!("{variant:?}-{adapt_layers:?}-{rank:?}"));
        let run = MoleRun {
            data: &data,
            ckpt: &gcf,
            out: &out,
            backbone: &backbone,
            variant,
            max_tokens: 64,
            adapt_layers,
            test_pairs: 16,
            group: None,
            rank,
        };
        let mut losses = Vec::new();
        let summary = run_mole(&run, &config, |_, loss| losses.push(loss)).unwrap();
        assert_eq!(losses.len(), 6);
        assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
        assert_eq!(summary.training.history.len(), 2);
        assert!(summary.training.pairs_per_second > 0.0);
        if adapt_layers.is_some() {
            // Responses recur across pairs: validation reuses what training cached.
            assert!(summary.training.frozen_cache_texts > 0);
            assert!(summary.training.frozen_cache_hit_rate > 0.0);
        } else {
            assert_eq!(summary.training.frozen_cache_texts, 0);
        }

        // A whole checkpoint: GCF files copied, model section with the variant.
        let manifest = Manifest::load(&out).unwrap();
        assert!(manifest.gcf.is_some());
        let model_manifest = manifest.model.as_ref().unwrap();
        assert_eq!(model_manifest.config.variant, variant);
        assert_eq!(model_manifest.config.mole.adapt_layers, adapt_layers);
        // --rank r: every expert at rank r, α = 2r.
        assert_eq!(model_manifest.config.mole.rank, rank.unwrap_or(8));
        assert_eq!(
            model_manifest.config.mole.alpha,
            2.0 * rank.unwrap_or(8) as f64
        );

        // Reloaded, the model recomputes the reported validation accuracy.
        let model = RewardModel::load(&out, &backbone, &Device::Cpu).unwrap();
        let dataset = Dataset::load(&data).unwrap();
        let unseen_ids = dataset.unseen_users();
        let group_of: std::collections::HashMap<&str, &str> = dataset
            .users()
            .iter()
            .filter_map(|u| Some((u.user.as_str(), u.group.as_deref()?)))
            .collect();
        let (adapter, ids) = Adapter::from_checkpoint(&out).unwrap();
        let val = spread(text_pairs(&dataset, &ids, &adapter, Split::Val), 16);
        let mut cache = copl_core::model::frozen_cache::FrozenCache::new(usize::MAX);
        assert_eq!(
            accuracy(&model, &val, 32, &mut cache).unwrap(),
            summary.training.best_val_accuracy,
            "{variant:?}"
        );
        // `copl-train eval` recomputes the reported test accuracy from the saved files,
        // and onboards the unseen users.
        let eval = eval_mole(&data, &out, &backbone, 16, false).unwrap();
        assert_eq!(eval.variant, variant);
        assert_eq!(eval.seen.overall.accuracy, summary.test_accuracy);
        assert_eq!(eval.seen.overall.pairs, 16);
        // Per group: 8 pairs from each of the two groups, `overall` their accuracies
        // weighted by the groups' shares of the split.
        let stratified = eval_mole(&data, &out, &backbone, 16, true).unwrap();
        let groups = &stratified.seen.by_group;
        assert_eq!(groups.values().map(|g| g.pairs).collect::<Vec<_>>(), [8, 8]);
        let all: Vec<_> = dataset
            .split(Split::Test)
            .filter(|a| !unseen_ids.contains(a.user.as_str()))
            .collect();
        let share = |g: &str| {
            all.iter()
                .filter(|a| group_of[a.user.as_str()] == g)
                .count() as f64
                / all.len() as f64
        };
        let weighted: f64 = groups.iter().map(|(g, s)| share(g) * s.accuracy).sum();
        assert!((stratified.seen.overall.accuracy - weighted).abs() < 1e-12);
        let unseen = dataset.unseen_users();
        let unseen_test = dataset
            .split(Split::Test)
            .filter(|a| unseen.contains(a.user.as_str()))
            .count();
        assert!(unseen_test > 0);
        assert_eq!(
            eval.unseen.as_ref().unwrap().overall.pairs,
            unseen_test.min(16)
        );
        assert_eq!(eval.seen.by_group.len(), 2);
    }
}

/// The paper's §7 options: each changes the loss it should (same seed, same first batch),
/// trains to a checkpoint that records it, and bad settings are refused by name.
#[test]
fn the_section_7_options_change_the_loss_as_they_should() {
    let root = tempfile::tempdir().unwrap();
    let (data, gcf, backbone) = setup(root.path(), Preset::Ufp2);
    let base = MoleTrainConfig {
        steps: 2,
        batch_pairs: 4,
        lr: 1e-3,
        eval_every: 2,
        val_pairs: 8,
        ..MoleTrainConfig::default()
    };
    let losses = |name: &str, variant: Variant, config: &MoleTrainConfig| {
        let out = root.path().join(name);
        let run = MoleRun {
            data: &data,
            ckpt: &gcf,
            out: &out,
            backbone: &backbone,
            variant,
            max_tokens: 64,
            adapt_layers: None,
            test_pairs: 8,
            group: None,
            rank: None,
        };
        let mut losses = Vec::new();
        run_mole(&run, config, |_, l| losses.push(l)).map(|_| (losses, out))
    };
    let (plain, _) = losses("plain", Variant::Copl, &base).unwrap();
    // Load balancing adds a positive term.
    let balanced = MoleTrainConfig {
        load_balance: 0.5,
        ..base.clone()
    };
    let (with_balance, out) = losses("lb", Variant::Copl, &balanced).unwrap();
    assert!(
        with_balance[0] > plain[0] + 0.01,
        "{with_balance:?} vs {plain:?}"
    );
    let manifest = Manifest::load(&out).unwrap();
    let recorded = &manifest.model.unwrap().metrics["hyper_parameters"];
    assert_eq!(recorded["load_balance"], 0.5);
    // Focal weighting scales every pair's term by (1 − σ(m))^γ < 1.
    let focal = MoleTrainConfig {
        reweight: Reweight::Focal { gamma: 2.0 },
        ..base.clone()
    };
    let (with_focal, _) = losses("focal", Variant::Copl, &focal).unwrap();
    assert!(
        with_focal[0] < plain[0] * 0.5,
        "{with_focal:?} vs {plain:?}"
    );
    // Inverse frequency: balanced groups weigh about 1 each, so the loss stays near.
    let inverse = MoleTrainConfig {
        reweight: Reweight::InverseFrequency,
        ..base.clone()
    };
    let (with_inverse, _) = losses("inv", Variant::Copl, &inverse).unwrap();
    assert!(with_inverse.iter().all(|l| l.is_finite()));
    assert!((with_inverse[0] - plain[0]).abs() < 0.5 * plain[0]);

    // Refused by name: load balancing without gates, a negative γ.
    let e = losses("bad-lb", Variant::Uniform, &balanced).unwrap_err();
    assert!(
        format!("{e:#}").contains("--load-balance needs --variant copl"),
        "{e:#}"
    );
    let bad_gamma = MoleTrainConfig {
        reweight: Reweight::Focal { gamma: -1.0 },
        ..base.clone()
    };
    let e = losses("bad-gamma", Variant::Copl, &bad_gamma).unwrap_err();
    assert!(format!("{e:#}").contains("--focal-gamma must be"), "{e:#}");

    // Inverse frequency needs each user's group: PersonalLLM-like users have weights.
    let personal = tempfile::tempdir().unwrap();
    let (data, gcf, backbone) = setup(personal.path(), Preset::Personal);
    let run = MoleRun {
        data: &data,
        ckpt: &gcf,
        out: &personal.path().join("out"),
        backbone: &backbone,
        variant: Variant::Copl,
        max_tokens: 64,
        adapt_layers: None,
        test_pairs: 8,
        group: None,
        rank: None,
    };
    let e = run_mole(&run, &inverse, |_, _| {}).unwrap_err();
    let message = format!("{e:#}");
    assert!(
        message.contains("users.jsonl: user ") && message.contains("has no group"),
        "{message}"
    );
}

/// The packed engine (whose step `tests/mole_packed.rs` holds to autograd's) follows the
/// autograd engine's loss curve from the same seed (CoPL's gate noise included), both
/// repeat themselves, the packed one trains CoPL,
/// Uniform and the user-token ablation, on every layer and on the top one with the frozen one cached, to a
/// checkpoint whose reloaded model recomputes the reported accuracy; the user-token
/// ablation too.
#[test]
fn the_packed_engine_trains_and_its_checkpoint_recomputes_the_reported_accuracy() {
    use copl_trainer::mole::train::MoleEngine;
    let root = tempfile::tempdir().unwrap();
    let (data, gcf, backbone) = setup(root.path(), Preset::Ufp2);
    let config = |engine| MoleTrainConfig {
        steps: 6,
        batch_pairs: 4,
        lr: 1e-3,
        eval_every: 3,
        val_pairs: 16,
        engine,
        ..MoleTrainConfig::default()
    };
    let run = |name: &str, variant, adapt_layers, config: &MoleTrainConfig| {
        let out = root.path().join(name);
        let run = MoleRun {
            data: &data,
            ckpt: &gcf,
            out: &out,
            backbone: &backbone,
            variant,
            max_tokens: 64,
            adapt_layers,
            test_pairs: 16,
            group: None,
            rank: None,
        };
        let mut losses = Vec::new();
        run_mole(&run, config, |_, l| losses.push(l)).map(|s| (s, losses, out))
    };
    // Seeded: the same seed starts from the same model. Uniform routes nothing, so it
    // has no gate noise and the two engines follow the same loss curve (to rounding).
    let (_, autograd, _) =
        run("u-a", Variant::Uniform, None, &config(MoleEngine::Autograd)).unwrap();
    let (_, again, _) = run(
        "u-a2",
        Variant::Uniform,
        None,
        &config(MoleEngine::Autograd),
    )
    .unwrap();
    assert_eq!(autograd, again, "one seed, two models");
    let (_, packed, _) = run("u-p", Variant::Uniform, None, &config(MoleEngine::Packed)).unwrap();
    for (a, p) in autograd.iter().zip(&packed) {
        assert!((a - p).abs() < 1e-3, "{autograd:?} against {packed:?}");
    }
    // Both engines draw their gate noise from the run's seed, the same draws: CoPL
    // repeats on each, and the two follow one loss curve. (The autograd engine's noise
    // came from candle's unseeded generator until 2026-12-07.)
    let (_, copl, _) = run("c-p", Variant::Copl, None, &config(MoleEngine::Packed)).unwrap();
    let (_, copl_again, _) = run("c-p2", Variant::Copl, None, &config(MoleEngine::Packed)).unwrap();
    assert_eq!(copl, copl_again, "the packed engine is not reproducible");
    let (_, copl_autograd, _) =
        run("c-a", Variant::Copl, None, &config(MoleEngine::Autograd)).unwrap();
    let (_, copl_autograd_again, _) =
        run("c-a2", Variant::Copl, None, &config(MoleEngine::Autograd)).unwrap();
    assert_eq!(
        copl_autograd, copl_autograd_again,
        "the autograd engine is not reproducible"
    );
    for (a, p) in copl_autograd.iter().zip(&copl) {
        assert!((a - p).abs() < 1e-3, "{copl_autograd:?} against {copl:?}");
    }

    for (variant, adapt_layers) in [
        (Variant::Copl, None),
        (Variant::Copl, Some(1)),
        (Variant::Uniform, None),
        (Variant::UserToken, Some(1)),
    ] {
        let (summary, losses, out) = run(
            &format!("{variant:?}-{adapt_layers:?}"),
            variant,
            adapt_layers,
            &config(MoleEngine::Packed),
        )
        .unwrap();
        assert_eq!(losses.len(), 6);
        assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
        assert_eq!(summary.training.history.len(), 2);
        let model = RewardModel::load(&out, &backbone, &Device::Cpu).unwrap();
        let dataset = Dataset::load(&data).unwrap();
        let (adapter, ids) = Adapter::from_checkpoint(&out).unwrap();
        let val = spread(text_pairs(&dataset, &ids, &adapter, Split::Val), 16);
        let mut cache = copl_core::model::frozen_cache::FrozenCache::new(usize::MAX);
        assert_eq!(
            accuracy(&model, &val, 32, &mut cache).unwrap(),
            summary.training.best_val_accuracy,
            "{variant:?} {adapt_layers:?}"
        );
    }
}

/// Mixed precision (what `copl-train mole --device cuda:N` runs by default, here on the
/// CPU's BF16 kernels): the frozen backbone in BF16, the adapters, gates and head F32
/// master weights cast inside the forward. It trains on the autograd engine, its first
/// losses follow the F32 run's (same seed, same batches), and the checkpoint holds F32
/// tensors that load and score.
#[test]
fn bf16_training_over_f32_master_weights_follows_f32() {
    use candle_core::DType;
    let root = tempfile::tempdir().unwrap();
    let (data, gcf, backbone) = setup(root.path(), Preset::Ufp2);
    let mut losses = Vec::new();
    for dtype in ["f32", "bf16"] {
        let config = MoleTrainConfig {
            steps: 3,
            batch_pairs: 4,
            lr: 1e-3,
            eval_every: 3,
            val_pairs: 8,
            dtype: dtype.into(),
            ..MoleTrainConfig::default()
        };
        let out = root.path().join(dtype);
        let run = MoleRun {
            data: &data,
            ckpt: &gcf,
            out: &out,
            backbone: &backbone,
            variant: Variant::Copl,
            max_tokens: 64,
            adapt_layers: None,
            test_pairs: 8,
            group: None,
            rank: None,
        };
        let mut run_losses = Vec::new();
        let summary = run_mole(&run, &config, |_, loss| run_losses.push(loss)).unwrap();
        if dtype == "bf16" {
            assert_eq!(
                summary.training.engine,
                copl_trainer::mole::train::MoleEngine::Autograd
            );
            let saved = copl_core::checkpoint::load_mole(&out).unwrap();
            assert!(saved.values().all(|t| t.dtype() == DType::F32));
            let model = RewardModel::load_as(&out, &backbone, &Device::Cpu, DType::BF16).unwrap();
            assert_eq!(model.dtype, DType::BF16);
        }
        losses.push(run_losses);
    }
    let (f32_losses, bf16_losses) = (&losses[0], &losses[1]);
    assert!(bf16_losses.iter().all(|l| l.is_finite()), "{bf16_losses:?}");
    for (a, b) in f32_losses.iter().zip(bf16_losses) {
        assert!(
            (a - b).abs() < 0.05,
            "f32 {f32_losses:?} against bf16 {bf16_losses:?}"
        );
    }
}
