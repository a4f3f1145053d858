//! The oracles: G-Oracle (a Uniform model per ground-truth group, `mole --group`,
//! `eval-oracle`) and oracle routing (`--routing oracle`), on the same tiny setup.

use super::*;

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

/// Oracle routing (`--routing oracle`, issue #13's diagnostic): every seen user's gate
/// input becomes their group's code and every gate the fixed map code g → expert g at
/// weight ≈ 1, which does not train; the run reports its groups and writes no model;
/// settings it cannot honour are refused by name.
#[test]
fn oracle_routing_sends_each_group_to_its_own_expert_and_does_not_train_the_gates() {
    use candle_nn::VarMap;
    use copl_trainer::mole::{
        oracle::{ORACLE_LOGIT, Routing, one_hot, set_oracle_gates},
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
    set_oracle_gates(&vars, 2, ORACLE_LOGIT).unwrap();
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

/// The soft-mixture oracle (issue #13 item 1, for mixtures): each projection weighs
/// every expert by the user's own mixture weight, on the autograd engine only, and no
/// model is written; a cached (served) routing refuses soft routing.
#[test]
fn the_soft_oracle_weighs_each_expert_by_the_users_mixture_weight() {
    use candle_core::Tensor;
    use candle_nn::VarMap;
    use copl_trainer::mole::{
        oracle::{Routing, SOFT_ORACLE_FLOOR, gate_input, set_oracle_gates},
        run::model_config,
        train::MoleEngine,
    };
    let root = tempfile::tempdir().unwrap();
    let (data, gcf, backbone) = setup(root.path(), Preset::Personal);
    let (adapter, _) = Adapter::from_checkpoint(&gcf).unwrap();
    let dim = adapter.dim();

    let mut config = model_config(&backbone, Variant::Copl, dim, 64, None).unwrap();
    config.mole.soft_routing = true;
    let temperature = config.mole.temperature;
    let vars = VarMap::new();
    let model = RewardModel::fresh(&backbone, config, &vars, &Device::Cpu).unwrap();
    set_oracle_gates(&vars, 3, 1.0).unwrap();
    let mixture = [0.6f32, 0.3, 0.1];
    let users = Tensor::from_vec(
        [
            gate_input(&mixture, dim, true, temperature),
            gate_input(&[0.0, 1.0, 0.0], dim, true, temperature),
        ]
        .concat(),
        (2, dim),
        &Device::Cpu,
    )
    .unwrap();
    let routings = model.backbone.adapters().route_users(&users, None).unwrap();
    assert_eq!(routings.len(), 4, "query and value in each of 2 layers");
    for routing in &routings {
        let w: Vec<Vec<f32>> = routing.weights.to_vec2().unwrap();
        // The three components carry their weights; the 5 experts no component maps to
        // share what the floor ε leaves them (≈ 5ε / (1 + 5ε)).
        for (got, want) in w[0].iter().zip(mixture) {
            assert!((got - want).abs() < 1e-3, "{w:?}");
        }
        assert!(
            w[0][3..].iter().all(|&x| x < 2.0 * SOFT_ORACLE_FLOOR),
            "{w:?}"
        );
        assert!(
            (w[1][1] - 1.0).abs() < 1e-3,
            "a one-hot user on one expert: {w:?}"
        );
        assert_eq!(routing.experts, [0, 1]);
    }
    let e = model.user_routings(&users).unwrap_err();
    assert!(e.to_string().contains("soft routing"), "{e}");

    // End to end on mixture users: the experts are the mixture's components, the
    // autograd engine runs it (auto picks it), no reward model is written.
    let out = root.path().join("soft");
    let run = |engine: MoleEngine| {
        run_mole(
            &MoleRun {
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
            },
            &MoleTrainConfig {
                steps: 2,
                batch_pairs: 4,
                lr: 1e-3,
                eval_every: 2,
                val_pairs: 8,
                routing: Routing::OracleSoft,
                engine,
                ..MoleTrainConfig::default()
            },
            |_, _| {},
        )
    };
    let summary = run(MoleEngine::Auto).unwrap();
    assert_eq!(summary.routing, Routing::OracleSoft);
    assert_eq!(summary.training.engine, MoleEngine::Autograd);
    let components = Dataset::load(&data)
        .unwrap()
        .users()
        .iter()
        .filter_map(|u| u.weights.as_ref().map(Vec::len))
        .max()
        .unwrap();
    assert_eq!(summary.oracle_groups.len(), components);
    assert!(summary.oracle_groups.iter().all(|g| g.starts_with('w')));
    assert!((0.0..=1.0).contains(&summary.test_accuracy));
    assert!(!out.join("mole.safetensors").exists());
    let e = run(MoleEngine::Packed).unwrap_err();
    assert!(
        format!("{e:#}").contains("--routing oracle-soft weighs every expert"),
        "{e:#}"
    );
}
