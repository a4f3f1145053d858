#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! MoLE training end to end on a tiny random BERT (MiniLM's tokenizer): CoPL and Uniform
//! train (every trainable tensor must receive a gradient, or clipping fails naming it),
//! write a whole checkpoint, and the reloaded model recomputes the reported accuracy.

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

/// The paper's G-Oracle: `--group` trains on one group's users only, and `eval_oracle`
/// scores every user, seen and unseen, with their group's model: each group's cells are
/// exactly what that group's model scores on the group's users under `eval`.
#[test]
fn g_oracle_models_train_on_one_group_and_score_each_user_with_theirs() {
    use copl_trainer::mole::eval::eval_oracle;
    let root = tempfile::tempdir().unwrap();
    let (data, gcf, backbone) = setup(root.path(), Preset::Ufp2);
    let config = MoleTrainConfig {
        steps: 2,
        batch_pairs: 4,
        lr: 1e-3,
        eval_every: 2,
        val_pairs: 8,
        ..MoleTrainConfig::default()
    };
    let train = |group: Option<&str>, variant: Variant| {
        let out = root.path().join(format!("{variant:?}-{group:?}"));
        let run = MoleRun {
            data: &data,
            ckpt: &gcf,
            out: &out,
            backbone: &backbone,
            variant,
            max_tokens: 64,
            adapt_layers: None,
            test_pairs: 8,
            group,
            rank: None,
        };
        run_mole(&run, &config, |_, _| {}).map(|s| (s, out))
    };
    let dataset = Dataset::load(&data).unwrap();
    let (adapter, ids) = Adapter::from_checkpoint(&gcf).unwrap();
    let all_train = text_pairs(&dataset, &ids, &adapter, Split::Train).len();
    let mut models = Vec::new();
    let mut trained = 0;
    for group in ["detail", "hedging"] {
        let (summary, out) = train(Some(group), Variant::Uniform).unwrap();
        assert!(summary.train_pairs > 0 && summary.train_pairs < all_train);
        trained += summary.train_pairs;
        models.push((group.to_string(), out));
    }
    // The two groups' training pairs are all the training pairs, each once.
    assert_eq!(trained, all_train);

    let oracle = eval_oracle(&data, &models, &backbone, 0, false).unwrap();
    for (group, ckpt) in &models {
        let alone = eval_mole(&data, ckpt, &backbone, 0, false).unwrap();
        assert_eq!(oracle.seen.by_group[group], alone.seen.by_group[group]);
        assert_eq!(
            oracle.unseen.as_ref().unwrap().by_group[group],
            alone.unseen.as_ref().unwrap().by_group[group]
        );
        assert_eq!(oracle.seen.overall.pairs, alone.seen.overall.pairs);
    }

    // Refused by name: an unknown group, a group without a model, a CoPL model.
    let e = train(Some("nobody"), Variant::Uniform).unwrap_err();
    assert!(
        format!("{e:#}").contains("--group nobody: no user of")
            && format!("{e:#}").contains("detail, hedging"),
        "{e:#}"
    );
    let e = eval_oracle(&data, &models[..1], &backbone, 0, false).unwrap_err();
    assert!(
        format!("{e:#}").contains("no G-Oracle model for group hedging"),
        "{e:#}"
    );
    let (_, copl) = train(None, Variant::Copl).unwrap();
    let mixed = vec![models[0].clone(), ("hedging".to_string(), copl)];
    let e = eval_oracle(&data, &mixed, &backbone, 0, false).unwrap_err();
    assert!(format!("{e:#}").contains("a Copl model"), "{e:#}");
}

/// The packed engine (whose step `tests/mole_packed.rs` holds to autograd's) follows the
/// autograd engine's loss curve from the same seed, repeats itself, trains CoPL,
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
    // The packed engine draws its gate noise from the run's seed: CoPL repeats too.
    let (_, copl, _) = run("c-p", Variant::Copl, None, &config(MoleEngine::Packed)).unwrap();
    let (_, copl_again, _) = run("c-p2", Variant::Copl, None, &config(MoleEngine::Packed)).unwrap();
    assert_eq!(copl, copl_again, "the packed engine is not reproducible");

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

