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
    reward::{Batch, RewardModel, RewardModelConfig, Template},
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
                let routings = model.backbone.adapters().route_users(&users, false)?;
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
