//! The reward head (paper §4.2): one scalar per row from the backbone's final hidden
//! states, `r = w · h + b` with h pooled as the backbone family needs.

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder, linear};
use serde::{Deserialize, Serialize};

/// Which hidden state the reward reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Mean over the row's tokens (attention mask 1): encoders such as MiniLM, whose
    /// sentence embedding is the mean.
    Mean,
    /// The last token whose attention mask is 1: decoders (the authors' readout, found
    /// from the mask rather than from the first pad id, so left padding and a pad id
    /// inside the text cannot mislead it).
    LastToken,
}

/// `Linear(hidden → 1)` over the pooled state.
#[derive(Clone, Debug)]
pub struct RewardHead {
    linear: Linear,
    pooling: Pooling,
}

impl RewardHead {
    pub fn new(hidden: usize, pooling: Pooling, vb: VarBuilder<'_>) -> Result<Self> {
        Ok(Self {
            linear: linear(hidden, 1, vb)?,
            pooling,
        })
    }

    /// The scalar map over the pooled state.
    pub fn linear(&self) -> &Linear {
        &self.linear
    }

    /// The pooled states `[n, h]` of hidden states `[n, t, h]` under `attention_mask`
    /// `[n, t]` (1 = token, 0 = padding, on either side). Computed on the device without a
    /// host round trip: a GPU forward never waits for the host here. A row without any token is refused on the CPU; on a GPU
    /// the batch builder refuses it before the forward (`pad`).
    pub fn pool(&self, hidden: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        let mask = attention_mask.to_dtype(hidden.dtype())?;
        if attention_mask.device().is_cpu() {
            let counts: Vec<f32> = attention_mask
                .to_dtype(DType::F32)?
                .sum(D::Minus1)?
                .to_vec1()?;
            if let Some(row) = counts.iter().position(|&c| c < 1.0) {
                candle_core::bail!("row {row} has no token (its attention mask is all 0)");
            }
        }
        match self.pooling {
            Pooling::Mean => hidden
                .broadcast_mul(&mask.unsqueeze(2)?)?
                .sum(1)?
                .broadcast_div(&mask.sum_keepdim(1)?),
            Pooling::LastToken => {
                // The last token: the largest position the mask keeps (either padding).
                let (n, t, h) = hidden.dims3()?;
                let positions = Tensor::arange(0f32, t as f32, hidden.device())?;
                let index = attention_mask
                    .to_dtype(DType::F32)?
                    .broadcast_mul(&positions.unsqueeze(0)?)?
                    .max(D::Minus1)?
                    .to_dtype(DType::U32)?
                    .reshape((n, 1, 1))?
                    .broadcast_as((n, 1, h))?
                    .contiguous()?;
                hidden.gather(&index, 1)?.squeeze(1)
            }
        }
    }

    /// Rewards `[n]`.
    pub fn forward(&self, hidden: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        // BF16 activations meet an F32 head when training in mixed precision.
        let pooled = self
            .pool(hidden, attention_mask)?
            .to_dtype(self.linear.weight().dtype())?;
        self.linear.forward(&pooled)?.squeeze(D::Minus1)
    }
}
