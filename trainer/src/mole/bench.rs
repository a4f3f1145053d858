//! `copl-train bench forward`: tokens per second of the reward model's forward on this
//! machine, for the backbone alone, with MoLE and one user, and with MoLE and a batch of
//! different users (every row its own routing).

use std::{path::Path, time::Instant};

use anyhow::{Result, bail};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use copl_core::model::{
    MoleConfig,
    head::Pooling,
    reward::{Batch, RewardModel, RewardModelConfig, Template, Variant},
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// One measured configuration.
#[derive(Clone, Debug, Serialize)]
pub struct ForwardRow {
    /// `backbone` (no MoLE), `mole_one_user`, `mole_mixed_users`.
    pub variant: String,
    pub batch: usize,
    pub tokens: usize,
    /// Median seconds of one forward (tokenisation excluded) over the repeats.
    pub seconds: f64,
    pub tokens_per_second: f64,
}

/// Times forwards of the backbone in `dir` at every (batch, tokens) pair.
pub fn bench_forward(
    dir: &Path,
    batches: &[usize],
    lengths: &[usize],
    repeats: usize,
    user_dim: usize,
) -> Result<Vec<ForwardRow>> {
    let device = Device::Cpu;
    let config = |targets: Vec<String>| RewardModelConfig {
        variant: Variant::Copl,
        family: "bert".into(),
        mole: MoleConfig {
            targets,
            user_dim,
            ..MoleConfig::default()
        },
        pooling: Pooling::Mean,
        template: Template::Pair,
        max_tokens: lengths.iter().copied().max().unwrap_or(128),
    };
    let plain = RewardModel::fresh(dir, config(Vec::new()), &VarMap::new(), &device)?;
    let mole = RewardModel::fresh(
        dir,
        config(vec!["query".into(), "value".into()]),
        &VarMap::new(),
        &device,
    )?;
    let vocab = plain.tokenizer.get_vocab_size(true) as u32;
    if vocab < 1100 {
        bail!(
            "{}: vocabulary of {vocab} tokens is too small",
            dir.display()
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut rows = Vec::new();
    for &tokens in lengths {
        for &batch_size in batches {
            let ids: Vec<Vec<u32>> = (0..batch_size)
                .map(|_| (0..tokens).map(|_| rng.random_range(1000..vocab)).collect())
                .collect();
            let ids = Tensor::new(ids, &device)?;
            let batch = Batch {
                type_ids: ids.zeros_like()?,
                attention_mask: ids.ones_like()?,
                ids,
                lengths: vec![tokens; batch_size],
            };
            let one_user = Tensor::randn(0f32, 1.0, (1, user_dim), &device)?
                .broadcast_as((batch_size, user_dim))?
                .contiguous()?;
            let mixed = Tensor::randn(0f32, 1.0, (batch_size, user_dim), &device)?;
            let mut variants = vec![
                ("backbone", &plain, one_user.clone()),
                ("mole_one_user", &mole, one_user),
            ];
            if batch_size > 1 {
                variants.push(("mole_mixed_users", &mole, mixed));
            }
            for (variant, model, users) in variants {
                let routings = copl_core::model::reward::Conditioning::routed(
                    model.backbone.adapters().route_users(&users, false)?,
                );
                // One warm-up, then the repeats.
                model.score(&batch, &routings)?;
                let mut times: Vec<f64> = (0..repeats.max(1))
                    .map(|_| {
                        let started = Instant::now();
                        model.score(&batch, &routings)?;
                        Ok(started.elapsed().as_secs_f64())
                    })
                    .collect::<Result<_>>()?;
                times.sort_by(f64::total_cmp);
                let seconds = times[times.len() / 2];
                rows.push(ForwardRow {
                    variant: variant.to_string(),
                    batch: batch_size,
                    tokens,
                    seconds,
                    tokens_per_second: (batch_size * tokens) as f64 / seconds,
                });
            }
        }
    }
    Ok(rows)
}

/// One training step's parts, seconds (median over the steps).
#[derive(Clone, Debug, Serialize)]
pub struct TrainStepTiming {
    pub batch_pairs: usize,
    pub tokens: usize,
    /// MoLE in the top this many layers (None: all).
    pub adapt_layers: Option<usize>,
    /// The frozen layers' forward for the batch's texts, when not cached (0 without
    /// frozen layers).
    pub frozen_forward: f64,
    /// Forward of the adapted layers and head (frozen states cached).
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
    let frozen_forward = if model.backbone.first_adapted_layer() > 0 {
        let batch = model.pad(&rows)?;
        let t0 = Instant::now();
        model.backbone.frozen_forward(&batch)?;
        t0.elapsed().as_secs_f64()
    } else {
        0.0
    };
    let mut cache = FrozenCache::new(usize::MAX);
    let (mut f, mut b, mut o) = (Vec::new(), Vec::new(), Vec::new());
    // One step fills the cache; the median of the rest is reported.
    for _ in 0..steps.max(1) + 1 {
        let t0 = Instant::now();
        let r = model.score_cached(&rows, &model.condition(&users, true)?, &mut cache)?;
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
