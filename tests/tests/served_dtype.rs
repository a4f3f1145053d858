#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! The served model in BF16, the precision a GPU serves in (issue #14), checked on the
//! CPU, whose BF16 kernels stand in for the GPU's: `copl-bench scores` — the command
//! `scripts/gpu-check.sh` runs on the GPU against the CPU's saved F32 scores — agrees
//! with F32 within its default tolerance for both backbone families, refuses a
//! tolerance it does not meet naming the row, refuses scores of other rows, and gives
//! every row of a mixed batch (users and lengths) what it gets alone.

use std::path::Path;

use copl_tests::{run, text, tiny_bert, tiny_checkpoint_over, tiny_gemma};

/// `copl-bench scores`' "mixed batch vs alone max |diff| X" figure.
fn batch_vs_alone(stdout: &str) -> f32 {
    let line = stdout
        .lines()
        .find(|l| l.contains("mixed batch vs alone"))
        .unwrap_or_else(|| panic!("no batch line in {stdout}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// `copl-bench scores --ckpt CKPT --rows 12 EXTRA…`.
fn scores(ckpt: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["scores", "--ckpt", ckpt, "--rows", "12"];
    args.extend_from_slice(extra);
    run("copl-bench", &args)
}

fn ok(output: std::process::Output) -> String {
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    stdout
}

fn check(root: &Path, write_backbone: fn(&Path)) {
    let (_, ckpt) = tiny_checkpoint_over(root, write_backbone);
    let ckpt = ckpt.to_str().unwrap();
    let saved = root.join("f32.json");
    std::fs::write(&saved, ok(scores(ckpt, &["--dtype", "f32", "--json"]))).unwrap();
    let saved = saved.to_str().unwrap();

    let f32_table = ok(scores(ckpt, &["--dtype", "f32"]));
    assert!(batch_vs_alone(&f32_table) < 1e-4, "{f32_table}");

    let bf16 = ok(scores(ckpt, &["--dtype", "bf16", "--expect", saved]));
    assert!(bf16.contains("against cpu f32"), "{bf16}");
    // BF16 rounds: a row batched and alone may differ a little, within the tolerance.
    assert!(batch_vs_alone(&bf16) < 0.05, "{bf16}");

    // BF16 is not F32: a zero tolerance is refused, naming the row and the file.
    let output = scores(
        ckpt,
        &["--dtype", "bf16", "--expect", saved, "--tolerance", "0"],
    );
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("row ") && stderr.contains("f32.json"),
        "{stderr}"
    );

    // Scores of other rows are no expectation.
    let output = scores(ckpt, &["--seed", "7", "--expect", saved]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(stderr.contains("its rows are not these"), "{stderr}");
}

#[test]
fn bf16_scores_follow_f32_on_bert() {
    let dir = tempfile::tempdir().unwrap();
    check(dir.path(), tiny_bert);
}

#[test]
fn bf16_scores_follow_f32_on_gemma() {
    let dir = tempfile::tempdir().unwrap();
    check(dir.path(), tiny_gemma);
}
