//! The Python client (`clients/python`) against the real server: builds a tiny
//! checkpoint, starts copl-server, and runs the client's pytest suite with grpcio from
//! PyPI in `.venv-client` (made by `scripts/python-client.sh venv`; `make test` runs it).

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::{path::Path, process::Command};

use copl_tests::{Server, tiny_checkpoint, unseen_answers};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_passes_its_tests_against_a_live_server() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = workspace.join(".venv-client/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/python-client.sh venv (make test does)",
        python.display()
    );
    let root = tempfile::tempdir().unwrap();
    let (data, ckpt) = tiny_checkpoint(root.path());
    let server = Server::start(&ckpt, &root.path().join("store"), &[]);
    server.serving("copl.v1.RewardService").await;
    let answers = serde_json::to_string(&unseen_answers(&data)).unwrap();
    let status = Command::new(&python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "clients/python/tests",
        ])
        .current_dir(&workspace)
        .env("COPL_ADDR", &server.addr)
        .env("COPL_SEEN_USER", "user-00000")
        .env("COPL_ANSWERS", answers)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the Python client's tests failed (output above)"
    );
}
