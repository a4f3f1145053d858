//! End to end across the binaries: generate a benchmark with `copl-train`, validate it,
//! and check that the binaries refuse bad input with messages that say what is wrong.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::fs;

use copl_core::data::Dataset;
use copl_tests::{run, text};

#[test]
fn synth_then_check_round_trips_through_the_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ufp2");
    let out_str = out.to_str().unwrap();
    let output = run(
        "copl-train",
        &[
            "synth",
            "--preset",
            "ufp2",
            "--sampling",
            "avg",
            "--users",
            "300",
            "--unseen-users",
            "4",
            "--seed",
            "3",
            "--out",
            out_str,
            "--json",
        ],
    );
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["seen_users"], 300);
    assert_eq!(summary["unseen_users"], 4);
    assert_eq!(summary["ground_truth_test_accuracy"], 1.0);
    // The summary is kept beside the data for provenance.
    let kept: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("synth.json")).unwrap()).unwrap();
    assert_eq!(kept, summary);

    let dataset = Dataset::load(&out).unwrap();
    assert_eq!(dataset.users().len(), 304);
    assert_eq!(
        dataset.annotations().len() as u64,
        summary["train_annotations"].as_u64().unwrap()
            + summary["val_annotations"].as_u64().unwrap()
            + summary["test_annotations"].as_u64().unwrap()
    );

    let output = run("copl-train", &["check", "--data", out_str]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("valid"), "{stdout}");
    // The same result as JSON: the counts the summary gave.
    let counts: serde_json::Value = serde_json::from_str(&copl_tests::run_ok(
        "copl-train",
        &["check", "--data", out_str, "--json"],
    ))
    .unwrap();
    assert_eq!(counts["users_with_ground_truth"], 304, "{counts}");
    assert_eq!(
        counts["annotations"],
        summary["train_annotations"].as_u64().unwrap()
            + summary["val_annotations"].as_u64().unwrap()
            + summary["test_annotations"].as_u64().unwrap()
    );
}

#[test]
fn check_names_file_line_and_field_of_bad_data() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("responses.jsonl"),
        "{\"id\": \"a\", \"prompt\": \"p\", \"response\": \"x\"}\n{\"id\": \"b\", \"prompt\": \"q\", \"response\": \"y\"}\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("annotations.jsonl"),
        "{\"user\": \"u\", \"chosen\": \"a\", \"rejected\": \"b\", \"split\": \"train\"}\n",
    )
    .unwrap();
    let output = run(
        "copl-train",
        &["check", "--data", dir.path().to_str().unwrap()],
    );
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("annotations.jsonl:1: field `rejected`"),
        "{stderr}"
    );
    assert!(stderr.contains("different prompts"), "{stderr}");
}

#[test]
fn synth_refuses_bad_flags_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let output = run(
        "copl-train",
        &[
            "synth",
            "--preset",
            "tldr",
            "--group-ratio",
            "1:x",
            "--out",
            out,
        ],
    );
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("--group-ratio") && stderr.contains("\"x\""),
        "{stderr}"
    );

    let output = run(
        "copl-train",
        &[
            "synth",
            "--preset",
            "tldr",
            "--label-noise",
            "0.9",
            "--out",
            out,
        ],
    );
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(stderr.contains("label_noise"), "{stderr}");
}

#[test]
fn server_without_a_checkpoint_and_client_without_a_server_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        "copl-server",
        &["--checkpoint", dir.path().join("missing").to_str().unwrap()],
    );
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(stderr.contains("is not a directory"), "{stderr}");

    // Port 9 (discard) on loopback: nothing serves gRPC there.
    let output = run(
        "copl",
        &["--addr", "http://127.0.0.1:9", "--timeout", "2", "health"],
    );
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("cannot connect to http://127.0.0.1:9"),
        "{stderr}"
    );
}

#[test]
fn bench_forward_times_both_served_paths_at_fixed_and_mixed_lengths() {
    let dir = tempfile::tempdir().unwrap();
    copl_tests::tiny_bert(dir.path());
    let backbone = dir.path().to_str().unwrap();
    let stdout = copl_tests::run_ok(
        "copl-bench",
        &[
            "forward",
            "--backbone",
            backbone,
            "--batches",
            "1,4",
            "--tokens",
            "64",
            "--repeats",
            "1",
            "--json",
        ],
    );
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    // batch 1: backbone + one user; batch 4: + mixed users; × fixed/mixed × two paths.
    assert_eq!(rows.len(), (2 + 3) * 2 * 2, "{stdout}");
    for path in ["packed", "reference"] {
        for lengths in ["fixed", "mixed"] {
            let found = rows
                .iter()
                .filter(|r| r["path"] == path && r["lengths"] == lengths)
                .count();
            assert_eq!(found, 5, "{path} {lengths}");
        }
    }
    for r in &rows {
        let (seconds, rate) = (
            r["seconds"].as_f64().unwrap(),
            r["tokens_per_second"].as_f64().unwrap(),
        );
        assert!(seconds > 0.0 && rate > 0.0, "{r}");
        // Real tokens: 4 × 64 when fixed, fewer when mixed (no padding counted).
        let tokens = rate * seconds;
        let batch = r["batch"].as_f64().unwrap();
        if r["lengths"] == "fixed" {
            assert!((tokens - batch * 64.0).abs() < 0.5, "{r}");
        } else {
            assert!(tokens < batch * 64.0 && tokens >= batch * 16.0, "{r}");
        }
    }
    // The table form: a header and one line a row.
    let table = copl_tests::run_ok(
        "copl-bench",
        &[
            "forward",
            "--backbone",
            backbone,
            "--batches",
            "1",
            "--tokens",
            "32",
            "--repeats",
            "1",
            "--paths",
            "packed",
        ],
    );
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("variant") && lines[0].contains("tokens/s"),
        "{table}"
    );
    assert_eq!(lines.len(), 1 + 2 * 2, "{table}");
    let refused = run(
        "copl-bench",
        &["forward", "--backbone", backbone, "--paths", "fast"],
    );
    let (_, stderr) = text(&refused);
    assert!(!refused.status.success());
    assert!(stderr.contains("--paths: \"fast\""), "{stderr}");
}

#[test]
fn copl_writing_into_a_closed_pipe_ends_quietly() {
    // `copl info | head -1`: the reader goes away before the command prints. Made
    // certain here by closing the pipe's read end before `copl` starts.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = std::process::Command::new(copl_tests::binary("copl"))
        .arg("keygen")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}
