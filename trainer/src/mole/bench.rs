//! `copl-train bench forward`: tokens per second of the reward model's served forward
//! on this machine — the packed path the server runs and candle's reference path — for
//! the backbone alone, with MoLE and one user, and with MoLE and a batch of different
//! users (every row its own routing), at one length for every row and at a mix of
//! lengths ([`mixed_lengths`], where the reference pays for padding).

use std::{path::Path, time::Instant};

use anyhow::{Result, bail};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use copl_core::model::{
    MoleConfig, UserRouting,
    head::Pooling,
    reward::{RewardModel, RewardModelConfig, ServedRow, Template, Tokens, Variant},
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// One measured configuration.
#[derive(Clone, Debug, Serialize)]
pub struct ForwardRow {
    /// `backbone` (no MoLE), `mole_one_user`, `mole_mixed_users`.
    pub variant: String,
    /// `packed` (what the server runs) or `reference` (candle's op-by-op forward).
    pub path: String,
    pub batch: usize,
    /// The longest row; every row's length with `lengths = "fixed"`.
    pub tokens: usize,
    /// `fixed` or `mixed` ([`mixed_lengths`]).
    pub lengths: String,
    /// Median seconds of one forward (tokenisation excluded) over the repeats (at
    /// least `--repeats`, and enough for about a second, at most 50).
    pub seconds: f64,
    /// Real (unpadded) tokens per second.
    pub tokens_per_second: f64,
}

/// A reproducible mix of row lengths up to `longest`: row i gets
/// `16·(longest/16)^uᵢ` tokens, uᵢ the fractional part of (i + 1)·0.618… (golden-ratio
/// steps spread log-uniformly; `scripts/bench_forward_torch.py` uses the same formula).
pub fn mixed_lengths(batch: usize, longest: usize) -> Vec<usize> {
    let golden = (5f64.sqrt() - 1.0) / 2.0;
    (0..batch)
        .map(|i| {
            let u = ((i + 1) as f64 * golden).fract();
            let n = 16.0 * (longest as f64 / 16.0).powf(u);
            (n.round() as usize).clamp(16.min(longest), longest)
        })
        .collect()
}

/// Times forwards of the backbone in `dir` at every (batch, tokens) pair, fixed and
/// mixed lengths, through the packed and the reference served forward.
pub fn bench_forward(
    dir: &Path,
    batches: &[usize],
    lengths: &[usize],
    repeats: usize,
    user_dim: usize,
    paths: &[String],
) -> Result<Vec<ForwardRow>> {
    if let Some(p) = paths
        .iter()
        .find(|p| !["packed", "reference"].contains(&p.as_str()))
    {
        bail!("--paths: {p:?} is neither packed nor reference");
    }
    let device = Device::Cpu;
    let config = |targets: Vec<String>| RewardModelConfig {
        variant: Variant::Copl,
        family: copl_core::model::reward::BackboneFamily::Bert,
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
            for mix in ["fixed", "mixed"] {
                let row_lengths = if mix == "fixed" {
                    vec![tokens; batch_size]
                } else {
                    mixed_lengths(batch_size, tokens)
                };
                let texts: Vec<Tokens> = row_lengths
                    .iter()
                    .map(|&n| Tokens {
                        ids: (0..n).map(|_| rng.random_range(1000..vocab)).collect(),
                        type_ids: vec![0; n],
                    })
                    .collect();
                let real: usize = row_lengths.iter().sum();
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
                    let routings: Vec<UserRouting> = model.user_routings(&users)?;
                    let embeddings: Vec<Vec<f32>> = users.to_vec2()?;
                    let served: Vec<ServedRow<'_>> = texts
                        .iter()
                        .zip(&routings)
                        .zip(&embeddings)
                        .map(|((t, r), e)| ServedRow {
                            tokens: t,
                            routing: r,
                            embedding: e,
                        })
                        .collect();
                    for path in paths.iter().map(String::as_str) {
                        let forward = || -> Result<()> {
                            match path {
                                "packed" => model.score_served(&served)?,
                                _ => model.score_served_reference(&served)?,
                            };
                            Ok(())
                        };
                        // One warm-up, then the repeats: at least `repeats`, and enough
                        // for about a second (short forwards drift most on this VM).
                        let warm = Instant::now();
                        forward()?;
                        let enough = (1.0 / warm.elapsed().as_secs_f64().max(1e-3)).ceil();
                        let n = repeats.max(1).max((enough as usize).min(50));
                        let mut times: Vec<f64> = (0..n)
                            .map(|_| {
                                let started = Instant::now();
                                forward()?;
                                Ok(started.elapsed().as_secs_f64())
                            })
                            .collect::<Result<_>>()?;
                        times.sort_by(f64::total_cmp);
                        let seconds = times[times.len() / 2];
                        rows.push(ForwardRow {
                            variant: variant.to_string(),
                            path: path.to_string(),
                            batch: batch_size,
                            tokens,
                            lengths: mix.to_string(),
                            seconds,
                            tokens_per_second: real as f64 / seconds,
                        });
                    }
                }
            }
        }
    }
    Ok(rows)
}

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
