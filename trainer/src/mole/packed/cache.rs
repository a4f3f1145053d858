//! The frozen layers' output per text for the packed training step.

use std::collections::HashMap;

use anyhow::Result;
use copl_core::model::{
    packed::{
        attention::Span,
        bert::{Packed, PackedBert},
    },
    reward::Tokens,
};

/// The frozen layers' output per text (token ids), packed rows for the training step:
/// responses recur across pairs and steps, and the layers below the adapted ones are
/// the same for every user. Texts are kept while under `budget` bytes.
pub struct PackedFrozenCache {
    budget: usize,
    bytes: usize,
    states: HashMap<Vec<u32>, Vec<f32>>,
    lookups: usize,
    hits: usize,
}

impl PackedFrozenCache {
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            bytes: 0,
            states: HashMap::new(),
            lookups: 0,
            hits: 0,
        }
    }

    /// Texts cached.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Share of rows served from the cache.
    pub fn hit_rate(&self) -> f64 {
        self.hits as f64 / self.lookups.max(1) as f64
    }

    /// `rows` through the frozen layers, packed: cached rows copied, the others run in
    /// one batch and cached while the budget allows.
    pub fn states(&mut self, bert: &PackedBert, rows: &[&Tokens]) -> Result<Packed> {
        let missing: Vec<&Tokens> = rows
            .iter()
            .filter(|r| !self.states.contains_key(&r.ids))
            .copied()
            .collect();
        self.lookups += rows.len();
        self.hits += rows.len() - missing.len();
        let computed = if missing.is_empty() {
            None
        } else {
            Some(bert.frozen_forward(&missing)?)
        };
        let h = bert.hidden();
        let mut fresh: HashMap<&[u32], &[f32]> = HashMap::new();
        if let Some(x) = &computed {
            for (i, row) in missing.iter().enumerate() {
                fresh.insert(&row.ids, x.row(i));
            }
        }
        let (mut states, mut spans) = (Vec::new(), Vec::with_capacity(rows.len()));
        for row in rows {
            let values = match self.states.get(&row.ids) {
                Some(v) => v.as_slice(),
                None => fresh
                    .get(row.ids.as_slice())
                    .copied()
                    .ok_or_else(|| anyhow::anyhow!("a row's frozen states went missing"))?,
            };
            spans.push(Span {
                start: states.len() / h,
                len: values.len() / h,
            });
            states.extend_from_slice(values);
        }
        for (row, values) in fresh {
            let size = values.len() * 4;
            if self.bytes + size <= self.budget && !self.states.contains_key(row) {
                self.bytes += size;
                self.states.insert(row.to_vec(), values.to_vec());
            }
        }
        Ok(Packed {
            states,
            spans,
            width: h,
        })
    }
}
