//! Self-attention over packed sequences: each sequence attends to its own tokens only,
//! so no padding is computed and no mask is needed.

use rayon::prelude::*;

use super::backward::softmax_backward_rows;
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

/// The backward of [`attention`]: `d_qkv` `[T × 3·hidden]` (∂Q, ∂K, ∂V in the columns
/// `qkv` has them) from `d_context` `[T × hidden]`. Per (sequence, head), with
/// S = Q·Kᵀ/√d and P = softmax(S) recomputed (t × t per job, as in the forward, instead
/// of kept for every layer): ∂V = Pᵀ·∂O, ∂P = ∂O·Vᵀ, ∂S = P ⊙ (∂P − rowsum(∂P ⊙ P)),
/// ∂Q = ∂S·K/√d, ∂K = ∂Sᵀ·Q/√d.
pub fn attention_backward(
    qkv: &[f32],
    d_context: &[f32],
    hidden: usize,
    heads: usize,
    spans: &[Span],
    d_qkv: &mut [f32],
) {
    let d = hidden / heads;
    let total: usize = spans.iter().map(|s| s.len).sum();
    let all = View::dense(total, 3 * hidden);
    let context = View::dense(total, hidden);
    let scale = 1.0 / (d as f32).sqrt();
    let jobs: Vec<(Span, usize)> = spans
        .iter()
        .flat_map(|&span| (0..heads).map(move |head| (span, head)))
        .collect();
    let gradients: Vec<[Vec<f32>; 3]> = jobs
        .par_iter()
        .map(|&(span, head)| {
            let t = span.len;
            let rows = all.rows(span.start, t);
            let q = rows.columns(head * d, d);
            let k = rows.columns(hidden + head * d, d);
            let v = rows.columns(2 * hidden + head * d, d);
            let d_out = context.rows(span.start, t).columns(head * d, d);
            let square = View::dense(t, t);
            let block = View::dense(t, d);
            let mut p = vec![0f32; t * t];
            matmul(&mut p, square, false, qkv, q, qkv, k.t(), scale, 1);
            softmax_rows(&mut p, t);
            // ∂V = Pᵀ ∂O
            let mut d_v = vec![0f32; t * d];
            matmul(
                &mut d_v,
                block,
                false,
                &p,
                square.t(),
                d_context,
                d_out,
                1.0,
                1,
            );
            // ∂P = ∂O Vᵀ, then ∂S in place
            let mut d_s = vec![0f32; t * t];
            matmul(
                &mut d_s,
                square,
                false,
                d_context,
                d_out,
                qkv,
                v.t(),
                1.0,
                1,
            );
            softmax_backward_rows(&mut d_s, &p, t);
            // ∂Q = ∂S K / √d, ∂K = ∂Sᵀ Q / √d
            let mut d_q = vec![0f32; t * d];
            matmul(&mut d_q, block, false, &d_s, square, qkv, k, scale, 1);
            let mut d_k = vec![0f32; t * d];
            matmul(&mut d_k, block, false, &d_s, square.t(), qkv, q, scale, 1);
            [d_q, d_k, d_v]
        })
        .collect();
    for ((span, head), parts) in jobs.iter().zip(gradients) {
        for (part, values) in parts.iter().enumerate() {
            for (i, row) in values.chunks_exact(d).enumerate() {
                let at = (span.start + i) * 3 * hidden + part * hidden + head * d;
                d_qkv[at..at + d].copy_from_slice(row);
            }
        }
    }
}
