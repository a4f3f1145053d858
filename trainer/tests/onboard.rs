#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! Onboarding offline: the per-user-optimisation baseline, and `eval-unseen` end to end
//! on a small trained checkpoint.

use copl_core::{
    adapt::{Adapter, Answer},
    graph::PreferenceGraph,
};
use copl_synth::{Preset, SynthConfig, generate};
use copl_trainer::{
    gcf::{GcfArch, TrainConfig, run_gcf},
    onboard::{
        EvalUnseenConfig, eval_unseen,
        user_opt::{UserOptConfig, optimise_user, optimise_user_autograd},
    },
};

#[test]
fn per_user_optimisation_by_hand_matches_autograd_and_fits_the_answers() {
    let graph = PreferenceGraph::from_pairs(1, 4, &[(0, 0, 1)]);
    let responses = vec![1.0, 0.2, -0.5, 0.1, 0.3, -1.0, 0.0, 0.4];
    let adapter = Adapter::new(graph, vec![1.0, 0.0], responses, 2).unwrap();
    let answers = [
        Answer {
            chosen: 0,
            rejected: 1,
        },
        Answer {
            chosen: 3,
            rejected: 2,
        },
        Answer {
            chosen: 0,
            rejected: 2,
        },
    ];
    let config = UserOptConfig::default();
    let by_hand = optimise_user(&adapter, &answers, &config);
    let autograd = optimise_user_autograd(&adapter, &answers, &config).unwrap();
    for (x, y) in by_hand.iter().zip(&autograd) {
        assert!((x - y).abs() < 1e-4, "{by_hand:?} vs {autograd:?}");
    }
    assert!(
        by_hand.iter().any(|x| x.abs() > 0.1),
        "it moved: {by_hand:?}"
    );
    for a in answers {
        assert!(
            adapter.score(&by_hand, a.chosen) > adapter.score(&by_hand, a.rejected),
            "{a:?} not reproduced by {by_hand:?}"
        );
    }
}

#[test]
fn eval_unseen_onboards_every_unseen_user_and_beats_the_population() {
    let data = tempfile::tempdir().unwrap();
    let ckpt = tempfile::tempdir().unwrap();
    let synthetic = generate(&SynthConfig {
        users: 400,
        unseen_users: 10,
        seed: 3,
        ..SynthConfig::new(Preset::Ufp2)
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
    run_gcf(data.path(), ckpt.path(), &config, |_, _| {}).unwrap();
    let eval = eval_unseen(
        data.path(),
        ckpt.path(),
        &EvalUnseenConfig {
            answer_counts: vec![1, 4, 8],
            ..EvalUnseenConfig::default()
        },
    )
    .unwrap();
    assert_eq!(eval.unseen_users, 10);
    assert_eq!(eval.mean_answers, 8.0, "ufp2 gives n = 8 answers");
    assert_eq!(eval.test_pairs, 10 * 50);
    let names: Vec<&str> = eval.methods.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "copl_2hop",
            "copl_4hop",
            "naive_avg_2hop",
            "population",
            "user_opt"
        ]
    );
    // UF-P-2 is fully controversial: one shared preference is right about half the time,
    // an adapted user far more often.
    let accuracy = |name: &str| eval.methods[name].accuracy;
    assert!(accuracy("population") < 0.65, "{eval:#?}");
    assert!(accuracy("copl_2hop") > 0.8, "{eval:#?}");
    assert!(accuracy("copl_2hop") > accuracy("population") + 0.2);
    assert_eq!(eval.copl_2hop.fallbacks.values().sum::<usize>(), 10);
    assert_eq!(eval.by_answers.len(), 3);
    let eight = &eval.by_answers[2];
    assert_eq!(eight.answers, 8);
    assert_eq!(
        eight.random_2hop,
        accuracy("copl_2hop"),
        "8 random = all given"
    );
    assert!(eight.suggested_adaptive.is_some() && eval.survey_note.is_none());
    assert!(eval.survey_pool > 0);
}
