//! What a server refuses at start: a checkpoint it cannot serve, a bad configuration.

use std::{path::Path, process::Command};

use copl_tests::{binary, train};

/// A checkpoint the server cannot serve is refused at start with what is wrong, and the
/// process exits non-zero (no half-started server).
#[test]
fn a_bad_checkpoint_is_refused_with_what_is_wrong() {
    let root = tempfile::tempdir().unwrap();
    let serve = |ckpt: &Path| {
        let output = Command::new(binary("copl-server"))
            .args(["--checkpoint", ckpt.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0"])
            .args(["--data-dir", root.path().join("store").to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let missing = root.path().join("missing");
    let stderr = serve(&missing);
    assert!(stderr.contains("is not a directory"), "{stderr}");

    // GCF only: no reward model trained yet.
    let (data, gcf) = (root.path().join("data"), root.path().join("gcf"));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    train(&[
        "synth",
        "--preset",
        "ufp2",
        "--users",
        "30",
        "--unseen-users",
        "0",
        "--seed",
        "2",
        "--out",
        &s(&data),
    ]);
    train(&[
        "gcf",
        "--data",
        &s(&data),
        "--out",
        &s(&gcf),
        "--dim",
        "8",
        "--layers",
        "1",
        "--epochs",
        "2",
        "--batch-size",
        "10000",
    ]);
    let stderr = serve(&gcf);
    assert!(
        stderr.contains("no model section") && stderr.contains("copl-train mole"),
        "{stderr}"
    );

    // A bad configuration file is refused naming the setting.
    let config = root.path().join("bad.toml");
    std::fs::write(&config, "[limits]\nmax_hops = 5\n").unwrap();
    let output = Command::new(binary("copl-server"))
        .args([
            "--checkpoint",
            gcf.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("limits.max_hops = 5"), "{stderr}");
}
