//! A new checkpoint (GCF trained again: another embedding space) over the store the
//! first one wrote: onboarded users are re-adapted from the answers their records keep
//! (issue #18) — the same embedding an onboarding with those answers gets there —,
//! answers on responses the catalogue lacks are counted, a record without answers says
//! how to recover, the records are left as they were, and `onboarding.readapt = "eager"`
//! does it at start.

use std::path::Path;

use copl_proto::v1::{
    GetUserRequest, UserInfo, UserOrigin, reward_service_client::RewardServiceClient,
};
use copl_tests::{Server, regcf_checkpoint, unseen_survey_answers};
use serde_json::Value;
use tonic::Code;

use super::{Api, code, hex_of, onboard, score};

async fn get(api: &mut Api, id: &str) -> UserInfo {
    copl_tests::user_info(api, id).await
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
}

pub async fn a_new_checkpoint_readapts_onboarded_users(
    root: &Path,
    data: &Path,
    ckpt: &Path,
    store: &Path,
) {
    let ckpt2 = regcf_checkpoint(root, data, ckpt);
    // The first server's records, and three made from new-user's: one answer on a
    // response the catalogue lacks, all of them, and a record of before answers were
    // kept from another space.
    let (users, users2) = (store.join("users"), root.join("store-regcf").join("users"));
    std::fs::create_dir_all(&users2).unwrap();
    for entry in std::fs::read_dir(&users).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, users2.join(path.file_name().unwrap())).unwrap();
    }
    let record_file = users2.join(format!("{}.json", hex_of("new-user")));
    let record_bytes = std::fs::read(&record_file).unwrap();
    let record: Value = serde_json::from_slice(&record_bytes).unwrap();
    let n = record["answer_log"].as_array().unwrap().len();
    let write = |id: &str, edit: &dyn Fn(&mut Value)| {
        let mut r = record.clone();
        r["user_id"] = id.into();
        edit(&mut r);
        let file = users2.join(format!("{}.json", hex_of(id)));
        std::fs::write(file, serde_json::to_vec(&r).unwrap()).unwrap();
    };
    write("gap-user", &|r| {
        r["answer_log"][0]["chosen"] = "no-such-response".into()
    });
    write("gone-user", &|r| {
        for a in r["answer_log"].as_array_mut().unwrap() {
            a["rejected"] = "no-such-response".into();
        }
    });
    write("stale-user", &|r| {
        r.as_object_mut().unwrap().remove("answer_log");
        r.as_object_mut().unwrap().remove("options");
        r["space"] = "00ff:8".into();
    });

    let store2 = users2.parent().unwrap();
    let server = Server::start(&ckpt2, store2, &[]);
    let mut api = RewardServiceClient::new(server.serving("copl.v1.RewardService").await);
    let user = get(&mut api, "new-user").await;
    assert_eq!(user.origin, UserOrigin::Onboarded as i32);
    assert!(user.readapted && user.personalised, "{user:?}");
    assert_eq!(user.answers_outside_catalogue, 0);
    let stored: Vec<f32> = serde_json::from_value(record["embedding"].clone()).unwrap();
    assert!(
        !close(&user.embedding, &stored),
        "the old space's embedding was served"
    );
    // The same answers onboarded on the new checkpoint: the same user.
    api.onboard_user(onboard("twin", unseen_survey_answers(data), false))
        .await
        .unwrap();
    let twin = get(&mut api, "twin").await;
    assert!(!twin.readapted);
    assert!(
        close(&user.embedding, &twin.embedding),
        "{user:?}\n{twin:?}"
    );
    assert_eq!(user.routing, twin.routing);
    let scored = api
        .score(score("new-user", "Water it weekly.", false))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert!(scored.personalised);

    let gap = get(&mut api, "gap-user").await;
    assert!(gap.readapted && gap.personalised, "{gap:?}");
    assert_eq!(gap.answers_outside_catalogue, 1);
    let gone = get(&mut api, "gone-user").await;
    assert!(gone.readapted && !gone.personalised, "{gone:?}");
    assert_eq!(gone.answers_outside_catalogue as usize, n);

    let (c, m) = code(
        api.get_user(GetUserRequest {
            user_id: "stale-user".into(),
            include_embedding: false,
        })
        .await,
    );
    assert_eq!(c, Code::NotFound, "{m}");
    assert!(m.contains("onboard it again with replace"), "{m}");
    let answers = unseen_survey_answers(data);
    let (c, m) = code(
        api.onboard_user(onboard("stale-user", answers.clone(), false))
            .await,
    );
    assert_eq!(c, Code::AlreadyExists, "{m}");
    api.onboard_user(onboard("stale-user", answers, true))
        .await
        .unwrap();
    assert!(!get(&mut api, "stale-user").await.readapted);
    // Serving in another space never rewrote the record.
    assert_eq!(std::fs::read(&record_file).unwrap(), record_bytes);

    // Eager: re-adapted at start, the same user.
    drop(api);
    drop(server);
    let server = Server::start(&ckpt2, store2, &[("COPL_ONBOARDING__READAPT", "eager")]);
    let mut api = RewardServiceClient::new(server.serving("copl.v1.RewardService").await);
    let eager = get(&mut api, "new-user").await;
    assert!(eager.readapted);
    assert!(close(&eager.embedding, &user.embedding));
}
