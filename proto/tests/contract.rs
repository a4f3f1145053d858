//! The wire contract: every RPC the issue names exists with the right streaming shape,
//! and every RPC, message field and enum value is documented in the .proto.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::collections::HashSet;

use prost::Message;
use prost_types::{FileDescriptorSet, source_code_info::Location};

fn reward_proto() -> prost_types::FileDescriptorProto {
    let set = FileDescriptorSet::decode(copl_proto::FILE_DESCRIPTOR_SET).unwrap();
    set.file
        .into_iter()
        .find(|f| f.name() == "copl/v1/reward.proto")
        .expect("reward.proto is in the descriptor set")
}

fn documented(locations: &[Location]) -> HashSet<Vec<i32>> {
    locations
        .iter()
        .filter(|l| {
            l.leading_comments
                .as_deref()
                .is_some_and(|c| !c.trim().is_empty())
        })
        .map(|l| l.path.clone())
        .collect()
}

#[test]
fn service_has_every_rpc_with_the_right_streaming() {
    let file = reward_proto();
    assert_eq!(file.package(), "copl.v1");
    let service = &file.service[0];
    assert_eq!(service.name(), "RewardService");
    let methods: Vec<(&str, bool, bool)> = service
        .method
        .iter()
        .map(|m| (m.name(), m.client_streaming(), m.server_streaming()))
        .collect();
    for expected in [
        ("Score", false, false),
        ("ScoreBatch", false, false),
        ("ScoreStream", true, true),
        ("CompareResponses", false, false),
        ("OnboardUser", false, false),
        ("GetUser", false, false),
        ("DeleteUser", false, false),
        ("SuggestSurvey", false, false),
        ("Info", false, false),
    ] {
        assert!(
            methods.contains(&expected),
            "{expected:?} missing from {methods:?}"
        );
    }
}

#[test]
fn every_rpc_field_and_enum_value_is_documented() {
    let file = reward_proto();
    let info = file.source_code_info.clone().expect("source info is kept");
    let documented = documented(&info.location);
    let mut missing = Vec::new();
    for (s, service) in file.service.iter().enumerate() {
        for (m, method) in service.method.iter().enumerate() {
            if !documented.contains(&vec![6, s as i32, 2, m as i32]) {
                missing.push(format!("rpc {}", method.name()));
            }
        }
    }
    for (i, message) in file.message_type.iter().enumerate() {
        assert!(
            message.nested_type.is_empty(),
            "nested messages are not checked here"
        );
        for (f, field) in message.field.iter().enumerate() {
            if !documented.contains(&vec![4, i as i32, 2, f as i32]) {
                missing.push(format!("{}.{}", message.name(), field.name()));
            }
        }
    }
    for (e, enumeration) in file.enum_type.iter().enumerate() {
        for (v, value) in enumeration.value.iter().enumerate() {
            if !documented.contains(&vec![5, e as i32, 2, v as i32]) {
                missing.push(format!("{}.{}", enumeration.name(), value.name()));
            }
        }
    }
    assert!(missing.is_empty(), "undocumented: {missing:?}");
}

#[test]
fn generated_types_round_trip_on_the_wire() {
    use copl_proto::v1::{
        OnboardOptions, OnboardUserRequest, ResponseRef, SurveyAnswer, response_ref,
    };
    let request = OnboardUserRequest {
        user_id: "alice".into(),
        answers: vec![SurveyAnswer {
            chosen: Some(ResponseRef {
                r#ref: Some(response_ref::Ref::Id("r1".into())),
            }),
            rejected: Some(ResponseRef {
                r#ref: Some(response_ref::Ref::Id("r2".into())),
            }),
        }],
        options: Some(OnboardOptions {
            hops: Some(4),
            temperature: None,
        }),
        replace: false,
    };
    let decoded = OnboardUserRequest::decode(request.encode_to_vec().as_slice()).unwrap();
    assert_eq!(decoded, request);
    // Unset optional options stay distinguishable from explicit values (defaults apply).
    assert_eq!(decoded.options.unwrap().temperature, None);
}
