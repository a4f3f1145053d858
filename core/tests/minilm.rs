#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! The real default backbone (all-MiniLM-L6-v2, fetched by `scripts/fetch-backbone.sh
//! minilm`; `make test` does it): with fresh adapters (every B = 0) our BERT gives
//! candle-transformers' hidden states, and its sentence embeddings make sense.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::BertModel;
use copl_core::model::{
    MoleConfig, backbone,
    head::{Pooling, RewardHead},
};
use tokenizers::PaddingParams;

fn minilm() -> PathBuf {
    let dir = std::env::var_os("COPL_MINILM").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../backbones/minilm"),
        PathBuf::from,
    );
    assert!(
        dir.join("VERIFIED").exists(),
        "{} is missing: run scripts/fetch-backbone.sh minilm (make test does)",
        dir.display()
    );
    dir
}

const SENTENCES: [&str; 3] = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby in her arms while the sun sets over the hills.",
];

#[test]
fn real_minilm_equals_candle_transformers_and_embeds_sensibly() {
    let dir = minilm();
    let dev = Device::Cpu;
    let mole = MoleConfig {
        user_dim: 8,
        ..MoleConfig::default()
    };
    let (model, mut tokenizer) = backbone::load_bert(&dir, &mole, None, &dev).unwrap();
    assert_eq!(model.moles().len(), 12, "query and value in 6 layers");
    tokenizer.with_padding(Some(PaddingParams::default()));
    let encodings = tokenizer.encode_batch(SENTENCES.to_vec(), true).unwrap();
    let rows = |f: &dyn Fn(&tokenizers::Encoding) -> Vec<u32>| {
        let v: Vec<Vec<u32>> = encodings.iter().map(f).collect();
        Tensor::new(v, &dev).unwrap()
    };
    let ids = rows(&|e| e.get_ids().to_vec());
    let types = rows(&|e| e.get_type_ids().to_vec());
    let mask = rows(&|e| e.get_attention_mask().to_vec());
    assert!(
        encodings[0].get_attention_mask().contains(&0),
        "the batch is padded"
    );

    let users = Tensor::randn(0f32, 1.0, (3, 8), &dev).unwrap();
    let masks = model
        .masks(&model.route_users(&users, false).unwrap())
        .unwrap();
    let ours = model.forward(&ids, &types, &mask, &masks).unwrap();
    let reference = BertModel::load(
        VarBuilder::from_tensors(
            backbone::weights(&dir, DType::F32, &dev).unwrap(),
            DType::F32,
            &dev,
        ),
        &backbone::bert_config(&dir).unwrap(),
    )
    .unwrap();
    let theirs = reference.forward(&ids, &types, Some(&mask)).unwrap();
    let diff: f32 = (&ours - &theirs)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!(diff < 1e-4, "max difference {diff}");

    // Mean pooling (the model's sentence embedding): the two eating sentences are
    // closer to each other than to the third.
    let varmap = candle_nn::VarMap::new();
    let head = RewardHead::new(
        384,
        Pooling::Mean,
        VarBuilder::from_varmap(&varmap, DType::F32, &dev),
    )
    .unwrap();
    let pooled: Vec<Vec<f32>> = head.pool(&ours, &mask).unwrap().to_vec2().unwrap();
    let cosine = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norm = |x: &[f32]| x.iter().map(|v| v * v).sum::<f32>().sqrt();
        dot / (norm(a) * norm(b))
    };
    let close = cosine(&pooled[0], &pooled[1]);
    let far = cosine(&pooled[0], &pooled[2]);
    assert!(close > far + 0.2, "close {close}, far {far}");
}
