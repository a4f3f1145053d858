//! Every validation error of `core::data`, each from a real bad file, with the file,
//! line and field it must name.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::{fs, path::Path};

use copl_core::data::{
    ANNOTATIONS_FILE, Annotation, DataErrorKind, DataErrors, Dataset, RESPONSES_FILE, Response,
    Split, USERS_FILE, UserTruth, data_hash,
};

const RESPONSES: &str = r#"{"id": "r1", "prompt": "How do I bake bread?", "response": "Use a scale."}
{"id": "r2", "prompt": "How do I bake bread?", "response": "Just wing it."}
{"id": "r3", "prompt": "How do I swim?", "response": "Practise floating first."}
{"id": "r4", "prompt": "How do I swim?", "response": "Jump in the deep end."}
"#;

const ANNOTATIONS: &str = r#"{"user": "alice", "chosen": "r1", "rejected": "r2", "split": "train"}
{"user": "bob", "chosen": "r2", "rejected": "r1", "split": "train"}
{"user": "alice", "chosen": "r3", "rejected": "r4", "split": "test"}
"#;

const USERS: &str = r#"{"user": "alice", "group": "detail"}
{"user": "bob", "group": "hedging", "unseen": true}
"#;

fn write(dir: &Path, responses: &str, annotations: &str, users: Option<&str>) {
    fs::write(dir.join(RESPONSES_FILE), responses).unwrap();
    fs::write(dir.join(ANNOTATIONS_FILE), annotations).unwrap();
    if let Some(users) = users {
        fs::write(dir.join(USERS_FILE), users).unwrap();
    }
}

/// Loads a data set that must fail, and returns its errors.
fn load_err(responses: &str, annotations: &str, users: Option<&str>) -> (DataErrors, String) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), responses, annotations, users);
    let errors = Dataset::load(dir.path()).expect_err("the data set must be refused");
    let text = errors.to_string();
    (errors, text)
}

/// Asserts that the single error has this kind, file, line and field.
fn assert_single(errors: &DataErrors, kind: DataErrorKind, file: &str, line: usize, field: &str) {
    assert_eq!(errors.total, 1, "expected one error, got {errors}");
    let e = &errors.errors[0];
    assert_eq!(e.kind, kind, "{e}");
    assert!(e.file.ends_with(file), "{e}");
    assert_eq!(e.line, Some(line), "{e}");
    assert_eq!(e.field.as_deref(), Some(field), "{e}");
}

#[test]
fn a_valid_data_set_loads_with_its_contents() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), RESPONSES, ANNOTATIONS, Some(USERS));
    let dataset = Dataset::load(dir.path()).unwrap();
    assert_eq!(dataset.responses().len(), 4);
    assert_eq!(dataset.annotations().len(), 3);
    assert_eq!(dataset.users().len(), 2);
    assert_eq!(dataset.response_row("r3"), Some(2));
    assert_eq!(dataset.response("r2").unwrap().response, "Just wing it.");
    assert_eq!(dataset.split(Split::Test).count(), 1);
    assert_eq!(
        dataset.unseen_users().into_iter().collect::<Vec<_>>(),
        ["bob"]
    );
}

#[test]
fn users_file_is_optional() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), RESPONSES, ANNOTATIONS, None);
    let dataset = Dataset::load(dir.path()).unwrap();
    assert!(dataset.users().is_empty());
}

