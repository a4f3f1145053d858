#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! The real default backbone (all-MiniLM-L6-v2, fetched by `scripts/fetch-backbone.sh
//! minilm`; `make test` does it): with fresh adapters (every B = 0) our BERT gives
//! candle-transformers' hidden states; the assembled reward model scores a mixed-user
//! batch row by row, refuses over-long input by item, and a checkpoint round trip gives
//! identical scores.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::bert::BertModel;
use copl_core::{
    checkpoint::{self, Manifest, ModelManifest},
    model::{
        MoleConfig, backbone,
        head::Pooling,
        reward::{InputError, RewardModel, RewardModelConfig, Template, Variant},
    },
};

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

fn config() -> RewardModelConfig {
    RewardModelConfig {
        variant: Variant::Copl,
        family: copl_core::model::reward::BackboneFamily::Bert,
        mole: MoleConfig {
            user_dim: 8,
            ..MoleConfig::default()
        },
        pooling: Pooling::Mean,
        template: Template::Pair,
        max_tokens: 64,
    }
}

const ITEMS: [(&str, &str); 3] = [
    (
        "How do I boil an egg?",
        "Put it in boiling water for nine minutes.",
    ),
    (
        "How do I boil an egg?",
        "Eggs are a good source of protein.",
    ),
    (
        "Any tips for a first marathon?",
        "Start slowly, drink at every station, and trust the training you did in the months before.",
    ),
];

fn users() -> Tensor {
    Tensor::randn(0f32, 1.0, (3, 8), &Device::Cpu).unwrap()
}

#[test]
fn real_minilm_equals_candle_transformers_with_fresh_adapters() {
    let dir = minilm();
    let dev = Device::Cpu;
    let model = RewardModel::fresh(&dir, config(), &VarMap::new(), &dev).unwrap();
    assert_eq!(
        model.backbone.adapters().moles.len(),
        12,
        "query and value in 6 layers"
    );
    let batch = model.encode(&ITEMS, false).unwrap();
    assert!(batch.lengths[0] < batch.lengths[2], "the batch is padded");
    let masks = model
        .backbone
        .adapters()
        .masks(
            &model
                .backbone
                .adapters()
                .route_users(&users(), None)
                .unwrap(),
        )
        .unwrap();
    let ours = model.backbone.forward(&batch, &masks).unwrap();
    let reference = BertModel::load(
        VarBuilder::from_tensors(
            backbone::weights(&dir, DType::F32, &dev).unwrap(),
            DType::F32,
            &dev,
        ),
        &backbone::bert_config(&dir).unwrap(),
    )
    .unwrap();
    let theirs = reference
        .forward(&batch.ids, &batch.type_ids, Some(&batch.attention_mask))
        .unwrap();
    let diff: f32 = (&ours - &theirs)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!(diff < 1e-4, "max difference {diff}");
}

/// A trained-looking model: every LoRA B and the head random.
fn trained(dir: &std::path::Path) -> (RewardModel, VarMap) {
    trained_with(dir, config())
}

fn trained_with(dir: &std::path::Path, config: RewardModelConfig) -> (RewardModel, VarMap) {
    let varmap = VarMap::new();
    let model = RewardModel::fresh(dir, config, &varmap, &Device::Cpu).unwrap();
    for (name, var) in varmap.data().lock().unwrap().iter() {
        if name.ends_with("lora_b") || name.starts_with("head.") {
            var.set(&var.as_tensor().randn_like(0.0, 0.3).unwrap())
                .unwrap();
        }
    }
    (model, varmap)
}

