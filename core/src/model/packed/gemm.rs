//! The served forward's one door to the `gemm` crate, whose entry point is `unsafe` (raw
//! pointers and strides). [`matmul`] checks every view against its slice before it hands
//! pointers over, so the rest of the forward stays safe code.
#![allow(unsafe_code)]

/// A strided matrix view into a slice: element `(i, j)` lives at
/// `offset + i·row_stride + j·col_stride`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl View {
    /// A dense row-major `rows × cols` matrix at the slice's start.
    pub fn dense(rows: usize, cols: usize) -> Self {
        Self {
            offset: 0,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The same elements, transposed (no copy: the strides swap).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Columns `from .. from + cols` of the view.
    pub fn columns(self, from: usize, cols: usize) -> Self {
        Self {
            offset: self.offset + from * self.col_stride,
            cols,
            ..self
        }
    }

    /// Rows `from .. from + rows` of the view.
    pub fn rows(self, from: usize, rows: usize) -> Self {
        Self {
            offset: self.offset + from * self.row_stride,
            rows,
            ..self
        }
    }

    /// Whether every element lies inside a slice of `len` values.
    fn fits(&self, len: usize) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return self.offset <= len;
        }
        let last = (self.rows - 1)
            .checked_mul(self.row_stride)
            .zip((self.cols - 1).checked_mul(self.col_stride))
            .and_then(|(r, c)| r.checked_add(c))
            .and_then(|rc| rc.checked_add(self.offset));
        last.is_some_and(|last| last < len)
    }

    /// Whether two distinct elements of the view can share a memory location (then it
    /// cannot be written to).
    fn overlaps_itself(&self) -> bool {
        let (r, c) = (self.rows > 1, self.cols > 1);
        match (r, c) {
            (true, true) => {
                let (small, large, count) = if self.row_stride < self.col_stride {
                    (self.row_stride, self.col_stride, self.rows)
                } else {
                    (self.col_stride, self.row_stride, self.cols)
                };
                small == 0 || large < small * count
            }
            (true, false) => self.row_stride == 0,
            (false, true) => self.col_stride == 0,
            (false, false) => false,
        }
    }
}

/// Below this many destination rows per thread, a product runs on one thread.
const ROWS_PER_THREAD: usize = 8;

/// `dst ← (dst if accumulate) + scale · lhs · rhs` for views `dst: m × n`,
/// `lhs: m × k`, `rhs: k × n`, on up to `threads` threads (1: the caller's thread).
///
/// With several threads and a row-major destination, the rows are split into one block
/// per thread, each a single-threaded product (rayon): every thread packs its own copy of
/// `rhs` and nothing is shared, which scaled better on two cores than gemm's own
/// parallel loop (docs/benchmarks.md, issue #11).
///
/// Panics when the shapes disagree or a view leaves its slice: both are bugs of the
/// caller, never a property of served input.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    dst: &mut [f32],
    d: View,
    accumulate: bool,
    lhs: &[f32],
    l: View,
    rhs: &[f32],
    r: View,
    scale: f32,
    threads: usize,
) {
    let blocks = threads.min(d.rows / ROWS_PER_THREAD).max(1);
    if blocks == 1 || d.col_stride != 1 || d.row_stride < d.cols {
        return product(dst, d, accumulate, lhs, l, rhs, r, scale);
    }
    assert!(d.fits(dst.len()), "matmul view outside its slice");
    // Row block b is rows starts[b] .. starts[b + 1]; its elements lie in
    // dst[offset + starts[b]·row_stride .. offset + starts[b + 1]·row_stride].
    let starts: Vec<usize> = (0..=blocks).map(|b| b * d.rows / blocks).collect();
    let mut rest = &mut dst[d.offset..];
    let mut parts = Vec::with_capacity(blocks);
    for b in 0..blocks {
        let rows = starts[b + 1] - starts[b];
        let take = if b + 1 == blocks {
            rest.len()
        } else {
            rows * d.row_stride
        };
        let (part, tail) = std::mem::take(&mut rest).split_at_mut(take);
        rest = tail;
        parts.push((part, starts[b], rows));
    }
    use rayon::prelude::*;
    parts.into_par_iter().for_each(|(part, first, rows)| {
        let view = View {
            offset: 0,
            rows,
            ..d
        };
        product(
            part,
            view,
            accumulate,
            lhs,
            l.rows(first, rows),
            rhs,
            r,
            scale,
        );
    });
}

/// One single-threaded gemm call, every view checked first.
#[allow(clippy::too_many_arguments)]
fn product(
    dst: &mut [f32],
    d: View,
    accumulate: bool,
    lhs: &[f32],
    l: View,
    rhs: &[f32],
    r: View,
    scale: f32,
) {
    assert!(
        l.rows == d.rows && r.cols == d.cols && l.cols == r.rows,
        "matmul shapes: dst {}×{}, lhs {}×{}, rhs {}×{}",
        d.rows,
        d.cols,
        l.rows,
        l.cols,
        r.rows,
        r.cols
    );
    assert!(
        d.fits(dst.len()) && l.fits(lhs.len()) && r.fits(rhs.len()),
        "matmul view outside its slice"
    );
    assert!(
        !d.overlaps_itself(),
        "matmul destination view overlaps itself"
    );
    if d.rows == 0 || d.cols == 0 {
        return;
    }
    let stride = |s: usize| s as isize;
    // SAFETY: every view was checked to lie inside its slice (`fits`), the destination
    // is borrowed mutably (no aliasing with `lhs`/`rhs`) and no two of its elements
    // share a location (`overlaps_itself`); gemm reads and writes only the elements of
    // the views it is given.
    unsafe {
        gemm::gemm(
            d.rows,
            d.cols,
            l.cols,
            dst.as_mut_ptr().add(d.offset),
            stride(d.col_stride),
            stride(d.row_stride),
            accumulate,
            lhs.as_ptr().add(l.offset),
            stride(l.col_stride),
            stride(l.row_stride),
            rhs.as_ptr().add(r.offset),
            stride(r.col_stride),
            stride(r.row_stride),
            1.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}
