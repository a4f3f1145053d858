//! The packed model's backward against candle's autograd through candle's own BERT with
//! MoLE: the adapted layers, the reward head and the gates.

use super::*;

/// A small random BERT (3 layers, hidden 16, 4 heads) with MoLE (rank 2, 3 experts) in
/// the top `adapt` layers and random LoRA B factors (fresh ones are 0, which would leave
/// ∂A untested).
fn small_bert_mole(adapt: usize) -> copl_core::model::bert::BertMole {
    use candle_nn::{VarBuilder, VarMap};
    use candle_transformers::models::bert::Config;
    use copl_core::model::{MoleConfig, bert::BertMole};
    let config: Config = serde_json::from_value(serde_json::json!({
        "vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 3,
        "num_attention_heads": 4, "intermediate_size": 24, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0, "max_position_embeddings": 32, "type_vocab_size": 2,
        "initializer_range": 0.5, "layer_norm_eps": 1e-12, "pad_token_id": 0,
        "model_type": "bert"
    }))
    .unwrap();
    let mole = MoleConfig {
        rank: 2,
        experts: 3,
        user_dim: 4,
        gate_hidden: 8,
        adapt_layers: Some(adapt),
        ..MoleConfig::default()
    };
    let (backbone, adapters) = (VarMap::new(), VarMap::new());
    let vb = |m: &VarMap| VarBuilder::from_varmap(m, candle_core::DType::F32, &Device::Cpu);
    let mut model =
        BertMole::load_with_fresh_moles(vb(&backbone), vb(&adapters), &config, &mole).unwrap();
    model.differentiable = true;
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    for (name, var) in adapters.data().lock().unwrap().iter() {
        if name.contains("lora_b") {
            let values = random(&mut rng, var.elem_count(), 0.5);
            var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap())
                .unwrap();
        }
    }
    model
}

