//! Two copl-server replicas on one Redis (the shared user store): a user onboarded on
//! one is scored on the other; deleted on one, NOT_FOUND on the other; onboarding an id
//! the other replica made is ALREADY_EXISTS. Redis going away answers UNAVAILABLE for
//! onboarded users (seen users still score), and its return is picked up without a
//! restart. A replica reaches a Redis that speaks only TLS, asks for a client
//! certificate and a password (`rediss://`, `store.redis_ca_cert`, `redis_client_cert`);
//! without its certificate it does not start, and no error shows the password. Replicas
//! on two checkpoints share the users (re-adapted from their kept answers), and swap
//! checkpoints under load (ReloadCheckpoint, SIGHUP) without a failed call. Needs
//! `redis-server` built with TLS (Debian's is; scripts/test-deps.sh installs it; `make
//! test` runs it).

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use copl_proto::v1::{
    DeleteUserRequest, GetUserRequest, OnboardUserRequest, ScoreRequest, UserOrigin,
    reward_service_client::RewardServiceClient,
};
use copl_tests::{
    Server, free_port,
    pki::{authority, signed},
    tiny_checkpoint, unseen_survey_answers,
};
use tonic::{Code, transport::Channel};

/// A throw-away redis-server on `port` (no persistence), killed on drop.
struct Redis(Child);

impl Redis {
    fn start(port: u16, dir: &Path) -> Self {
        Self::start_with(port, dir, &["--port", &port.to_string()])
    }

    /// With `args` saying where it listens (and how).
    fn start_with(port: u16, dir: &Path, args: &[&str]) -> Self {
        let mut child = Command::new("redis-server")
            .args(args)
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--dir", dir.to_str().unwrap()])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): run scripts/test-deps.sh (make test does)")
            });
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self(child);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not open port {port}");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn score(user: &str) -> ScoreRequest {
    ScoreRequest {
        user_id: user.into(),
        prompt: "How do I keep a houseplant alive?".into(),
        response: "Water it weekly.".into(),
        truncate: false,
        ..Default::default()
    }
}

