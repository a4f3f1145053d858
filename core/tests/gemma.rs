#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! The Gemma backbones with MoLE projections: with every LoRA B = 0 the last-position
//! logits equal candle-transformers' gemma, gemma-2 and gemma-3 (tiny random configs;
//! gemma-3 with sliding and global layers, all with grouped keys); with random B, a right-padded mixed-user batch gives
//! each row what it gets alone.

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::{gemma, gemma2, gemma3};
use copl_core::model::{
    MoleConfig,
    gemma::{GemmaConfig, GemmaMole},
};

fn tiny() -> gemma3::Config {
    serde_json::from_value(serde_json::json!({
        "attention_bias": false, "head_dim": 8, "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 4,
        "num_hidden_layers": 3, "num_key_value_heads": 2, "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0, "rope_local_base_freq": 1000.0, "vocab_size": 64,
        "final_logit_softcapping": null, "attn_logit_softcapping": null,
        "query_pre_attn_scalar": 8, "sliding_window": 3, "sliding_window_pattern": 2,
        "max_position_embeddings": 32
    }))
    .unwrap()
}

fn mole() -> MoleConfig {
    MoleConfig {
        targets: vec!["q_proj".into(), "v_proj".into()],
        rank: 2,
        experts: 3,
        gate_hidden: 8,
        user_dim: 4,
        ..MoleConfig::default()
    }
}

fn users() -> Tensor {
    Tensor::new(
        &[
            [10.0f32, -10.0, 10.0, 10.0],
            [-18.0, 2.0, 6.0, 6.0],
            [2.0, 18.0, -8.0, 2.0],
        ],
        &Device::Cpu,
    )
    .unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap()
}

/// Runs `reference` (candle-transformers' model of the generation, built first from the
/// var map so that it creates the base tensors; it clears its cache at position 0) token
/// by token — its prefill fails on
/// sequences longer than one token (the KV cache append needs a contiguous input) — and
/// compares the last-position logits with ours, every LoRA B = 0.
fn equals_candle(
    config: GemmaConfig,
    mut reference: impl FnMut(VarBuilder<'static>) -> Box<dyn FnMut(&Tensor, usize) -> Tensor>,
) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let mut forward = reference(vb.clone());
    // Non-trivial norm weights (a fresh var map may hold zeros: 1 + w = 1).
    for (name, var) in varmap.data().lock().unwrap().iter() {
        if name.ends_with("norm.weight") {
            var.set(&var.as_tensor().randn_like(0.0, 0.3).unwrap())
                .unwrap();
        }
    }
    let model = GemmaMole::load(vb.clone(), vb, &config, &mole()).unwrap();
    let layers = match &config {
        GemmaConfig::V1(c) => c.num_hidden_layers,
        GemmaConfig::V2(c) => c.num_hidden_layers,
        GemmaConfig::V3(c) => c.num_hidden_layers,
    };
    assert_eq!(
        model.adapters().moles.len(),
        2 * layers,
        "q and v in every layer"
    );
    let ids = Tensor::new(
        &[[2u32, 7, 9, 11, 3, 5, 8], [2, 5, 3, 60, 40, 1, 1]],
        &Device::Cpu,
    )
    .unwrap();
    let mask = ids.ones_like().unwrap();
    let masks = model
        .adapters()
        .masks(
            &model
                .adapters()
                .route_users(&users().narrow(0, 0, 2).unwrap(), None)
                .unwrap(),
        )
        .unwrap();
    let hidden = model.forward(&ids, &mask, &masks).unwrap();
    let last = hidden.i((.., 6, ..)).unwrap();
    let ours = last.matmul(&model.embeddings().t().unwrap()).unwrap();
    for row in 0..2 {
        let mut theirs = None;
        for pos in 0..7 {
            let token = ids.narrow(0, row, 1).unwrap().narrow(1, pos, 1).unwrap();
            theirs = Some(forward(&token, pos));
        }
        let d = max_diff(&ours.narrow(0, row, 1).unwrap(), &theirs.unwrap());
        assert!(d < 1e-4, "row {row}: max difference {d}");
    }
}

#[test]
fn gemma_3_with_lora_b_zero_equals_candle_transformers() {
    let config = tiny();
    let c = config.clone();
    equals_candle(GemmaConfig::V3(config), move |vb| {
        let mut m = gemma3::Model::new(false, &c, vb).unwrap();
        Box::new(move |ids, pos| {
            if pos == 0 {
                m.clear_kv_cache();
            }
            m.forward(ids, pos).unwrap().squeeze(1).unwrap()
        })
    });
}

#[test]
fn gemma_2_with_lora_b_zero_equals_candle_transformers() {
    let c: gemma2::Config = serde_json::from_value(serde_json::json!({
        "attention_bias": false, "head_dim": 8, "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 4,
        "num_hidden_layers": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0, "vocab_size": 64, "final_logit_softcapping": null,
        "attn_logit_softcapping": 5.0, "query_pre_attn_scalar": 8, "sliding_window": null,
        "max_position_embeddings": 32
    }))
    .unwrap();
    let reference = c.clone();
    equals_candle(GemmaConfig::V2(c), move |vb| {
        let mut m = gemma2::Model::new(false, &reference, vb).unwrap();
        Box::new(move |ids, pos| {
            if pos == 0 {
                m.clear_kv_cache();
            }
            m.forward(ids, pos).unwrap().squeeze(1).unwrap()
        })
    });
}

