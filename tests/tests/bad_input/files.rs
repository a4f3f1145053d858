//! Damaged files: the server refuses to start on them, naming the file.

use std::path::Path;

use copl_tests::{run, text, tiny_checkpoint};

/// The server refuses to start on a damaged file, naming it.
#[test]
fn damaged_files_are_refused_at_start_naming_the_file() {
    let root = tempfile::tempdir().unwrap();
    let (_data, ckpt) = tiny_checkpoint(root.path());
    let start = |ckpt: &Path, store: &Path| {
        let out = run(
            "copl-server",
            &[
                "--checkpoint",
                ckpt.to_str().unwrap(),
                "--data-dir",
                store.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "",
            ],
        );
        assert!(!out.status.success(), "started on a damaged file");
        text(&out).1
    };
    let copy = |name: &str| {
        let dir = root.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&ckpt).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
        dir
    };
    let store = root.path().join("store");

    // A truncated weight file.
    let truncated = copy("truncated");
    let weights = truncated.join("mole.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let err = start(&truncated, &store);
    assert!(err.contains("mole.safetensors"), "{err}");

    // A tampered manifest: unknown format version; not JSON.
    let tampered = copy("tampered");
    let manifest = tampered.join("manifest.json");
    let text_of = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text_of.replacen("\"format_version\": 1", "\"format_version\": 99", 1),
    )
    .unwrap();
    let err = start(&tampered, &store);
    assert!(
        err.contains("manifest.json") && err.contains("format_version 99"),
        "{err}"
    );
    std::fs::write(&manifest, "{ not json").unwrap();
    let err = start(&tampered, &store);
    assert!(err.contains("manifest.json"), "{err}");
    // A corrupt user-store file does not stop the start: it is set aside
    // (tests/faults.rs).
}
