//! Self-attention over packed sequences: each sequence attends to its own tokens only,
//! so no padding is computed and no mask is needed.

use rayon::prelude::*;

use super::gemm::{View, matmul};
use super::kernels::softmax_rows;

/// A sequence's rows in the packed states: `start .. start + len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub len: usize,
}

/// `context` `[T × hidden]` ← softmax(Q·Kᵀ/√d)·V per sequence and head, from the fused
/// projections `qkv` `[T × 3·hidden]` (Q, then K, then V). One job per (sequence, head),
/// each reading its strided Q, K and V in place (no transposing copies); the t × t
/// scores live only inside the job.
pub fn attention(qkv: &[f32], hidden: usize, heads: usize, spans: &[Span], context: &mut [f32]) {
    let d = hidden / heads;
    let total: usize = spans.iter().map(|s| s.len).sum();
    let all = View::dense(total, 3 * hidden);
    let scale = 1.0 / (d as f32).sqrt();
    let jobs: Vec<(Span, usize)> = spans
        .iter()
        .flat_map(|&span| (0..heads).map(move |head| (span, head)))
        .collect();
    let outputs: Vec<Vec<f32>> = jobs
        .par_iter()
        .map(|&(span, head)| {
            let rows = all.rows(span.start, span.len);
            let q = rows.columns(head * d, d);
            let k = rows.columns(hidden + head * d, d);
            let v = rows.columns(2 * hidden + head * d, d);
            let mut scores = vec![0f32; span.len * span.len];
            let square = View::dense(span.len, span.len);
            matmul(&mut scores, square, false, qkv, q, qkv, k.t(), scale, 1);
            softmax_rows(&mut scores, span.len);
            let mut out = vec![0f32; span.len * d];
            matmul(
                &mut out,
                View::dense(span.len, d),
                false,
                &scores,
                square,
                qkv,
                v,
                1.0,
                1,
            );
            out
        })
        .collect();
    for ((span, head), out) in jobs.iter().zip(outputs) {
        for (i, row) in out.chunks_exact(d).enumerate() {
            let at = (span.start + i) * hidden + head * d;
            context[at..at + d].copy_from_slice(row);
        }
    }
}
