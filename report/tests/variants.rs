#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! `copl-report variants` (what `scripts/mole-benchmarks.sh` prints) over a run directory
//! built from the writers' own types: each variant's row from its evaluation and its
//! training summary, a variant with only one of the two, the per-group and new-text
//! tables, and a file of the wrong shape refused naming it.

mod report_fixtures;

use copl_report::variants::tables;
use report_fixtures::{by_group, eval, slice, split, training, write};

fn variants(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn each_variant_is_a_row_of_its_evaluation_and_its_training_summary() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "copl.eval.json",
        &eval(split(0.9121, 0.95, 0.85), Some(by_group(0.5, 0.75))),
    );
    write(
        dir.path(),
        "copl.json",
        &training(100, 1000, &[(50, 0.4)], 50),
    );
    // The G-Oracle: an evaluation, no summary of its own (one a group).
    write(
        dir.path(),
        "g-oracle.eval.json",
        &eval(by_group(1.0, 0.9), None),
    );
    // Oracle routing: a summary, no model to evaluate.
    write(
        dir.path(),
        "copl-oracle.json",
        &training(100, 1000, &[(50, 0.4)], 50),
    );
    let md = tables(dir.path(), &variants(&["copl", "g-oracle", "copl-oracle"])).unwrap();
    assert!(
        md.contains("| copl | 91.21 | 95.00 | 85.00 | 62.50 | – | – | 90.00 | 10.00 | 0.00 |"),
        "{md}"
    );
    assert!(
        md.contains("| g-oracle | 95.00 | – | – | – | – | – | – | – | – |"),
        "{md}"
    );
    assert!(
        md.contains("| copl-oracle | – | – | – | – | – | – | 90.00 | 10.00 | 0.00 |"),
        "{md}"
    );
    // Per group: the unseen users' figure beside the seen users' where there is one.
    assert!(md.contains("| g-oracle | detail | 100.00 | – |"), "{md}");
    assert!(md.contains("| g-oracle | hedging | 90.00 | – |"), "{md}");
    // No test pair on new texts: no third table.
    assert!(!md.contains("new texts"), "{md}");
}

#[test]
fn new_texts_get_their_own_table() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = split(0.9, 0.9, 0.9);
    seen.seen_texts = Some(slice(5, 0.8));
    seen.new_texts = Some(slice(5, 1.0));
    write(dir.path(), "copl.eval.json", &eval(seen, None));
    let md = tables(dir.path(), &variants(&["copl"])).unwrap();
    assert!(md.contains("| copl | 80.00 | 100.00 | – | – |"), "{md}");
}

#[test]
fn a_file_not_of_its_writers_shape_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("copl.eval.json"),
        r#"{"variant": "copl", "seen": {"overall": {"pairs": 1}}}"#,
    )
    .unwrap();
    let err = format!(
        "{:#}",
        tables(dir.path(), &variants(&["copl"])).unwrap_err()
    );
    assert!(err.contains("copl.eval.json"), "{err}");
}
