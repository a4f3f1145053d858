//! The fused step's parameters as row-major buffers, and AdamW over them.

use candle_core::{DType, Result, Tensor};
use rayon::prelude::*;

use crate::gcf::GcfModel;

/// One layer's transforms for one side, as row-major buffers: `w` is `d × k·d`.
#[derive(Clone, Debug, PartialEq)]
pub struct SideParams {
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

/// Every parameter of a GCF network with transforms, as buffers.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub dim: usize,
    /// Blocks of eq. 2: 5 with negative edges, 3 without.
    pub blocks: usize,
    pub leaky_slope: f32,
    pub user0: Vec<f32>,
    pub response0: Vec<f32>,
    /// Per layer: (users, responses).
    pub layers: Vec<(SideParams, SideParams)>,
}

impl Params {
    /// A model's variables as buffers (in `GcfModel::named_vars` order); `None` for the
    /// ablations without transforms, which only the autograd path runs.
    pub fn from_model(model: &GcfModel) -> Result<Option<Self>> {
        let arch = &model.arch;
        if !arch.transform {
            return Ok(None);
        }
        let mut values = model
            .named_vars()
            .into_iter()
            .map(|(_, v)| v.as_tensor().to_dtype(DType::F32)?.flatten_all()?.to_vec1())
            .collect::<Result<Vec<Vec<f32>>>>()?
            .into_iter();
        let mut next = || values.next().unwrap_or_default();
        let (user0, response0) = (next(), next());
        let layers = (0..arch.layers)
            .map(|_| {
                let (uw, ub, rw, rb) = (next(), next(), next(), next());
                (SideParams { w: uw, b: ub }, SideParams { w: rw, b: rb })
            })
            .collect();
        Ok(Some(Self {
            dim: arch.dim,
            blocks: if arch.negative_edges { 5 } else { 3 },
            leaky_slope: arch.leaky_slope as f32,
            user0,
            response0,
            layers,
        }))
    }

    /// Sets the model's variables from these buffers (shapes as [`Self::from_model`] gave).
    pub fn write_to(&self, model: &GcfModel) -> Result<()> {
        for ((_, var), buffer) in model.named_vars().into_iter().zip(self.buffers()) {
            let t = Tensor::from_slice(buffer, var.shape(), var.device())?.to_dtype(var.dtype())?;
            var.set(&t)?;
        }
        Ok(())
    }

    /// Zeros shaped like `self` (a gradient buffer).
    pub fn zeros_like(&self) -> Self {
        let zero = |v: &[f32]| vec![0.0; v.len()];
        Self {
            dim: self.dim,
            blocks: self.blocks,
            leaky_slope: self.leaky_slope,
            user0: zero(&self.user0),
            response0: zero(&self.response0),
            layers: self
                .layers
                .iter()
                .map(|(u, r)| {
                    (
                        SideParams {
                            w: zero(&u.w),
                            b: zero(&u.b),
                        },
                        SideParams {
                            w: zero(&r.w),
                            b: zero(&r.b),
                        },
                    )
                })
                .collect(),
        }
    }

    /// Every buffer, in `GcfModel::named_vars` order.
    pub fn buffers(&self) -> Vec<&Vec<f32>> {
        let mut all = vec![&self.user0, &self.response0];
        for (u, r) in &self.layers {
            all.extend([&u.w, &u.b, &r.w, &r.b]);
        }
        all
    }

    /// Every buffer, mutably, in `GcfModel::named_vars` order.
    pub fn buffers_mut(&mut self) -> Vec<&mut Vec<f32>> {
        let mut all = vec![&mut self.user0, &mut self.response0];
        for (u, r) in &mut self.layers {
            all.extend([&mut u.w, &mut u.b, &mut r.w, &mut r.b]);
        }
        all
    }

    /// Users (rows of the initial user embeddings).
    pub fn users(&self) -> usize {
        self.user0.len() / self.dim.max(1)
    }

    /// Responses (rows of the initial response embeddings).
    pub fn responses(&self) -> usize {
        self.response0.len() / self.dim.max(1)
    }
}

/// AdamW over [`Params`] buffers: [`crate::optim::BufferAdamW`]; with `fixed_user_init`
/// the initial user embeddings are not updated (`TrainConfig::fixed_user_init`).
pub struct AdamW {
    inner: crate::optim::BufferAdamW,
    fixed_user_init: bool,
}

impl AdamW {
    pub fn new(lr: f64, weight_decay: f64, fixed_user_init: bool) -> Self {
        Self {
            inner: crate::optim::BufferAdamW::new(lr, weight_decay),
            fixed_user_init,
        }
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.inner.lr = lr;
    }

    pub fn step(&mut self, params: &mut Params, grad: &Params) {
        // The initial user embeddings are the first buffer of each list.
        let skip = usize::from(self.fixed_user_init);
        let params = params
            .buffers_mut()
            .into_iter()
            .skip(skip)
            .map(|b| b.as_mut_slice())
            .collect();
        let grads = grad
            .buffers()
            .into_iter()
            .skip(skip)
            .map(|b| b.as_slice())
            .collect();
        self.inner.step(params, grads);
    }
}

/// Sets every buffer of `grad` to zero (kept allocated across steps).
pub fn clear(grad: &mut Params) {
    for b in grad.buffers_mut() {
        b.par_iter_mut().for_each(|x| *x = 0.0);
    }
}
