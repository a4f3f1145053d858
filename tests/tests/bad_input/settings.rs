//! Settings the model cannot honour: the server refuses to start on them, naming the
//! setting.

use copl_tests::{binary, text, tiny_checkpoint};

/// A `limits.max_input_tokens` the template alone fills would score every response of a
/// prompt alike (each cut to the template): refused at start, naming the setting.
#[test]
fn a_token_limit_the_template_fills_is_refused_at_start() {
    let root = tempfile::tempdir().unwrap();
    let (_data, ckpt) = tiny_checkpoint(root.path());
    let mut server = std::process::Command::new(binary("copl-server"))
        .args([
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--data-dir",
            root.path().join("store").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "",
        ])
        // BERT's pair template alone is `[CLS] [SEP] [SEP]`.
        .env("COPL_LIMITS__MAX_INPUT_TOKENS", "3")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A server that accepted the limit would serve on: fail instead of waiting forever.
    let started = std::time::Instant::now();
    while server.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(120) {
            server.kill().unwrap();
            panic!("started with no room for a response");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = server.wait_with_output().unwrap();
    assert!(!out.status.success(), "started with no room for a response");
    let err = text(&out).1;
    assert!(
        err.contains("limits.max_input_tokens = 3") && err.contains("no room for the response"),
        "{err}"
    );
}
