//! Info, Score, ScoreBatch, CompareResponses, ScoreStream, the CLI's score and its load
//! generator, and reflection.

use std::path::Path;

use copl_proto::v1::{
    CompareRequest, InfoRequest, ScoreBatchRequest, ScoreStreamRequest,
    score_stream_response::Outcome,
};
use copl_tests::{run, run_ok, text};
use tonic::{Code, transport::Channel};

use super::{Api, code, item, score};

pub async fn info(api: &mut Api) {
    let info = api.info(InfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.seen_users, 60);
    assert_eq!(info.onboarded_users, 0);
    assert_eq!(info.backbone_family, "bert");
    // The CPU serves in F32 (`dtype = "auto"`).
    assert_eq!((info.device.as_str(), info.dtype.as_str()), ("cpu", "f32"));
    assert_eq!(info.embedding_dim, 8);
    let limits = info.limits.unwrap();
    assert_eq!(limits.max_input_tokens, 48);
    assert_eq!(
        (
            limits.max_batch_rows,
            limits.batch_linger_micros,
            limits.max_concurrent_streams
        ),
        (64, 500, 256)
    );
    assert_eq!(info.adapted_projections.len(), 4);
    assert!(info.catalogue_responses > 0);
}

/// Score, the CLI, the load generator, ScoreBatch (and its agreement with `copl-train
/// score`), CompareResponses and ScoreStream, against one seen user's reward.
pub async fn score_paths(api: &mut Api, addr: &str, ckpt: &Path) {
    let seen = api
        .score(score("user-00000", "Water it weekly.", false))
        .await
        .unwrap()
        .into_inner();
    let seen_result = seen.result.unwrap();
    assert!(seen_result.personalised);
    assert!(seen_result.reward.is_finite());
    assert!(seen_result.input_tokens > 5);
    let metadata = seen.metadata.unwrap();
    assert!(metadata.compute_tokens > 5 && metadata.total_time_ns > 0);
    let population = api
        .score(score("", "Water it weekly.", false))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert!(!population.personalised);
    let (c, m) = code(api.score(score("nobody", "Water it.", false)).await);
    assert_eq!(c, Code::NotFound, "{m}");
    assert!(m.contains("nobody"), "{m}");
    let (c, m) = code(api.score(score("user-00000", "", false)).await);
    assert_eq!(
        (c, m.starts_with("response: empty")),
        (Code::InvalidArgument, true),
        "{m}"
    );
    let mut empty_prompt = score("user-00000", "x", false);
    empty_prompt.prompt.clear();
    let (c, m) = code(api.score(empty_prompt).await);
    assert_eq!(
        (c, m.starts_with("prompt: empty")),
        (Code::InvalidArgument, true),
        "{m}"
    );
    let long = "word ".repeat(200);
    let (c, m) = code(api.score(score("user-00000", &long, false)).await);
    assert_eq!(c, Code::InvalidArgument, "{m}");
    assert!(
        m.starts_with("response:") && m.contains("max_input_tokens = 48"),
        "{m}"
    );
    let cut = api
        .score(score("user-00000", &long, true))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert!(cut.truncated);
    assert_eq!(cut.input_tokens, 48);
    let (c, m) = code(api.score(score(&"u".repeat(200), "x", false)).await);
    assert_eq!(
        (c, m.starts_with("user_id:")),
        (Code::InvalidArgument, true),
        "{m}"
    );

    // The operator's CLI against the same server: health for probes, score, errors.
    run_ok("copl", &["--addr", addr, "health"]);
    let stdout = run_ok(
        "copl",
        &[
            "--addr",
            addr,
            "score",
            "--user",
            "user-00000",
            "--prompt",
            "How do I keep a houseplant alive?",
            "--response",
            "Water it weekly.",
            "--json",
        ],
    );
    let cli: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!((cli["reward"].as_f64().unwrap() - f64::from(seen_result.reward)).abs() < 1e-4);
    assert_eq!(cli["personalised"], true);
    let output = run("copl", &["--addr", addr, "user", "get", "ghost"]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("NotFound") && stderr.contains("ghost"),
        "{stderr}"
    );

    // The load generator: a count of calls over mixed users (and the population).
    let stdout = run_ok(
        "copl",
        &[
            "--addr",
            addr,
            "bench",
            "--count",
            "20",
            "--concurrency",
            "4",
            "--users",
            "user-00000,user-00001,",
            "--json",
        ],
    );
    let bench: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(bench["calls_ok"], 20, "{bench}");
    assert_eq!(bench["errors"], serde_json::json!({}), "{bench}");
    assert!(
        bench["latency_ms"]["p99"].as_f64().unwrap()
            >= bench["latency_ms"]["p50"].as_f64().unwrap()
    );

    // ScoreBatch: order kept, equal to one-by-one; errors name the item.
    let batch = api
        .score_batch(ScoreBatchRequest {
            items: vec![
                item("user-00001", "Water it weekly and give it light."),
                item("user-00000", "Water it weekly."),
                item("", "Water it weekly."),
            ],
            truncate: false,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.results.len(), 3);
    assert!((batch.results[1].reward - seen_result.reward).abs() < 1e-4);
    assert!((batch.results[2].reward - population.reward).abs() < 1e-4);
    assert!(!batch.results[2].personalised);

    // The server's scores are `copl-train eval`'s (the gates run on the embedding there;
    // the routing is cached at load here), alone or among other users' longer rows.
    let stdout = run_ok(
        "copl-train",
        &[
            "score",
            "--ckpt",
            ckpt.to_str().unwrap(),
            "--user",
            "user-00000",
            "--prompt",
            "How do I keep a houseplant alive?",
            "--response",
            "Water it weekly.",
            "--response",
            "Water it weekly and give it light.",
            "--json",
        ],
    );
    let offline: Vec<f32> = serde_json::from_str(stdout.trim()).unwrap();
    let second = api
        .score_batch(ScoreBatchRequest {
            items: vec![
                item("user-00007", &"and some longer text ".repeat(5)),
                item("user-00000", "Water it weekly and give it light."),
                item("", "Water."),
            ],
            truncate: false,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        (offline[0] - seen_result.reward).abs() < 1e-4,
        "eval {} server {}",
        offline[0],
        seen_result.reward
    );
    assert!(
        (offline[1] - second.results[1].reward).abs() < 1e-4,
        "eval {} server {}",
        offline[1],
        second.results[1].reward
    );
    let (c, m) = code(
        api.score_batch(ScoreBatchRequest {
            items: vec![item("user-00000", "a"), item("ghost", "b")],
            truncate: false,
            ..Default::default()
        })
        .await,
    );
    assert_eq!(
        (c, m.starts_with("items[1].user_id")),
        (Code::NotFound, true),
        "{m}"
    );
    let (c, m) = code(
        api.score_batch(ScoreBatchRequest {
            items: vec![item("user-00000", "a"), item("user-00000", "")],
            truncate: false,
            ..Default::default()
        })
        .await,
    );
    assert_eq!(
        (c, m.starts_with("items[1].response: empty")),
        (Code::InvalidArgument, true),
        "{m}"
    );
    let (c, _) = code(api.score_batch(ScoreBatchRequest::default()).await);
    assert_eq!(c, Code::InvalidArgument);
    let (c, m) = code(
        api.score_batch(ScoreBatchRequest {
            items: (0..300).map(|_| item("", "a")).collect(),
            truncate: false,
            ..Default::default()
        })
        .await,
    );
    assert_eq!(
        (c, m.contains("max_batch_items = 256")),
        (Code::InvalidArgument, true),
        "{m}"
    );

    // CompareResponses: σ(r_a − r_b) of the two rewards Score gives.
    let compare = api
        .compare_responses(CompareRequest {
            user_id: "user-00000".into(),
            prompt: "How do I keep a houseplant alive?".into(),
            response_a: "Water it weekly.".into(),
            response_b: "Water it weekly and give it light.".into(),
            truncate: false,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (a, b) = (compare.a.unwrap(), compare.b.unwrap());
    assert!((a.reward - seen_result.reward).abs() < 1e-4);
    let p = 1.0 / (1.0 + (b.reward - a.reward).exp());
    assert!((compare.probability_a_preferred - p).abs() < 1e-6);
    let (c, m) = code(
        api.compare_responses(CompareRequest {
            user_id: "user-00000".into(),
            prompt: "p".into(),
            response_a: "a".into(),
            response_b: String::new(),
            truncate: false,
            ..Default::default()
        })
        .await,
    );
    assert_eq!(
        (c, m.starts_with("response_b: empty")),
        (Code::InvalidArgument, true),
        "{m}"
    );

    // ScoreStream: results in the order sent; a bad item is an error result only.
    let requests: Vec<ScoreStreamRequest> = [
        ("user-00000", "Water it weekly."),
        ("ghost", "x"),
        ("", "Water it weekly."),
        ("user-00001", "Water it weekly and give it light."),
    ]
    .iter()
    .enumerate()
    .map(|(i, (u, r))| ScoreStreamRequest {
        request_id: 100 + i as u64,
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
    let mut answers = Vec::new();
    while let Some(reply) = stream.message().await.unwrap() {
        answers.push(reply);
    }
    assert_eq!(
        answers.iter().map(|a| a.request_id).collect::<Vec<_>>(),
        vec![100, 101, 102, 103]
    );
    match &answers[0].outcome {
        Some(Outcome::Result(r)) => assert!((r.reward - seen_result.reward).abs() < 1e-4),
        other => panic!("{other:?}"),
    }
    match &answers[1].outcome {
        Some(Outcome::Error(e)) => assert_eq!(e.code, Code::NotFound as i32, "{e:?}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(answers[3].outcome, Some(Outcome::Result(_))));
}

pub async fn reflection_lists_the_services(channel: Channel) {
    use tonic_reflection::pb::{v1, v1alpha};
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut replies = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.message().await.unwrap().unwrap();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        reply.message_response
    else {
        panic!("{reply:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in ["copl.v1.RewardService", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }

    let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut replies = alpha
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.message().await.unwrap().unwrap();
    assert!(
        format!("{reply:?}").contains("copl.v1.RewardService"),
        "{reply:?}"
    );
}

/// `copl-bench serve`: `copl bench`'s work through the bare model at each batch size
/// (the server's overhead is measured against it), typed rows or a table.
pub fn the_bare_model_bench_scores_every_batch_size(ckpt: &Path) {
    let ckpt = ckpt.to_str().unwrap();
    let args = |json: bool| {
        let mut a = vec![
            "serve",
            "--ckpt",
            ckpt,
            "--batches",
            "1,3",
            "--duration",
            "0.2",
            "--users",
            "user-00000,user-00001",
            "--prompt",
            "How do I keep a houseplant alive?",
            "--response",
            "Water it weekly.",
        ];
        if json {
            a.push("--json");
        }
        a
    };
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&run_ok("copl-bench", &args(true))).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (row, batch) in rows.iter().zip([1, 3]) {
        assert_eq!(row["batch"], batch, "{row}");
        assert!(row["batches"].as_u64().unwrap() >= 1, "{row}");
        assert!(row["rows_per_second"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["p99_ms"].as_f64().unwrap() >= row["p50_ms"].as_f64().unwrap());
    }
    let table = run_ok("copl-bench", &args(false));
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table.starts_with("batch   1:"), "{table}");
    let mut unknown = args(true);
    unknown[8] = "nobody";
    let output = run("copl-bench", &unknown);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(stderr.contains("\"nobody\" is not a seen user"), "{stderr}");
}
