//! Helpers for the end-to-end tests in `tests/tests/` (and the trainer's): they run the
//! real binaries (`copl-train`, `copl-server`, `copl`) as a user would, over a tiny random
//! backbone ([`tiny_bert`]).
//!
//! The binaries must be built first: `cargo build --workspace --bins` (the README's
//! test command does this before `cargo test`).

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// Path of a workspace binary built in the same profile as the running test.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` before the end-to-end tests",
        path.display()
    );
    path
}

/// Runs a workspace binary with `args` and returns its output.
pub fn run(name: &str, args: &[&str]) -> Output {
    Command::new(binary(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"))
}

/// A command's stdout and stderr as text, for assertions and messages.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Writes a tiny random BERT backbone directory (2 layers, hidden size 16) with
/// MiniLM's tokenizer into `dir`: a real backbone's shape at a test's cost. Needs
/// `backbones/minilm` (`scripts/fetch-backbone.sh minilm`; `make test` fetches it).
///
/// # Panics
/// When MiniLM is not fetched or `dir` cannot be written (a test's failure report).
pub fn tiny_bert(dir: &Path) {
    use candle_core::{DType, Device};
    use candle_nn::{VarBuilder, VarMap};
    use candle_transformers::models::bert::{BertModel, Config};
    let minilm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../backbones/minilm");
    assert!(
        minilm.join("VERIFIED").exists(),
        "run scripts/fetch-backbone.sh minilm (make test does)"
    );
    let config = serde_json::json!({
        "vocab_size": 30522, "hidden_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 32, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0, "max_position_embeddings": 512, "type_vocab_size": 2,
        "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
        "classifier_dropout": null, "model_type": "bert"
    });
    std::fs::create_dir_all(dir).expect("creating the backbone directory");
    std::fs::write(dir.join("config.json"), config.to_string()).expect("writing config.json");
    std::fs::copy(minilm.join("tokenizer.json"), dir.join("tokenizer.json"))
        .expect("copying MiniLM's tokenizer");
    let varmap = VarMap::new();
    let parsed: Config = serde_json::from_value(config).expect("a valid BERT config");
    BertModel::load(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &parsed,
    )
    .expect("a random BERT");
    varmap
        .save(dir.join("model.safetensors"))
        .expect("writing model.safetensors");
}
