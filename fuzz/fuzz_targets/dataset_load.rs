//! `Dataset::load` on arbitrary files: the input split at 0xFF bytes into
//! responses.jsonl, annotations.jsonl and users.jsonl. It must return a data set or
//! errors, never panic; a data set it returns must be consistent.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory")).path();
    let mut parts = data.splitn(3, |&b| b == 0xff);
    for name in ["responses.jsonl", "annotations.jsonl", "users.jsonl"] {
        std::fs::write(dir.join(name), parts.next().unwrap_or(b"")).expect("writing a file");
    }
    if let Ok(dataset) = copl_core::data::Dataset::load(dir) {
        for a in dataset.annotations() {
            let chosen = dataset.response(&a.chosen).expect("a chosen id that resolves");
            let rejected = dataset.response(&a.rejected).expect("a rejected id that resolves");
            assert_eq!(chosen.prompt, rejected.prompt);
            assert_ne!(a.chosen, a.rejected);
        }
    }
});
