//! Sparse × dense products as a candle op with a backward pass: the aggregation
//! Σ_r α_{u,r} e_r of eq. 2 for every node at once ("aggregate first, transform after":
//! no d×d product per edge, no nnz × d gather).
//!
//! On the CPU the product is a custom op over the CSR ([`SpMM`]). Off the CPU (a GPU:
//! `copl-train gcf --device cuda:N`) it is a gather–scatter of candle's own ops, which
//! have CUDA kernels and a backward ([`SparsePair::matmul_gather`]): the rows of x at
//! each entry's column, scaled by its value, added into its row. It costs an nnz × d
//! buffer the CSR product does not; at 10 000 users and d = 512 that is
//! ≈ 0.5 GB of GPU memory. Its CPU twin is held to the CSR product in the tests.

use std::sync::{Arc, OnceLock};

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use copl_core::graph::{Csr, SignedAdjacency};
use rand::Rng;

/// A sparse matrix and its transpose, with the entry correspondence between them.
#[derive(Clone, Debug)]
pub struct SparsePair {
    /// The matrix A (`rows × cols`), shared with every product that uses it unmasked.
    pub matrix: Arc<Csr>,
    /// Aᵀ, for the backward pass.
    pub transpose: Arc<Csr>,
    /// For each entry of `transpose`, its position in `matrix`.
    pub transpose_source: Vec<u32>,
    /// `matrix`'s entries as tensors on the device of the first gather–scatter product.
    entries: OnceLock<Entries>,
}

/// A matrix's entries as tensors: each one's row and column (u32) and value (f32).
#[derive(Clone, Debug)]
struct Entries {
    rows: Tensor,
    cols: Tensor,
    values: Tensor,
}

impl SparsePair {
    /// Pairs `matrix` with its transpose.
    pub fn new(matrix: Csr) -> Self {
        let (transpose, transpose_source) = matrix.transpose();
        Self {
            matrix: Arc::new(matrix),
            transpose: Arc::new(transpose),
            transpose_source,
            entries: OnceLock::new(),
        }
    }

    /// One polarity's two products, users ← responses (A) and responses ← users (Aᵀ),
    /// sharing the graph's two matrices: each is the other's transpose, so no transpose
    /// is computed or stored twice (at 1 000 000 users that was 0.5 GB).
    pub fn both_directions(adjacency: &SignedAdjacency) -> (Self, Self) {
        let a = Arc::new(adjacency.user_to_response.clone());
        let at = Arc::new(adjacency.response_to_user.clone());
        let at_to_a = adjacency.transpose_source.clone();
        let mut a_to_at = vec![0u32; at_to_a.len()];
        for (k_at, &k_a) in at_to_a.iter().enumerate() {
            a_to_at[k_a as usize] = k_at as u32;
        }
        (
            Self {
                matrix: a.clone(),
                transpose: at.clone(),
                transpose_source: at_to_a,
                entries: OnceLock::new(),
            },
            Self {
                matrix: at,
                transpose: a,
                transpose_source: a_to_at,
                entries: OnceLock::new(),
            },
        )
    }

    /// `A · x` (x: `cols × d`), differentiable in x: the CSR op on the CPU, the
    /// gather–scatter elsewhere.
    pub fn matmul(&self, x: &Tensor) -> Result<Tensor> {
        if !x.device().is_cpu() {
            return self.matmul_gather(x, None);
        }
        x.contiguous()?.apply_op1(SpMM {
            a: self.matrix.clone(),
            at: self.transpose.clone(),
        })
    }

    /// `A · x` as a gather–scatter of candle ops (any device; autograd gives the
    /// backward): `values` replaces the matrix's own values (a masked product) when given.
    pub fn matmul_gather(&self, x: &Tensor, values: Option<Vec<f32>>) -> Result<Tensor> {
        let (n, _) = x.dims2()?;
        if n != self.matrix.cols {
            candle_core::bail!(
                "spmm: matrix has {} columns, input {n} rows",
                self.matrix.cols
            );
        }
        let entries = self.entries_for(x.device())?;
        let values = match values {
            Some(v) => Tensor::from_vec(v, self.matrix.nnz(), x.device())?,
            None => entries.values.clone(),
        };
        self.gather_scatter(x, &entries, &values)
    }

