//! ScoreStream end to end against the real server: a client that stops reading holds no
//! queue room; a client that goes away stops the scoring of its items; SIGTERM lets an
//! open stream finish.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::{process::Command, time::Duration};

use copl_proto::v1::{
    ScoreItem, ScoreRequest, ScoreStreamRequest, reward_service_client::RewardServiceClient,
    score_stream_response::Outcome,
};
use copl_tests::{Server, scrape, tiny_checkpoint};

fn metric(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Rows the backend has computed so far, once the count has stopped moving.
async fn settled_rows(metrics: &str) -> f64 {
    let mut last = -1.0;
    loop {
        let rows = metric(&scrape(metrics), "copl_batch_rows_sum");
        if rows == last {
            return rows;
        }
        last = rows;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A client that keeps its stream open but stops reading holds no queue room: its
/// items keep being scored (up to the stream's bound of finished results), so
/// `copl_queue_depth` returns to 0 and other callers are admitted. (The items read
/// held their room for as long as the client stalled: with `max_queued_requests = 64`
/// one stalled stream could leave every other caller RESOURCE_EXHAUSTED.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_client_stops_reading_holds_no_queue_room() {
    let root = tempfile::tempdir().unwrap();
    let (_data, ckpt) = tiny_checkpoint(root.path());
    let server = Server::start(
        &ckpt,
        &root.path().join("store"),
        &[("COPL_LIMITS__MAX_QUEUED_REQUESTS", "64")],
    );
    let channel = server.serving("copl.v1.RewardService").await;
    let small_window = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .initial_stream_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let (items, requests) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..5_000u64 {
        items
            .send(ScoreStreamRequest {
                request_id: i,
                item: Some(ScoreItem {
                    user_id: format!("user-{:05}", i % 60),
                    prompt: "How do I keep a houseplant alive?".into(),
                    response: "Water it weekly and give it bright, indirect light.".into(),
                }),
                truncate: false,
                ..Default::default()
            })
            .unwrap();
    }
    let mut stalled = RewardServiceClient::new(small_window);
    // The request stream stays open (`items` is kept) and no result is read.
    let results = stalled
        .score_stream(tokio_stream::wrappers::UnboundedReceiverStream::new(
            requests,
        ))
        .await
        .unwrap();
    settled_rows(&server.metrics).await;
    let mut depth = metric(&scrape(&server.metrics), "copl_queue_depth");
    for _ in 0..50 {
        if depth == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        depth = metric(&scrape(&server.metrics), "copl_queue_depth");
    }
    assert_eq!(depth, 0.0, "a stalled stream's items still hold queue room");
    // Another caller is admitted while the stalled stream is open.
    let mut other = RewardServiceClient::new(channel);
    let reply = other
        .score(ScoreRequest {
            user_id: "user-00001".into(),
            prompt: "How do I keep a houseplant alive?".into(),
            response: "Water it weekly.".into(),
            truncate: false,
            ..Default::default()
        })
        .await;
    assert!(reply.is_ok(), "{reply:?}");
    drop((results, items));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_stops_when_its_client_goes_away_and_shutdown_finishes_open_calls() {
    let root = tempfile::tempdir().unwrap();
    let (_data, ckpt) = tiny_checkpoint(root.path());
    let log_path = root.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = Server::start_with(
        &ckpt,
        &root.path().join("store"),
        &[],
        &["--log-format", "json"],
        log.into(),
    );
    let channel = server.serving("copl.v1.RewardService").await;
    let item = |i: u64| ScoreStreamRequest {
        request_id: i,
        item: Some(ScoreItem {
            user_id: format!("user-{:05}", i % 60),
            prompt: "How do I keep a houseplant alive?".into(),
            response: "Water it weekly and give it bright, indirect light.".into(),
        }),
        truncate: false,
        ..Default::default()
    };

    // A client that sends many items, reads one result and goes away: the server stops
    // reading and scoring its items (the flow-control windows hold a few thousand
    // results; far fewer than were sent are computed).
    let sent = 50_000u64;
    let small_window = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .initial_stream_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let before = settled_rows(&server.metrics).await;
    let mut api = RewardServiceClient::new(small_window);
    let mut results = api
        .score_stream(tokio_stream::iter((0..sent).map(item)))
        .await
        .unwrap()
        .into_inner();
    let first = results.message().await.unwrap().unwrap();
    assert_eq!(first.request_id, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(results);
    drop(api);
    let computed = settled_rows(&server.metrics).await - before;
    assert!(
        computed >= 1.0 && computed < (sent / 2) as f64,
        "{computed} of {sent} items were scored after the client went away"
    );
    // The queue drains: the gone client's jobs are dropped when the batching task next
    // looks (within a few seconds on a loaded 2-core machine).
    let mut scrape_after = scrape(&server.metrics);
    for _ in 0..50 {
        if metric(&scrape_after, "copl_queue_depth") == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        scrape_after = scrape(&server.metrics);
    }
    assert_eq!(
        metric(&scrape_after, "copl_queue_depth"),
        0.0,
        "{scrape_after}"
    );

    // Graceful shutdown: a stream open before SIGTERM is still answered after it, and
    // the server exits 0 once it ends.
    let mut api = RewardServiceClient::new(channel);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut results = api
        .score_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(item(1)).await.unwrap();
    assert_eq!(results.message().await.unwrap().unwrap().request_id, 1);
    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Wait until the server logs that it is shutting down, then use the open stream.
    for _ in 0..100 {
        if std::fs::read_to_string(&log_path)
            .unwrap()
            .contains("shutting down")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tx.send(item(2)).await.unwrap();
    let after = results.message().await.unwrap().unwrap();
    assert_eq!(after.request_id, 2);
    assert!(
        matches!(after.outcome, Some(Outcome::Result(_))),
        "{after:?}"
    );
    drop(tx);
    assert!(results.message().await.unwrap().is_none());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "copl-server exited with {status}");

    // --log-format json: every log line is a JSON object with a level and a message.
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(lines.len() >= 3, "{log}");
    assert!(lines.iter().all(|l| l["level"].is_string()), "{log}");
    let messages: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["fields"]["message"].as_str())
        .collect();
    assert!(
        messages.iter().any(|m| m.starts_with("model loaded")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.starts_with("shutting down")),
        "{messages:?}"
    );
}
