#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! Checkpoint files that onboarding reads: survey pairs, and an [`Adapter`] rebuilt from
//! a written checkpoint behaves as the one it was written from; the catalogue of response
//! texts round-trips and must agree with `ids.json` row by row.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use copl_core::{
    adapt::{AdaptConfig, Adapter, Answer},
    checkpoint::{self, GcfManifest, Manifest, RESPONSE_EMBEDDINGS, USER_EMBEDDINGS},
    graph::{GraphIds, PreferenceGraph},
};

#[test]
fn survey_pairs_round_trip_and_out_of_range_rows_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = vec![(0, 3), (1, 2), (2, 3)];
    checkpoint::save_survey_pairs(dir.path(), &pairs).unwrap();
    assert_eq!(checkpoint::load_survey_pairs(dir.path(), 4).unwrap(), pairs);
    let err = checkpoint::load_survey_pairs(dir.path(), 3).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("response row 3 is out of range (3 responses)"),
        "{err}"
    );
}

#[test]
fn an_adapter_loaded_from_a_checkpoint_adapts_as_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = [(0, 0, 1), (1, 0, 2), (2, 2, 1)];
    let graph = PreferenceGraph::from_pairs(3, 3, &pairs);
    let users = vec![1.0f32, 0.5, 0.3, -1.0, -0.2, 0.9];
    let responses = vec![0.4f32, 0.1, -0.3, 0.2, 0.0, -0.5];
    let ids = GraphIds {
        users: vec!["u0".into(), "u1".into(), "u2".into()],
        responses: vec!["r0".into(), "r1".into(), "r2".into()],
    };
    checkpoint::save_graph(dir.path(), &graph).unwrap();
    checkpoint::save_ids(dir.path(), &ids).unwrap();
    let tensors = HashMap::from([
        (
            USER_EMBEDDINGS.to_string(),
            Tensor::from_vec(users.clone(), (3, 2), &Device::Cpu).unwrap(),
        ),
        (
            RESPONSE_EMBEDDINGS.to_string(),
            Tensor::from_vec(responses.clone(), (3, 2), &Device::Cpu).unwrap(),
        ),
    ]);
    checkpoint::save_gcf(dir.path(), &tensors).unwrap();
    let mut manifest = Manifest::load_or_default(dir.path()).unwrap();
    manifest.gcf = Some(GcfManifest {
        model: "gcf".into(),
        dim: 2,
        users: 3,
        responses: 3,
        data_hash: String::new(),
        hyper_parameters: serde_json::Value::Null,
        metrics: serde_json::Value::Null,
    });
    manifest.save(dir.path()).unwrap();

    let (loaded, loaded_ids) = Adapter::from_checkpoint(dir.path()).unwrap();
    let original = Adapter::new(graph, users, responses, 2).unwrap();
    assert_eq!(loaded_ids, ids);
    let answers = [Answer {
        chosen: 0,
        rejected: 1,
    }];
    let config = AdaptConfig {
        min_neighbours: 1,
        ..AdaptConfig::default()
    };
    assert_eq!(
        loaded.adapt(&answers, &config).unwrap(),
        original.adapt(&answers, &config).unwrap()
    );

    // A manifest whose dimension disagrees with the tensors is refused by name.
    manifest.gcf.as_mut().unwrap().dim = 3;
    manifest.save(dir.path()).unwrap();
    let err = Adapter::from_checkpoint(dir.path()).unwrap_err();
    assert!(err.to_string().contains("expected [3, 3]"), "{err}");
}

#[test]
fn the_catalogue_round_trips_and_a_row_that_disagrees_with_ids_is_named() {
    use copl_core::checkpoint::{CatalogueEntry, load_catalogue, save_catalogue};
    let dir = tempfile::tempdir().unwrap();
    let entry = |id: &str| CatalogueEntry {
        id: id.into(),
        prompt: format!("prompt of {id}"),
        response: format!("text of {id}\nwith a newline"),
    };
    let entries = vec![entry("r0"), entry("r1")];
    save_catalogue(dir.path(), &entries).unwrap();
    let ids = GraphIds {
        users: vec!["u".into()],
        responses: vec!["r0".into(), "r1".into()],
    };
    assert_eq!(load_catalogue(dir.path(), &ids).unwrap(), entries);

    let swapped = GraphIds {
        users: vec!["u".into()],
        responses: vec!["r1".into(), "r0".into()],
    };
    let err = load_catalogue(dir.path(), &swapped)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("catalogue.jsonl") && err.contains("line 1"),
        "{err}"
    );
    let longer = GraphIds {
        users: vec!["u".into()],
        responses: vec!["r0".into(), "r1".into(), "r2".into()],
    };
    let err = load_catalogue(dir.path(), &longer).unwrap_err().to_string();
    assert!(err.contains("2 responses, ids.json has 3"), "{err}");
}
