#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! Optimisation-free adaptation (eq. 11): every edge case of the onboarding issue with
//! its exact expected outcome, on a hand-built graph whose numbers can be checked by hand.

use std::collections::HashMap;

use copl_core::{
    adapt::{
        AdaptConfig, AdaptError, Adapter, Answer, Fallback, SurveyConfig, SurveyEngine, Weighting,
        resolve_answers,
    },
    graph::PreferenceGraph,
};

/// Users (pairs chosen ≻ rejected):
/// u0: 0≻1, 3≻5   u1: 0≻1   u2: 2≻0   u3: 3≻2, 4≻2   u4: 7≻6
/// Responses 8 and 9 have no edge. d = 2.
fn adapter() -> Adapter {
    let pairs = [
        (0, 0, 1),
        (0, 3, 5),
        (1, 0, 1),
        (2, 2, 0),
        (3, 3, 2),
        (3, 4, 2),
        (4, 7, 6),
    ];
    let graph = PreferenceGraph::from_pairs(5, 10, &pairs);
    let users = vec![2.0, 0.0, 0.8, 0.6, -1.0, 0.0, 0.0, 1.0, 0.6, -0.8];
    let responses = vec![
        1.0, 0.0, -1.0, 0.0, 0.0, -1.0, 0.5, 0.5, 0.0, 1.0, -0.5, 0.0, 0.0, 0.2, 0.3, 0.0, 1.0,
        1.0, 0.0, 0.0,
    ];
    Adapter::new(graph, users, responses, 2).unwrap()
}

fn answer(chosen: u32, rejected: u32) -> Answer {
    Answer { chosen, rejected }
}

fn config(min_neighbours: usize) -> AdaptConfig {
    AdaptConfig {
        min_neighbours,
        ..AdaptConfig::default()
    }
}

fn close(a: &[f32], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (f64::from(*x) - y).abs() < 1e-5)
}

fn ln_sigmoid(x: f64) -> f64 {
    -(1.0 + (-x).exp()).ln()
}

/// eq. 11 by hand for the answer 0 ≻ 1 (direction e0 − e1 = (2, 0)) over u0 and u1.
fn expected_two_hop() -> Vec<f64> {
    let (e0, e1) = ([1.0, 0.0], [0.8, 0.6]);
    let (g0, g1) = (ln_sigmoid(2.0 * e0[0]), ln_sigmoid(2.0 * e1[0]));
    let (a0, a1) = ((g0 / 0.07).exp(), (g1 / 0.07).exp());
    let (w0, w1) = (a0 / (a0 + a1), a1 / (a0 + a1));
    let sum = [w0 * e0[0] + w1 * e1[0], w0 * e0[1] + w1 * e1[1]];
    let norm = (sum[0] * sum[0] + sum[1] * sum[1]).sqrt();
    vec![sum[0] / norm, sum[1] / norm]
}

#[test]
fn two_hop_adaptation_is_eq_11_over_normalised_neighbours() {
    let a = adapter();
    let result = a.adapt(&[answer(0, 1)], &config(2)).unwrap();
    assert_eq!(result.fallback, Fallback::None);
    assert_eq!(result.neighbourhood_size, 2, "u0 and u1 chose response 0");
    assert_eq!(result.hops_used, 2);
    assert!(
        close(&result.embedding, &expected_two_hop()),
        "{:?}",
        result.embedding
    );
    assert_eq!(result.answer_agreement, 1.0);
    // One answer reproduced: P(p > ½) = ¾; effective neighbours ≥ 1 and < 2.
    let support = (result.effective_neighbours / 2.0).min(1.0);
    assert!(result.effective_neighbours > 1.0 && result.effective_neighbours < 2.0);
    assert!((result.confidence - 0.75 * support).abs() < 1e-6);
    assert_eq!(result.answers.given, 1);
    assert_eq!(result.answers.used, 1);
}

