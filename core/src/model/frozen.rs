//! Frozen backbone linear maps that train cheaply.
//!
//! candle's backward of `x · Wᵀ` computes the gradient of both operands, whether or not
//! W is trainable: for a frozen backbone that is one wasted GEMM, as large as the
//! forward's, per linear map. [`FrozenLinear`] runs the forward on a detached input and
//! attaches a custom backward that returns `∂L/∂x = ∂L/∂y · W` only, so a training step
//! over a frozen backbone costs one GEMM less per map (docs/benchmarks.md). Without a
//! tracked input (inference) it is a plain [`Linear`].

use candle_core::{
    CpuStorage, CustomOp2, Layout, Module, Result, Shape, Tensor, backend::BackendStorage,
};
use candle_nn::Linear;

/// A linear map whose weight and bias never receive a gradient.
#[derive(Clone, Debug)]
pub struct FrozenLinear(Linear);

impl FrozenLinear {
    pub fn new(linear: Linear) -> Self {
        Self(linear)
    }

    pub fn weight(&self) -> &Tensor {
        self.0.weight()
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.0.bias()
    }

    /// The wrapped map.
    pub fn linear(&self) -> &Linear {
        &self.0
    }
}

impl Module for FrozenLinear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !x.track_op() {
            return self.0.forward(x);
        }
        let y = self.0.forward(&x.detach())?.detach();
        x.apply_op2(
            &y,
            InputGradient {
                weight: self.0.weight().detach(),
            },
        )
    }
}

/// Forward: the second operand (the detached `x · Wᵀ + b`), copied. Backward: the first
/// operand `x` gets `grad · W`; nothing else does.
struct InputGradient {
    weight: Tensor,
}

/// A contiguous copy of `storage` as `layout` views it.
fn copy<S: BackendStorage>(storage: &S, layout: &Layout) -> Result<(S, Shape)> {
    if !layout.is_contiguous() || layout.start_offset() != 0 {
        candle_core::bail!("frozen linear: the product is not a fresh contiguous tensor");
    }
    Ok((storage.try_clone(layout)?, layout.shape().clone()))
}

impl CustomOp2 for InputGradient {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        product: &CpuStorage,
        layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        copy(product, layout)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _: &candle_core::CudaStorage,
        _: &Layout,
        product: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        copy(product, layout)
    }

    fn bwd(
        &self,
        x: &Tensor,
        _: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (out, input) = self.weight.dims2()?;
        let rows = grad.elem_count() / out;
        let dx = grad
            .contiguous()?
            .reshape((rows, out))?
            .matmul(&self.weight)?
            .reshape(x.shape())?;
        debug_assert_eq!(dx.dim(candle_core::D::Minus1)?, input);
        Ok((Some(dx), None))
    }
}
