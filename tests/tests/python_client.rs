//! The Python client (`clients/python`) against real servers: builds a tiny checkpoint,
//! starts copl-server three times — two plaintext replicas (the first with its HTTP/JSON
//! port too, for the HTTP tests' real HTTP client) (each its own store and
//! metrics: the round-robin test counts every replica's calls), and one with mutual TLS
//! (a test CA signs its certificate and a client's; another CA signs a stranger's) — and
//! runs the client's pytest suite with grpcio from PyPI in `.venv-client` (made by
//! `scripts/python-client.sh venv`; `make test` runs it).

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::{path::Path, process::Command};

use copl_tests::{
    Server, free_port,
    pki::{authority, signed},
    tiny_checkpoint, unseen_answers,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_passes_its_tests_against_a_live_server() {
    use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = workspace.join(".venv-client/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/python-client.sh venv (make test does)",
        python.display()
    );
    let root = tempfile::tempdir().unwrap();
    let (data, ckpt) = tiny_checkpoint(root.path());
    // The first replica also serves HTTP/JSON (`http_listen`).
    let http = format!("127.0.0.1:{}", free_port());
    let server = Server::start(
        &ckpt,
        &root.path().join("store"),
        &[("COPL_HTTP_LISTEN", http.as_str())],
    );
    let replica = Server::start(&ckpt, &root.path().join("replica-store"), &[]);
    let file = |name: &str, pem: &str| {
        let path = root.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path.to_str().unwrap().to_string()
    };
    let (ca, ca_pem) = authority("copl test CA");
    let (other, _) = authority("someone else's CA");
    let ca_file = file("ca.pem", &ca_pem);
    let (cert, key) = signed(&ca, &["localhost"], ServerAuth);
    let (server_cert, server_key) = (file("server.pem", &cert), file("server.key", &key));
    let (cert, key) = signed(&ca, &[], ClientAuth);
    let (client_cert, client_key) = (file("client.pem", &cert), file("client.key", &key));
    let (cert, key) = signed(&other, &[], ClientAuth);
    let (stranger_cert, stranger_key) = (file("stranger.pem", &cert), file("stranger.key", &key));
    let tls = Server::start(
        &ckpt,
        &root.path().join("tls-store"),
        &[
            ("COPL_TLS__CERT", server_cert.as_str()),
            ("COPL_TLS__KEY", server_key.as_str()),
            ("COPL_TLS__CLIENT_CA", ca_file.as_str()),
        ],
    );
    server.serving("copl.v1.RewardService").await;
    replica.serving("copl.v1.RewardService").await;
    let tls_port = tls.addr.rsplit(':').next().unwrap().to_string();
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
        .env("COPL_HTTP", &http)
        .env("COPL_REPLICAS", format!("{},{}", server.addr, replica.addr))
        .env(
            "COPL_METRICS",
            format!("{},{}", server.metrics, replica.metrics),
        )
        .env("COPL_TLS_ADDR", format!("localhost:{tls_port}"))
        .env("COPL_TLS_CA", &ca_file)
        .env("COPL_TLS_CLIENT", format!("{client_cert},{client_key}"))
        .env(
            "COPL_TLS_STRANGER",
            format!("{stranger_cert},{stranger_key}"),
        )
        .env("COPL_SEEN_USER", "user-00000")
        .env("COPL_ANSWERS", answers)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the Python client's tests failed (output above)"
    );
}
