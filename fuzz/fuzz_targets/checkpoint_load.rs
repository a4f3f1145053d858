//! The checkpoint readers on arbitrary files: the input split at the bytes "\xff\xfe"
//! into manifest.json, ids.json, catalogue.jsonl, graph.safetensors,
//! survey.safetensors and gcf.safetensors. Every reader must return a value or an
//! error, never panic.
#![no_main]

use std::sync::OnceLock;

use copl_core::checkpoint;
use libfuzzer_sys::fuzz_target;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

const FILES: [&str; 6] = [
    "manifest.json",
    "ids.json",
    "catalogue.jsonl",
    "graph.safetensors",
    "survey.safetensors",
    "gcf.safetensors",
];

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory")).path();
    let mut rest = data;
    for name in FILES {
        let (part, next) = match rest.windows(2).position(|w| w == b"\xff\xfe") {
            Some(i) => (&rest[..i], &rest[i + 2..]),
            None => (rest, &b""[..]),
        };
        std::fs::write(dir.join(name), part).expect("writing a file");
        rest = next;
    }
    let _ = checkpoint::Manifest::load(dir);
    let _ = checkpoint::load_graph(dir);
    if let Ok(ids) = checkpoint::load_ids(dir) {
        let _ = checkpoint::load_catalogue(dir, &ids);
        let _ = checkpoint::load_survey_pairs(dir, ids.responses.len());
        for dim in [1, 4, 64] {
            let _ = checkpoint::load_embeddings(dir, &ids, dim);
        }
    }
});