#[test]
fn gemma_1_with_lora_b_zero_equals_candle_transformers() {
    let c: gemma::Config = serde_json::from_value(serde_json::json!({
        "attention_bias": false, "head_dim": 8, "hidden_act": "gelu_pytorch_tanh",
        "hidden_activation": null, "hidden_size": 16, "intermediate_size": 32,
        "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 1,
        "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "vocab_size": 64,
        "max_position_embeddings": 32
    }))
    .unwrap();
    let reference = c.clone();
    equals_candle(GemmaConfig::V1(c), move |vb| {
        let mut m = gemma::Model::new(false, &reference, vb).unwrap();
        Box::new(move |ids, pos| {
            if pos == 0 {
                m.clear_kv_cache();
            }
            m.forward(ids, pos).unwrap().squeeze(1).unwrap()
        })
    });
}

#[test]
fn a_right_padded_mixed_user_batch_gives_each_row_what_it_gets_alone() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = GemmaMole::load(vb.clone(), vb, &GemmaConfig::V3(tiny()), &mole()).unwrap();
    for (name, var) in varmap.data().lock().unwrap().iter() {
        if name.ends_with("lora_b") {
            var.set(&var.as_tensor().randn_like(0.0, 0.5).unwrap())
                .unwrap();
        }
    }
    let ids = Tensor::new(
        &[
            [2u32, 7, 9, 11, 3, 5, 0],
            [2, 5, 3, 0, 0, 0, 0],
            [2, 4, 8, 15, 16, 3, 9],
        ],
        &Device::Cpu,
    )
    .unwrap();
    let mask = Tensor::new(
        &[
            [1u32, 1, 1, 1, 1, 1, 0],
            [1, 1, 1, 0, 0, 0, 0],
            [1, 1, 1, 1, 1, 1, 1],
        ],
        &Device::Cpu,
    )
    .unwrap();
    let lengths = [6, 3, 7];
    let u = users();
    let routings = model.adapters().route_users(&u, None).unwrap();
    assert!(
        routings
            .iter()
            .any(|r| r.experts.iter().any(|&e| e != r.experts[0]))
    );
    let together = model
        .forward(&ids, &mask, &model.adapters().masks(&routings).unwrap())
        .unwrap();
    for (row, &len) in lengths.iter().enumerate() {
        let one_ids = ids.narrow(0, row, 1).unwrap().narrow(1, 0, len).unwrap();
        let alone = model
            .forward(
                &one_ids,
                &one_ids.ones_like().unwrap(),
                &model
                    .adapters()
                    .masks(
                        &model
                            .adapters()
                            .route_users(&u.narrow(0, row, 1).unwrap(), None)
                            .unwrap(),
                    )
                    .unwrap(),
            )
            .unwrap();
        let d = max_diff(
            &together
                .narrow(0, row, 1)
                .unwrap()
                .narrow(1, 0, len)
                .unwrap(),
            &alone,
        );
        assert!(d < 1e-4, "row {row}: {d}"); // up to float reassociation
    }
    let norm: f32 = together
        .abs()
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!(norm > 0.1, "not degenerate: {norm}");
}

/// MoLE in the top layer only: the frozen layers' output of each row computed alone,
/// zero-padded and batched, then the adapted layer, equals the whole forward of the
/// right-padded batch.
#[test]
fn frozen_layers_computed_per_row_and_re_padded_give_the_whole_forward() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let config = MoleConfig {
        adapt_layers: Some(1),
        ..mole()
    };
    let model = GemmaMole::load(vb.clone(), vb, &GemmaConfig::V3(tiny()), &config).unwrap();
    assert_eq!(model.first_adapted_layer(), 2);
    assert_eq!(model.adapters().moles.len(), 2);
    for (name, var) in varmap.data().lock().unwrap().iter() {
        if name.ends_with("lora_b") {
            var.set(&var.as_tensor().randn_like(0.0, 0.5).unwrap())
                .unwrap();
        }
    }
    let ids = Tensor::new(&[[2u32, 7, 9, 11, 3, 5], [2, 5, 3, 0, 0, 0]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], &Device::Cpu).unwrap();
    let lengths = [6usize, 3];
    let masks = model
        .adapters()
        .masks(
            &model
                .adapters()
                .route_users(&users().narrow(0, 0, 2).unwrap(), None)
                .unwrap(),
        )
        .unwrap();
    let whole = model.forward(&ids, &mask, &masks).unwrap();
    let states: Vec<Tensor> = lengths
        .iter()
        .enumerate()
        .map(|(row, &len)| {
            let one = ids.narrow(0, row, 1).unwrap().narrow(1, 0, len).unwrap();
            model
                .frozen_forward(&one, &one.ones_like().unwrap())
                .unwrap()
                .squeeze(0)
                .unwrap()
                .pad_with_zeros(0, 0, 6 - len)
                .unwrap()
        })
        .collect();
    let split = model
        .adapted_forward(&Tensor::stack(&states, 0).unwrap(), &mask, &masks)
        .unwrap();
    for (row, &len) in lengths.iter().enumerate() {
        let d = max_diff(
            &whole.i(row).unwrap().narrow(0, 0, len).unwrap(),
            &split.i(row).unwrap().narrow(0, 0, len).unwrap(),
        );
        assert!(d < 1e-4, "row {row}: {d}"); // up to float reassociation
    }
}