/// Oracle routing (`--routing oracle`, issue #13's diagnostic): every seen user's gate
/// input becomes their group's code and every gate the fixed map code g → expert g at
/// weight ≈ 1, which does not train; the run reports its groups and writes no model;
/// settings it cannot honour are refused by name.
#[test]
fn oracle_routing_sends_each_group_to_its_own_expert_and_does_not_train_the_gates() {
    use candle_nn::VarMap;
    use copl_trainer::mole::{
        oracle::{Routing, one_hot, set_oracle_gates},
        packed::{PackedFrozenCache, PackedStep},
        run::model_config,
        train::TextPair,
    };
    let root = tempfile::tempdir().unwrap();
    let (data, gcf, backbone) = setup(root.path(), Preset::Ufp2);
    let (adapter, _) = Adapter::from_checkpoint(&gcf).unwrap();
    let dim = adapter.dim();

    // The gates route code g to expert g, in every projection, at weight ≈ 1.
    let vars = VarMap::new();
    let model = RewardModel::fresh(
        &backbone,
        model_config(&backbone, Variant::Copl, dim, 64, None).unwrap(),
        &vars,
        &Device::Cpu,
    )
    .unwrap();
    set_oracle_gates(&vars, 2).unwrap();
    let mut step = PackedStep::new(&model).unwrap();
    assert!(!step.gates.is_empty());
    let users: Vec<f32> = [one_hot(0, dim), one_hot(1, dim)].concat();
    for gate in &step.gates {
        let (routes, _) = gate.route(&users, step.temperature, None);
        assert_eq!(routes[0].0, 0);
        assert_eq!(routes[1].0, 1);
        assert!(routes.iter().all(|r| r.1 > 0.999), "{routes:?}");
    }
    // Frozen: a step returns no gate gradients and trains no gate buffer.
    let trained_with_gates = step.parameters_mut().len();
    step.frozen_gates = true;
    let pair = |code: usize, chosen: &str| TextPair {
        user: one_hot(code, dim),
        prompt: "Explain tides.".into(),
        chosen: chosen.into(),
        rejected: "The moon.".into(),
        weight: 1.0,
    };
    let pairs = [
        pair(0, "Tides follow the moon's pull."),
        pair(1, "Gravity, mostly."),
    ];
    let (loss, mut grads) = step
        .loss_and_gradients(
            &model,
            &pairs.iter().collect::<Vec<_>>(),
            None,
            Reweight::None,
            0.0,
            &mut PackedFrozenCache::new(0),
        )
        .unwrap();
    assert!(loss.is_finite());
    assert!(grads.gates.is_empty());
    let trained = step.parameters_mut().len();
    assert_eq!(trained, grads.buffers_mut().len());
    assert_eq!(trained, trained_with_gates - 4 * step.gates.len());

    // End to end: the summary names the groups in code order; no reward model is written.
    let config = MoleTrainConfig {
        steps: 2,
        batch_pairs: 4,
        lr: 1e-3,
        eval_every: 2,
        val_pairs: 8,
        routing: Routing::Oracle,
        ..MoleTrainConfig::default()
    };
    let out = root.path().join("oracle");
    let run = |variant: Variant, config: &MoleTrainConfig| {
        run_mole(
            &MoleRun {
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
            },
            config,
            |_, _| {},
        )
    };
    let summary = run(Variant::Copl, &config).unwrap();
    assert_eq!(summary.routing, Routing::Oracle);
    assert!(summary.centroid_gates.is_none());
    assert_eq!(summary.oracle_groups, ["detail", "hedging"]);
    assert!((0.0..=1.0).contains(&summary.test_accuracy));
    assert!(!out.join("mole.safetensors").exists());
    // No routing curve under the oracle (pure by construction); the gates' run records
    // one at every validation step, per projection, within its bounds.
    assert!(summary.training.history.iter().all(|h| h.routing.is_none()));
    let gated = MoleTrainConfig {
        routing: Routing::Gates,
        ..config.clone()
    };
    let summary = run(Variant::Copl, &gated).unwrap();
    assert_eq!(summary.routing, Routing::Gates);
    assert!(summary.oracle_groups.is_empty());
    // The default (`auto`) starts CoPL's gates on k-means clusters; the oracle's stay.
    assert_eq!(gated.gate_init, GateInit::Auto);
    assert!(summary.centroid_gates.is_some());
    assert!(out.join("mole.safetensors").exists());
    for record in &summary.training.history {
        let routing = record.routing.as_ref().unwrap();
        assert_eq!(
            routing.purity.len(),
            4,
            "query and value in each of 2 layers"
        );
        assert_eq!(routing.experts_used.len(), 4);
        for (p, &used) in routing.purity.iter().zip(&routing.experts_used) {
            // A group spread over at most `used` experts has at least 1/used of its
            // users on its majority, and at most log2(used) bits of entropy.
            assert!((1..=8).contains(&used));
            let bound = 1.0 / used as f64 - 1e-9;
            assert!((bound..=1.0).contains(&p.majority_share), "{p:?}");
            let most = (used as f64).log2() + 1e-9;
            assert!((0.0..=most).contains(&p.entropy_bits), "{p:?}");
            assert!((1..=2).contains(&p.distinct_majorities));
        }
    }
    // Gates started on k-means clusters of the GCF embeddings: the summary says what
    // was chosen, the clusters hold every seen user, and at the first validation (two
    // steps in) no projection routes to an expert without a cluster.
    let kmeans = MoleTrainConfig {
        gate_init: GateInit::Kmeans,
        ..gated.clone()
    };
    let summary = run(Variant::Copl, &kmeans).unwrap();
    let chosen = summary.centroid_gates.as_ref().unwrap();
    assert!((2..=8).contains(&chosen.clusters), "{chosen:?}");
    assert_eq!(chosen.silhouettes.len(), 7, "k = 2..=8 tried");
    assert_eq!(chosen.sizes.len(), chosen.clusters);
    assert!(chosen.sizes.iter().all(|&n| n > 0));
    let first = summary.training.history[0].routing.as_ref().unwrap();
    assert!(
        first.experts_used.iter().all(|&n| n <= chosen.clusters),
        "{first:?}"
    );
    let two = MoleTrainConfig {
        gate_clusters: Some(2),
        ..kmeans.clone()
    };
    assert_eq!(
        run(Variant::Copl, &two)
            .unwrap()
            .centroid_gates
            .unwrap()
            .clusters,
        2
    );
    for (variant, config, says) in [
        (
            Variant::Uniform,
            &kmeans,
            "--gate-init kmeans needs --variant copl",
        ),
        (
            Variant::Copl,
            &MoleTrainConfig {
                routing: Routing::Oracle,
                ..kmeans.clone()
            },
            "--gate-init kmeans needs",
        ),
        (
            Variant::Copl,
            &MoleTrainConfig {
                gate_clusters: Some(2),
                gate_init: GateInit::Random,
                ..gated.clone()
            },
            "--gate-clusters is",
        ),
        (
            Variant::Copl,
            &MoleTrainConfig {
                gate_clusters: Some(99),
                ..kmeans.clone()
            },
            "--gate-clusters 99",
        ),
    ] {
        let e = run(variant, config).unwrap_err();
        assert!(format!("{e:#}").contains(says), "{e:#}");
    }
    let e = run(Variant::Uniform, &config).unwrap_err();
    assert!(
        format!("{e:#}").contains("--routing oracle needs --variant copl"),
        "{e:#}"
    );
    let balanced = MoleTrainConfig {
        load_balance: 0.1,
        ..config.clone()
    };
    let e = run(Variant::Copl, &balanced).unwrap_err();
    assert!(
        format!("{e:#}").contains("the oracle's gates do not train"),
        "{e:#}"
    );
}
