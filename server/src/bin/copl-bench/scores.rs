//! `copl-bench scores`: a checkpoint's served scores on a device, in a dtype, for a
//! reproducible set of rows — the correctness half of `scripts/gpu-check.sh` (issue
//! #14). The CPU's F32 scores are saved here (`--json`); the GPU's BF16 scores are held
//! to them (`--expect FILE`, within `--tolerance`), and every run checks that a mixed
//! batch (different users, different lengths, padded together) gives each row what it
//! gets alone.

use std::path::Path;

use anyhow::{Context, Result, bail};
use candle_core::Tensor;
use copl_core::{
    adapt::Adapter,
    model::reward::{RewardModel, ServedRow, Tokens},
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::forward::mixed_lengths;

/// One scored row: whom it is for and its reward.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScoredRow {
    /// Seen user index in the checkpoint.
    pub user: u32,
    pub tokens: usize,
    pub score: f32,
}

/// The comparison with saved scores.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Comparison {
    /// Where the saved scores were computed (`cpu f32`).
    pub expected_on: String,
    pub max_abs_diff: f32,
    /// The allowed difference: `tolerance × max(1, largest |saved score|)`.
    pub allowed: f32,
    /// The row of the largest difference.
    pub worst_row: usize,
}

/// A `scores` run: the rows, the batch-invariance check, the comparison if asked.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScoreCheck {
    pub format_version: u32,
    pub device: String,
    pub dtype: String,
    /// The seed of the rows' token ids.
    pub seed: u64,
    pub rows: Vec<ScoredRow>,
    /// Largest |score in the mixed batch − score alone| over the rows.
    pub batch_vs_alone_max_diff: f32,
    pub compared: Option<Comparison>,
}

/// The file version of [`ScoreCheck`].
pub const SCORE_CHECK_VERSION: u32 = 1;

impl std::fmt::Display for ScoreCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} rows on {} in {}: mixed batch vs alone max |diff| {:.2e}",
            self.rows.len(),
            self.device,
            self.dtype,
            self.batch_vs_alone_max_diff
        )?;
        if let Some(c) = &self.compared {
            writeln!(
                f,
                "against {}: max |diff| {:.2e} (row {}), allowed {:.2e}",
                c.expected_on, c.max_abs_diff, c.worst_row, c.allowed
            )?;
        }
        Ok(())
    }
}

/// What to score and where.
pub struct Scores<'a> {
    pub ckpt: &'a Path,
    pub backbone: &'a Path,
    pub device: &'a str,
    pub dtype: &'a str,
    pub rows: usize,
    pub seed: u64,
    /// Saved scores to hold these to, and the relative tolerance.
    pub expect: Option<&'a Path>,
    pub tolerance: f32,
}

pub fn scores(args: &Scores<'_>) -> Result<ScoreCheck> {
    let device = copl_core::device::parse(args.device)?;
    let dtype = copl_core::device::dtype(args.dtype, &device)?;
    let model = RewardModel::load_as(args.ckpt, args.backbone, &device, dtype)?;
    let (adapter, ids) = Adapter::from_checkpoint(args.ckpt)?;
    let users = ids.users.len().min(8) as u32;
    if users == 0 || args.rows == 0 {
        bail!("nothing to score: {users} seen users, {} rows", args.rows);
    }
    let flat: Vec<f32> = (0..users)
        .flat_map(|u| adapter.user_embedding(u).iter().copied())
        .collect();
    let routings = model.user_routings(&Tensor::from_vec(
        flat,
        (users as usize, adapter.dim()),
        &device,
    )?)?;
    // Token ids above the specials, lengths mixed up to the model's limit (a padded
    // batch then pads most rows).
    let vocab = model.tokenizer.get_vocab_size(true) as u32;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let texts: Vec<Tokens> = mixed_lengths(args.rows, model.config.max_tokens)
        .into_iter()
        .map(|n| Tokens {
            ids: (0..n)
                .map(|_| rng.random_range(vocab.min(1000)..vocab))
                .collect(),
            type_ids: vec![0; n],
        })
        .collect();
    let served: Vec<ServedRow<'_>> = texts
        .iter()
        .enumerate()
        .map(|(i, tokens)| {
            let user = i as u32 % users;
            ServedRow {
                tokens,
                routing: &routings[user as usize],
                embedding: adapter.user_embedding(user),
            }
        })
        .collect();
    let batched = model.score_served(&served)?;
    let mut batch_vs_alone = 0f32;
    for (row, &score) in served.iter().zip(&batched) {
        let alone = model.score_served(std::slice::from_ref(row))?[0];
        batch_vs_alone = batch_vs_alone.max((alone - score).abs());
    }
    let rows: Vec<ScoredRow> = served
        .iter()
        .zip(&batched)
        .enumerate()
        .map(|(i, (row, &score))| ScoredRow {
            user: i as u32 % users,
            tokens: row.tokens.ids.len(),
            score,
        })
        .collect();
    let here = format!("{} {}", args.device, dtype.as_str());
    let compared = args
        .expect
        .map(|path| compare(path, args.seed, &rows, args.tolerance, &here))
        .transpose()?;
    Ok(ScoreCheck {
        format_version: SCORE_CHECK_VERSION,
        device: args.device.to_string(),
        dtype: dtype.as_str().to_string(),
        seed: args.seed,
        rows,
        batch_vs_alone_max_diff: batch_vs_alone,
        compared,
    })
}

/// Holds `rows` to the scores saved in `path` (a `scores --json` of the same checkpoint,
/// rows and seed): refused, naming the worst row, beyond `tolerance × max(1, largest
/// |saved score|)`.
fn compare(
    path: &Path,
    seed: u64,
    rows: &[ScoredRow],
    tolerance: f32,
    here: &str,
) -> Result<Comparison> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let saved: ScoreCheck = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a scores --json", path.display()))?;
    if saved.format_version != SCORE_CHECK_VERSION {
        bail!(
            "{}: format_version {}, this build reads {SCORE_CHECK_VERSION}",
            path.display(),
            saved.format_version
        );
    }
    if saved.seed != seed
        || saved.rows.len() != rows.len()
        || saved
            .rows
            .iter()
            .zip(rows)
            .any(|(a, b)| (a.user, a.tokens) != (b.user, b.tokens))
    {
        bail!(
            "{}: its rows are not these (another checkpoint, --rows or --seed)",
            path.display()
        );
    }
    let scale = saved
        .rows
        .iter()
        .map(|r| r.score.abs())
        .fold(1f32, f32::max);
    let allowed = tolerance * scale;
    let (worst_row, max_abs_diff) = saved
        .rows
        .iter()
        .zip(rows)
        .map(|(a, b)| (a.score - b.score).abs())
        .enumerate()
        .fold((0, 0f32), |best, (i, d)| {
            if d > best.1 || d.is_nan() {
                (i, d)
            } else {
                best
            }
        });
    if max_abs_diff.is_nan() || max_abs_diff > allowed {
        bail!(
            "row {worst_row} (user {}, {} tokens): score {} on {here}, {} on {} {} ({}): \
             |diff| {max_abs_diff:.3e} over the allowed {allowed:.3e}",
            rows[worst_row].user,
            rows[worst_row].tokens,
            rows[worst_row].score,
            saved.rows[worst_row].score,
            saved.device,
            saved.dtype,
            path.display(),
        );
    }
    Ok(Comparison {
        expected_on: format!("{} {}", saved.device, saved.dtype),
        max_abs_diff,
        allowed,
        worst_row,
    })
}
