#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! The report's building blocks (issue #9): the PNG figures (decoded back: size, colours
//! where the data are); and a file not of its writer's shape refused naming it (issue #17).

mod report_fixtures;

use copl_report::figures::{self, SIZE, Series};

/// A pixel: x, y, RGB.
type Pixel = (u32, u32, [u8; 3]);

/// Pixels of the figure that are neither white nor grey (the data's colours).
fn coloured(path: &std::path::Path) -> Vec<Pixel> {
    let image = image::open(path).unwrap().to_rgb8();
    assert_eq!(image.dimensions(), SIZE);
    image
        .enumerate_pixels()
        .filter(|(_, _, p)| {
            let [r, g, b] = p.0;
            r.max(g).max(b) - r.min(g).min(b) > 60
        })
        .map(|(x, y, p)| (x, y, p.0))
        .collect()
}

#[test]
fn figures_are_pngs_that_draw_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let rising = Series {
        name: "CoPL 2-hop".into(),
        points: (1..=8).map(|k| (k as f64, 0.5 + 0.05 * k as f64)).collect(),
    };
    let flat = Series {
        name: "naive average".into(),
        points: (1..=8).map(|k| (k as f64, 0.6)).collect(),
    };
    let line = dir.path().join("line.png");
    figures::line_chart(
        &line,
        "accuracy against answers",
        ("answers", "accuracy"),
        &[rising.clone(), flat],
    )
    .unwrap();
    let drawn = coloured(&line);
    assert!(drawn.len() > 500, "{} coloured pixels", drawn.len());
    // A rising series alone: its points near the left sit lower (larger y) than near the
    // right.
    let only_rising = dir.path().join("rising.png");
    figures::scatter(&only_rising, "one series", ("x", "y"), &[rising]).unwrap();
    let points = coloured(&only_rising);
    // Inside the plot area (clear of the axis labels and the legend box at the top right).
    let inside = |p: &&Pixel| p.0 > 80 && p.0 < SIZE.0 - 250 && p.1 > 120;
    let (left, right): (Vec<&Pixel>, Vec<_>) =
        points.iter().filter(inside).partition(|p| p.0 < SIZE.0 / 2);
    let mean_y = |v: &[&Pixel]| v.iter().map(|p| p.1 as f64).sum::<f64>() / v.len() as f64;
    assert!(!left.is_empty() && !right.is_empty());
    assert!(mean_y(&left) > mean_y(&right), "the points do not rise");

    let bars = dir.path().join("bars.png");
    figures::bars(
        &bars,
        "experts by group",
        "share of users",
        &["e0".into(), "e1".into()],
        &[
            ("detail".into(), vec![1.0, 0.0]),
            ("hedging".into(), vec![0.2, 0.8]),
        ],
    )
    .unwrap();
    assert!(coloured(&bars).len() > 2000);
    let e = figures::bars(
        &bars,
        "t",
        "y",
        &["e0".into()],
        &[("g".into(), vec![1.0, 2.0])],
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("series \"g\" has 2 values for 1 categories"),
        "{e}"
    );
}

#[test]
fn a_file_not_of_its_writers_shape_is_refused_naming_it() {
    use copl_report::results::report;
    use report_fixtures::write;
    let out = tempfile::tempdir().unwrap();
    // The report's error over `runs`, with its causes.
    let refusal = |runs: &std::path::Path| {
        let e = report(runs, &out.path().join("results"), &out.path().join("r.md")).unwrap_err();
        format!("{e:#}")
    };
    // Not JSON at all.
    let runs = tempfile::tempdir().unwrap();
    write(
        runs.path(),
        "gcf/ufp4-all-gcf.eval.json",
        &report_fixtures::gcf_eval(0.6, false),
    );
    std::fs::write(runs.path().join("gcf/ufp4-all-mf.eval.json"), "{ not json").unwrap();
    let e = refusal(runs.path());
    assert!(e.contains("ufp4-all-mf.eval.json: not JSON"), "{e}");
    // JSON with a field renamed (what untyped reading turned into a silent `–`).
    let runs = tempfile::tempdir().unwrap();
    let mut renamed = serde_json::to_value(report_fixtures::eval(
        report_fixtures::split(0.9, 0.9, 0.9),
        None,
    ))
    .unwrap();
    let seen = renamed.as_object_mut().unwrap().remove("seen").unwrap();
    renamed["seen_users"] = seen;
    write(runs.path(), "mole/ufp2/copl.eval.json", &renamed);
    let e = refusal(runs.path());
    assert!(
        e.contains("copl.eval.json: not JSON of the expected shape"),
        "{e}"
    );
    assert!(e.contains("missing field `seen`"), "{e}");
    // A file of a newer format than this build reads: refused, naming file and versions.
    let runs = tempfile::tempdir().unwrap();
    let mut newer = serde_json::to_value(report_fixtures::eval(
        report_fixtures::split(0.9, 0.9, 0.9),
        None,
    ))
    .unwrap();
    newer["format_version"] = serde_json::json!(99);
    write(runs.path(), "mole/ufp2/copl.eval.json", &newer);
    let e = refusal(runs.path());
    assert!(
        e.contains("copl.eval.json: format_version 99 is newer than this build reads (1)"),
        "{e}"
    );
    // A training summary whose history lost its losses.
    let runs = tempfile::tempdir().unwrap();
    write(
        runs.path(),
        "mole/ufp2/copl.eval.json",
        &report_fixtures::eval(report_fixtures::split(0.9, 0.9, 0.9), None),
    );
    let mut summary =
        serde_json::to_value(report_fixtures::training(100, 10, &[(100, 0.4)], 100)).unwrap();
    summary["history"][0]
        .as_object_mut()
        .unwrap()
        .remove("train_loss");
    write(runs.path(), "mole/ufp2/copl.json", &summary);
    let e = refusal(runs.path());
    assert!(
        e.contains("copl.json: not JSON of the expected shape"),
        "{e}"
    );
}
