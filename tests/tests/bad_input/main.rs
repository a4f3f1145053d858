//! Malformed and hostile requests, table-driven, against the real server: each row is a
//! call, the gRPC code it must get and what the message must say. Afterwards the server
//! is still SERVING, answers a good call exactly as before and has lost no user.
//! Hostile files (a truncated weight file, a tampered manifest, a corrupt user-store
//! file) are refused at start with a message naming the file (`files`). The table of
//! calls is `table`.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

mod files;
mod settings;
mod table;

use std::path::Path;

use copl_proto::v1::{
    CompareRequest, DeleteUserRequest, GetUserRequest, OnboardOptions, OnboardUserRequest,
    ResponseRef, ScoreBatchRequest, ScoreItem, ScoreRequest, ScoreStreamRequest,
    SuggestSurveyRequest, SurveyAnswer, response_ref::Ref,
    reward_service_client::RewardServiceClient, score_stream_response::Outcome,
};
use copl_tests::{Server, tiny_checkpoint, unseen_answers};
use tonic::{Code, transport::Channel};

const PROMPT: &str = "How do I keep a houseplant alive?";

/// One call of the table.
enum Call {
    Score(ScoreRequest),
    Batch(ScoreBatchRequest),
    Compare(CompareRequest),
    Onboard(OnboardUserRequest),
    Get(GetUserRequest),
    Delete(DeleteUserRequest),
    Survey(SuggestSurveyRequest),
}

async fn outcome(api: &mut RewardServiceClient<Channel>, call: Call) -> (Code, String) {
    fn code<T>(r: Result<tonic::Response<T>, tonic::Status>) -> (Code, String) {
        match r {
            Ok(_) => (Code::Ok, String::new()),
            Err(s) => (s.code(), s.message().to_string()),
        }
    }
    match call {
        Call::Score(r) => code(api.score(r).await),
        Call::Batch(r) => code(api.score_batch(r).await),
        Call::Compare(r) => code(api.compare_responses(r).await),
        Call::Onboard(r) => code(api.onboard_user(r).await),
        Call::Get(r) => code(api.get_user(r).await),
        Call::Delete(r) => code(api.delete_user(r).await),
        Call::Survey(r) => code(api.suggest_survey(r).await),
    }
}

fn score(user: &str, prompt: &str, response: &str, truncate: bool) -> Call {
    Call::Score(ScoreRequest {
        user_id: user.into(),
        prompt: prompt.into(),
        response: response.into(),
        truncate,
        ..Default::default()
    })
}

fn item(user: &str, response: &str) -> ScoreItem {
    ScoreItem {
        user_id: user.into(),
        prompt: PROMPT.into(),
        response: response.into(),
    }
}

fn batch(items: Vec<ScoreItem>) -> Call {
    Call::Batch(ScoreBatchRequest {
        items,
        truncate: false,
        ..Default::default()
    })
}

fn by_id(id: &str) -> Option<ResponseRef> {
    Some(ResponseRef {
        r#ref: Some(Ref::Id(id.into())),
    })
}

fn answer(c: &str, r: &str) -> SurveyAnswer {
    SurveyAnswer {
        chosen: by_id(c),
        rejected: by_id(r),
    }
}

fn onboard(
    user: &str,
    answers: Vec<SurveyAnswer>,
    hops: Option<u32>,
    temperature: Option<f32>,
) -> Call {
    Call::Onboard(OnboardUserRequest {
        user_id: user.into(),
        answers,
        options: Some(OnboardOptions { hops, temperature }),
        replace: true,
    })
}

/// A catalogue response whose prompt differs from `id`'s.
/// The reward of one seen user's answer: the same bits before and after the hostile calls.
async fn reward_that_must_survive(api: &mut RewardServiceClient<Channel>) -> f32 {
    api.score(ScoreRequest {
        user_id: "user-00000".into(),
        prompt: PROMPT.into(),
        response: "Water it weekly.".into(),
        truncate: false,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .result
    .unwrap()
    .reward
}

fn other_prompt_response(ckpt: &Path, id: &str) -> String {
    let entries: Vec<serde_json::Value> = std::fs::read_to_string(ckpt.join("catalogue.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let prompt = entries.iter().find(|e| e["id"] == id).unwrap()["prompt"].clone();
    entries.iter().find(|e| e["prompt"] != prompt).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_the_right_code_and_message_and_harm_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (data, ckpt) = tiny_checkpoint(root.path());
    let server = Server::start(&ckpt, &root.path().join("store"), &[]);
    let mut api = RewardServiceClient::new(server.serving("copl.v1.RewardService").await);
    let given = unseen_answers(&data);
    let (c0, r0) = (given[0].0.as_str(), given[0].1.as_str());
    let answers: Vec<SurveyAnswer> = given.iter().map(|(c, r)| answer(c, r)).collect();
    let elsewhere = other_prompt_response(&ckpt, c0);

    // What must survive: a reward and an onboarded user.
    let before = reward_that_must_survive(&mut api).await;
    assert_eq!(
        outcome(&mut api, onboard("keeper", answers.clone(), None, None))
            .await
            .0,
        Code::Ok
    );

    let long = "word ".repeat(300);
    let huge = "x".repeat(5 << 20); // over max_message_bytes (4 MiB)
    let inputs = table::Inputs {
        c0,
        r0,
        answers: &answers,
        elsewhere: &elsewhere,
        long: &long,
        huge: &huge,
    };
    let table = table::hostile_calls(&inputs);
    assert!(table.len() >= 40, "{} rows", table.len());
    let mut failures = Vec::new();
    for (name, call, code, says) in table {
        let (got, message) = outcome(&mut api, call).await;
        if got != code || !message.contains(says) {
            failures.push(format!(
                "{name}: expected {code:?} saying {says:?}, got {got:?}: {message:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // A stream: bad items are per-item errors, the stream goes on.
    let items = [
        ("user-00000", "x"),
        ("user-00000", ""),
        ("a\nb", "x"),
        ("", "fine"),
    ];
    let requests: Vec<ScoreStreamRequest> = items
        .iter()
        .enumerate()
        .map(|(i, (u, r))| ScoreStreamRequest {
            request_id: i as u64,
            item: Some(item(u, r)),
            truncate: false,
            ..Default::default()
        })
        .collect();
    let mut stream = api
        .score_stream(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut outcomes = Vec::new();
    while let Some(reply) = stream.message().await.unwrap() {
        outcomes.push(match reply.outcome {
            Some(Outcome::Result(_)) => Code::Ok,
            Some(Outcome::Error(e)) => Code::from_i32(e.code),
            None => Code::Unknown,
        });
    }
    assert_eq!(
        outcomes,
        vec![
            Code::Ok,
            Code::InvalidArgument,
            Code::InvalidArgument,
            Code::Ok
        ]
    );

    // Still healthy, the same reward, the user kept.
    server.serving("copl.v1.RewardService").await;
    let after = reward_that_must_survive(&mut api).await;
    assert_eq!(before.to_bits(), after.to_bits());
    api.get_user(GetUserRequest {
        user_id: "keeper".into(),
        include_embedding: false,
    })
    .await
    .unwrap();
}
