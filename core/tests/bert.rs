#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! The BERT backbone with MoLE projections: with every LoRA B = 0 its hidden states
//! equal candle-transformers' BERT on the same weights; with trained-looking B, a
//! mixed-user batch gives each row what it gets alone, padding included.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::bert::{BertModel, Config};
use copl_core::model::{MoleConfig, bert::BertMole};

fn tiny() -> Config {
    serde_json::from_value(serde_json::json!({
        "vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 32, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0, "max_position_embeddings": 32, "type_vocab_size": 2,
        "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
        "classifier_dropout": null, "model_type": "bert"
    }))
    .unwrap()
}

fn mole() -> MoleConfig {
    MoleConfig {
        rank: 2,
        experts: 3,
        gate_hidden: 8,
        user_dim: 4,
        ..MoleConfig::default()
    }
}

fn batch() -> (Tensor, Tensor, Tensor) {
    let dev = Device::Cpu;
    let ids = Tensor::new(
        &[
            [2u32, 7, 9, 11, 3, 0],
            [2, 5, 3, 0, 0, 0],
            [2, 4, 8, 15, 16, 3],
        ],
        &dev,
    )
    .unwrap();
    let types = ids.zeros_like().unwrap();
    let mask = Tensor::new(
        &[
            [1u32, 1, 1, 1, 1, 0],
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 1, 1, 1],
        ],
        &dev,
    )
    .unwrap();
    (ids, types, mask)
}

fn users() -> Tensor {
    Tensor::new(
        &[
            [0.5f32, -0.5, 0.5, 0.5],
            [-0.9, 0.1, 0.3, 0.3],
            [0.1, 0.9, -0.4, 0.1],
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

#[test]
fn with_lora_b_zero_hidden_states_equal_candle_transformers() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let config = tiny();
    let reference = BertModel::load(vb.clone(), &config).unwrap();
    let model = BertMole::load(vb, &config, &mole()).unwrap();
    assert_eq!(
        model.adapters().moles.len(),
        4,
        "query and value in 2 layers"
    );
    let (ids, types, mask) = batch();
    let masks = model
        .adapters()
        .masks(&model.adapters().route_users(&users(), None).unwrap())
        .unwrap();
    let ours = model.forward(&ids, &types, &mask, &masks).unwrap();
    let theirs = reference.forward(&ids, &types, Some(&mask)).unwrap();
    assert!(
        max_diff(&ours, &theirs) < 1e-4,
        "{}",
        max_diff(&ours, &theirs)
    );

    // The differentiable layer norm gives the same states.
    let mut parts = model.clone();
    parts.differentiable = true;
    let again = parts.forward(&ids, &types, &mask, &masks).unwrap();
    assert!(
        max_diff(&again, &theirs) < 1e-4,
        "{}",
        max_diff(&again, &theirs)
    );
}

#[test]
fn a_mixed_user_batch_gives_each_row_what_it_gets_alone() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    // Our model first, so the var map's fresh tensors get our initialisers (layer-norm
    // weights 1, not 0: a bug this test caught).
    let model = BertMole::load(vb, &tiny(), &mole()).unwrap();
    assert!(model.adapters().moles.len() == 4);
    // Make every LoRA B non-zero, as after training.
    for (name, var) in varmap.data().lock().unwrap().iter() {
        if name.ends_with("lora_b") {
            let noise = var.as_tensor().randn_like(0.0, 0.5).unwrap();
            var.set(&noise).unwrap();
        }
    }
    let model = BertMole::load(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &tiny(),
        &mole(),
    )
    .unwrap();
    let (ids, types, mask) = batch();
    // Far-apart users, so the gates route them to different experts.
    let u = (users() * 20.0).unwrap();
    let routed: Vec<Vec<u32>> = model
        .adapters()
        .route_users(&u, None)
        .unwrap()
        .into_iter()
        .map(|r| r.experts)
        .collect();
    assert!(
        routed.iter().any(|e| e.iter().any(|&x| x != e[0])),
        "the test needs different experts in one projection: {routed:?}"
    );
    let together = model
        .forward(
            &ids,
            &types,
            &mask,
            &model
                .adapters()
                .masks(&model.adapters().route_users(&u, None).unwrap())
                .unwrap(),
        )
        .unwrap();
    for row in 0..3 {
        let one = |t: &Tensor| t.narrow(0, row, 1).unwrap();
        let routing = model.adapters().route_users(&one(&u), None).unwrap();
        let alone = model
            .forward(
                &one(&ids),
                &one(&types),
                &one(&mask),
                &model.adapters().masks(&routing).unwrap(),
            )
            .unwrap();
        let d = max_diff(&one(&together), &alone);
        // Up to float reassociation: another batch shape blocks the GEMMs differently.
        assert!(d < 1e-4, "row {row}: {d}");
    }
    // And the routing matters: another user changes the row.
    let swapped =
        Tensor::cat(&[u.narrow(0, 1, 1).unwrap(), u.narrow(0, 0, 2).unwrap()], 0).unwrap();
    let other = model
        .forward(
            &ids,
            &types,
            &mask,
            &model
                .adapters()
                .masks(&model.adapters().route_users(&swapped, None).unwrap())
                .unwrap(),
        )
        .unwrap();
    assert!(max_diff(&other, &together) > 1e-3);
    let norm: f32 = together
        .abs()
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!(norm > 0.1, "hidden states are not degenerate: {norm}");
}

#[test]
fn cached_user_routings_give_the_gates_result_without_running_them() {
    let varmap = VarMap::new();
    let model = BertMole::load(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &tiny(),
        &mole(),
    )
    .unwrap();
    for (name, var) in varmap.data().lock().unwrap().iter() {
        if name.ends_with("lora_b") {
            var.set(&var.as_tensor().randn_like(0.0, 0.5).unwrap())
                .unwrap();
        }
    }
    assert_eq!(
        model.adapters().names,
        [
            "encoder.layer.0.attention.self.query",
            "encoder.layer.0.attention.self.value",
            "encoder.layer.1.attention.self.query",
            "encoder.layer.1.attention.self.value"
        ]
    );
    let u = (users() * 20.0).unwrap();
    let cached = model.adapters().user_routings(&u).unwrap();
    let gates = model.adapters().route_users(&u, None).unwrap();
    for (p, r) in gates.iter().enumerate() {
        let w: Vec<Vec<f32>> = r.weights.to_vec2().unwrap();
        for row in 0..3 {
            assert_eq!(cached[row].experts[p], r.experts[row]);
            assert_eq!(cached[row].weights[p], w[row][r.experts[row] as usize]);
        }
    }
    let (ids, types, mask) = batch();
    let from_gates = model
        .forward(
            &ids,
            &types,
            &mask,
            &model.adapters().masks(&gates).unwrap(),
        )
        .unwrap();
    let refs: Vec<&copl_core::model::UserRouting> = cached.iter().collect();
    let from_cache = model
        .forward(
            &ids,
            &types,
            &mask,
            &model
                .adapters()
                .masks(
                    &model
                        .adapters()
                        .cached_routings(&refs, &Device::Cpu)
                        .unwrap(),
                )
                .unwrap(),
        )
        .unwrap();
    assert_eq!(max_diff(&from_gates, &from_cache), 0.0);

    // A routing of another model's shape is refused.
    let wrong = copl_core::model::UserRouting::population(3);
    let err = model
        .adapters()
        .cached_routings(&[&wrong], &Device::Cpu)
        .unwrap_err();
    assert!(
        err.to_string().contains("3 projections, the model has 4"),
        "{err}"
    );
}