#[test]
fn the_better_aligned_neighbour_weighs_more_and_naive_average_does_not_weigh() {
    let a = adapter();
    let copl = a.adapt(&[answer(0, 1)], &config(2)).unwrap();
    let naive = a
        .adapt(
            &[answer(0, 1)],
            &AdaptConfig {
                weighting: Weighting::Uniform,
                ..config(2)
            },
        )
        .unwrap();
    // Uniform mean of (1, 0) and (0.8, 0.6), normalised.
    let norm = (1.8f64 * 1.8 + 0.6 * 0.6).sqrt();
    assert!(close(&naive.embedding, &[1.8 / norm, 0.6 / norm]));
    assert!((naive.effective_neighbours - 2.0).abs() < 1e-6);
    // u0 fits 0 ≻ 1 better than u1: CoPL leans towards u0 = (1, 0).
    assert!(copl.embedding[0] > naive.embedding[0]);
}

#[test]
fn few_neighbours_widen_the_walk_two_hops_at_a_time() {
    let a = adapter();
    // 2 hops: {u0, u1} < 5. 4 hops: u0 also chose 3, which u3 chose → {u0, u1, u3}.
    // 6 hops: nobody new. Rejected response 1's other rejecters are u0, u1: nobody new.
    let result = a.adapt(&[answer(0, 1)], &config(5)).unwrap();
    assert_eq!(result.fallback, Fallback::WidenedHops);
    assert_eq!(result.neighbourhood_size, 3);
    assert_eq!(result.hops_used, 4);
}

#[test]
fn enough_neighbours_within_k_hops_do_not_widen() {
    let a = adapter();
    let four = a
        .adapt(
            &[answer(0, 1)],
            &AdaptConfig {
                hops: 4,
                ..config(1)
            },
        )
        .unwrap();
    assert_eq!(four.fallback, Fallback::None);
    assert_eq!((four.neighbourhood_size, four.hops_used), (3, 4));
}

#[test]
fn no_fan_of_the_chosen_response_falls_back_to_users_who_rejected_the_same() {
    let a = adapter();
    // Response 6 has only a negative edge (u4 rejected it): no positive neighbour.
    // Response 5 was rejected by u0: the signed neighbourhood is {u0}.
    let result = a.adapt(&[answer(6, 5)], &config(5)).unwrap();
    assert_eq!(result.fallback, Fallback::SignedNeighbours);
    assert_eq!(result.neighbourhood_size, 1);
    assert!(close(&result.embedding, &[1.0, 0.0]), "exactly ê(u0)");
    assert!((result.effective_neighbours - 1.0).abs() < 1e-6);
}

#[test]
fn no_neighbour_at_all_gives_the_population_embedding_with_zero_confidence() {
    let a = adapter();
    // Nobody chose 6; nobody rejected 4.
    let result = a.adapt(&[answer(6, 4)], &config(1)).unwrap();
    assert_eq!(result.fallback, Fallback::Population);
    assert_eq!(result.embedding, a.population_embedding());
    assert_eq!(
        (
            result.neighbourhood_size,
            result.hops_used,
            result.confidence
        ),
        (0, 0, 0.0)
    );
    assert_eq!(result.answers.used, 1);
    // Population: normalised mean of ê = (1,0), (.8,.6), (−1,0), (0,1), (.6,−.8).
    let mean = [1.4f64 / 5.0, 0.8 / 5.0];
    let norm = (mean[0] * mean[0] + mean[1] * mean[1]).sqrt();
    assert!(close(
        a.population_embedding(),
        &[mean[0] / norm, mean[1] / norm]
    ));
    // s(pop, 6) − s(pop, 4) = ⟨pop, (0, −0.8)⟩ < 0: the answer is not reproduced.
    assert_eq!(result.answer_agreement, 0.0);
}

#[test]
fn answers_on_responses_outside_the_graph_are_set_aside() {
    let a = adapter();
    let only_outside = a.adapt(&[answer(8, 9)], &config(2)).unwrap();
    assert_eq!(only_outside.fallback, Fallback::Population);
    assert_eq!(only_outside.answers.outside_graph, 1);
    assert_eq!(only_outside.answers.used, 0);
    assert_eq!(only_outside.answer_agreement, 0.0);

    let mixed = a.adapt(&[answer(8, 0), answer(0, 1)], &config(2)).unwrap();
    assert_eq!((mixed.answers.used, mixed.answers.outside_graph), (1, 1));
    assert!(close(&mixed.embedding, &expected_two_hop()));
}