#[test]
fn adapted_layers_backward_equals_autograd() {
    use copl_core::model::{
        mole::{Routing, UserRouting},
        packed::{
            attention::Span,
            bert::{Packed, PackedBert},
        },
    };
    let model = small_bert_mole(2);
    let packed = PackedBert::new(&model).unwrap();
    let moles = &model.adapters().moles;
    let (h, experts) = (16, 3);
    let lengths = [5usize, 2, 7];
    let (n, t) = (lengths.len(), 7);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let hidden = random(&mut rng, n * t * h, 1.0);
    let upstream = random(&mut rng, n * t * h, 1.0);
    // Each row's routing in each projection: a random expert and weight.
    let routings: Vec<UserRouting> = (0..n)
        .map(|_| UserRouting {
            experts: (0..moles.len())
                .map(|_| rng.random_range(0..experts as u32))
                .collect(),
            weights: (0..moles.len())
                .map(|_| rng.random_range(0.3..1.0))
                .collect(),
        })
        .collect();

    // The reference: candle's adapted layers on padded rows, weights as variables.
    let hidden_var =
        Var::from_tensor(&Tensor::from_slice(&hidden, (n, t, h), &Device::Cpu).unwrap()).unwrap();
    let mut weight_vars = Vec::new();
    let mut masks = Vec::new();
    for (p, mole) in moles.iter().enumerate() {
        let mut w = vec![0f32; n * experts];
        for (row, r) in routings.iter().enumerate() {
            w[row * experts + r.experts[p] as usize] = r.weights[p];
        }
        let var = Var::from_tensor(&tensor(&w, experts)).unwrap();
        let routing = Routing {
            experts: routings.iter().map(|r| r.experts[p]).collect(),
            weights: var.as_tensor().clone(),
            probabilities: None,
        };
        masks.push(mole.mask(&routing).unwrap());
        weight_vars.push(var);
    }
    let valid: Vec<f32> = lengths
        .iter()
        .flat_map(|&len| (0..t).map(move |i| f32::from(u8::from(i < len))))
        .collect();
    let attention_mask = Tensor::from_slice(&valid, (n, t), &Device::Cpu).unwrap();
    let out = model
        .adapted_forward(hidden_var.as_tensor(), &attention_mask, &masks)
        .unwrap();
    let weight = (Tensor::from_slice(&upstream, (n, t, h), &Device::Cpu).unwrap()
        * attention_mask
            .unsqueeze(2)
            .unwrap()
            .broadcast_as((n, t, h))
            .unwrap())
    .unwrap();
    let loss = (&out * weight).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();

    // Ours: the same rows packed.
    let (mut states, mut d, mut spans) = (Vec::new(), Vec::new(), Vec::new());
    for (row, &len) in lengths.iter().enumerate() {
        spans.push(Span {
            start: states.len() / h,
            len,
        });
        states.extend_from_slice(&hidden[row * t * h..(row * t + len) * h]);
        d.extend_from_slice(&upstream[row * t * h..(row * t + len) * h]);
    }
    let mut x = Packed {
        states,
        spans: spans.clone(),
        width: h,
    };
    let refs: Vec<&UserRouting> = routings.iter().collect();
    let saved = packed.adapted_forward_saving(&mut x, &refs).unwrap();
    let reference_out = flat(&out);
    let padded_rows = |values: &[f32]| -> Vec<f32> {
        lengths
            .iter()
            .enumerate()
            .flat_map(|(row, &len)| values[row * t * h..(row * t + len) * h].to_vec())
            .collect()
    };
    assert_close(&x.states, &padded_rows(&reference_out), "adapted forward");
    // Without the input's gradient (nothing below trains) the parameters' gradients are
    // the same: only the products that make ∂hidden are skipped.
    let mut d_unused = d.clone();
    let without = packed.adapted_backward(&mut d_unused, &spans, &refs, &saved, false);
    let low_rank = packed.adapted_backward(&mut d, &spans, &refs, &saved, true);
    for (p, (a, b)) in without.iter().zip(&low_rank).enumerate() {
        assert_eq!(a.a, b.a, "∂A of projection {p} without ∂hidden");
        assert_eq!(a.b, b.b, "∂B of projection {p} without ∂hidden");
        assert_eq!(a.weights, b.weights, "∂w of projection {p} without ∂hidden");
    }

    assert_close(
        &d,
        &padded_rows(&flat(grads.get(hidden_var.as_tensor()).unwrap())),
        "∂hidden",
    );
    assert_eq!(low_rank.len(), moles.len());
    for (p, (mole, grad)) in moles.iter().zip(&low_rank).enumerate() {
        let (a, b) = mole.lora();
        assert_close(
            &grad.a,
            &flat(grads.get(a).unwrap()),
            &format!("∂A of projection {p}"),
        );
        assert_close(
            &grad.b,
            &flat(grads.get(b).unwrap()),
            &format!("∂B of projection {p}"),
        );
        let dw = flat(grads.get(weight_vars[p].as_tensor()).unwrap());
        let want: Vec<f32> = routings
            .iter()
            .enumerate()
            .map(|(row, r)| dw[row * experts + r.experts[p] as usize])
            .collect();
        assert_close(&grad.weights, &want, &format!("∂w of projection {p}"));
    }
}

