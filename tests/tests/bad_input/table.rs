//! The table of hostile calls: each row a call, the code it must get and what the
//! message must say.

use copl_proto::v1::{
    CompareRequest, DeleteUserRequest, GetUserRequest, ResponseRef, ResponseText, ScoreItem,
    SuggestSurveyRequest, SurveyAnswer, response_ref::Ref,
};
use tonic::Code;

use super::{Call, PROMPT, answer, batch, by_id, item, onboard, score};

/// A row: its name, the call, the code it must get, what its message must contain.
pub type Row = (&'static str, Call, Code, &'static str);

/// What the rows are built from: an unseen user's first answer (chosen, rejected), all
/// their answers, a response to another prompt, an over-long and an over-size text.
pub struct Inputs<'a> {
    pub c0: &'a str,
    pub r0: &'a str,
    pub answers: &'a [SurveyAnswer],
    pub elsewhere: &'a str,
    pub long: &'a str,
    pub huge: &'a str,
}

pub fn hostile_calls(inputs: &Inputs<'_>) -> Vec<Row> {
    let &Inputs {
        c0,
        r0,
        answers,
        elsewhere,
        long,
        huge,
    } = inputs;
    let ok = Code::Ok;
    let invalid = Code::InvalidArgument;
    vec![
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
            score("user-00000", PROMPT, long, false),
            invalid,
            "response:",
        ),
        (
            "over-long, truncate",
            score("user-00000", PROMPT, long, true),
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
            score("user-00000", PROMPT, huge, true),
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
                ..Default::default()
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
                ..Default::default()
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
                ..Default::default()
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
            onboard("x", vec![answer(c0, elsewhere)], None, None),
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
            onboard("x", answers.to_vec(), Some(0), None),
            invalid,
            "options.hops: 0",
        ),
        (
            "hops odd",
            onboard("x", answers.to_vec(), Some(3), None),
            invalid,
            "options.hops: 3",
        ),
        (
            "hops huge",
            onboard("x", answers.to_vec(), Some(1_000_000), None),
            invalid,
            "options.hops: 1000000",
        ),
        (
            "temperature NaN",
            onboard("x", answers.to_vec(), None, Some(f32::NAN)),
            invalid,
            "options.temperature",
        ),
        (
            "temperature negative",
            onboard("x", answers.to_vec(), None, Some(-1.0)),
            invalid,
            "options.temperature",
        ),
        (
            "temperature zero",
            onboard("x", answers.to_vec(), None, Some(0.0)),
            invalid,
            "options.temperature",
        ),
        (
            "temperature infinite",
            onboard("x", answers.to_vec(), None, Some(f32::INFINITY)),
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
            onboard("", answers.to_vec(), None, None),
            invalid,
            "user_id: empty",
        ),
        (
            "control character in new id",
            onboard("new\r\nuser", answers.to_vec(), None, None),
            invalid,
            "user_id: control character",
        ),
        (
            "seen user onboarded",
            onboard("user-00001", answers.to_vec(), None, None),
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
    ]
}
