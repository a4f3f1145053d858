//! Metrics, kill -9 and restarts that keep (and forget) onboarded users, a full queue.

use std::path::Path;

use copl_proto::v1::{
    DeleteUserRequest, GetUserRequest, UserOrigin, reward_service_client::RewardServiceClient,
};
use copl_tests::{Server, scrape};
use tonic::Code;

use super::{Api, code, onboard, score, users::Onboarded};

pub fn metrics_name_no_user(server: &Server) {
    // Prometheus metrics: per-RPC counts by code, latency, queue, batches, users; no
    // user id in any label.
    let text = scrape(&server.metrics);
    for expected in [
        "copl_requests_total{rpc=\"Score\",code=\"Ok\"}",
        "copl_requests_total{rpc=\"Score\",code=\"NotFound\"}",
        "copl_requests_total{rpc=\"OnboardUser\",code=\"AlreadyExists\"}",
        "copl_request_duration_seconds_bucket{rpc=\"ScoreBatch\"",
        "copl_queue_depth",
        "copl_batch_rows_bucket",
        "copl_batch_tokens_bucket",
        "copl_batch_duration_seconds_bucket",
        "copl_onboarded_users 1",
        "copl_seen_users 60",
    ] {
        assert!(text.contains(expected), "{expected} missing from\n{text}");
    }
    for user in ["user-00000", "new-user", "ghost"] {
        assert!(!text.contains(user), "{user} in the metrics");
    }
}

pub async fn onboarded_users_survive_restarts(
    server: Server,
    mut api: Api,
    ckpt: &Path,
    store: &Path,
    onboarded: &Onboarded,
) {
    let Onboarded {
        answers,
        user,
        personal_reward,
    } = onboarded;
    // kill -9 (`Child::kill` is SIGKILL) right after OnboardUser answered: the user is
    // stored before the answer, so the restarted server has it.
    let late = api
        .onboard_user(onboard("late-user", answers.clone(), false))
        .await
        .unwrap()
        .into_inner();
    // Restart: the onboarded users are still there; delete one for good.
    drop(api);
    drop(server);
    let server = Server::start(ckpt, store, &[]);
    let mut api = RewardServiceClient::new(server.serving("copl.v1.RewardService").await);
    let kept = api
        .get_user(GetUserRequest {
            user_id: "new-user".into(),
            include_embedding: true,
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(kept.origin, UserOrigin::Onboarded as i32);
    assert_eq!(kept.routing, user.routing);
    let late_kept = api
        .get_user(GetUserRequest {
            user_id: "late-user".into(),
            include_embedding: false,
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(late_kept.routing, late.user.unwrap().routing);
    let again = api
        .score(score("new-user", "Water it weekly.", false))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert!((again.reward - personal_reward).abs() < 1e-4);
    api.delete_user(DeleteUserRequest {
        user_id: "new-user".into(),
    })
    .await
    .unwrap();
    let (c, _) = code(api.score(score("new-user", "x", false)).await);
    assert_eq!(c, Code::NotFound);
    let (c, _) = code(
        api.delete_user(DeleteUserRequest {
            user_id: "new-user".into(),
        })
        .await,
    );
    assert_eq!(c, Code::NotFound);
    drop(api);
    drop(server);
    let server = Server::start(ckpt, store, &[]);
    let mut api = RewardServiceClient::new(server.serving("copl.v1.RewardService").await);
    let (c, _) = code(
        api.get_user(GetUserRequest {
            user_id: "new-user".into(),
            include_embedding: false,
        })
        .await,
    );
    assert_eq!(c, Code::NotFound);
    drop(api);
    drop(server);
}

pub async fn a_full_queue_refuses_at_once(ckpt: &Path, store: &Path) {
    // A full queue answers RESOURCE_EXHAUSTED at once.
    let server = Server::start(ckpt, store, &[("COPL_LIMITS__MAX_QUEUED_REQUESTS", "1")]);
    let api = RewardServiceClient::new(server.serving("copl.v1.RewardService").await);
    let calls: Vec<_> = (0..64)
        .map(|i| {
            let mut api = api.clone();
            let request = score("user-00000", &"word ".repeat(5 + i % 30), true);
            tokio::spawn(async move { api.score(request).await })
        })
        .collect();
    let mut exhausted = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => {}
            Err(s) if s.code() == Code::ResourceExhausted => exhausted += 1,
            Err(s) => panic!("{s:?}"),
        }
    }
    assert!(
        exhausted > 0,
        "64 concurrent calls never filled a queue of 1"
    );
}
