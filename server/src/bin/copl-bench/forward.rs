//! `copl-bench forward`: tokens per second of the reward model's served forward
//! on this machine — the packed path the server runs and candle's reference path — for
//! the backbone alone, with MoLE and one user, and with MoLE and a batch of different
//! users (every row its own routing), at one length for every row and at a mix of
//! lengths ([`mixed_lengths`], where the reference pays for padding).

use std::{path::Path, time::Instant};

use anyhow::{Result, bail};
use candle_core::{DType, Tensor};
use candle_nn::{VarBuilder, VarMap};
use copl_core::model::{
    UserRouting, backbone,
    reward::{RewardModel, RewardModelConfig, ServedRow, Tokens, Variant},
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One measured configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
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

/// What `bench forward` times: the backbone in `dir` (either family) at every (batch,
/// tokens) pair, fixed and mixed lengths, through the given served forwards, on
/// `device` in `dtype` (weights random where the backbone has none to give: MoLE's).
pub struct ForwardBench<'a> {
    pub dir: &'a Path,
    pub batches: &'a [usize],
    pub lengths: &'a [usize],
    pub repeats: usize,
    pub user_dim: usize,
    pub paths: &'a [String],
    pub device: &'a str,
    pub dtype: &'a str,
    /// The rows' variants to time (`backbone`, `mole_one_user`, `mole_mixed_users`).
    pub variants: &'a [String],
}

/// Times forwards of the backbone in `dir` at every (batch, tokens) pair, fixed and
/// mixed lengths, through the packed and the reference served forward.
pub fn bench_forward(args: &ForwardBench<'_>) -> Result<Vec<ForwardRow>> {
    let ForwardBench {
        dir,
        batches,
        lengths,
        repeats,
        user_dim,
        paths,
        ..
    } = *args;
    if let Some(p) = paths
        .iter()
        .find(|p| !["packed", "reference"].contains(&p.as_str()))
    {
        bail!("--paths: {p:?} is neither packed nor reference");
    }
    const VARIANTS: [&str; 3] = ["backbone", "mole_one_user", "mole_mixed_users"];
    if let Some(v) = args
        .variants
        .iter()
        .find(|v| !VARIANTS.contains(&v.as_str()))
    {
        bail!("--variants: {v:?} is none of {}", VARIANTS.join(", "));
    }
    let device = copl_core::device::parse(args.device)?;
    let dtype = copl_core::device::dtype(args.dtype, &device)?;
    let max_tokens = lengths.iter().copied().max().unwrap_or(128);
    let config = |mole: bool| -> Result<RewardModelConfig> {
        let mut config = backbone::reward_config(dir, Variant::Copl, user_dim, max_tokens, None)?;
        if !mole {
            config.mole.targets.clear();
        }
        Ok(config)
    };
    let model = |mole: bool| -> Result<RewardModel> {
        let vars = VarMap::new();
        Ok(RewardModel::fresh_from(
            dir,
            config(mole)?,
            VarBuilder::from_varmap(&vars, dtype, &device),
            &device,
        )?)
    };
    let plain = model(false)?;
    let mole = model(true)?;
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
                    if !args.variants.iter().any(|v| v == variant) {
                        continue;
                    }
                    let routings: Vec<UserRouting> = model.user_routings(&users)?;
                    let embeddings: Vec<Vec<f32>> = users.to_dtype(DType::F32)?.to_vec2()?;
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

/// The rows of a `bench forward` run, printed as a table.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ForwardRows(pub Vec<ForwardRow>);

impl std::fmt::Display for ForwardRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "variant            path       batch  tokens  lengths   s/forward   tokens/s"
        )?;
        for r in &self.0 {
            writeln!(
                f,
                "{:<18} {:<9} {:>6}  {:>6}  {:<7}  {:>10.4}  {:>9.0}",
                r.variant, r.path, r.batch, r.tokens, r.lengths, r.seconds, r.tokens_per_second
            )?;
        }
        Ok(())
    }
}