async fn code_of(api: &mut RewardServiceClient<Channel>, user: &str) -> Code {
    match api.score(score(user)).await {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_onboarded_users_through_redis() {
    let root = tempfile::tempdir().unwrap();
    let (data, ckpt) = tiny_checkpoint(root.path());
    let port = free_port();
    let redis = Redis::start(port, root.path());
    let url = format!("redis://127.0.0.1:{port}/");
    let env = [
        ("COPL_STORE__BACKEND", "redis"),
        ("COPL_STORE__REDIS_URL", url.as_str()),
        ("COPL_STORE__REDIS_PREFIX", "replica-test"),
        ("COPL_STORE__REDIS_TIMEOUT_MS", "300"),
    ];
    let a = Server::start(&ckpt, &root.path().join("a"), &env);
    let b = Server::start(&ckpt, &root.path().join("b"), &env);
    let mut api_a = RewardServiceClient::new(a.serving("copl.v1.RewardService").await);
    let mut api_b = RewardServiceClient::new(b.serving("copl.v1.RewardService").await);

    let answers = unseen_survey_answers(&data);
    let onboard = |replace: bool| OnboardUserRequest {
        user_id: "shared-user".into(),
        answers: answers.clone(),
        options: None,
        replace,
    };

    // Onboard on A, score on B: the same reward.
    assert_eq!(code_of(&mut api_b, "shared-user").await, Code::NotFound);
    api_a.onboard_user(onboard(false)).await.unwrap();
    let on_a = api_a
        .score(score("shared-user"))
        .await
        .unwrap()
        .into_inner();
    let on_b = api_b
        .score(score("shared-user"))
        .await
        .unwrap()
        .into_inner();
    let (ra, rb) = (on_a.result.unwrap(), on_b.result.unwrap());
    assert!((ra.reward - rb.reward).abs() < 1e-5, "{ra:?} {rb:?}");
    let user = api_b
        .get_user(GetUserRequest {
            user_id: "shared-user".into(),
            include_embedding: false,
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(user.origin, UserOrigin::Onboarded as i32);
    let again = api_b.onboard_user(onboard(false)).await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");
    api_b.onboard_user(onboard(true)).await.unwrap();

    // Delete on A: NOT_FOUND on B (which had it in memory), for good.
    api_a
        .delete_user(DeleteUserRequest {
            user_id: "shared-user".into(),
        })
        .await
        .unwrap();
    assert_eq!(code_of(&mut api_b, "shared-user").await, Code::NotFound);
    let gone = api_b
        .delete_user(DeleteUserRequest {
            user_id: "shared-user".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound, "{gone:?}");

    // Redis goes away: onboarded users are UNAVAILABLE, seen users still score.
    api_b.onboard_user(onboard(false)).await.unwrap();
    drop(redis);
    let down = api_a.score(score("shared-user")).await.unwrap_err();
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");
    assert!(down.message().contains("user store"), "{down:?}");
    assert_eq!(code_of(&mut api_a, "user-00000").await, Code::Ok);
    let refused = api_b.onboard_user(onboard(true)).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");

    // It comes back (empty: no persistence here): both replicas use it again without a
    // restart.
    let _redis = Redis::start(port, root.path());
    let mut back = Code::Unavailable;
    for _ in 0..100 {
        back = code_of(&mut api_a, "shared-user").await;
        if back != Code::Unavailable {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(back, Code::NotFound, "Redis came back empty");
    let mut onboarded = Err(tonic::Status::unavailable("not tried"));
    for _ in 0..100 {
        onboarded = api_b.onboard_user(onboard(false)).await;
        if !matches!(&onboarded, Err(s) if s.code() == Code::Unavailable) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    onboarded.unwrap();
    assert_eq!(code_of(&mut api_a, "shared-user").await, Code::Ok);
}

/// `redis-cli -p port args…`'s output, trimmed.
fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run redis-cli ({e}): run scripts/test-deps.sh"));
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

use copl_tests::user_info as user_of;

/// Issue #18: replicas on two checkpoints (the second's GCF trained again) share one
/// Redis during a rollout: a user onboarded on the old one is re-adapted by the new one
/// from the kept answers (eagerly, at its start) and served by both, each in its own
/// space; a record under the key layout of before 2026-12-06
/// (`<prefix>:<data hash>:<d>:user:<id>`) is moved to today's key at start and served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_two_checkpoints_share_users_through_redis() {
    let root = tempfile::tempdir().unwrap();
    let (data, ckpt) = tiny_checkpoint(root.path());
    let ckpt2 = copl_tests::regcf_checkpoint(root.path(), &data, &ckpt);
    let port = free_port();
    let _redis = Redis::start(port, root.path());
    let url = format!("redis://127.0.0.1:{port}/");
    let env = [
        ("COPL_STORE__BACKEND", "redis"),
        ("COPL_STORE__REDIS_URL", url.as_str()),
        ("COPL_STORE__REDIS_PREFIX", "rollout"),
    ];
    let old = Server::start(&ckpt, &root.path().join("a"), &env);
    let mut api_old = RewardServiceClient::new(old.serving("copl.v1.RewardService").await);
    let answers = unseen_survey_answers(&data);
    let onboard = |id: &str| OnboardUserRequest {
        user_id: id.into(),
        answers: answers.clone(),
        options: None,
        replace: false,
    };
    api_old.onboard_user(onboard("shared-user")).await.unwrap();
    // A record as the server of before 2026-12-06 kept it: no answers, the space as
    // `<data hash>:<d>`, in that space's key.
    let mut legacy: serde_json::Value =
        serde_json::from_str(&redis_cli(port, &["GET", "rollout:user:shared-user"])).unwrap();
    let space = legacy["space"].as_str().unwrap().to_string();
    let old_space = space.rsplit_once(':').unwrap().0.to_string();
    legacy["user_id"] = "legacy-user".into();
    legacy["space"] = old_space.clone().into();
    legacy.as_object_mut().unwrap().remove("answer_log");
    let legacy_key = format!("rollout:{old_space}:user:legacy-user");
    redis_cli(port, &["SET", &legacy_key, &legacy.to_string()]);

    let mut eager = env.to_vec();
    eager.push(("COPL_ONBOARDING__READAPT", "eager"));
    let new = Server::start(&ckpt2, &root.path().join("b"), &eager);
    let mut api_new = RewardServiceClient::new(new.serving("copl.v1.RewardService").await);
    assert_eq!(redis_cli(port, &["EXISTS", &legacy_key]), "0");
    assert_eq!(
        redis_cli(port, &["EXISTS", "rollout:user:legacy-user"]),
        "1"
    );
    let legacy_user = user_of(&mut api_old, "legacy-user").await;
    assert!(!legacy_user.readapted, "{legacy_user:?}");

    let on_new = user_of(&mut api_new, "shared-user").await;
    let on_old = user_of(&mut api_old, "shared-user").await;
    assert!(
        on_new.readapted && !on_old.readapted,
        "{on_new:?}\n{on_old:?}"
    );
    assert_ne!(on_new.embedding, on_old.embedding);
    api_new.onboard_user(onboard("twin")).await.unwrap();
    let twin = user_of(&mut api_new, "twin").await;
    assert!(
        on_new
            .embedding
            .iter()
            .zip(&twin.embedding)
            .all(|(a, b)| (a - b).abs() < 1e-5),
        "{on_new:?}\n{twin:?}"
    );
    assert_eq!(code_of(&mut api_new, "shared-user").await, Code::Ok);
    // The record is the old replica's still: serving it elsewhere wrote nothing.
    let kept: serde_json::Value =
        serde_json::from_str(&redis_cli(port, &["GET", "rollout:user:shared-user"])).unwrap();
    assert_eq!(kept["space"], space.as_str());
    // One record for both: deleted on the new replica, gone on the old.
    api_new
        .delete_user(DeleteUserRequest {
            user_id: "shared-user".into(),
        })
        .await
        .unwrap();
    assert_eq!(code_of(&mut api_old, "shared-user").await, Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_reaches_redis_over_tls_with_a_client_certificate() {
    use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    let root = tempfile::tempdir().unwrap();
    let (data, ckpt) = tiny_checkpoint(root.path());
    let (ca, ca_pem) = authority("test redis CA");
    let (redis_cert, redis_key) = signed(&ca, &["localhost"], ServerAuth);
    let (client_cert, client_key) = signed(&ca, &["copl-server"], ClientAuth);
    let file = |name: &str, text: &str| {
        let path = root.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let (ca_file, redis_cert_file, redis_key_file) = (
        file("ca.pem", &ca_pem),
        file("redis.pem", &redis_cert),
        file("redis.key", &redis_key),
    );
    let (client_cert_file, client_key_file) = (
        file("client.pem", &client_cert),
        file("client.key", &client_key),
    );
    let port = free_port();
    // TLS only (no plaintext port), client certificates required, a password.
    let _redis = Redis::start_with(
        port,
        root.path(),
        &[
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &redis_cert_file,
            "--tls-key-file",
            &redis_key_file,
            "--tls-ca-cert-file",
            &ca_file,
            "--tls-auth-clients",
            "yes",
            "--requirepass",
            "s3cret-pw",
        ],
    );
    let url = format!("rediss://:s3cret-pw@localhost:{port}/0");
    let env = [
        ("COPL_STORE__BACKEND", "redis"),
        ("COPL_STORE__REDIS_URL", url.as_str()),
        ("COPL_STORE__REDIS_CA_CERT", ca_file.as_str()),
        ("COPL_STORE__REDIS_CLIENT_CERT", client_cert_file.as_str()),
        ("COPL_STORE__REDIS_CLIENT_KEY", client_key_file.as_str()),
    ];
    let server = Server::start(&ckpt, &root.path().join("a"), &env);
    let mut api = RewardServiceClient::new(server.serving("copl.v1.RewardService").await);
    api.onboard_user(OnboardUserRequest {
        user_id: "tls-user".into(),
        answers: unseen_survey_answers(&data),
        options: None,
        replace: false,
    })
    .await
    .unwrap();
    assert_eq!(code_of(&mut api, "tls-user").await, Code::Ok);

    // Without the client certificate Redis refuses the handshake: the server does not
    // start, says which Redis (password hidden) and why.
    let metrics = format!("127.0.0.1:{}", free_port());
    let output = Command::new(copl_tests::binary("copl-server"))
        .args(["--checkpoint", ckpt.to_str().unwrap()])
        .args(["--data-dir", root.path().join("b").to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", &metrics])
        .envs(env[..3].iter().copied())
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "started without a client certificate"
    );
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains(&format!("rediss://:***@localhost:{port}/0")),
        "{log}"
    );
    assert!(!log.contains("s3cret-pw"), "the password in the log: {log}");
}

/// Issue #18's loop: users onboarded on two replicas sharing Redis → `copl-train refresh`
/// from that Redis → both replicas, under `copl bench` load, move to the refreshed
/// checkpoint — one by ReloadCheckpoint, one by SIGHUP after its configured checkpoint (a
/// symlink) was repointed — with no failed call; both then report the same checkpoint id
/// (`copl info --also` agrees) and its parent; the users onboarded before the refresh
/// are seen users of the new checkpoint, one onboarded after it is re-adapted; a reload of
/// a directory that is no checkpoint leaves the new one serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboard_refresh_and_swap_two_replicas_under_load_without_a_failed_call() {
    use copl_proto::v1::{InfoRequest, ReloadCheckpointRequest};
    let root = tempfile::tempdir().unwrap();
    let (data, ckpt) = tiny_checkpoint(root.path());
    let current = root.path().join("current");
    std::os::unix::fs::symlink(&ckpt, &current).unwrap();
    let port = free_port();
    let _redis = Redis::start(port, root.path());
    let url = format!("redis://127.0.0.1:{port}/");
    let env = [
        ("COPL_STORE__BACKEND", "redis"),
        ("COPL_STORE__REDIS_URL", url.as_str()),
        ("COPL_STORE__REDIS_PREFIX", "swap"),
    ];
    let a = Server::start(&current, &root.path().join("a"), &env);
    let b = Server::start(&current, &root.path().join("b"), &env);
    let mut api_a = RewardServiceClient::new(a.serving("copl.v1.RewardService").await);
    let mut api_b = RewardServiceClient::new(b.serving("copl.v1.RewardService").await);
    api_a
        .onboard_user(OnboardUserRequest {
            user_id: "loop-user".into(),
            answers: unseen_survey_answers(&data),
            options: None,
            replace: false,
        })
        .await
        .unwrap();
    // The refresh learns from the users onboarded on both replicas (through Redis).
    let (a_user, b_user) = ("a-user", "b-user");
    for (api, id) in [(&mut api_a, a_user), (&mut api_b, b_user)] {
        api.onboard_user(OnboardUserRequest {
            user_id: id.into(),
            answers: unseen_survey_answers(&data),
            options: None,
            replace: false,
        })
        .await
        .unwrap();
    }
    let ckpt2 = root.path().join("ckpt-refresh");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let refreshed = copl_tests::run_ok(
        "copl-train",
        &[
            "refresh",
            "--data",
            &s(&data),
            "--users",
            &url,
            "--redis-prefix",
            "swap",
            "--ckpt",
            &s(&ckpt),
            "--out",
            &s(&ckpt2),
            "--epochs",
            "3",
            "--json",
        ],
    );
    let refreshed: serde_json::Value = serde_json::from_str(&refreshed).unwrap();
    assert_eq!(refreshed["added"]["users_added"], 3, "{refreshed}");
    // Onboarded after the refresh: the new checkpoint re-adapts this one.
    api_b
        .onboard_user(OnboardUserRequest {
            user_id: "late-user".into(),
            answers: unseen_survey_answers(&data),
            options: None,
            replace: false,
        })
        .await
        .unwrap();
    let info = |api: &mut RewardServiceClient<Channel>| {
        let mut api = api.clone();
        async move { api.info(InfoRequest {}).await.unwrap().into_inner() }
    };
    let old_id = info(&mut api_a).await.checkpoint_id;
    assert_eq!(old_id.len(), 16);
    assert_eq!(info(&mut api_b).await.checkpoint_id, old_id);

    // Load on both replicas for the whole swap.
    let bench = |addr: &str| {
        Command::new(copl_tests::binary("copl"))
            .args([
                "--addr",
                addr,
                "bench",
                "--concurrency",
                "8",
                "--duration",
                "8",
            ])
            .args(["--users", "loop-user,user-00000", "--json"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (load_a, load_b) = (bench(&a.addr), bench(&b.addr));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let swapped = api_a
        .reload_checkpoint(ReloadCheckpointRequest {
            checkpoint: ckpt2.to_str().unwrap().into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(swapped.previous_checkpoint_id, old_id);
    let new_id = swapped.checkpoint_id;
    assert_ne!(new_id, old_id);
    std::fs::remove_file(&current).unwrap();
    std::os::unix::fs::symlink(&ckpt2, &current).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &b.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let mut on_b = String::new();
    for _ in 0..300 {
        on_b = info(&mut api_b).await.checkpoint_id;
        if on_b == new_id {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(on_b, new_id, "SIGHUP did not swap replica B");
    for load in [load_a, load_b] {
        let out = load.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(report["calls_ok"].as_u64().unwrap() > 0, "{report}");
        assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    }

    // Both replicas on the new checkpoint, which names its parent; the users onboarded
    // before the refresh are its seen users, the one after it re-adapted.
    assert_eq!(info(&mut api_a).await.parent_checkpoint_id, old_id);
    let args = ["--addr", &a.addr, "info", "--also", &b.addr, "--json"];
    let replicas: serde_json::Value =
        serde_json::from_str(&copl_tests::run_ok("copl", &args)).unwrap();
    for r in replicas.as_array().unwrap() {
        assert_eq!(r["info"]["checkpoint_id"], new_id.as_str(), "{replicas}");
    }
    for api in [&mut api_a, &mut api_b] {
        for id in ["loop-user", a_user, b_user] {
            let user = user_of(api, id).await;
            assert_eq!(user.origin, UserOrigin::Seen as i32, "{user:?}");
            assert_eq!(code_of(api, id).await, Code::Ok);
        }
        assert!(user_of(api, "late-user").await.readapted);
        assert_eq!(code_of(api, "late-user").await, Code::Ok);
    }
    let metrics = copl_tests::scrape(&a.metrics);
    assert!(
        metrics.contains(&format!(
            "copl_checkpoint_info{{checkpoint_id=\"{new_id}\"}} 1"
        )),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "copl_checkpoint_info{{checkpoint_id=\"{old_id}\"}} 0"
    )));

    // A directory that is no checkpoint: refused, naming it; the new one still serves.
    let refused = api_a
        .reload_checkpoint(ReloadCheckpointRequest {
            checkpoint: root.path().join("nope").to_str().unwrap().into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("nope") && refused.message().contains("still serves"),
        "{refused:?}"
    );
    assert_eq!(info(&mut api_a).await.checkpoint_id, new_id);
    assert_eq!(code_of(&mut api_a, "user-00000").await, Code::Ok);
    // Replicas on different checkpoints: `copl info --also` exits 21.
    api_b
        .reload_checkpoint(ReloadCheckpointRequest {
            checkpoint: ckpt.to_str().unwrap().into(),
        })
        .await
        .unwrap();
    let diverged = Command::new(copl_tests::binary("copl"))
        .args(["--addr", &a.addr, "info", "--also", &b.addr])
        .output()
        .unwrap();
    assert_eq!(diverged.status.code(), Some(21), "{diverged:?}");
}
