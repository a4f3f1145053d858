//! The HTTP/JSON port (`http_listen`) behind the same keys and limits as gRPC: without a
//! key a route answers 401 before the body is read (and the refusal is counted), with a
//! scoring key it scores; a body over `limits.max_message_bytes` is 413; a server asked
//! for HTTP beside TLS refuses to start, naming both settings. (The routes' answers are
//! tested with a real HTTP client in the Python suite: clients/python/tests/test_http.py.)

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::{
    io::{Read, Write},
    time::Duration,
};

use copl_tests::{Server, free_port, keygen, run, scrape, text, tiny_checkpoint};

/// (status, body) of an HTTP/1.1 POST of `body` to `path` with `headers`.
fn post(addr: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let (status, _, body) = post_with_head(addr, path, headers, body);
    (status, body)
}

/// As [`post`], with the answer's header block too.
fn post_with_head(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut stream = None;
    for _ in 0..100 {
        if let Ok(s) = std::net::TcpStream::connect(addr) {
            stream = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut s = stream.unwrap_or_else(|| panic!("no HTTP listener at {addr}"));
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    s.write_all(request.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_routes_take_the_grpc_ports_keys_and_limits() {
    let root = tempfile::tempdir().unwrap();
    let (_data, ckpt) = tiny_checkpoint(root.path());
    let (key, digest) = keygen();
    let http = format!("127.0.0.1:{}", free_port());
    let server = Server::start(
        &ckpt,
        &root.path().join("store"),
        &[
            ("COPL_AUTH__SCORING_KEYS_SHA256", digest.as_str()),
            ("COPL_HTTP_LISTEN", http.as_str()),
            ("COPL_LIMITS__MAX_MESSAGE_BYTES", "65536"),
        ],
    );
    let body = r#"{"items": [{"user_id": "user-00000", "prompt": "How do I keep a houseplant alive?", "response": "Water it weekly."}]}"#;
    // Before the model is loaded: 503 from ScoreBatch's UNAVAILABLE, never a hang.
    let bearer = format!("Bearer {key}");
    let mut scored = post(&http, "/v1/score", &[("Authorization", &bearer)], body);
    for _ in 0..600 {
        if scored.0 != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        scored = post(&http, "/v1/score", &[("Authorization", &bearer)], body);
    }
    assert_eq!(scored.0, 200, "{}", scored.1);
    assert!(scored.1.contains("\"reward\""), "{}", scored.1);
    // Every answer carries its request id: the client's, or one made for it (a refusal
    // before the route too).
    let (status, head, _) = post_with_head(
        &http,
        "/v1/score",
        &[("Authorization", &bearer), ("x-request-id", "trace-me-7")],
        body,
    );
    assert_eq!(status, 200);
    assert!(head.contains("x-request-id: trace-me-7"), "{head}");
    let (status, head, said) = post_with_head(&http, "/v1/score", &[], body);
    assert_eq!(status, 401, "{said}");
    assert!(said.contains("UNAUTHENTICATED"), "{said}");
    let made = head
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .unwrap_or_else(|| panic!("no x-request-id on a refusal: {head}"));
    assert!(
        made.len() == 16 && made.bytes().all(|b| b.is_ascii_hexdigit()),
        "{made}"
    );
    let (status, said) = post(
        &http,
        "/get_reward",
        &[("Authorization", "Bearer wrong")],
        "{}",
    );
    assert_eq!(status, 401, "{said}");
    // Without a key the body is never read: headers announcing 100 MB and no body get
    // their 401 at once (were the body read, this would wait for bytes that never come).
    let mut s = std::net::TcpStream::connect(&http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"POST /v1/score HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
          Content-Length: 100000000\r\n\r\n",
    )
    .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 401", "{}", String::from_utf8_lossy(&head));
    let big = format!(
        r#"{{"items": [{{"prompt": "p", "response": "{}"}}]}}"#,
        "x".repeat(100_000)
    );
    let (status, said) = post(&http, "/v1/score", &[("Authorization", &bearer)], &big);
    assert_eq!(status, 413, "{said}");
    assert!(said.contains("max_message_bytes"), "{said}");
    let metrics = scrape(&server.metrics);
    assert!(
        metrics.contains(r#"copl_requests_total{rpc="http /v1/score",code="Unauthenticated"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"copl_requests_total{rpc="ScoreBatch",code="Ok"}"#),
        "{metrics}"
    );
}

#[test]
fn http_beside_tls_is_refused_at_start_naming_both_settings() {
    let root = tempfile::tempdir().unwrap();
    let output = run(
        "copl-server",
        &[
            "--checkpoint",
            root.path().to_str().unwrap(),
            "--http-listen",
            "127.0.0.1:0",
        ],
    );
    // No TLS here: the start fails on the (empty) checkpoint instead, not on http_listen.
    let (_, stderr) = text(&output);
    assert!(!stderr.contains("http_listen"), "{stderr}");
    let cert = root.path().join("c.pem");
    std::fs::write(&cert, "x").unwrap();
    let output = std::process::Command::new(copl_tests::binary("copl-server"))
        .args(["--checkpoint", root.path().to_str().unwrap()])
        .args(["--http-listen", "127.0.0.1:0"])
        .env("COPL_TLS__CERT", &cert)
        .env("COPL_TLS__KEY", &cert)
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("http_listen") && stderr.contains("tls.cert"),
        "{stderr}"
    );
}