#[test]
fn duplicates_merge_into_one_answer() {
    let a = adapter();
    let once = a.adapt(&[answer(0, 1)], &config(2)).unwrap();
    let thrice = a
        .adapt(&[answer(0, 1), answer(0, 1), answer(0, 1)], &config(2))
        .unwrap();
    assert_eq!(thrice.embedding, once.embedding);
    assert_eq!(thrice.confidence, once.confidence);
    assert_eq!(
        (
            thrice.answers.given,
            thrice.answers.used,
            thrice.answers.duplicates
        ),
        (3, 1, 2)
    );
}

#[test]
fn contradictions_are_settled_by_majority_and_ties_dropped() {
    let a = adapter();
    let tie = a.adapt(&[answer(0, 1), answer(1, 0)], &config(2)).unwrap();
    assert_eq!(tie.fallback, Fallback::Population);
    assert_eq!(
        (
            tie.answers.used,
            tie.answers.contradictory,
            tie.answers.duplicates
        ),
        (0, 1, 0)
    );

    let majority = a
        .adapt(&[answer(1, 0), answer(0, 1), answer(0, 1)], &config(2))
        .unwrap();
    assert_eq!(
        (
            majority.answers.used,
            majority.answers.contradictory,
            majority.answers.duplicates
        ),
        (1, 1, 1)
    );
    assert!(close(&majority.embedding, &expected_two_hop()));
}

#[test]
fn one_answer_that_disagrees_with_every_neighbour_has_low_confidence() {
    let a = adapter();
    // 1 ≻ 0: fans of 1 — nobody chose 1; rejecters of 0: u2 → signed {u2} = (−1, 0),
    // which orders 1 ≻ 0 as the user did.
    let result = a.adapt(&[answer(1, 0)], &config(1)).unwrap();
    assert_eq!(result.fallback, Fallback::SignedNeighbours);
    assert!(close(&result.embedding, &[-1.0, 0.0]));
    assert_eq!(result.answer_agreement, 1.0);
    // One effective neighbour halves the posterior ¾.
    assert!((result.confidence - 0.375).abs() < 1e-6);
}

#[test]
fn the_adaptation_reads_nothing_but_the_answers_given() {
    let a = adapter();
    let first = a.adapt(&[answer(0, 1), answer(3, 2)], &config(2)).unwrap();
    let reordered = a.adapt(&[answer(3, 2), answer(0, 1)], &config(2)).unwrap();
    assert!(close(
        &first.embedding,
        &reordered
            .embedding
            .iter()
            .map(|&x| f64::from(x))
            .collect::<Vec<_>>()
    ));
    assert_eq!(first.neighbourhood_size, 3, "fans of 0 and 3: u0, u1, u3");
}

