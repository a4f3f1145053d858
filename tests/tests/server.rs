//! copl-server end to end: a tiny checkpoint built with the real `copl-train` binary
//! (tiny synthetic data, GCF, MoLE over a tiny random BERT with MiniLM's tokenizer), the
//! real `copl-server` binary on a free port, driven through the generated client, the
//! standard health protocol and server reflection: every RPC, every error path, and a
//! restart that keeps an onboarded user.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::{path::Path, process::Command, time::Duration};

use copl_proto::v1::{
    CompareRequest, DeleteUserRequest, GetUserRequest, InfoRequest, OnboardOptions,
    OnboardUserRequest, ResponseRef, ResponseText, ScoreBatchRequest, ScoreItem, ScoreRequest,
    ScoreStreamRequest, SuggestSurveyRequest, SurveyAnswer, UserOrigin, response_ref::Ref,
    reward_service_client::RewardServiceClient, score_stream_response::Outcome,
};
use copl_tests::{
    Server, binary, run, run_ok, scrape, text, tiny_checkpoint, train, unseen_answers,
};
use tonic::{Code, transport::Channel};

fn by_id(id: &str) -> Option<ResponseRef> {
    Some(ResponseRef {
        r#ref: Some(Ref::Id(id.to_string())),
    })
}

fn answer(chosen: &str, rejected: &str) -> SurveyAnswer {
    SurveyAnswer {
        chosen: by_id(chosen),
        rejected: by_id(rejected),
    }
}

fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> (Code, String) {
    let status = result.unwrap_err();
    (status.code(), status.message().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_and_error_through_the_real_server() {
    let root = tempfile::tempdir().unwrap();
    let (data, ckpt) = tiny_checkpoint(root.path());
    let store = root.path().join("store");
    let server = Server::start(&ckpt, &store, &[]);
    let channel = server.serving("copl.v1.RewardService").await;
    server.serving("").await;
    let mut api = RewardServiceClient::new(channel.clone());

    // Reflection, v1 and v1alpha, as grpcurl would use it.
    reflection_lists_the_services(channel.clone()).await;

    // Info.
    let info = api.info(InfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.seen_users, 60);
    assert_eq!(info.onboarded_users, 0);
    assert_eq!(info.backbone_family, "bert");
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

    // Score: a seen user, the population, errors.
    let score = |user: &str, response: &str, truncate: bool| ScoreRequest {
        user_id: user.into(),
        prompt: "How do I keep a houseplant alive?".into(),
        response: response.into(),
        truncate,
    };
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
    let addr = format!("http://{}", server.addr);
    run_ok("copl", &["--addr", &addr, "health"]);
    let stdout = run_ok(
        "copl",
        &[
            "--addr",
            &addr,
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
    let output = run("copl", &["--addr", &addr, "user", "get", "ghost"]);
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
            &addr,
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
    let item = |user: &str, response: &str| ScoreItem {
        user_id: user.into(),
        prompt: "How do I keep a houseplant alive?".into(),
        response: response.into(),
    };
    let batch = api
        .score_batch(ScoreBatchRequest {
            items: vec![
                item("user-00001", "Water it weekly and give it light."),
                item("user-00000", "Water it weekly."),
                item("", "Water it weekly."),
            ],
            truncate: false,
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

    // OnboardUser from an unseen user's answers, by id and by text.
    let given = unseen_answers(&data);
    assert!(given.len() >= 2);
    let catalogue: Vec<serde_json::Value> = std::fs::read_to_string(ckpt.join("catalogue.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let text_of = |id: &str| {
        catalogue
            .iter()
            .find(|e| e["id"] == id)
            .map(|e| {
                (
                    e["prompt"].as_str().unwrap().to_string(),
                    e["response"].as_str().unwrap().to_string(),
                )
            })
            .unwrap()
    };
    let mut answers: Vec<SurveyAnswer> = given.iter().map(|(c, r)| answer(c, r)).collect();
    let (prompt, response) = text_of(&given[0].0);
    answers[0].chosen = Some(ResponseRef {
        r#ref: Some(Ref::Text(ResponseText { response, prompt })),
    });
    let onboard = |id: &str, answers: Vec<SurveyAnswer>, replace: bool| OnboardUserRequest {
        user_id: id.into(),
        answers,
        options: None,
        replace,
    };
    let onboarded = api
        .onboard_user(onboard("new-user", answers.clone(), false))
        .await
        .unwrap()
        .into_inner();
    let user = onboarded.user.unwrap();
    assert_eq!(user.origin, UserOrigin::Onboarded as i32);
    assert_eq!(user.routing.len(), 4);
    assert_eq!(onboarded.answers.unwrap().given, answers.len() as u32);
    assert!(onboarded.neighbourhood_size > 0);
    // The CLI onboards from flags and reads the user back.
    let flags: Vec<String> = given
        .iter()
        .flat_map(|(c, r)| ["--answer".to_string(), format!("{c}>{r}")])
        .collect();
    let mut args = vec!["--addr", &addr, "onboard", "--user", "cli-user", "--json"];
    args.extend(flags.iter().map(String::as_str));
    let stdout = run_ok("copl", &args);
    let cli: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(cli["answers"]["given"], given.len());
    let stdout = run_ok(
        "copl",
        &["--addr", &addr, "user", "get", "cli-user", "--json"],
    );
    let cli: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(cli["origin"], "USER_ORIGIN_ONBOARDED");
    run_ok("copl", &["--addr", &addr, "user", "delete", "cli-user"]);
    let personal = api
        .score(score("new-user", "Water it weekly.", false))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(personal.personalised, user.personalised);
    let (c, m) = code(
        api.onboard_user(onboard("new-user", answers.clone(), false))
            .await,
    );
    assert_eq!(c, Code::AlreadyExists, "{m}");
    api.onboard_user(onboard("new-user", answers.clone(), true))
        .await
        .unwrap();
    let (c, m) = code(
        api.onboard_user(onboard("user-00003", answers.clone(), false))
            .await,
    );
    assert_eq!(c, Code::FailedPrecondition, "{m}");
    let (c, m) = code(
        api.onboard_user(onboard(
            "x",
            vec![answer("no-such-response", &given[0].1)],
            false,
        ))
        .await,
    );
    assert_eq!(c, Code::InvalidArgument, "{m}");
    assert!(m.starts_with("answers[0].chosen.id"), "{m}");
    let (c, m) = code(
        api.onboard_user(onboard("x", vec![answer(&given[0].0, &given[0].0)], false))
            .await,
    );
    assert_eq!(
        (c, m.starts_with("answers[0]")),
        (Code::InvalidArgument, true),
        "{m}"
    );
    let (c, m) = code(api.onboard_user(onboard("x", Vec::new(), false)).await);
    assert_eq!(
        (c, m.starts_with("answers")),
        (Code::InvalidArgument, true),
        "{m}"
    );
    let mut odd = onboard("x", answers.clone(), false);
    odd.options = Some(OnboardOptions {
        hops: Some(3),
        temperature: None,
    });
    let (c, m) = code(api.onboard_user(odd).await);
    assert_eq!(
        (c, m.starts_with("options.hops: 3")),
        (Code::InvalidArgument, true),
        "{m}"
    );
    let (c, _) = code(api.onboard_user(onboard("", answers.clone(), false)).await);
    assert_eq!(c, Code::InvalidArgument);

    // GetUser.
    let seen_user = api
        .get_user(GetUserRequest {
            user_id: "user-00000".into(),
            include_embedding: true,
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(seen_user.origin, UserOrigin::Seen as i32);
    assert_eq!(seen_user.embedding.len(), 8);
    assert!(seen_user.answers > 0);
    let (c, _) = code(
        api.get_user(GetUserRequest {
            user_id: "ghost".into(),
            include_embedding: false,
        })
        .await,
    );
    assert_eq!(c, Code::NotFound);

    // SuggestSurvey: pairs of catalogue responses; declined pairs never come back.
    let survey = api
        .suggest_survey(SuggestSurveyRequest {
            max_pairs: 3,
            answers_so_far: vec![answers[1].clone()],
            seed: 7,
            declined: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!survey.pairs.is_empty() && survey.pairs.len() <= 3);
    let first = survey.pairs[0].clone();
    let again = api
        .suggest_survey(SuggestSurveyRequest {
            max_pairs: 3,
            answers_so_far: vec![answers[1].clone()],
            seed: 7,
            declined: vec![copl_proto::v1::DeclinedPair {
                a: by_id(&first.a.as_ref().unwrap().id),
                b: by_id(&first.b.as_ref().unwrap().id),
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(again.pairs.iter().all(|p| p.a != first.a || p.b != first.b));
    // More declined pairs than the pool holds (≈ 156 here): refused before any work,
    // naming the field; far more than any list limit: refused before decoding.
    let many = copl_proto::v1::DeclinedPair {
        a: by_id(&first.a.as_ref().unwrap().id),
        b: by_id(&first.b.as_ref().unwrap().id),
    };
    for (count, says) in [(1_000, "survey pool"), (20_000, "nothing was decoded")] {
        let (c, m) = code(
            api.suggest_survey(SuggestSurveyRequest {
                max_pairs: 3,
                declined: vec![many.clone(); count],
                ..SuggestSurveyRequest::default()
            })
            .await,
        );
        assert_eq!(c, Code::InvalidArgument, "{m}");
        assert!(m.contains("declined") && m.contains(says), "{count}: {m}");
    }
    let (c, _) = code(
        api.suggest_survey(SuggestSurveyRequest {
            max_pairs: 1000,
            ..SuggestSurveyRequest::default()
        })
        .await,
    );
    assert_eq!(c, Code::InvalidArgument);

    // A deadline that has passed: DEADLINE_EXCEEDED, no compute.
    let mut late = tonic::Request::new(score("user-00000", "Water it weekly.", false));
    late.set_timeout(Duration::from_nanos(1));
    let (c, m) = code(api.score(late).await);
    assert!(
        matches!(c, Code::DeadlineExceeded | Code::Cancelled),
        "{c:?} {m}"
    );

    // DeleteUser of a seen user is refused.
    let (c, _) = code(
        api.delete_user(DeleteUserRequest {
            user_id: "user-00000".into(),
        })
        .await,
    );
    assert_eq!(c, Code::FailedPrecondition);

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
    let server = Server::start(&ckpt, &store, &[]);
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
    assert!((again.reward - personal.reward).abs() < 1e-4);
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
    let server = Server::start(&ckpt, &store, &[]);
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

    // A full queue answers RESOURCE_EXHAUSTED at once.
    let server = Server::start(&ckpt, &store, &[("COPL_LIMITS__MAX_QUEUED_REQUESTS", "1")]);
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

async fn reflection_lists_the_services(channel: Channel) {
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

/// A checkpoint the server cannot serve is refused at start with what is wrong, and the
/// process exits non-zero (no half-started server).
#[test]
fn a_bad_checkpoint_is_refused_with_what_is_wrong() {
    let root = tempfile::tempdir().unwrap();
    let serve = |ckpt: &Path| {
        let output = Command::new(binary("copl-server"))
            .args(["--checkpoint", ckpt.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0"])
            .args(["--data-dir", root.path().join("store").to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let missing = root.path().join("missing");
    let stderr = serve(&missing);
    assert!(stderr.contains("is not a directory"), "{stderr}");

    // GCF only: no reward model trained yet.
    let (data, gcf) = (root.path().join("data"), root.path().join("gcf"));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    train(&[
        "synth",
        "--preset",
        "ufp2",
        "--users",
        "30",
        "--unseen-users",
        "0",
        "--seed",
        "2",
        "--out",
        &s(&data),
    ]);
    train(&[
        "gcf",
        "--data",
        &s(&data),
        "--out",
        &s(&gcf),
        "--dim",
        "8",
        "--layers",
        "1",
        "--epochs",
        "2",
        "--batch-size",
        "10000",
    ]);
    let stderr = serve(&gcf);
    assert!(
        stderr.contains("no model section") && stderr.contains("copl-train mole"),
        "{stderr}"
    );

    // A bad configuration file is refused naming the setting.
    let config = root.path().join("bad.toml");
    std::fs::write(&config, "[limits]\nmax_hops = 5\n").unwrap();
    let output = Command::new(binary("copl-server"))
        .args([
            "--checkpoint",
            gcf.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("limits.max_hops = 5"), "{stderr}");
}
