//! Compressed sparse rows: the storage of one polarity's adjacency in one direction.

/// What the dense operand of [`Csr::matmul_dense`] may hold (`f32`, `f64`).
pub trait DenseValue:
    Copy + Default + Send + Sync + std::ops::AddAssign + std::ops::Mul<Output = Self> + From<f32>
{
}

impl<T> DenseValue for T where
    T: Copy + Default + Send + Sync + std::ops::AddAssign + std::ops::Mul<Output = T> + From<f32>
{
}

/// A sparse `rows × cols` matrix in CSR form.
#[derive(Clone, Debug, PartialEq)]
pub struct Csr {
    /// `cols` of the matrix (rows are `indptr.len() - 1`).
    pub cols: usize,
    /// Row `i`'s entries are `indptr[i]..indptr[i + 1]`.
    pub indptr: Vec<u32>,
    /// Column of each entry, ascending within a row.
    pub indices: Vec<u32>,
    /// Value of each entry.
    pub values: Vec<f32>,
}

impl Csr {
    /// Builds a CSR matrix from `(row, col, value)` triples; duplicates are summed.
    pub fn from_triples(rows: usize, cols: usize, mut triples: Vec<(u32, u32, f32)>) -> Self {
        triples.sort_unstable_by_key(|&(r, c, _)| (r, c));
        let mut indptr = vec![0u32; rows + 1];
        let mut indices = Vec::with_capacity(triples.len());
        let mut values: Vec<f32> = Vec::with_capacity(triples.len());
        let mut last: Option<(u32, u32)> = None;
        for (r, c, v) in triples {
            if last == Some((r, c)) {
                if let Some(x) = values.last_mut() {
                    *x += v;
                }
                continue;
            }
            last = Some((r, c));
            indptr[r as usize + 1] += 1;
            indices.push(c);
            values.push(v);
        }
        for i in 0..rows {
            indptr[i + 1] += indptr[i];
        }
        Self {
            cols,
            indptr,
            indices,
            values,
        }
    }

    /// Rows of the matrix.
    pub fn rows(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Row `i`: its columns and values.
    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let range = self.indptr[i] as usize..self.indptr[i + 1] as usize;
        (&self.indices[range.clone()], &self.values[range])
    }

    /// Sum of row `i`'s values.
    pub fn row_sum(&self, i: usize) -> f32 {
        self.row(i).1.iter().sum()
    }

    /// The transpose, and for each of its entries the position of the same entry in
    /// `self` (so values masked in `self` can be masked alike in the transpose).
    pub fn transpose(&self) -> (Csr, Vec<u32>) {
        let rows = self.rows();
        let mut indptr = vec![0u32; self.cols + 1];
        for &c in &self.indices {
            indptr[c as usize + 1] += 1;
        }
        for i in 0..self.cols {
            indptr[i + 1] += indptr[i];
        }
        let mut next: Vec<u32> = indptr[..self.cols].to_vec();
        let mut indices = vec![0u32; self.nnz()];
        let mut values = vec![0f32; self.nnz()];
        let mut source = vec![0u32; self.nnz()];
        for r in 0..rows {
            for k in self.indptr[r] as usize..self.indptr[r + 1] as usize {
                let c = self.indices[k] as usize;
                let at = next[c] as usize;
                next[c] += 1;
                indices[at] = r as u32;
                values[at] = self.values[k];
                source[at] = k as u32;
            }
        }
        (
            Csr {
                cols: rows,
                indptr,
                indices,
                values,
            },
            source,
        )
    }

    /// `out = self · x` for a dense row-major `x` of `cols × d`; `out` is `rows × d`.
    /// Rows are computed in parallel (rayon's pool).
    pub fn matmul_dense<T>(&self, x: &[T], d: usize, out: &mut [T])
    where
        T: DenseValue,
    {
        self.matmul_dense_values(&self.values, x, d, out);
    }

    /// [`Self::matmul_dense`] with `values` in place of the stored ones (same positions:
    /// an edge-dropout mask applied without copying the structure).
    pub fn matmul_dense_values<T>(&self, values: &[f32], x: &[T], d: usize, out: &mut [T])
    where
        T: DenseValue,
    {
        assert_eq!(values.len(), self.nnz(), "one value per stored entry");
        self.matmul_rows_by(0..self.rows(), |k| values[k], x, d, out, false);
    }

    /// Rows `rows` of `self · x` with entry `k` valued `value(k)` (its position in
    /// `indices`), into `out` (`rows.len() × d`): overwritten, or added to when
    /// `accumulate`. The one sparse × dense product: whole matrices, masked values
    /// computed on the fly, and the row chunks of the fused GCF step all run it. Rows
    /// are computed in parallel (rayon's pool).
    pub fn matmul_rows_by<T, F>(
        &self,
        rows: std::ops::Range<usize>,
        value: F,
        x: &[T],
        d: usize,
        out: &mut [T],
        accumulate: bool,
    ) where
        T: DenseValue,
        F: Fn(usize) -> f32 + Sync,
    {
        use rayon::prelude::*;
        assert!(rows.end <= self.rows(), "rows beyond the matrix");
        assert_eq!(out.len(), rows.len() * d, "out holds the rows asked for");
        debug_assert_eq!(x.len(), self.cols * d);
        if d == 0 {
            return;
        }
        let first = rows.start;
        out.par_chunks_mut(d * ROWS_PER_JOB)
            .enumerate()
            .for_each(|(job, out)| {
                crate::simd::dispatch(SparseRows {
                    csr: self,
                    first: first + job * ROWS_PER_JOB,
                    value: &value,
                    x,
                    d,
                    out,
                    accumulate,
                })
            });
    }
}

/// Rows per rayon job of the sparse product.
const ROWS_PER_JOB: usize = 32;

/// One job of [`Csr::matmul_rows_by`]: `out`'s rows, from row `first` of the matrix.
/// Run under [`crate::simd::dispatch`]: compiled as a closure it ran in SSE registers,
/// and the GCF step spent more time in its sparse products than in its GEMMs.
struct SparseRows<'a, T, F> {
    csr: &'a Csr,
    first: usize,
    value: &'a F,
    x: &'a [T],
    d: usize,
    out: &'a mut [T],
    accumulate: bool,
}

impl<T: DenseValue, F: Fn(usize) -> f32> crate::simd::RowLoop for SparseRows<'_, T, F> {
    #[inline(always)]
    fn run(self) {
        let Self {
            csr,
            first,
            value,
            x,
            d,
            out,
            accumulate,
        } = self;
        for (i, out_row) in out.chunks_exact_mut(d).enumerate() {
            if !accumulate {
                out_row.fill(T::default());
            }
            let r = first + i;
            for k in csr.indptr[r] as usize..csr.indptr[r + 1] as usize {
                let v = value(k);
                if v == 0.0 {
                    continue;
                }
                let v = T::from(v);
                let c = csr.indices[k] as usize;
                let x_row = &x[c * d..(c + 1) * d];
                for (o, &xi) in out_row.iter_mut().zip(x_row) {
                    *o += v * xi;
                }
            }
        }
    }
}