#[test]
fn save_then_load_round_trips_and_hash_tracks_content() {
    let responses = vec![
        Response {
            id: "a".into(),
            prompt: "p".into(),
            response: "one".into(),
            attributes: Some([("detail".to_string(), 2.0)].into()),
        },
        Response {
            id: "b".into(),
            prompt: "p".into(),
            response: "two".into(),
            attributes: None,
        },
    ];
    let annotations = vec![Annotation {
        user: "u".into(),
        chosen: "a".into(),
        rejected: "b".into(),
        split: Split::Val,
        controversial: Some(true),
    }];
    let users = vec![UserTruth {
        user: "u".into(),
        group: None,
        weights: Some(vec![0.25, 0.75]),
        unseen: false,
    }];
    let dataset = Dataset::new(responses.clone(), annotations.clone(), users.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    dataset.save(dir.path()).unwrap();
    let loaded = Dataset::load(dir.path()).unwrap();
    assert_eq!(loaded.responses(), responses.as_slice());
    assert_eq!(loaded.annotations(), annotations.as_slice());
    assert_eq!(loaded.users(), users.as_slice());

    let before = data_hash(dir.path()).unwrap();
    assert_eq!(before, data_hash(dir.path()).unwrap());
    let path = dir.path().join(ANNOTATIONS_FILE);
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("\"val\"", "\"test\"");
    fs::write(&path, text).unwrap();
    assert_ne!(before, data_hash(dir.path()).unwrap());
}

#[test]
fn duplicate_response_id_names_both_lines() {
    let responses = format!(
        "{RESPONSES}{}\n",
        r#"{"id": "r2", "prompt": "x", "response": "y"}"#
    );
    let (errors, text) = load_err(&responses, ANNOTATIONS, None);
    assert_single(&errors, DataErrorKind::DuplicateId, RESPONSES_FILE, 5, "id");
    assert!(text.contains("\"r2\" already used on line 2"), "{text}");
}

#[test]
fn duplicate_user_in_ground_truth() {
    let users = format!("{USERS}{}\n", r#"{"user": "alice", "group": "x"}"#);
    let (errors, _) = load_err(RESPONSES, ANNOTATIONS, Some(&users));
    assert_single(&errors, DataErrorKind::DuplicateId, USERS_FILE, 3, "user");
}

#[test]
fn pair_answering_different_prompts() {
    let annotations = format!(
        "{ANNOTATIONS}{}\n",
        r#"{"user": "bob", "chosen": "r1", "rejected": "r3", "split": "train"}"#
    );
    let (errors, text) = load_err(RESPONSES, &annotations, None);
    assert_single(
        &errors,
        DataErrorKind::PromptMismatch,
        ANNOTATIONS_FILE,
        4,
        "rejected",
    );
    assert!(text.contains("different prompts"), "{text}");
}

#[test]
fn unknown_response_ids() {
    let annotations = r#"{"user": "bob", "chosen": "r9", "rejected": "r1", "split": "train"}
{"user": "bob", "chosen": "r1", "rejected": "nope", "split": "train"}
"#;
    let (errors, text) = load_err(RESPONSES, annotations, None);
    assert_eq!(errors.total, 2, "{text}");
    assert_eq!(errors.errors[0].kind, DataErrorKind::UnknownId);
    assert_eq!(errors.errors[0].field.as_deref(), Some("chosen"));
    assert_eq!(errors.errors[0].line, Some(1));
    assert_eq!(errors.errors[1].field.as_deref(), Some("rejected"));
    assert_eq!(errors.errors[1].line, Some(2));
    assert!(
        text.contains("\"r9\"") && text.contains("\"nope\""),
        "{text}"
    );
}

#[test]
fn unknown_user_when_ground_truth_is_given() {
    let annotations = format!(
        "{ANNOTATIONS}{}\n",
        r#"{"user": "carol", "chosen": "r1", "rejected": "r2", "split": "train"}"#
    );
    let (errors, _) = load_err(RESPONSES, &annotations, Some(USERS));
    assert_single(
        &errors,
        DataErrorKind::UnknownId,
        ANNOTATIONS_FILE,
        4,
        "user",
    );
}

#[test]
fn empty_texts() {
    let cases = [
        (
            r#"{"id": "r5", "prompt": "   ", "response": "y"}"#,
            "prompt",
        ),
        (r#"{"id": "r5", "prompt": "p", "response": ""}"#, "response"),
        (r#"{"id": "", "prompt": "p", "response": "y"}"#, "id"),
    ];
    for (line, field) in cases {
        let responses = format!("{RESPONSES}{line}\n");
        let (errors, _) = load_err(&responses, ANNOTATIONS, None);
        assert_single(&errors, DataErrorKind::EmptyText, RESPONSES_FILE, 5, field);
    }
    let annotations = format!(
        "{ANNOTATIONS}{}\n",
        r#"{"user": " ", "chosen": "r1", "rejected": "r2", "split": "train"}"#
    );
    let (errors, _) = load_err(RESPONSES, &annotations, None);
    assert_single(
        &errors,
        DataErrorKind::EmptyText,
        ANNOTATIONS_FILE,
        4,
        "user",
    );
}

#[test]
fn user_preferring_a_response_over_itself() {
    let annotations = format!(
        "{ANNOTATIONS}{}\n",
        r#"{"user": "alice", "chosen": "r1", "rejected": "r1", "split": "val"}"#
    );
    let (errors, text) = load_err(RESPONSES, &annotations, None);
    assert_single(
        &errors,
        DataErrorKind::SelfPreference,
        ANNOTATIONS_FILE,
        4,
        "rejected",
    );
    assert!(text.contains("over itself"), "{text}");
}

#[test]
fn malformed_lines_name_line_and_field() {
    // Not JSON; not an object; a missing field; a wrong type; a bad split.
    let annotations = r#"{"user": "alice", "chosen": "r1", "rejected": "r2", "split": "train"
[1, 2]
{"user": "alice", "rejected": "r2", "split": "train"}
{"user": 7, "chosen": "r1", "rejected": "r2", "split": "train"}
{"user": "alice", "chosen": "r1", "rejected": "r2", "split": "dev"}
"#;
    let (errors, text) = load_err(RESPONSES, annotations, None);
    assert_eq!(errors.total, 5, "{text}");
    let expected = [
        (1, DataErrorKind::Json, None),
        (2, DataErrorKind::Json, None),
        (3, DataErrorKind::MissingField, Some("chosen")),
        (4, DataErrorKind::BadValue, Some("user")),
        (5, DataErrorKind::BadValue, Some("split")),
    ];
    for (e, (line, kind, field)) in errors.errors.iter().zip(expected) {
        assert_eq!(
            (e.line, e.kind, e.field.as_deref()),
            (Some(line), kind, field),
            "{e}"
        );
    }
    assert!(
        text.contains("annotations.jsonl:5: field `split`"),
        "{text}"
    );
    assert!(text.contains("\"dev\""), "{text}");
}

#[test]
fn bad_ground_truth_values() {
    let users = r#"{"user": "alice", "weights": [0.5, -0.5]}
{"user": "bob", "unseen": "yes"}
"#;
    let (errors, _) = load_err(RESPONSES, ANNOTATIONS, Some(users));
    assert_eq!(errors.total, 2);
    assert_eq!(errors.errors[0].field.as_deref(), Some("weights[1]"));
    assert_eq!(errors.errors[1].field.as_deref(), Some("unseen"));
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(RESPONSES_FILE), RESPONSES).unwrap();
    let errors = Dataset::load(dir.path()).unwrap_err();
    assert_eq!(errors.errors[0].kind, DataErrorKind::Io);
    assert!(errors.errors[0].file.ends_with(ANNOTATIONS_FILE));
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let mut annotations = String::new();
    for i in 0..120 {
        annotations.push_str(&format!(
            "{{\"user\": \"u{i}\", \"chosen\": \"r1\", \"rejected\": \"r1\", \"split\": \"train\"}}\n"
        ));
    }
    let (errors, text) = load_err(RESPONSES, &annotations, None);
    assert_eq!(errors.total, 120);
    assert_eq!(errors.errors.len(), DataErrors::MAX_KEPT);
    assert!(text.starts_with("120 problem(s)"), "{text}");
    assert!(text.contains("and 110 more"), "{text}");
}
