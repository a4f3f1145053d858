//! OnboardUser (by id and by text, from the CLI too), GetUser, SuggestSurvey, a passed
//! deadline and DeleteUser's refusals.

use std::{path::Path, time::Duration};

use copl_proto::v1::{
    DeleteUserRequest, GetUserRequest, OnboardOptions, ResponseRef, ResponseText,
    SuggestSurveyRequest, SurveyAnswer, UserInfo, UserOrigin, response_ref::Ref,
};
use copl_tests::{run_ok, unseen_answers};
use tonic::Code;

use super::{Api, answer, by_id, code, hex_of, onboard, score};

/// What the later sections check against: the answers given, the user OnboardUser
/// returned, and their reward for the houseplant answer.
pub struct Onboarded {
    pub answers: Vec<SurveyAnswer>,
    pub user: UserInfo,
    pub personal_reward: f32,
}

pub async fn onboarding(api: &mut Api, addr: &str, data: &Path, ckpt: &Path) -> Onboarded {
    let given = unseen_answers(data);
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
    let mut args = vec!["--addr", addr, "onboard", "--user", "cli-user", "--json"];
    args.extend(flags.iter().map(String::as_str));
    let stdout = run_ok("copl", &args);
    let cli: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(cli["answers"]["given"], given.len());
    let stdout = run_ok(
        "copl",
        &["--addr", addr, "user", "get", "cli-user", "--json"],
    );
    let cli: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(cli["origin"], "USER_ORIGIN_ONBOARDED");
    run_ok("copl", &["--addr", addr, "user", "delete", "cli-user"]);
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
    Onboarded {
        answers,
        user,
        personal_reward: personal.reward,
    }
}

pub async fn lookups_surveys_and_refusals(api: &mut Api, answers: &[SurveyAnswer]) {
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
}

/// The stored record keeps the answers (catalogue ids in the order given, the one named
/// by its text resolved to its id, each with a time) and says its format (issue #18:
/// what a new checkpoint re-adapts the user from).
pub fn answers_are_kept_in_the_record(store: &Path, data: &Path) {
    let file = store
        .join("users")
        .join(format!("{}.json", hex_of("new-user")));
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(record["format_version"], 1, "{record}");
    let kept: Vec<(String, String)> = record["answer_log"]
        .as_array()
        .unwrap_or_else(|| panic!("no answer_log in {record}"))
        .iter()
        .map(|a| {
            assert!(
                a["answered_unix_ms"].as_i64().unwrap() > 1_700_000_000_000,
                "{a}"
            );
            (
                a["chosen"].as_str().unwrap().to_string(),
                a["rejected"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(kept, unseen_answers(data));
    assert_eq!(record["answers"], kept.len());
}