    /// Σ over entries of `values[k] · x[col k]` into row k's row: `[rows, d]`.
    fn gather_scatter(&self, x: &Tensor, entries: &Entries, values: &Tensor) -> Result<Tensor> {
        let (_, d) = x.dims2()?;
        let gathered = x
            .index_select(&entries.cols, 0)?
            .broadcast_mul(&values.to_dtype(x.dtype())?.unsqueeze(1)?)?;
        Tensor::zeros((self.matrix.rows(), d), x.dtype(), x.device())?.index_add(
            &entries.rows,
            &gathered,
            0,
        )
    }

    /// Edge dropout off the CPU: the mask drawn on the device (candle's generator, not
    /// the run's seeded one), each entry kept with probability 1 − p and scaled by
    /// 1/(1 − p), then the gather–scatter. Drawing it on the host cost a pass over every
    /// entry per product and a copy to the device, more than the product itself.
    pub fn matmul_dropout_on_device(&self, x: &Tensor, p: f32) -> Result<Tensor> {
        let entries = self.entries_for(x.device())?;
        let keep = entries
            .values
            .rand_like(0.0, 1.0)?
            .ge(f64::from(p))?
            .to_dtype(entries.values.dtype())?;
        let values = ((&entries.values * keep)? * (1.0 / (1.0 - f64::from(p))))?;
        self.gather_scatter(x, &entries, &values)
    }

    /// The entries as tensors on `device` (made once, then kept).
    fn entries_for(&self, device: &candle_core::Device) -> Result<Entries> {
        Ok(match self.entries.get() {
            Some(e) if e.rows.device().same_device(device) => e.clone(),
            _ => {
                let e = self.entries_on(device)?;
                let _ = self.entries.set(e.clone());
                e
            }
        })
    }

    fn entries_on(&self, device: &candle_core::Device) -> Result<Entries> {
        let a = &self.matrix;
        let rows: Vec<u32> = (0..a.rows())
            .flat_map(|r| {
                let count = a.indptr[r + 1] - a.indptr[r];
                std::iter::repeat_n(r as u32, count as usize)
            })
            .collect();
        Ok(Entries {
            rows: Tensor::from_vec(rows, a.nnz(), device)?,
            cols: Tensor::from_slice(&a.indices, a.nnz(), device)?,
            values: Tensor::from_slice(&a.values, a.nnz(), device)?,
        })
    }

    /// The position in `matrix` of entry (`row`, `col`), if stored.
    pub fn entry(&self, row: u32, col: u32) -> Option<u32> {
        let start = *self.matrix.indptr.get(row as usize)? as usize;
        let end = *self.matrix.indptr.get(row as usize + 1)? as usize;
        let at = self.matrix.indices[start..end].binary_search(&col).ok()?;
        Some((start + at) as u32)
    }

    /// `(A ⊙ M) · x` with a fresh edge-dropout mask M: each entry is dropped with
    /// probability `p` and the kept ones scaled by 1/(1−p); the backward pass uses the
    /// same mask.
    pub fn matmul_dropout(&self, x: &Tensor, p: f32, rng: &mut impl Rng) -> Result<Tensor> {
        self.matmul_masked(x, &[], p, rng)
    }

    /// The entries one product keeps: each entry dropped with probability `p` (one
    /// draw per entry, in order) and the kept ones scaled by 1/(1−p), then the entries at
    /// positions `removed` (of `matrix`) left out (not rescaled). `None` when nothing is
    /// masked. The one rule of edge dropout, for the autograd op and the fused step
    /// alike.
    pub fn entry_mask(&self, p: f32, removed: &[u32], rng: &mut impl Rng) -> Option<EntryMask> {
        if p <= 0.0 && removed.is_empty() {
            return None;
        }
        let nnz = self.matrix.nnz();
        let mut mask = EntryMask {
            keep: vec![u64::MAX; nnz.div_ceil(64)],
            scale: if p > 0.0 { 1.0 / (1.0 - p) } else { 1.0 },
        };
        if p > 0.0 {
            for k in 0..nnz {
                if rng.random::<f32>() < p {
                    mask.drop_entry(k);
                }
            }
        }
        for &k in removed {
            mask.drop_entry(k as usize);
        }
        Some(mask)
    }

