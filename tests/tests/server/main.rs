//! copl-server end to end: a tiny checkpoint built with the real `copl-train` binary
//! (tiny synthetic data, GCF, MoLE over a tiny random BERT with MiniLM's tokenizer), the
//! real `copl-server` binary on a free port, driven through the generated client, the
//! standard health protocol and server reflection: every RPC, every error path, and a
//! restart that keeps an onboarded user. One server serves the sections in turn (its
//! checkpoint is the costly part): `scoring` (Info, Score, ScoreBatch, CompareResponses,
//! ScoreStream, the CLI and its load generator), `per_item` (ScoreBatch's per-item
//! outcomes, the unknown-user policy), `users` (OnboardUser, GetUser,
//! SuggestSurvey, DeleteUser), `new_checkpoint` (users onboarded for another
//! checkpoint re-adapted from their kept answers), `restart` (metrics, kill -9 and restarts, a full queue);
//! `refusals` holds the checkpoints and configurations a server refuses at start.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

mod new_checkpoint;
mod per_item;
mod refusals;
mod restart;
mod scoring;
mod users;

use copl_proto::v1::{
    OnboardUserRequest, ResponseRef, ScoreItem, ScoreRequest, SurveyAnswer, response_ref::Ref,
    reward_service_client::RewardServiceClient,
};
use copl_tests::{Server, tiny_checkpoint};
use tonic::{Code, transport::Channel};

type Api = RewardServiceClient<Channel>;

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

/// The file store's name stem of a short id: its bytes in hex.
fn hex_of(id: &str) -> String {
    id.bytes().map(|b| format!("{b:02x}")).collect()
}

/// A Score request for the houseplant prompt every section uses.
fn score(user: &str, response: &str, truncate: bool) -> ScoreRequest {
    ScoreRequest {
        user_id: user.into(),
        prompt: "How do I keep a houseplant alive?".into(),
        response: response.into(),
        truncate,
        ..Default::default()
    }
}

/// A ScoreBatch / ScoreStream item for the same prompt.
fn item(user: &str, response: &str) -> ScoreItem {
    ScoreItem {
        user_id: user.into(),
        prompt: "How do I keep a houseplant alive?".into(),
        response: response.into(),
    }
}

fn onboard(id: &str, answers: Vec<SurveyAnswer>, replace: bool) -> OnboardUserRequest {
    OnboardUserRequest {
        user_id: id.into(),
        answers,
        options: None,
        replace,
    }
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
    let addr = format!("http://{}", server.addr);

    scoring::reflection_lists_the_services(channel).await;
    scoring::info(&mut api).await;
    scoring::score_paths(&mut api, &addr, &ckpt).await;
    per_item::per_item_outcomes_and_unknown_users(&mut api).await;
    scoring::the_bare_model_bench_scores_every_batch_size(&ckpt);
    let onboarded = users::onboarding(&mut api, &addr, &data, &ckpt).await;
    users::lookups_surveys_and_refusals(&mut api, &onboarded.answers).await;
    users::answers_are_kept_in_the_record(&store, &data);
    new_checkpoint::a_new_checkpoint_readapts_onboarded_users(root.path(), &data, &ckpt, &store)
        .await;
    restart::metrics_name_no_user(&server);
    restart::onboarded_users_survive_restarts(server, api, &ckpt, &store, &onboarded).await;
    restart::a_full_queue_refuses_at_once(&ckpt, &store).await;
}
