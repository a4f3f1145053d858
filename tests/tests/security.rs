//! Access control and TLS against the real server: API keys with two roles (scoring,
//! admin) sent as `authorization: Bearer`, health and reflection open, TLS by
//! configuration (a self-signed certificate made here), and the CLI's `keygen`,
//! `--api-key` and `--ca-cert`.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use copl_proto::v1::{
    DeleteUserRequest, InfoRequest, OnboardUserRequest, ReloadCheckpointRequest, ScoreRequest,
    reward_service_client::RewardServiceClient,
};
use copl_tests::{
    Server, keygen,
    pki::{authority, signed},
    run, text, tiny_checkpoint, unseen_survey_answers,
};
use tonic::{
    Code, Request,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
};

fn with_key<T>(message: T, key: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(k) = key {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {k}").parse().unwrap());
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_have_two_roles_over_tls() {
    let root = tempfile::tempdir().unwrap();
    let (data, ckpt) = tiny_checkpoint(root.path());
    let (scoring, scoring_digest) = keygen();
    let (admin, admin_digest) = keygen();
    assert_ne!(scoring, admin);
    assert_eq!(scoring_digest.len(), 64);

    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    let (cert_path, key_path) = (root.path().join("cert.pem"), root.path().join("key.pem"));
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, &key_pem).unwrap();
    let server = Server::start(
        &ckpt,
        &root.path().join("store"),
        &[
            ("COPL_AUTH__SCORING_KEYS_SHA256", scoring_digest.as_str()),
            ("COPL_AUTH__ADMIN_KEYS_SHA256", admin_digest.as_str()),
            ("COPL_TLS__CERT", cert_path.to_str().unwrap()),
            ("COPL_TLS__KEY", key_path.to_str().unwrap()),
        ],
    );
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let tls_addr = format!("https://localhost:{port}");
    let channel: Channel = Endpoint::from_shared(tls_addr.clone())
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&cert_pem))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect()
        .await
        .unwrap();

    // Health needs no key (probes): wait for SERVING over TLS.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for _ in 0..600 {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: "copl.v1.RewardService".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        if status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Reflection needs no key either.
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
            channel.clone(),
        );
    let listing = reflection
        .server_reflection_info(tokio_stream::iter(vec![
            tonic_reflection::pb::v1::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(
                    tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                        String::new(),
                    ),
                ),
            },
        ]))
        .await;
    assert!(listing.is_ok(), "{listing:?}");

    let mut api = RewardServiceClient::new(channel);
    let score = || ScoreRequest {
        user_id: "user-00000".into(),
        prompt: "How do I keep a houseplant alive?".into(),
        response: "Water it weekly.".into(),
        truncate: false,
        ..Default::default()
    };
    let code = |r: Result<_, tonic::Status>| {
        r.err()
            .map(|s: tonic::Status| (s.code(), s.message().to_string()))
    };

    // No key, a wrong key: UNAUTHENTICATED, saying what is wrong.
    let (c, m) = code(api.score(with_key(score(), None)).await.map(|_| ())).unwrap();
    assert_eq!(c, Code::Unauthenticated, "{m}");
    assert!(m.contains("authorization: Bearer"), "{m}");
    let (c, m) = code(
        api.score(with_key(score(), Some("copl_wrong")))
            .await
            .map(|_| ()),
    )
    .unwrap();
    assert_eq!(c, Code::Unauthenticated, "{m}");
    let (c, _) = code(api.info(with_key(InfoRequest {}, None)).await.map(|_| ())).unwrap();
    assert_eq!(c, Code::Unauthenticated);
    // The key is checked before the body is read: a body over max_message_bytes (4 MiB)
    // without a key is UNAUTHENTICATED (the body decoded first would be OUT_OF_RANGE /
    // RESOURCE_EXHAUSTED, at the cost of reading it); with a key it meets the size limit.
    let mut huge = score();
    huge.response = "a ".repeat(3 << 20);
    let (c, m) = code(api.score(with_key(huge.clone(), None)).await.map(|_| ())).unwrap();
    assert_eq!(c, Code::Unauthenticated, "{m}");
    let (c, m) = code(api.score(with_key(huge, Some(&scoring))).await.map(|_| ())).unwrap();
    assert_ne!(c, Code::Unauthenticated, "{m}");
    assert_ne!(c, Code::Ok, "{m}");

    // A scoring key scores; an admin key does everything.
    api.score(with_key(score(), Some(&scoring))).await.unwrap();
    api.score(with_key(score(), Some(&admin))).await.unwrap();
    let onboard = || OnboardUserRequest {
        user_id: "keyed-user".into(),
        answers: unseen_survey_answers(&data),
        options: None,
        replace: true,
    };
    // A scoring key on an admin RPC: PERMISSION_DENIED, and nothing happens.
    let (c, m) = code(
        api.onboard_user(with_key(onboard(), Some(&scoring)))
            .await
            .map(|_| ()),
    )
    .unwrap();
    assert_eq!(c, Code::PermissionDenied, "{m}");
    assert!(m.contains("admin key"), "{m}");
    let mut keyed = score();
    keyed.user_id = "keyed-user".into();
    let (c, _) = code(
        api.score(with_key(keyed.clone(), Some(&scoring)))
            .await
            .map(|_| ()),
    )
    .unwrap();
    assert_eq!(c, Code::NotFound);
    api.onboard_user(with_key(onboard(), Some(&admin)))
        .await
        .unwrap();
    api.score(with_key(keyed, Some(&scoring))).await.unwrap();
    let delete = || DeleteUserRequest {
        user_id: "keyed-user".into(),
    };
    let (c, _) = code(
        api.delete_user(with_key(delete(), Some(&scoring)))
            .await
            .map(|_| ()),
    )
    .unwrap();
    assert_eq!(c, Code::PermissionDenied);
    api.delete_user(with_key(delete(), Some(&admin)))
        .await
        .unwrap();
    // Swapping the model is an admin's too (it names a directory on the server).
    let reload = || ReloadCheckpointRequest {
        checkpoint: "/nonexistent".into(),
    };
    let (c, m) = code(
        api.reload_checkpoint(with_key(reload(), Some(&scoring)))
            .await
            .map(|_| ()),
    )
    .unwrap();
    assert_eq!(c, Code::PermissionDenied, "{m}");
    let (c, m) = code(
        api.reload_checkpoint(with_key(reload(), Some(&admin)))
            .await
            .map(|_| ()),
    )
    .unwrap();
    assert_eq!(c, Code::FailedPrecondition, "{m}");

    // Plaintext to the TLS port gets nothing.
    let plain = async {
        let channel = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await?;
        RewardServiceClient::new(channel)
            .score(with_key(score(), Some(&scoring)))
            .await
            .map_err(|s| -> Box<dyn std::error::Error> { Box::new(s) })?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    assert!(
        plain.await.is_err(),
        "a plaintext call succeeded on the TLS port"
    );

    // The CLI: --ca-cert and --api-key (COPL_API_KEY works too).
    let cli = |key: &str| {
        run(
            "copl",
            &[
                "--addr",
                &tls_addr,
                "--ca-cert",
                cert_path.to_str().unwrap(),
                "--api-key",
                key,
                "score",
                "--user",
                "user-00000",
                "--prompt",
                "How do I keep a houseplant alive?",
                "--response",
                "Water it weekly.",
            ],
        )
    };
    let ok = cli(&scoring);
    assert!(ok.status.success(), "{:?}", text(&ok));
    let refused = cli("copl_wrong");
    let (_, stderr) = text(&refused);
    assert!(!refused.status.success());
    assert!(stderr.contains("Unauthenticated"), "{stderr}");
}

