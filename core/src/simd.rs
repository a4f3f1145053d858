//! Loops compiled for the best instruction set the CPU has.
//!
//! [`dispatch`] runs a [`RowLoop`] under [`pulp::Arch::dispatch`], which compiles it for
//! each instruction set it knows (AVX2 + FMA, AVX-512) and picks one at run time: a
//! portable binary that still uses the wide registers. The served forward's fused kernels
//! and the graph's sparse × dense product run their inner loops this way.

use pulp::{Arch, Simd, WithSimd};

/// A loop over rows, compiled for the best instruction set the CPU has:
/// [`Arch::dispatch`] calls `with_simd` inside a target-feature function, and every
/// function it reaches is `#[inline(always)]`, so the whole loop is compiled there (a
/// closure would be compiled once, for baseline x86-64 — measured: SSE only).
pub(crate) trait RowLoop: Sized {
    fn run(self);
}

struct Dispatched<K>(K);

impl<K: RowLoop> WithSimd for Dispatched<K> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        self.0.run()
    }
}

/// Runs `kernel` compiled for the CPU's best instruction set.
pub(crate) fn dispatch<K: RowLoop>(kernel: K) {
    Arch::new().dispatch(Dispatched(kernel));
}
