//! The served forward: the reward model over packed sequences with fused CPU kernels.
//!
//! [`crate::model::reward::RewardModel::score_served`] — what the server runs per batch —
//! takes this path for the BERT family on the CPU; everything else (training, Gemma,
//! CUDA) runs candle's op-by-op forward, which stays the reference. The two agree to
//! 1e-4 on every reward, and a row's reward does not depend on the other rows of its
//! batch (`core/tests/packed.rs`). What it changes, measured in docs/benchmarks.md
//! (issue #11):
//!
//! - **no padding**: rows of different lengths are stacked, not padded to the longest;
//!   attention runs per sequence ([`attention`]);
//! - **fewer passes**: Q, K and V in one GEMM; bias, residual and layer norm in one
//!   pass; bias and GELU in one pass; softmax in place on each job's scores
//!   ([`kernels`]);
//! - **no copies**: the heads read Q, K and V through strides ([`gemm::View`]), the
//!   layout never changes between GEMMs;
//! - **wide registers on any x86-64**: element-wise loops are compiled for AVX2 and
//!   AVX-512 and chosen at run time (`pulp`), as `gemm` does for its kernels.

pub mod attention;
pub mod backward;
pub mod bert;
pub mod gate;
pub mod gemm;
pub mod head;
pub mod kernels;
pub mod layer;

use candle_core::Result;

use self::bert::PackedBert;
use self::head::PackedHead;
use self::layer::Dense;
use super::reward::{Backbone, RewardModel, ServedRow, Variant};

/// A reward model's served forward: packed BERT, pooling, head (and, for the
/// user-token variant, the user's token).
#[derive(Clone)]
pub struct PackedRewardModel {
    bert: PackedBert,
    head: PackedHead,
    /// The user-token variant's projection of the user embedding into a token.
    user_token: Option<Dense>,
}

impl PackedRewardModel {
    /// Whether `model` has a packed form: BERT on the CPU.
    pub fn applies(model: &RewardModel) -> bool {
        matches!(model.backbone, Backbone::Bert(_))
            && model.device.is_cpu()
            && model.dtype == candle_core::DType::F32
    }

    /// The packed form of `model`, or `None` when it has none ([`Self::applies`]).
    pub fn new(model: &RewardModel) -> Result<Option<Self>> {
        let Backbone::Bert(bert) = &model.backbone else {
            return Ok(None);
        };
        if !Self::applies(model) {
            return Ok(None);
        }
        let user_token = match (&model.user_token, model.config.variant) {
            (Some(p), Variant::UserToken) => Some(Dense::new(p.weight(), p.bias())?),
            _ => None,
        };
        Ok(Some(Self {
            bert: PackedBert::new(bert)?,
            head: PackedHead::new(model.head.linear(), model.config.pooling)?,
            user_token,
        }))
    }

    /// Rewards of `rows`, each for its user's routing (and embedding, for the user-token
    /// variant): the same values as the reference forward, without padding.
    pub fn score(&self, rows: &[ServedRow<'_>]) -> Result<Vec<f32>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let tokens: Vec<_> = rows.iter().map(|r| r.tokens).collect();
        let routings: Vec<_> = rows.iter().map(|r| r.routing).collect();
        let user_tokens = match &self.user_token {
            Some(projection) => Some(
                rows.iter()
                    .enumerate()
                    .map(|(i, r)| {
                        if r.embedding.len() != projection.input {
                            candle_core::bail!(
                                "row {i}: user embedding of {} values, not {}",
                                r.embedding.len(),
                                projection.input
                            );
                        }
                        Ok(projection
                            .weight
                            .chunks_exact(projection.input)
                            .zip(&projection.bias)
                            .map(|(w, b)| dot(w, r.embedding) + b)
                            .collect())
                    })
                    .collect::<Result<Vec<Vec<f32>>>>()?,
            ),
            None => None,
        };
        let x = self
            .bert
            .forward(&tokens, &routings, user_tokens.as_deref())?;
        Ok(self.head.rewards(&x))
    }
}

impl std::fmt::Debug for PackedRewardModel {
    /// A summary: the weights are the model's, copied.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedRewardModel")
            .field("hidden", &self.bert.hidden())
            .field("layers", &self.bert.layers())
            .field("pooling", &self.head.pooling)
            .field("user_token", &self.user_token.is_some())
            .finish()
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
