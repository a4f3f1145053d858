//! Malformed and hostile requests, table-driven, against the real server: each row is a
//! call, the gRPC code it must get and what the message must say. Afterwards the server
//! is still SERVING, answers a good call exactly as before and has lost no user.
//! Hostile files (a truncated weight file, a tampered manifest, a corrupt user-store
//! file) are refused at start with a message naming the file.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::path::Path;

use copl_proto::v1::{
    CompareRequest, DeleteUserRequest, GetUserRequest, OnboardOptions, OnboardUserRequest,
    ResponseRef, ResponseText, ScoreBatchRequest, ScoreItem, ScoreRequest, ScoreStreamRequest,
    SuggestSurveyRequest, SurveyAnswer, response_ref::Ref,
    reward_service_client::RewardServiceClient, score_stream_response::Outcome,
};
use copl_tests::{Server, run, text, tiny_checkpoint, unseen_answers};
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
    let ok = Code::Ok;
    let invalid = Code::InvalidArgument;
    let table: Vec<(&str, Call, Code, &str)> = vec![
        // Score: text.
        (
            "empty response",
            score("user-00000", PROMPT, "", false),
            invalid,
            "response: empty",
        ),
        (
            "empty prompt",
            score("user-00000", "", "x", false),
            invalid,
            "prompt: empty",
        ),
        (
            "blank response",
            score("user-00000", PROMPT, " \t\n ", false),
            invalid,
            "response: blank",
        ),
        (
            "blank prompt",
            score("user-00000", "\u{3000}", "x", false),
            invalid,
            "prompt: blank",
        ),
        (
            "over-long, no truncate",
            score("user-00000", PROMPT, &long, false),
            invalid,
            "response:",
        ),
        (
            "over-long, truncate",
            score("user-00000", PROMPT, &long, true),
            ok,
            "",
        ),
        (
            "NUL and control bytes in text",
            score("user-00000", PROMPT, "wa\0ter\u{7}\u{1b}[31m it", false),
            ok,
            "",
        ),
        (
            "only special tokens",
            score(
                "user-00000",
                "[CLS] [SEP]",
                "[PAD] [PAD] [MASK] [UNK]",
                false,
            ),
            ok,
            "",
        ),
        (
            "emoji, RTL, zero-width",
            score(
                "user-00000",
                PROMPT,
                "💧🌱 مرحبا \u{200b}\u{202e}water",
                false,
            ),
            ok,
            "",
        ),
        (
            "message over max_message_bytes",
            score("user-00000", PROMPT, &huge, true),
            Code::OutOfRange,
            "message length too large",
        ),
        // Score: users.
        (
            "unknown user",
            score("nobody", PROMPT, "x", false),
            Code::NotFound,
            "user_id: no such user \"nobody\"",
        ),
        (
            "user id too long",
            score(&"u".repeat(129), PROMPT, "x", false),
            invalid,
            "user_id: 129 bytes",
        ),
        (
            "user id with a newline",
            score("user-00000\nadmin", PROMPT, "x", false),
            invalid,
            "user_id: control character U+000A",
        ),
        (
            "user id with NUL",
            score("a\0b", PROMPT, "x", false),
            invalid,
            "user_id: control character U+0000",
        ),
        (
            "user id path traversal",
            score("../../etc/passwd", PROMPT, "x", false),
            Code::NotFound,
            "no such user",
        ),
        // ScoreBatch.
        ("batch of nothing", batch(vec![]), invalid, "items: empty"),
        (
            "batch of 257",
            batch(vec![item("", "x"); 257]),
            invalid,
            "items:",
        ),
        (
            "batch of 10 000",
            batch(vec![item("", "x"); 10_000]),
            invalid,
            "items:",
        ),
        (
            // 3 MB on the wire (2 bytes an item), ≈ 110 MB decoded: refused from the
            // wire's tags before prost decodes it (copl_proto::codec).
            "1.5 M empty items",
            batch(vec![ScoreItem::default(); 1_500_000]),
            invalid,
            "items: more than",
        ),
        (
            "one empty item among good ones",
            batch(vec![item("", "a"), item("", "b"), item("", "")]),
            invalid,
            "items[2].response: empty",
        ),
        (
            "unknown user in item 1",
            batch(vec![item("", "a"), item("ghost", "b")]),
            Code::NotFound,
            "items[1].user_id",
        ),
        (
            "control character in item user",
            batch(vec![item("a\tb", "a")]),
            invalid,
            "items[0].user_id: control character",
        ),
        // CompareResponses.
        (
            "compare identical answers",
            Call::Compare(CompareRequest {
                user_id: "user-00000".into(),
                prompt: PROMPT.into(),
                response_a: "x".into(),
                response_b: "x".into(),
                truncate: false,
            }),
            ok,
            "",
        ),
        (
            "compare empty b",
            Call::Compare(CompareRequest {
                user_id: "user-00000".into(),
                prompt: PROMPT.into(),
                response_a: "x".into(),
                response_b: String::new(),
                truncate: false,
            }),
            invalid,
            "response_b: empty",
        ),
        (
            "compare unknown user",
            Call::Compare(CompareRequest {
                user_id: "ghost".into(),
                prompt: PROMPT.into(),
                response_a: "x".into(),
                response_b: "y".into(),
                truncate: false,
            }),
            Code::NotFound,
            "user_id",
        ),
        // OnboardUser.
        (
            "no answers",
            onboard("x", vec![], None, None),
            invalid,
            "answers",
        ),
        (
            "unknown response id",
            onboard("x", vec![answer("no-such", r0)], None, None),
            invalid,
            "answers[0].chosen.id",
        ),
        (
            "chosen equals rejected",
            onboard("x", vec![answer(c0, c0)], None, None),
            invalid,
            "answers[0]",
        ),
        (
            "answer from two prompts",
            onboard("x", vec![answer(c0, &elsewhere)], None, None),
            invalid,
            "answers[0]",
        ),
        (
            "missing reference",
            onboard(
                "x",
                vec![SurveyAnswer {
                    chosen: None,
                    rejected: by_id(r0),
                }],
                None,
                None,
            ),
            invalid,
            "answers[0].chosen",
        ),
        (
            "reference without id or text",
            onboard(
                "x",
                vec![SurveyAnswer {
                    chosen: Some(ResponseRef { r#ref: None }),
                    rejected: by_id(r0),
                }],
                None,
                None,
            ),
            invalid,
            "answers[0].chosen",
        ),
        (
            "text not in the catalogue",
            onboard(
                "x",
                vec![SurveyAnswer {
                    chosen: Some(ResponseRef {
                        r#ref: Some(Ref::Text(ResponseText {
                            response: "never seen".into(),
                            prompt: PROMPT.into(),
                        })),
                    }),
                    rejected: by_id(r0),
                }],
                None,
                None,
            ),
            invalid,
            "answers[0].chosen",
        ),
        (
            "hops 0",
            onboard("x", answers.clone(), Some(0), None),
            invalid,
            "options.hops: 0",
        ),
        (
            "hops odd",
            onboard("x", answers.clone(), Some(3), None),
            invalid,
            "options.hops: 3",
        ),
        (
            "hops huge",
            onboard("x", answers.clone(), Some(1_000_000), None),
            invalid,
            "options.hops: 1000000",
        ),
        (
            "temperature NaN",
            onboard("x", answers.clone(), None, Some(f32::NAN)),
            invalid,
            "options.temperature",
        ),
        (
            "temperature negative",
            onboard("x", answers.clone(), None, Some(-1.0)),
            invalid,
            "options.temperature",
        ),
        (
            "temperature zero",
            onboard("x", answers.clone(), None, Some(0.0)),
            invalid,
            "options.temperature",
        ),
        (
            "temperature infinite",
            onboard("x", answers.clone(), None, Some(f32::INFINITY)),
            invalid,
            "options.temperature",
        ),
        (
            "65 answers",
            onboard("x", vec![answer(c0, r0); 65], None, None),
            invalid,
            "answers:",
        ),
        (
            "one answer repeated 64 times",
            onboard("repeat", vec![answer(c0, r0); 64], None, None),
            ok,
            "",
        ),
        (
            "only contradictory answers",
            onboard("torn", vec![answer(c0, r0), answer(r0, c0)], None, None),
            ok,
            "",
        ),
        (
            "empty user id",
            onboard("", answers.clone(), None, None),
            invalid,
            "user_id: empty",
        ),
        (
            "control character in new id",
            onboard("new\r\nuser", answers.clone(), None, None),
            invalid,
            "user_id: control character",
        ),
        (
            "seen user onboarded",
            onboard("user-00001", answers.clone(), None, None),
            Code::FailedPrecondition,
            "user_id",
        ),
        // GetUser, DeleteUser, SuggestSurvey.
        (
            "get empty id",
            Call::Get(GetUserRequest {
                user_id: String::new(),
                include_embedding: false,
            }),
            invalid,
            "user_id: empty",
        ),
        (
            "get unknown",
            Call::Get(GetUserRequest {
                user_id: "ghost".into(),
                include_embedding: true,
            }),
            Code::NotFound,
            "user_id",
        ),
        (
            "delete unknown",
            Call::Delete(DeleteUserRequest {
                user_id: "ghost".into(),
            }),
            Code::NotFound,
            "user_id",
        ),
        (
            "delete seen",
            Call::Delete(DeleteUserRequest {
                user_id: "user-00002".into(),
            }),
            Code::FailedPrecondition,
            "user_id",
        ),
        (
            "delete blank id",
            Call::Delete(DeleteUserRequest {
                user_id: "  ".into(),
            }),
            invalid,
            "user_id: blank",
        ),
        (
            "survey of 1000 pairs",
            Call::Survey(SuggestSurveyRequest {
                max_pairs: 1000,
                ..Default::default()
            }),
            invalid,
            "max_pairs",
        ),
        (
            "survey with unknown answers",
            Call::Survey(SuggestSurveyRequest {
                max_pairs: 2,
                answers_so_far: vec![answer("no-such", r0)],
                ..Default::default()
            }),
            invalid,
            "answers_so_far[0].chosen.id",
        ),
    ];
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

