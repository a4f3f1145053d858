//! Request ids against the real server: a client's `x-request-id` comes back on the
//! answer, a call without one gets a server-made id, and a refused call leaves a log
//! line carrying that id (issue #15: a failure could not be found in the log).

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use copl_proto::v1::{ScoreRequest, reward_service_client::RewardServiceClient};
use copl_tests::{Server, tiny_checkpoint};
use tonic::{Code, Request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_the_request_id_and_a_refused_call_is_logged_with_it() {
    let root = tempfile::tempdir().unwrap();
    let (_data, ckpt) = tiny_checkpoint(root.path());
    let log_path = root.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = Server::start_with(
        &ckpt,
        &root.path().join("store"),
        &[],
        &["--log-format", "json"],
        log.into(),
    );
    let mut api = RewardServiceClient::new(server.serving("copl.v1.RewardService").await);
    let score = |response: &str| ScoreRequest {
        user_id: "user-00001".into(),
        prompt: "How do I keep a houseplant alive?".into(),
        response: response.into(),
        truncate: false,
        ..Default::default()
    };

    // The client's id comes back on a success.
    let mut request = Request::new(score("Water it weekly."));
    request
        .metadata_mut()
        .insert("x-request-id", "rlhf-step-12/7".parse().unwrap());
    let answer = api.score(request).await.unwrap();
    assert_eq!(
        answer.metadata().get("x-request-id").unwrap(),
        "rlhf-step-12/7"
    );

    // Without one, a refusal carries a server-made id, and the log has the refusal
    // under it.
    let refused = api.score(Request::new(score(""))).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let id = refused
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 16, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    drop(api);
    drop(server);
    let log = std::fs::read_to_string(&log_path).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("no log line with request id {id}:\n{log}"));
    let entry: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(entry["fields"]["message"], "call refused", "{line}");
    assert!(line.contains("InvalidArgument"), "{line}");
    assert!(line.contains("response"), "{line}");
}