    /// Entry `k` of `matrix` under `mask`.
    pub fn masked_value(&self, mask: &EntryMask, k: usize) -> f32 {
        if mask.kept(k) {
            self.matrix.values[k] * mask.scale
        } else {
            0.0
        }
    }

    /// Entry `k` of `transpose` under `mask` (a mask of `matrix`'s entries).
    pub fn masked_transpose_value(&self, mask: &EntryMask, k: usize) -> f32 {
        if mask.kept(self.transpose_source[k] as usize) {
            self.transpose.values[k] * mask.scale
        } else {
            0.0
        }
    }

    /// The values of `A ⊙ M` and of its transpose for one product ([`Self::entry_mask`]).
    pub fn masked_values(
        &self,
        p: f32,
        removed: &[u32],
        rng: &mut impl Rng,
    ) -> Option<(Vec<f32>, Vec<f32>)> {
        let mask = self.entry_mask(p, removed, rng)?;
        let a = (0..self.matrix.nnz())
            .map(|k| self.masked_value(&mask, k))
            .collect();
        let at = (0..self.transpose.nnz())
            .map(|k| self.masked_transpose_value(&mask, k))
            .collect();
        Some((a, at))
    }

    /// As [`Self::matmul_dropout`], with the entries at positions `removed` (of `matrix`)
    /// left out as well (set to 0, not rescaled).
    pub fn matmul_masked(
        &self,
        x: &Tensor,
        removed: &[u32],
        p: f32,
        rng: &mut impl Rng,
    ) -> Result<Tensor> {
        if !x.device().is_cpu() && removed.is_empty() && p > 0.0 {
            return self.matmul_dropout_on_device(x, p);
        }
        let Some((values, transposed)) = self.masked_values(p, removed, rng) else {
            return self.matmul(x);
        };
        if !x.device().is_cpu() {
            return self.matmul_gather(x, Some(values));
        }
        let a = Csr {
            values,
            ..Csr::clone(&self.matrix)
        };
        let at = Csr {
            values: transposed,
            ..Csr::clone(&self.transpose)
        };
        x.contiguous()?.apply_op1(SpMM {
            a: Arc::new(a),
            at: Arc::new(at),
        })
    }
}

/// Which entries of a [`SparsePair`]'s matrix one product keeps, one bit an entry (at
/// 1 000 000 users the four matrices' masked values took 2 GB a step; their bits take
/// 8 MB a layer), and the scale of the kept ones.
#[derive(Clone, Debug)]
pub struct EntryMask {
    keep: Vec<u64>,
    scale: f32,
}

impl EntryMask {
    /// Whether entry `k` of the matrix is kept.
    pub fn kept(&self, k: usize) -> bool {
        (self.keep[k / 64] >> (k % 64)) & 1 == 1
    }

    fn drop_entry(&mut self, k: usize) {
        self.keep[k / 64] &= !(1u64 << (k % 64));
    }
}

/// `y = A · x` for a constant sparse A; `∂x = Aᵀ · ∂y`.
struct SpMM {
    a: Arc<Csr>,
    at: Arc<Csr>,
}

impl CustomOp1 for SpMM {
    fn name(&self) -> &'static str {
        "spmm"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, d) = layout.shape().dims2()?;
        if n != self.a.cols {
            candle_core::bail!("spmm: matrix has {} columns, input {n} rows", self.a.cols);
        }
        let (start, end) = layout
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("spmm: input not contiguous".into()))?;
        let rows = self.a.rows();
        let storage = match storage {
            CpuStorage::F32(x) => {
                let mut out = vec![0f32; rows * d];
                self.a.matmul_dense(&x[start..end], d, &mut out);
                CpuStorage::F32(out)
            }
            CpuStorage::F64(x) => {
                let mut out = vec![0f64; rows * d];
                self.a.matmul_dense(&x[start..end], d, &mut out);
                CpuStorage::F64(out)
            }
            _ => candle_core::bail!("spmm: only f32 and f64 are supported"),
        };
        Ok((storage, Shape::from((rows, d))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad_res.contiguous()?.apply_op1(SpMM {
            a: self.at.clone(),
            at: self.a.clone(),
        })?;
        Ok(Some(grad))
    }
}
