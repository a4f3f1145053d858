//! ScoreBatch with per-item outcomes and the `unknown_user` policy (issue #16, item 1):
//! what an RLHF step sends — one blank completion, one unknown user, one over-long text —
//! fails only those items, the others score exactly as alone; unknown users get the
//! population reward only when asked, flagged in the result.

use copl_proto::v1::{
    CompareRequest, ItemError, ScoreBatchRequest, ScoreResult, ScoreStreamRequest, UnknownUser,
    score_outcome::Outcome, score_stream_response,
};
use tonic::Code;

use super::{Api, code, item, score};

/// The outcome of each item of a per-item batch.
async fn per_item(
    api: &mut Api,
    items: Vec<copl_proto::v1::ScoreItem>,
    unknown_user: UnknownUser,
) -> Vec<Result<ScoreResult, ItemError>> {
    let reply = api
        .score_batch(ScoreBatchRequest {
            items,
            truncate: false,
            per_item_errors: true,
            unknown_user: unknown_user as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        reply.results.is_empty(),
        "per-item answers only in outcomes"
    );
    reply
        .outcomes
        .into_iter()
        .map(|o| match o.outcome.unwrap() {
            Outcome::Result(r) => Ok(r),
            Outcome::Error(e) => Err(e),
        })
        .collect()
}

pub async fn per_item_outcomes_and_unknown_users(api: &mut Api) {
    let alone = |r: &str| score("user-00000", r, false);
    let good = api
        .score(alone("Water it weekly."))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    let long = "leaf ".repeat(200);
    let outcomes = per_item(
        api,
        vec![
            item("user-00000", "Water it weekly."),
            item("user-00000", "   "),
            item("ghost", "Water it weekly."),
            item("user-00000", &long),
            item("", "Water it weekly."),
        ],
        UnknownUser::Unspecified,
    )
    .await;
    assert_eq!(outcomes.len(), 5);
    let first = outcomes[0].as_ref().unwrap();
    assert!(
        (first.reward - good.reward).abs() < 1e-4,
        "{first:?} {good:?}"
    );
    assert!(first.personalised && !first.user_unknown);
    let blank = outcomes[1].as_ref().unwrap_err();
    assert_eq!(blank.code, Code::InvalidArgument as i32);
    assert!(
        blank.message.starts_with("items[1].response: blank"),
        "{blank:?}"
    );
    // The server's default policy is `error`: NOT_FOUND for that item alone.
    let ghost = outcomes[2].as_ref().unwrap_err();
    assert_eq!(ghost.code, Code::NotFound as i32);
    assert!(ghost.message.contains("items[2].user_id") && ghost.message.contains("ghost"));
    let too_long = outcomes[3].as_ref().unwrap_err();
    assert_eq!(too_long.code, Code::InvalidArgument as i32);
    assert!(
        too_long.message.starts_with("items[3].response"),
        "{too_long:?}"
    );
    assert!(
        too_long.message.contains("max_input_tokens"),
        "{too_long:?}"
    );
    let population = outcomes[4].as_ref().unwrap();
    assert!(!population.personalised && !population.user_unknown);

    // Asked for: the unknown user gets the population reward, flagged.
    let outcomes = per_item(
        api,
        vec![
            item("ghost", "Water it weekly."),
            item("", "Water it weekly."),
        ],
        UnknownUser::Population,
    )
    .await;
    let (ghost, population) = (outcomes[0].as_ref().unwrap(), outcomes[1].as_ref().unwrap());
    assert!(ghost.user_unknown && !ghost.personalised);
    assert!((ghost.reward - population.reward).abs() < 1e-6);
    // Every item refused: outcomes all errors, no model work.
    let outcomes = per_item(
        api,
        vec![item("ghost", "x"), item("", "")],
        UnknownUser::Error,
    )
    .await;
    assert!(outcomes.iter().all(Result::is_err), "{outcomes:?}");

    // Without per-item outcomes a batch still fails whole, naming the item.
    let (c, m) = code(
        api.score_batch(ScoreBatchRequest {
            items: vec![item("user-00000", "a"), item("user-00000", " ")],
            ..Default::default()
        })
        .await,
    );
    assert_eq!(
        (c, m.starts_with("items[1].response")),
        (Code::InvalidArgument, true),
        "{m}"
    );
    // Call-wide limits fail the call even with per-item outcomes.
    let (c, m) = code(
        api.score_batch(ScoreBatchRequest {
            items: (0..300).map(|_| item("", "a")).collect(),
            per_item_errors: true,
            ..Default::default()
        })
        .await,
    );
    assert_eq!(
        (c, m.contains("max_batch_items")),
        (Code::InvalidArgument, true),
        "{m}"
    );

    // The policy on Score, CompareResponses and a stream item; a value out of range is
    // refused naming the field.
    let mut ask = score("ghost", "Water it weekly.", false);
    ask.unknown_user = UnknownUser::Population as i32;
    let r = api
        .score(ask.clone())
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert!(r.user_unknown && !r.personalised);
    ask.unknown_user = 7;
    let (c, m) = code(api.score(ask).await);
    assert_eq!(
        (c, m.starts_with("unknown_user")),
        (Code::InvalidArgument, true),
        "{m}"
    );
    // In a per-item batch it is the call's field: the call is refused, not each item.
    let (c, m) = code(
        api.score_batch(ScoreBatchRequest {
            items: vec![item("user-00000", "Water it weekly.")],
            truncate: false,
            per_item_errors: true,
            unknown_user: 7,
        })
        .await,
    );
    assert_eq!(
        (c, m.starts_with("unknown_user")),
        (Code::InvalidArgument, true),
        "{m}"
    );
    let compared = api
        .compare_responses(CompareRequest {
            user_id: "ghost".into(),
            prompt: "How do I keep a houseplant alive?".into(),
            response_a: "Water it weekly.".into(),
            response_b: "Never water it.".into(),
            unknown_user: UnknownUser::Population as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(compared.a.unwrap().user_unknown && compared.b.unwrap().user_unknown);
    let stream = api
        .score_stream(tokio_stream::iter([ScoreStreamRequest {
            request_id: 1,
            item: Some(item("ghost", "Water it weekly.")),
            unknown_user: UnknownUser::Population as i32,
            ..Default::default()
        }]))
        .await
        .unwrap()
        .into_inner();
    let answers: Vec<_> = tokio_stream::StreamExt::collect::<Vec<_>>(stream).await;
    match answers[0].as_ref().unwrap().outcome.as_ref().unwrap() {
        score_stream_response::Outcome::Result(r) => assert!(r.user_unknown),
        other => panic!("{other:?}"),
    }
}
