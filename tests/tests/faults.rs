//! Faults: `kill -9` in the middle of a burst of onboardings loses no acknowledged user
//! and leaves a store the restarted server loads (an interrupted write leaves only a
//! temporary sibling, which is ignored).

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use copl_proto::v1::{
    GetUserRequest, OnboardUserRequest, reward_service_client::RewardServiceClient,
};
use copl_tests::{Server, tiny_checkpoint, unseen_survey_answers};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_an_onboarding_burst_loses_no_acknowledged_user() {
    let root = tempfile::tempdir().unwrap();
    let (data, ckpt) = tiny_checkpoint(root.path());
    let store = root.path().join("store");
    let mut server = Server::start(&ckpt, &store, &[]);
    let channel = server.serving("copl.v1.RewardService").await;
    let answers = unseen_survey_answers(&data);

    // 8 clients onboard users as fast as they can; the server is killed after 40 acks.
    let acked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..8 {
        let (channel, answers, acked, count) = (
            channel.clone(),
            answers.clone(),
            acked.clone(),
            count.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut api = RewardServiceClient::new(channel);
            for i in 0.. {
                let user = format!("burst-{c}-{i}");
                let reply = api
                    .onboard_user(OnboardUserRequest {
                        user_id: user.clone(),
                        answers: answers.clone(),
                        options: None,
                        replace: false,
                    })
                    .await;
                match reply {
                    Ok(_) => {
                        acked.lock().unwrap().push(user);
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    while count.load(Ordering::SeqCst) < 40 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    for client in clients {
        client.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 40);

    // Restarted on the same store: it loads (no corrupt file), every acknowledged user
    // is there.
    let server = Server::start(&ckpt, &store, &[]);
    let mut api = RewardServiceClient::new(server.serving("copl.v1.RewardService").await);
    let mut lost = Vec::new();
    for user in &acked {
        let found = api
            .get_user(GetUserRequest {
                user_id: user.clone(),
                include_embedding: false,
            })
            .await;
        if let Err(s) = found {
            assert_eq!(s.code(), Code::NotFound, "{s:?}");
            lost.push(user.clone());
        }
    }
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
}