#[test]
fn mixed_users_score_row_by_row_and_long_input_is_refused_by_item() {
    let dir = minilm();
    let (model, _) = trained(&dir);
    let u = users();
    let together = model.score_texts(&ITEMS, &u, false).unwrap();
    for (row, item) in ITEMS.iter().enumerate() {
        let alone = model
            .score_texts(&[*item], &u.narrow(0, row, 1).unwrap(), false)
            .unwrap();
        assert!((alone[0] - together[row]).abs() < 1e-5, "row {row}");
    }
    assert!(together.iter().all(|s| s.is_finite()));

    let long = "word ".repeat(200);
    let items = [ITEMS[0], ("prompt", long.as_str())];
    match model.encode(&items, false) {
        Err(InputError::TooLong { index, limit, .. }) => assert_eq!((index, limit), (1, 64)),
        other => panic!("{other:?}"),
    }
    let cut = model.encode(&items, true).unwrap();
    assert_eq!(cut.lengths[1], 64);

    // A text far over the limit is read only in a window (core/src/model/window.rs); what
    // is scored is what the whole text gives: the response's first 64 tokens (the prompt
    // all dropped, as the response alone is over the limit).
    let huge: String = (0..20_000).map(|i| format!("w{} ", i % 997)).collect();
    let rows = model
        .tokenize(&[("a prompt", huge.as_str())], true)
        .unwrap();
    let whole = model.tokenizer.encode(("", huge.as_str()), true).unwrap();
    assert_eq!(rows[0].ids, whole.get_ids()[..64]);
    match model.tokenize(&[("a prompt", huge.as_str())], false) {
        Err(e @ InputError::TooLong { at_least: true, .. }) => {
            assert!(e.to_string().contains("at least"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // A huge prompt keeps its end before the whole response.
    let huge_prompt: String = (0..20_000).map(|i| format!("w{i} ")).collect();
    let rows = model
        .tokenize(&[(huge_prompt.as_str(), "a short answer")], true)
        .unwrap();
    let end = model
        .tokenize(&[("w19999", "a short answer")], false)
        .unwrap();
    let (row, end) = (&rows[0].ids, &end[0].ids);
    assert!(row.len() <= 64 && row.len() > end.len());
    assert_eq!(row[row.len() - (end.len() - 1)..], end[1..]);

    // A long prompt loses its start; the response, which is scored, stays whole.
    let prompt = (0..100)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let response = "a short answer to score";
    let rows = model
        .tokenize(&[(prompt.as_str(), response)], true)
        .unwrap();
    let alone = model.tokenize(&[("", response)], false).unwrap();
    let (row, alone) = (&rows[0].ids, &alone[0].ids);
    assert!(
        row.len() <= 64 && row.len() > alone.len(),
        "{} tokens",
        row.len()
    );
    let tail = alone.len() - 1; // the response and its [SEP], without [CLS]
    assert_eq!(
        row[row.len() - tail..],
        alone[1..],
        "the response is kept whole"
    );
    assert_eq!(row[0], alone[0], "[CLS] first");
    // What stays of the prompt is its end.
    let end = model.tokenize(&[("w99", response)], false).unwrap();
    assert_eq!(
        row[row.len() - tail - 2],
        end[0].ids[end[0].ids.len() - tail - 2]
    );
}

#[test]
fn a_checkpoint_round_trip_gives_identical_scores() {
    let dir = minilm();
    let ckpt = tempfile::tempdir().unwrap();
    let (model, varmap) = trained(&dir);
    let u = users();
    let before = model.score_texts(&ITEMS, &u, false).unwrap();

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
        config: config(),
        backbone: dir.display().to_string(),
        backbone_sha256: checkpoint::file_sha256(&dir.join("model.safetensors")).unwrap(),
        metrics: serde_json::Value::Null,
    });
    manifest.save(ckpt.path()).unwrap();

    let loaded = RewardModel::load(ckpt.path(), &dir, &Device::Cpu).unwrap();
    assert_eq!(loaded.config, config());
    assert_eq!(loaded.score_texts(&ITEMS, &u, false).unwrap(), before);

    // Another backbone than the one trained on is refused, naming both.
    manifest.model.as_mut().unwrap().backbone_sha256 = "0".repeat(64);
    manifest.save(ckpt.path()).unwrap();
    let err = RewardModel::load(ckpt.path(), &dir, &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("was trained on"), "{err}");
}

/// MoLE in the top two of six layers: the frozen four run once per text and are cached;
/// scores and every trainable tensor's gradient equal the full forward's, whatever
/// batch the cached states were computed in. For CoPL and for the user-token ablation
/// (whose extra token enters at the first adapted layer).
#[test]
fn cached_frozen_layers_give_the_full_forwards_scores_and_gradients() {
    for variant in [Variant::Copl, Variant::UserToken] {
        cached_equals_full(variant);
    }
}

fn cached_equals_full(variant: Variant) {
    let dir = minilm();
    let mut config = config();
    config.variant = variant;
    config.mole.adapt_layers = Some(2);
    let (mut model, varmap) = trained_with(&dir, config);
    if let copl_core::model::reward::Backbone::Bert(b) = &mut model.backbone {
        b.differentiable = true;
    }
    assert_eq!(model.backbone.first_adapted_layer(), 4);
    // Two layers × query and value.
    assert_eq!(model.backbone.adapters().moles.len(), 4);
    let rows = model.tokenize(&ITEMS, false).unwrap();
    let rows: Vec<_> = rows.iter().collect();
    let u = users();
    let conditioning = model.condition(&u, None).unwrap();
    assert_eq!(
        conditioning.user_token.is_some(),
        variant == Variant::UserToken
    );

    let full = model
        .score(&model.pad(&rows).unwrap(), &conditioning)
        .unwrap();
    let mut cache = copl_core::model::frozen_cache::FrozenCache::new(usize::MAX);
    // Fill the cache from other batches: the last row alone, then the first two.
    let one = model.condition(&u.narrow(0, 2, 1).unwrap(), None).unwrap();
    model.score_cached(&rows[2..], &one, &mut cache).unwrap();
    let two = model.condition(&u.narrow(0, 0, 2).unwrap(), None).unwrap();
    model.score_cached(&rows[..2], &two, &mut cache).unwrap();
    assert_eq!((cache.len(), cache.misses, cache.hits), (3, 3, 0));
    // Each state is compact: it does not keep its whole batch's storage alive.
    assert_eq!(cache.storage_elements() * 4, cache.bytes());
    let cached = model
        .score_cached(&rows, &conditioning, &mut cache)
        .unwrap();
    assert_eq!(cache.hits, 3);
    let diff = (&full - &cached).unwrap().abs().unwrap().max_all().unwrap();
    assert!(diff.to_scalar::<f32>().unwrap() < 1e-4, "{full} {cached}");

    // The same text for another user scores differently (the user matters).
    let other = model
        .condition(&(u.narrow(0, 0, 1).unwrap() * -1.0).unwrap(), None)
        .unwrap();
    let again = model.score_cached(&rows[..1], &other, &mut cache).unwrap();
    let moved: f32 = (again - cached.narrow(0, 0, 1).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!(moved > 1e-4, "{variant:?}: {moved}");

    let g_full = full.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    let g_cached = cached.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    let data = varmap.data().lock().unwrap();
    assert!(!data.is_empty());
    for (name, var) in data.iter() {
        if name.contains(".gate.") {
            continue; // routings were given, the gates did not run
        }
        let a = g_full
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{variant:?} {name}: no gradient"));
        let b = g_cached
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{variant:?} {name}: no gradient"));
        let scale: f32 = a.abs().unwrap().max_all().unwrap().to_scalar().unwrap();
        let d: f32 = (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!(
            d <= 1e-3 * scale.max(1e-3),
            "{variant:?} {name}: {d} of {scale}"
        );
    }
}

/// A token limit the template alone fills would score every response of a prompt alike
/// (the response is cut away): refused at build, naming the limit and the template's size.
#[test]
fn a_token_limit_the_template_fills_is_refused() {
    let dir = minilm();
    // BERT's pair template alone is `[CLS] [SEP] [SEP]`: 3 tokens.
    let at = |max_tokens, template| RewardModelConfig {
        max_tokens,
        template,
        ..config()
    };
    let err = RewardModel::fresh(&dir, at(3, Template::Pair), &VarMap::new(), &Device::Cpu)
        .expect_err("3 tokens leave no room for a response");
    let message = err.to_string();
    assert!(
        message.contains("max_tokens = 3") && message.contains("template alone is 3 tokens"),
        "{message}"
    );
    RewardModel::fresh(&dir, at(4, Template::Pair), &VarMap::new(), &Device::Cpu)
        .expect("4 tokens leave one for the response");
    // A chat template counts its own words.
    let chat = Template::Format {
        format: "Question from a user of the service: {prompt} Answer: {response}".into(),
    };
    let err = RewardModel::fresh(&dir, at(12, chat.clone()), &VarMap::new(), &Device::Cpu)
        .expect_err("the chat template is longer than 12 tokens");
    assert!(err.to_string().contains("max_tokens = 12"), "{err}");
    RewardModel::fresh(&dir, at(32, chat), &VarMap::new(), &Device::Cpu)
        .expect("32 tokens hold the template and a response");
}
