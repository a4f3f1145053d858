//! The frozen layers' output, cached per text.
//!
//! With `mole.adapt_layers = K` only the top K layers carry MoLE projections; the
//! embeddings and the layers below them are the frozen backbone, so their output for a
//! (prompt, response) is the same for every user. Responses recur across many users'
//! pairs, so training (and scoring many users against the same responses) computes them
//! once per text and runs only the adapted layers per row. A row's states do not depend
//! on the batch it was computed in (padded keys are masked; padding is on the right), so
//! cached rows are re-padded to any batch.

use std::collections::{HashMap, HashSet};

use candle_core::{Result, Tensor};

use super::reward::{Conditioning, RewardModel, Tokens, attention_mask};

/// Cached input of the first adapted layer per tokenised text, `[len, h]` each, under a
/// byte budget (rows beyond it are computed and used, not kept).
#[derive(Debug)]
pub struct FrozenCache {
    states: HashMap<Tokens, Tensor>,
    bytes: usize,
    budget: usize,
    /// Rows found in the cache.
    pub hits: u64,
    /// Rows computed.
    pub misses: u64,
}

impl FrozenCache {
    /// An empty cache that keeps at most `budget` bytes of states.
    pub fn new(budget: usize) -> Self {
        Self {
            states: HashMap::new(),
            bytes: 0,
            budget,
            hits: 0,
            misses: 0,
        }
    }

    /// Texts held.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Bytes of states held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Elements in the storages the held states keep alive (on the CPU; elsewhere their
    /// element counts). Equal to `bytes / 4` for f32 when every state is compact: a
    /// view would keep its whole batch alive.
    pub fn storage_elements(&self) -> usize {
        self.states
            .values()
            .map(|t| {
                let (storage, _) = t.storage_and_layout();
                match &*storage {
                    candle_core::Storage::Cpu(candle_core::CpuStorage::F32(v)) => v.len(),
                    _ => t.elem_count(),
                }
            })
            .sum()
    }

    /// Share of rows served from the cache so far.
    pub fn hit_rate(&self) -> f64 {
        let all = self.hits + self.misses;
        if all == 0 {
            0.0
        } else {
            self.hits as f64 / all as f64
        }
    }
}

/// Rows computed per frozen forward when filling the cache.
const FILL_BATCH: usize = 32;

impl RewardModel {
    /// Rewards `[n]` of tokenised rows conditioned by `conditioning` (rows in order),
    /// the frozen layers' output taken from `cache` (and computed, once per distinct
    /// text, for rows not in it). Equal to [`RewardModel::score`] of the padded rows;
    /// without frozen layers it is that.
    pub fn score_cached(
        &self,
        rows: &[&Tokens],
        conditioning: &Conditioning,
        cache: &mut FrozenCache,
    ) -> Result<Tensor> {
        if self.backbone.first_adapted_layer() == 0 {
            return self.score(&self.pad(rows)?, conditioning);
        }
        let mut fresh: HashMap<&Tokens, Tensor> = HashMap::new();
        let mut missing: Vec<&Tokens> = Vec::new();
        let mut seen = HashSet::new();
        for &row in rows {
            if cache.states.contains_key(row) {
                cache.hits += 1;
            } else {
                cache.misses += 1;
                if seen.insert(row) {
                    missing.push(row);
                }
            }
        }
        for chunk in missing.chunks(FILL_BATCH) {
            let batch = self.pad(chunk)?;
            let hidden = self.backbone.frozen_forward(&batch)?.detach();
            for (i, row) in chunk.iter().enumerate() {
                // A compact copy: `copy()` would clone the whole batch's storage.
                let state = hidden
                    .get(i)?
                    .narrow(0, 0, row.ids.len())?
                    .force_contiguous()?;
                let size = state.elem_count() * state.dtype().size_in_bytes();
                if cache.bytes + size <= cache.budget {
                    cache.bytes += size;
                    cache.states.insert((*row).clone(), state);
                } else {
                    fresh.insert(row, state);
                }
            }
        }
        let lengths: Vec<usize> = rows.iter().map(|r| r.ids.len()).collect();
        let width = lengths.iter().copied().max().unwrap_or(0).max(1);
        let padded = rows
            .iter()
            .map(|row| {
                let state = cache
                    .states
                    .get(*row)
                    .or_else(|| fresh.get(row))
                    .ok_or_else(|| candle_core::Error::Msg("frozen state lost".into()))?;
                state.pad_with_zeros(0, 0, width - row.ids.len())
            })
            .collect::<Result<Vec<_>>>()?;
        let hidden = Tensor::stack(&padded, 0)?;
        let mask = attention_mask(&lengths, width, &self.device)?;
        self.score_frozen(&hidden, &mask, conditioning)
    }
}