/// `limits.max_calls_in_flight` bounds calls over all connections: with a bound of 1,
/// an open ScoreStream (on its own connection) leaves no room, so a Score on another
/// connection is answered RESOURCE_EXHAUSTED naming the limit; once the stream has
/// ended the Score is served. Health stays open throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_are_bounded_over_all_connections() {
    use copl_proto::v1::{ScoreItem, ScoreStreamRequest};
    let root = tempfile::tempdir().unwrap();
    let (_data, ckpt) = tiny_checkpoint(root.path());
    let server = Server::start(
        &ckpt,
        &root.path().join("store"),
        &[("COPL_LIMITS__MAX_CALLS_IN_FLIGHT", "1")],
    );
    let first = server.serving("copl.v1.RewardService").await;
    let score = || ScoreRequest {
        user_id: "user-00001".into(),
        prompt: "How do I keep a houseplant alive?".into(),
        response: "Water it weekly.".into(),
        truncate: false,
        ..Default::default()
    };
    let (items, requests) = tokio::sync::mpsc::unbounded_channel();
    items
        .send(ScoreStreamRequest {
            request_id: 1,
            item: Some(ScoreItem {
                user_id: "user-00001".into(),
                prompt: "How do I keep a houseplant alive?".into(),
                response: "Water it weekly.".into(),
            }),
            truncate: false,
            ..Default::default()
        })
        .unwrap();
    let mut streaming = RewardServiceClient::new(first);
    let mut results = streaming
        .score_stream(tokio_stream::wrappers::UnboundedReceiverStream::new(
            requests,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(results.message().await.unwrap().unwrap().request_id, 1);

    let mut other = RewardServiceClient::new(server.channel().await);
    let refused = other.score(score()).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("limits.max_calls_in_flight"),
        "{refused:?}"
    );

    // The stream ends: its permit comes back.
    drop(items);
    assert!(results.message().await.unwrap().is_none());
    let mut served = false;
    for _ in 0..50 {
        if other.score(score()).await.is_ok() {
            served = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(served, "the stream's permit never came back");
}

/// Mutual TLS (`tls.client_ca`): `copl --cert/--key` with a certificate the CA signed is
/// served; without one, or with another CA's, the handshake or the call is refused
/// (exit 2 or 3). The address as `host:port`: https because certificates are given.
#[test]
fn mutual_tls_serves_only_clients_the_ca_signed() {
    use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    let root = tempfile::tempdir().unwrap();
    let (_data, ckpt) = tiny_checkpoint(root.path());
    let (ca, ca_pem) = authority("copl test CA");
    let (other, _) = authority("someone else's CA");
    let file = |name: &str, pem: &str| {
        let path = root.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path.to_str().unwrap().to_string()
    };
    let ca_file = file("ca.pem", &ca_pem);
    let (cert, key) = signed(&ca, &["localhost"], ServerAuth);
    let (server_cert, server_key) = (file("server.pem", &cert), file("server.key", &key));
    let (cert, key) = signed(&ca, &[], ClientAuth);
    let client = (file("client.pem", &cert), file("client.key", &key));
    let (cert, key) = signed(&other, &[], ClientAuth);
    let stranger = (file("stranger.pem", &cert), file("stranger.key", &key));
    let server = Server::start(
        &ckpt,
        &root.path().join("store"),
        &[
            ("COPL_TLS__CERT", server_cert.as_str()),
            ("COPL_TLS__KEY", server_key.as_str()),
            ("COPL_TLS__CLIENT_CA", ca_file.as_str()),
        ],
    );
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let addr = format!("localhost:{port}");
    let health = |identity: Option<&(String, String)>| {
        let mut args = vec!["--addr", &addr, "--ca-cert", &ca_file, "--timeout", "5"];
        if let Some((cert, key)) = identity {
            args.extend(["--cert", cert.as_str(), "--key", key.as_str()]);
        }
        args.push("health");
        let output = run("copl", &args);
        let (stdout, stderr) = text(&output);
        (output.status.code(), format!("{stdout}{stderr}"))
    };
    let mut served = health(Some(&client));
    for _ in 0..300 {
        if served.0 == Some(0) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        served = health(Some(&client));
    }
    assert_eq!(served.0, Some(0), "{}", served.1);
    for (who, identity) in [("no certificate", None), ("another CA's", Some(&stranger))] {
        let (code, said) = health(identity);
        assert!(matches!(code, Some(2 | 3)), "{who}: {code:?} {said}");
    }
}
