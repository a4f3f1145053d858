//! `copl`'s exit codes, grpc_health_probe's convention (client-cli/src/exit.rs): 0
//! serving, 1 bad arguments, 2 connection failure, 3 a failed call, 4 a timeout, 20 not
//! serving — against in-process health servers (one whose status the test sets, one that
//! answers too late) and an address where nothing listens; `--json` on the answer.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::{pin::Pin, time::Duration};

use copl_tests::{run, text};
use tokio_stream::{Stream, wrappers::TcpListenerStream};
use tonic::{Request, Response, Status};
use tonic_health::{
    ServingStatus,
    pb::{
        HealthCheckRequest, HealthCheckResponse,
        health_server::{Health, HealthServer},
    },
};

/// `copl ARGS` on a blocking thread (the test's servers keep running): exit code, stdout,
/// stderr.
async fn copl(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run("copl", &args);
        let (stdout, stderr) = text(&output);
        (output.status.code().unwrap_or(-1), stdout, stderr)
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A health service that answers only after `delay`.
struct Late {
    delay: Duration,
}

#[tonic::async_trait]
impl Health for Late {
    async fn check(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        tokio::time::sleep(self.delay).await;
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

    async fn watch(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("watch"))
    }
}

/// Serves `service` on a free loopback port; its `host:port`.
async fn serve<S>(service: S) -> String
where
    S: tonic::codegen::Service<
            tonic::codegen::http::Request<tonic::body::Body>,
            Response = tonic::codegen::http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copl_exits_with_grpc_health_probes_codes() {
    // 1: a flag that does not exist, and a bad answer.
    let (code, _, stderr) = copl(args(&["--no-such-flag", "health"])).await;
    assert_eq!(code, 1, "{stderr}");
    let (code, _, stderr) = copl(args(&["--addr", "127.0.0.1:9", "onboard", "--user", "u"])).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no answers"), "{stderr}");
    // --help is not a failure.
    assert_eq!(copl(args(&["--help"])).await.0, 0);

    // 2: nothing listens (port 9, discard), given as host:port.
    let (code, _, stderr) =
        copl(args(&["--addr", "127.0.0.1:9", "--timeout", "2", "health"])).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("cannot connect to http://127.0.0.1:9"),
        "{stderr}"
    );

    // 0 and 20: a health server whose status the test sets.
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("copl.v1.RewardService", ServingStatus::NotServing)
        .await;
    let addr = serve(service).await;
    let (code, stdout, stderr) = copl(args(&["--addr", &addr, "health"])).await;
    assert_eq!(code, 20, "{stdout} {stderr}");
    assert!(stdout.contains("NOT_SERVING"), "{stdout}");
    assert!(stderr.contains("is not serving"), "{stderr}");
    let (code, stdout, _) = copl(args(&["--addr", &addr, "health", "--json"])).await;
    assert_eq!(code, 20);
    let answer: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(answer["status"], "NOT_SERVING", "{stdout}");
    assert_eq!(answer["service"], "copl.v1.RewardService", "{stdout}");
    reporter
        .set_service_status("copl.v1.RewardService", ServingStatus::Serving)
        .await;
    let url = format!("http://{addr}");
    let (code, stdout, stderr) = copl(args(&["--addr", &url, "health"])).await;
    assert_eq!(code, 0, "{stdout} {stderr}");
    assert!(stdout.contains("SERVING"), "{stdout}");

    // 3: the call fails (a service the server does not know: NOT_FOUND).
    let (code, _, stderr) = copl(args(&["--addr", &addr, "health", "--service", "nope"])).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("NotFound"), "{stderr}");

    // 4: the server answers after --timeout.
    let late = serve(HealthServer::new(Late {
        delay: Duration::from_secs(5),
    }))
    .await;
    let (code, _, stderr) = copl(args(&["--addr", &late, "--timeout", "0.5", "health"])).await;
    assert_eq!(code, 4, "{stderr}");
}
