#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! The report's routing section (issue #13 items 1–2): the gates' routing at CoPL's
//! first, kept and last validation steps, and CoPL against oracle routing read against
//! two standard errors.

mod report_fixtures;

use copl_synth::{Preset, Sampling};
use copl_trainer::mole::routing::{ProjectionPurity, RoutingMeasure};
use report_fixtures::{markdown_of, synth, training, write};

/// Two projections with these (majority share, distinct majority experts), 4 and 3
/// experts used.
fn measure(a: (f64, usize), b: (f64, usize)) -> RoutingMeasure {
    let purity = |(majority_share, distinct_majorities)| ProjectionPurity {
        majority_share,
        entropy_bits: 0.1,
        distinct_majorities,
    };
    RoutingMeasure {
        experts_used: vec![4, 3],
        purity: vec![purity(a), purity(b)],
    }
}

#[test]
fn the_gates_routing_is_shown_at_the_first_kept_and_last_steps_and_against_oracle_routing() {
    let runs = tempfile::tempdir().unwrap();
    let r = runs.path();
    let set = "mole/ufp4-all-1k";
    write(
        r,
        &format!("{set}/data/synth.json"),
        &synth(Preset::Ufp4, Sampling::All, 1000, &[], (1.0, 0.7)),
    );
    // Steps 50, 100 (kept), 150: the groups come apart in one projection, then in both.
    let mut copl = training(150, 16000, &[(50, 0.6), (100, 0.3), (150, 0.2)], 100);
    let steps = [
        measure((0.6, 2), (0.5, 2)),
        measure((0.9, 4), (0.7, 3)),
        measure((1.0, 4), (0.98, 4)),
    ];
    for (record, m) in copl.training.history.iter_mut().zip(steps) {
        record.routing = Some(m);
    }
    copl.test_pairs = 512;
    copl.test_accuracy = 0.80;
    write(r, &format!("{set}/copl.json"), &copl);
    let mut routed = training(150, 16000, &[(150, 0.1)], 150);
    routed.test_pairs = 512;
    routed.test_accuracy = 0.95;
    write(r, &format!("{set}/copl-oracle.json"), &routed);

    let md = markdown_of(r);
    for row in [
        "| ufp4-all-1k | 4 | 50 | 90.00 | 0.550, 0.500 | 2–2 | 3.5 |",
        "| ufp4-all-1k | 4 | 100 (kept) | 90.00 | 0.800, 0.700 | 3–4 | 3.5 |",
        "| ufp4-all-1k | 4 | 150 | 90.00 | 0.990, 0.980 | 4–4 | 3.5 |",
        "| ufp4-all-1k | 512 | 80.00 | 95.00 | – | – |",
    ] {
        assert!(md.contains(row), "{row} in {md}");
    }
    assert!(
        md.contains(
            "ufp4-all-1k: at step 50 majority share 0.55 (no projection routes all 4 groups \
             apart), at step 150 0.99 (every projection routes the groups apart)"
        ),
        "{md}"
    );
    // 2·√(.8·.2/512 + .95·.05/512) = 4.0: +15 is beyond it.
    assert!(
        md.contains(
            "ufp4-all-1k: top-1 oracle routing +15.0 points (beyond 2 SE = 4.0) over the gates"
        ),
        "{md}"
    );
    assert!(!md.contains("no oracle-routing run"), "{md}");
    // The curve over every validation step, drawn.
    assert!(
        md.contains(
            "![The gates' majority share over training](results/routing-majority-share.png)"
        ),
        "{md}"
    );
    let png = std::fs::read(r.join("out/results/routing-majority-share.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
}

#[test]
fn mixtures_and_unknown_groups_are_not_guessed_and_a_soft_oracle_stands_alone() {
    let runs = tempfile::tempdir().unwrap();
    let r = runs.path();
    let mut copl = training(100, 8000, &[(100, 0.2)], 100);
    copl.training.history[0].routing = Some(measure((0.9, 4), (0.8, 3)));
    write(r, "mole/personal-all/copl.json", &copl);
    write(
        r,
        "mole/personal-all/data/synth.json",
        &synth(Preset::Personal, Sampling::All, 1000, &[], (1.0, 0.75)),
    );
    write(r, "mole/tldr-all/copl.json", &copl);
    // A soft oracle alone (no top-1 run): its column and its gain over the gates.
    let mut soft = training(100, 8000, &[(100, 0.2)], 100);
    soft.test_pairs = 512;
    soft.test_accuracy = 0.92;
    write(r, "mole/personal-all/copl-oracle-soft.json", &soft);
    let md = markdown_of(r);
    // CoPL's fixture summary scores 0.9 on 100 pairs: 2·√(.9·.1/100 + .92·.08/512) = 6.5.
    assert!(
        md.contains("| personal-all | 100 | 90.00 | – | 92.00 | – |"),
        "{md}"
    );
    assert!(
        md.contains("personal-all: soft +2.0 points (within 2 SE = 6.5) over the gates."),
        "{md}"
    );
    assert!(
        md.contains("| personal-all | mixtures | 100 (kept) |"),
        "{md}"
    );
    assert!(
        md.contains(
            "personal-all: at step 100 majority share 0.85 (3–4 distinct majority experts)"
        ),
        "{md}"
    );
    // No generator summary: the groups are not guessed.
    assert!(md.contains("| tldr-all | ? | 100 (kept) |"), "{md}");
}

#[test]
fn without_oracle_routing_the_section_names_the_stage_that_makes_it() {
    let runs = tempfile::tempdir().unwrap();
    let r = runs.path();
    let mut copl = training(100, 8000, &[(100, 0.2)], 100);
    copl.training.history[0].routing = Some(measure((1.0, 2), (1.0, 2)));
    write(r, "mole/tldr-all/copl.json", &copl);
    let md = markdown_of(r);
    assert!(
        md.contains("no oracle-routing run (scripts/report.sh, stage oracle"),
        "{md}"
    );
}