#[test]
fn head_backward_equals_autograd() {
    use candle_nn::{VarBuilder, VarMap};
    use copl_core::model::{
        head::{Pooling, RewardHead},
        packed::{attention::Span, bert::Packed, head::PackedHead},
    };
    let (h, lengths, t) = (6, [3usize, 1, 4], 4);
    let n = lengths.len();
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let hidden = random(&mut rng, n * t * h, 1.0);
    let d_rewards = random(&mut rng, n, 1.0);
    let valid: Vec<f32> = lengths
        .iter()
        .flat_map(|&len| (0..t).map(move |i| f32::from(u8::from(i < len))))
        .collect();
    let mask = Tensor::from_slice(&valid, (n, t), &Device::Cpu).unwrap();
    let (mut states, mut spans) = (Vec::new(), Vec::new());
    for (row, &len) in lengths.iter().enumerate() {
        spans.push(Span {
            start: states.len() / h,
            len,
        });
        states.extend_from_slice(&hidden[row * t * h..(row * t + len) * h]);
    }
    let x = Packed {
        states,
        spans,
        width: h,
    };
    for pooling in [Pooling::Mean, Pooling::LastToken] {
        let vars = VarMap::new();
        let head = RewardHead::new(
            h,
            pooling,
            VarBuilder::from_varmap(&vars, candle_core::DType::F32, &Device::Cpu),
        )
        .unwrap();
        let hidden_var =
            Var::from_tensor(&Tensor::from_slice(&hidden, (n, t, h), &Device::Cpu).unwrap())
                .unwrap();
        let rewards = head.forward(hidden_var.as_tensor(), &mask).unwrap();
        let loss = (&rewards * Tensor::new(d_rewards.as_slice(), &Device::Cpu).unwrap())
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();

        let packed = PackedHead::new(head.linear(), pooling).unwrap();
        assert_close(
            &packed.rewards(&x),
            &flat(&rewards),
            &format!("{pooling:?} rewards"),
        );
        let mut grad = packed.zero_grad();
        let mut d_states = vec![1.0; x.states.len()];
        packed.backward(&x, &d_rewards, &mut grad, &mut d_states);
        let want = flat(grads.get(hidden_var.as_tensor()).unwrap());
        let want: Vec<f32> = lengths
            .iter()
            .enumerate()
            .flat_map(|(row, &len)| want[row * t * h..(row * t + len) * h].to_vec())
            .collect();
        assert_close(&d_states, &want, &format!("{pooling:?} ∂states"));
        let linear = head.linear();
        assert_close(
            &grad.weight,
            &flat(grads.get(linear.weight()).unwrap()),
            "∂w",
        );
        let db = flat(grads.get(linear.bias().unwrap()).unwrap());
        assert_close(&[grad.bias], &db, "∂b");
    }
}

#[test]
fn gate_backward_equals_autograd() {
    use candle_nn::{VarBuilder, VarMap};
    use copl_core::model::{
        MoleConfig,
        mole::{Gate, route},
        packed::gate::PackedGate,
    };
    let config = MoleConfig {
        user_dim: 5,
        gate_hidden: 7,
        experts: 4,
        temperature: 0.7,
        ..MoleConfig::default()
    };
    let vars = VarMap::new();
    let gate = Gate::new(
        &config,
        VarBuilder::from_varmap(&vars, candle_core::DType::F32, &Device::Cpu),
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let n = 23;
    let users = random(&mut rng, n * 5, 1.0);
    let noise = random(&mut rng, n * 4, 0.3);
    let upstream = random(&mut rng, n, 1.0);

    // The reference: candle's routing of the noised logits; ∂ of Σ w_u · upstream.
    let logits = (gate.logits(&tensor(&users, 5)).unwrap() + tensor(&noise, 4)).unwrap();
    let routing = route(&logits, config.temperature, None).unwrap();
    let w = routing.weights.sum(1).unwrap();
    let loss = (&w * Tensor::new(upstream.as_slice(), &Device::Cpu).unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();

    let packed = PackedGate::new(&gate).unwrap();
    let temperature = config.temperature as f32;
    let (routes, saved) = packed.route(&users, temperature, Some(&noise));
    let experts: Vec<u32> = routes.iter().map(|r| r.0).collect();
    assert_eq!(experts, routing.experts, "the chosen experts");
    let weights: Vec<f32> = routes.iter().map(|r| r.1).collect();
    assert_close(&weights, &flat(&w), "w_u");
    let mut grad = packed.zero_grad();
    packed.backward(&users, &saved, &upstream, None, temperature, &mut grad);
    let (hidden, out) = gate.layers();
    let want = |t: &Tensor| flat(grads.get(t).unwrap());
    assert_close(&grad.w1, &want(hidden.weight()), "∂W₁");
    assert_close(&grad.b1, &want(hidden.bias().unwrap()), "∂b₁");
    assert_close(&grad.w2, &want(out.weight()), "∂W₂");
    assert_close(&grad.b2, &want(out.bias().unwrap()), "∂b₂");
}