#[test]
fn bad_input_is_refused_with_the_answer_it_concerns() {
    let a = adapter();
    assert!(matches!(
        a.adapt(&[], &AdaptConfig::default()),
        Err(AdaptError::NoAnswers)
    ));
    assert!(matches!(
        a.adapt(&[answer(0, 1), answer(2, 2)], &AdaptConfig::default()),
        Err(AdaptError::SelfPreference { index: 1, .. })
    ));
    assert!(matches!(
        a.adapt(&[answer(0, 10)], &AdaptConfig::default()),
        Err(AdaptError::ResponseRow {
            index: 0,
            row: 10,
            responses: 10
        })
    ));
    for (config, field) in [
        (
            AdaptConfig {
                hops: 3,
                ..AdaptConfig::default()
            },
            "hops",
        ),
        (
            AdaptConfig {
                hops: 0,
                ..AdaptConfig::default()
            },
            "hops",
        ),
        (
            AdaptConfig {
                max_hops: 1,
                ..AdaptConfig::default()
            },
            "max_hops",
        ),
        (
            AdaptConfig {
                temperature: 0.0,
                ..AdaptConfig::default()
            },
            "temperature",
        ),
        (
            AdaptConfig {
                temperature: f32::NAN,
                ..AdaptConfig::default()
            },
            "temperature",
        ),
    ] {
        match a.adapt(&[answer(0, 1)], &config) {
            Err(AdaptError::BadOption { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }

    let rows: HashMap<&str, u32> = [("r0", 0), ("r1", 1)].into_iter().collect();
    assert_eq!(
        resolve_answers(&rows, &[("r0", "r1")]).unwrap(),
        vec![answer(0, 1)]
    );
    let err = resolve_answers(&rows, &[("r0", "r1"), ("r1", "nope")]).unwrap_err();
    assert_eq!(err.to_string(), "answer 1: unknown response id \"nope\"");
    let err = resolve_answers(&rows, &[("r1", "r1")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "answer 0: response \"r1\" is both chosen and rejected"
    );
}

#[test]
fn embeddings_that_do_not_fit_the_graph_are_refused() {
    let graph = PreferenceGraph::from_pairs(1, 2, &[(0, 0, 1)]);
    let err = Adapter::new(graph, vec![1.0, 0.0], vec![1.0; 3], 2).unwrap_err();
    assert!(
        err.to_string()
            .contains("do not fit 1 users and 2 responses"),
        "{err}"
    );
}

/// Four users at 0°, 90°, 180°, 270°; response 0 at the origin, so pair (r, 0) has
/// direction e_r. Pairs 1 and 2 split {0°, 90°} from the rest, pair 3 splits
/// {0°, 270°}, pair 4 puts 0° alone (1/3 split).
fn survey_adapter() -> Adapter {
    let pairs = [(0, 1, 0), (1, 2, 0), (2, 3, 0), (3, 4, 0)];
    let graph = PreferenceGraph::from_pairs(4, 5, &pairs);
    let users = vec![1.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.0, -1.0];
    let responses = vec![0.0, 0.0, 1.0, 0.1, 1.0, 0.2, 0.1, -1.0, 1.0, 0.0];
    Adapter::new(graph, users, responses, 2).unwrap()
}

#[test]
fn survey_pairs_split_the_committee_and_never_repeat_a_split() {
    let a = survey_adapter();
    let candidates = [(1, 0), (2, 0), (3, 0), (4, 0)];
    let engine = SurveyEngine::build(&a, &candidates, &SurveyConfig::default());
    assert_eq!(engine.pool_size(), 4);
    for seed in 0..8 {
        let pairs = engine.suggest(&a, &[], &[], 3, seed);
        assert_eq!(pairs.len(), 3);
        let first: Vec<(u32, u32)> = pairs.iter().map(|p| (p.a, p.b)).collect();
        // Two even, different splits first (1 bit each), then nothing left to learn.
        assert_eq!(pairs[0].informativeness, 1.0);
        assert_eq!(pairs[1].informativeness, 1.0);
        assert_eq!(pairs[2].informativeness, 0.0);
        let same_split =
            |x: (u32, u32), y: (u32, u32)| [x.0, y.0].iter().all(|r| [1, 2].contains(r));
        assert!(!same_split(first[0], first[1]), "seed {seed}: {first:?}");
        assert!(first[..2].contains(&(3, 0)), "seed {seed}: {first:?}");
    }
}

#[test]
fn survey_skips_answered_pairs_and_follows_the_answers_so_far() {
    let a = survey_adapter();
    let candidates = [(1, 0), (2, 0), (3, 0), (4, 0)];
    let sharp = SurveyConfig {
        temperature: 0.07,
        ..SurveyConfig::default()
    };
    let engine = SurveyEngine::build(&a, &candidates, &sharp);
    // Answered pair 3 (either direction): never suggested again.
    let next = engine.suggest(&a, &[answer(0, 3)], &[], 4, 0);
    assert!(next.iter().all(|p| (p.a, p.b) != (3, 0)));
    assert_eq!(next.len(), 3);
    // 0 ≻ 3 has direction (−0.1, 1): γ is −0.31 for 90°, −0.64 for 180°, −0.74 for 0°,
    // −1.31 for 270°, so at a sharp κ = 0.07 the committee is ≈ 99 % the 90° user and little is
    // left to learn. What is left is mostly 90° against 180°, which pairs 1 and 2
    // separate and pair 4 does not.
    assert!([1, 2].contains(&next[0].a), "{next:?}");
    assert!(
        next[0].informativeness > 0.0 && next[0].informativeness < 0.2,
        "{next:?}"
    );
}

#[test]
fn candidates_are_the_distinct_annotated_pairs_whose_responses_someone_chose() {
    let a = adapter();
    // Chosen by someone: 0, 2, 3, 4, 7 (not 1, 5, 6, 8, 9).
    let annotated = [(0, 2), (2, 0), (3, 4), (0, 1), (7, 6), (4, 3)];
    let pairs = SurveyEngine::candidate_pairs(&a, &annotated);
    assert_eq!(pairs, vec![(0, 2), (3, 4)]);
}
