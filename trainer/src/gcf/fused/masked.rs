//! The sparse products of one step as its layers use them: a shared matrix and the bits
//! of the entries this step's edge dropout (and removed edges) kept.

use std::ops::Range;

use crate::gcf::{
    model::{EdgeMask, GraphOps},
    spmm::{EntryMask, SparsePair},
};

use rand::Rng;

/// One product's matrix: the shared [`SparsePair`] and this product's kept entries
/// (`None`: every entry, unscaled).
pub(super) struct Masked<'a> {
    pair: &'a SparsePair,
    mask: Option<EntryMask>,
}

impl<'a> Masked<'a> {
    fn new(pair: &'a SparsePair, dropout: f32, removed: &[u32], rng: &mut impl Rng) -> Self {
        Self {
            pair,
            mask: pair.entry_mask(dropout, removed, rng),
        }
    }

    fn plain(pair: &'a SparsePair) -> Self {
        Self { pair, mask: None }
    }

    /// Rows `rows` of `A · x` into `out` (`rows.len() × d`).
    pub fn product_rows(&self, x: &[f32], d: usize, rows: Range<usize>, out: &mut [f32]) {
        let a = &self.pair.matrix;
        match &self.mask {
            Some(mask) => {
                a.matmul_rows_by(rows, |k| self.pair.masked_value(mask, k), x, d, out, false)
            }
            None => a.matmul_rows_by(rows, |k| a.values[k], x, d, out, false),
        }
    }

    /// `acc += Aᵀ · y`, written straight into `acc`.
    pub fn add_transposed(&self, y: &[f32], d: usize, acc: &mut [f32]) {
        let at = &self.pair.transpose;
        let rows = 0..at.rows();
        match &self.mask {
            Some(mask) => at.matmul_rows_by(
                rows,
                |k| self.pair.masked_transpose_value(mask, k),
                y,
                d,
                acc,
                true,
            ),
            None => at.matmul_rows_by(rows, |k| at.values[k], y, d, acc, true),
        }
    }
}

/// The four products of one layer: users ← responses (A⁺, A⁻) and responses ← users
/// (B⁺, B⁻); the negative ones only with negative edges.
pub(super) struct LayerProducts<'a> {
    pub pos_user: Masked<'a>,
    pub neg_user: Option<Masked<'a>>,
    pub pos_response: Masked<'a>,
    pub neg_response: Option<Masked<'a>>,
}

/// Edge dropout and masking for one training step.
pub struct StepNoise<'a, R: Rng> {
    pub dropout: f32,
    pub rng: &'a mut R,
    pub mask: &'a EdgeMask,
}

impl<'a> LayerProducts<'a> {
    /// One layer's products, drawing its dropout masks from `noise` in the autograd
    /// path's order (`GcfModel::propagate_masked`); unmasked without noise.
    pub fn draw<R: Rng>(
        ops: &'a GraphOps,
        negatives: bool,
        noise: Option<&mut StepNoise<'_, R>>,
    ) -> Self {
        let Some(noise) = noise else {
            return Self {
                pos_user: Masked::plain(&ops.pos_user),
                neg_user: negatives.then(|| Masked::plain(&ops.neg_user)),
                pos_response: Masked::plain(&ops.pos_response),
                neg_response: negatives.then(|| Masked::plain(&ops.neg_response)),
            };
        };
        let (mu, mnu, mr, mnr) = noise.mask.parts();
        let p = noise.dropout;
        let pos_user = Masked::new(&ops.pos_user, p, mu, noise.rng);
        let pos_response = Masked::new(&ops.pos_response, p, mr, noise.rng);
        let neg_user = negatives.then(|| Masked::new(&ops.neg_user, p, mnu, noise.rng));
        let neg_response = negatives.then(|| Masked::new(&ops.neg_response, p, mnr, noise.rng));
        Self {
            pos_user,
            neg_user,
            pos_response,
            neg_response,
        }
    }
}
