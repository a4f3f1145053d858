//! `copl-train bench mole`: the MoLE training step's parts timed (frozen forward,
//! forward, backward, AdamW) on random token ids. The served forward's benchmark is
//! `copl-bench forward` (server/src/bin/copl-bench/).

use std::{path::Path, time::Instant};

use anyhow::Result;
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use copl_core::model::reward::{RewardModel, Variant};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// One training step's parts, seconds (median over the steps).
#[derive(Clone, Debug, Serialize)]
pub struct TrainStepTiming {
    pub engine: super::train::MoleEngine,
    pub batch_pairs: usize,
    pub tokens: usize,
    /// MoLE in the top this many layers (None: all).
    pub adapt_layers: Option<usize>,
    /// The frozen layers' forward for the batch's texts, when not cached (0 without
    /// frozen layers).
    pub frozen_forward: f64,
    /// Forward of the adapted layers and head (frozen states cached); the packed engine
    /// times forward and backward together here (its `backward` is 0).
    pub forward: f64,
    pub backward: f64,
    pub optimiser: f64,
    /// Every text's frozen states cached (responses recur across pairs).
    pub pairs_per_second: f64,
    /// No text cached: the frozen forward in every step.
    pub pairs_per_second_uncached: f64,
}

/// Times training steps (forward, backward, AdamW) of CoPL over the backbone in `dir` on
/// random token ids of `tokens` length: `copl-train bench mole`.
pub fn bench_train_step(
    dir: &Path,
    batch_pairs: usize,
    tokens: usize,
    steps: usize,
    user_dim: usize,
    adapt_layers: Option<usize>,
    engine: super::train::MoleEngine,
) -> Result<TrainStepTiming> {
    use candle_nn::{AdamW, Optimizer, ParamsAdamW};
    use copl_core::model::{frozen_cache::FrozenCache, reward::Backbone, reward::Tokens};
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let mut model = RewardModel::fresh(
        dir,
        super::run::model_config(dir, Variant::Copl, user_dim, tokens, adapt_layers)?,
        &varmap,
        &device,
    )?;
    if let Backbone::Bert(b) = &mut model.backbone {
        b.differentiable = true;
    }
    let vocab = model.tokenizer.get_vocab_size(true) as u32;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let rows: Vec<Tokens> = (0..2 * batch_pairs)
        .map(|_| Tokens {
            ids: (0..tokens).map(|_| rng.random_range(1000..vocab)).collect(),
            type_ids: vec![0; tokens],
        })
        .collect();
    let rows: Vec<&Tokens> = rows.iter().collect();
    let users = Tensor::randn(0f32, 1.0, (rows.len(), user_dim), &device)?;
    let mut optimiser = AdamW::new(varmap.all_vars(), ParamsAdamW::default())?;
    let engine = engine.resolve(&model);
    if engine == super::train::MoleEngine::Packed {
        return bench_packed_step(&model, &rows, batch_pairs, steps, user_dim).map(|t| {
            TrainStepTiming {
                tokens,
                adapt_layers,
                ..t
            }
        });
    }
    let frozen_forward = if model.backbone.first_adapted_layer() > 0 {
        let batch = model.pad(&rows)?;
        let t0 = Instant::now();
        model.backbone.frozen_forward(&batch)?;
        t0.elapsed().as_secs_f64()
    } else {
        0.0
    };
    // Training's gate noise (its values do not change the step's cost).
    let experts = model.config.mole.experts;
    let noise: Vec<Vec<f32>> = (0..model.backbone.adapters().moles.len())
        .map(|_| {
            (0..rows.len() * experts)
                .map(|_| rng.random_range(-0.1..0.1))
                .collect()
        })
        .collect();
    let mut cache = FrozenCache::new(usize::MAX);
    let (mut f, mut b, mut o) = (Vec::new(), Vec::new(), Vec::new());
    // One step fills the cache; the median of the rest is reported.
    for _ in 0..steps.max(1) + 1 {
        let t0 = Instant::now();
        let r = model.score_cached(&rows, &model.condition(&users, Some(&noise))?, &mut cache)?;
        let margin = (r.narrow(0, 0, batch_pairs)? - r.narrow(0, batch_pairs, batch_pairs)?)?;
        let loss = crate::optim::neg_log_sigmoid(&margin)?.mean_all()?;
        let t1 = Instant::now();
        let grads = loss.backward()?;
        let t2 = Instant::now();
        optimiser.step(&grads)?;
        let t3 = Instant::now();
        f.push((t1 - t0).as_secs_f64());
        b.push((t2 - t1).as_secs_f64());
        o.push((t3 - t2).as_secs_f64());
    }
    let median = |mut v: Vec<f64>| {
        v.remove(0);
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (forward, backward, optimiser) = (median(f), median(b), median(o));
    let step = forward + backward + optimiser;
    Ok(TrainStepTiming {
        engine,
        batch_pairs,
        tokens,
        adapt_layers,
        frozen_forward,
        forward,
        backward,
        optimiser,
        pairs_per_second: batch_pairs as f64 / step,
        pairs_per_second_uncached: batch_pairs as f64 / (step + frozen_forward),
    })
}

/// [`bench_train_step`]'s packed engine: the same rows, users and step count; the
/// uncached figure times the engine's own frozen forward (`PackedBert::frozen_forward`,
/// what a cache miss costs in `train_packed`), the median of `steps` runs.
fn bench_packed_step(
    model: &RewardModel,
    rows: &[&copl_core::model::reward::Tokens],
    batch_pairs: usize,
    steps: usize,
    user_dim: usize,
) -> Result<TrainStepTiming> {
    use super::packed::{PackedFrozenCache, PackedStep};
    use rand_distr::{Distribution, Normal};
    let mut step = PackedStep::new(model)?;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let users: Vec<f32> = (0..rows.len())
        .flat_map(|_| {
            let u: Vec<f32> = (0..user_dim).map(|_| rng.random_range(-1.0..1.0)).collect();
            let norm = u.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            u.into_iter().map(move |x| x / norm)
        })
        .collect();
    let weights = vec![1f32; batch_pairs];
    let noise_std = model.config.mole.gate_noise as f32;
    let normal = Normal::new(0f32, noise_std.max(1e-12))?;
    let mut cache = PackedFrozenCache::new(usize::MAX);
    let mut adam = crate::optim::BufferAdamW::new(1e-4, 0.0);
    let (mut f, mut o, mut z) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..steps.max(1) + 1 {
        if step.bert.first_adapted() > 0 {
            let t0 = Instant::now();
            step.bert.frozen_forward(rows)?;
            z.push(t0.elapsed().as_secs_f64());
        }
        let noise: Vec<Vec<f32>> = step
            .gates
            .iter()
            .map(|g| {
                (0..rows.len() * g.experts())
                    .map(|_| normal.sample(&mut rng))
                    .collect()
            })
            .collect();
        let t0 = Instant::now();
        let (_, mut grads) = step.rows_loss_and_gradients(
            rows,
            &users,
            &weights,
            Some(&noise),
            super::objective::Reweight::None,
            0.0,
            &mut cache,
        )?;
        let t1 = Instant::now();
        adam.step(
            step.parameters_mut(),
            grads.buffers_mut().into_iter().map(|g| &*g).collect(),
        );
        let t2 = Instant::now();
        f.push((t1 - t0).as_secs_f64());
        o.push((t2 - t1).as_secs_f64());
    }
    let median = |mut v: Vec<f64>| {
        if v.is_empty() {
            return 0.0;
        }
        v.remove(0);
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (forward, optimiser, frozen_forward) = (median(f), median(o), median(z));
    let step_seconds = forward + optimiser;
    Ok(TrainStepTiming {
        engine: super::train::MoleEngine::Packed,
        batch_pairs,
        tokens: 0,
        adapt_layers: None,
        frozen_forward,
        forward,
        backward: 0.0,
        optimiser,
        pairs_per_second: batch_pairs as f64 / step_seconds,
        pairs_per_second_uncached: batch_pairs as f64 / (step_seconds + frozen_forward),
    })
}