/// The server refuses to start on a damaged file, naming it.
#[test]
fn damaged_files_are_refused_at_start_naming_the_file() {
    let root = tempfile::tempdir().unwrap();
    let (_data, ckpt) = tiny_checkpoint(root.path());
    let start = |ckpt: &Path, store: &Path| {
        let out = run(
            "copl-server",
            &[
                "--checkpoint",
                ckpt.to_str().unwrap(),
                "--data-dir",
                store.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "",
            ],
        );
        assert!(!out.status.success(), "started on a damaged file");
        text(&out).1
    };
    let copy = |name: &str| {
        let dir = root.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&ckpt).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
        dir
    };
    let store = root.path().join("store");

    // A truncated weight file.
    let truncated = copy("truncated");
    let weights = truncated.join("mole.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let err = start(&truncated, &store);
    assert!(err.contains("mole.safetensors"), "{err}");

    // A tampered manifest: unknown format version; not JSON.
    let tampered = copy("tampered");
    let manifest = tampered.join("manifest.json");
    let text_of = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text_of.replacen("\"format_version\": 1", "\"format_version\": 99", 1),
    )
    .unwrap();
    let err = start(&tampered, &store);
    assert!(
        err.contains("manifest.json") && err.contains("format_version 99"),
        "{err}"
    );
    std::fs::write(&manifest, "{ not json").unwrap();
    let err = start(&tampered, &store);
    assert!(err.contains("manifest.json"), "{err}");
    // A corrupt user-store file does not stop the start: it is set aside
    // (tests/faults.rs).
}
