//! BERT with MoLE projections over packed sequences: the served forward of
//! [`crate::model::bert::BertMole`], same weights, same mathematics.
//!
//! Every row's tokens are stacked into one `[T × h]` matrix, `T` the sum of the rows'
//! lengths: no padding is computed. Per layer: one GEMM for Q, K and V together, the
//! MoLE low-rank terms as two small GEMMs over all tokens with each token's routing
//! applied between them (eq. 10, as [`crate::model::mole::MoleLinear::forward`]),
//! attention per sequence and head ([`super::attention`]), then the output and
//! feed-forward GEMMs, each followed by one fused pass (bias + residual + layer norm,
//! bias + GELU).

use candle_core::Result;
use candle_transformers::models::bert::HiddenAct;

use super::attention::Span;
use super::kernels::{self, Activation, Norm};
use super::layer::{Dense, LayerSaved, LowRank, LowRankGrad, PackedLayer, Scratch, values};
use crate::model::bert::{BertMole, LayerNorm};
use crate::model::mole::{Projection, UserRouting};
use crate::model::reward::Tokens;

fn norm(n: &LayerNorm) -> Result<Norm> {
    Ok(Norm {
        weight: values(&n.weight)?,
        bias: values(&n.bias)?,
        eps: n.eps as f32,
    })
}

/// Packed hidden states: row `i`'s tokens are `spans[i]` of `states` (`[T × width]`).
#[derive(Clone, Debug)]
pub struct Packed {
    pub states: Vec<f32>,
    pub spans: Vec<Span>,
    pub width: usize,
}

impl Packed {
    /// Row `i`'s `[len × width]` states.
    pub fn row(&self, i: usize) -> &[f32] {
        let s = self.spans[i];
        &self.states[s.start * self.width..(s.start + s.len) * self.width]
    }

    /// One state prepended to every row (the user-token variant's token).
    pub fn prepend(&self, firsts: &[Vec<f32>]) -> Self {
        let mut states = Vec::with_capacity(self.states.len() + firsts.len() * self.width);
        let mut spans = Vec::with_capacity(self.spans.len());
        for (i, first) in firsts.iter().enumerate() {
            spans.push(Span {
                start: states.len() / self.width,
                len: self.spans[i].len + 1,
            });
            states.extend_from_slice(first);
            states.extend_from_slice(self.row(i));
        }
        Self {
            states,
            spans,
            width: self.width,
        }
    }
}

/// One MoLE projection's stacked LoRA factors, mutably: (A, B).
pub type LoraMut<'a> = (&'a mut Vec<f32>, &'a mut Vec<f32>);

/// [`BertMole`]'s weights laid out for the packed forward.
#[derive(Clone, Debug)]
pub struct PackedBert {
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    embeddings_norm: Norm,
    layers: Vec<PackedLayer>,
    hidden: usize,
    first_adapted: usize,
    projections: usize,
    experts: usize,
}

impl PackedBert {
    /// Copies `model`'s weights (the backbone's and every MoLE projection's).
    pub fn new(model: &BertMole) -> Result<Self> {
        let hidden = model.word_embeddings.hidden_size();
        let mut layers = Vec::with_capacity(model.layers.len());
        for layer in &model.layers {
            let a = &layer.attention;
            let mut low_rank = Vec::new();
            let mut parts = Vec::with_capacity(3);
            for (block, projection) in [&a.query, &a.key, &a.value].into_iter().enumerate() {
                match projection {
                    Projection::Plain(linear) => parts.push(Dense::frozen(linear)?),
                    Projection::Mole(mole, index) => {
                        parts.push(Dense::frozen(&mole.base)?);
                        low_rank.push(LowRank::new(mole, *index, block * hidden)?);
                    }
                }
            }
            layers.push(PackedLayer {
                qkv: Dense::stacked(&parts),
                low_rank,
                attention_output: Dense::frozen(&a.output)?,
                attention_norm: norm(&a.output_norm)?,
                intermediate: Dense::frozen(&layer.intermediate)?,
                output: Dense::frozen(&layer.output)?,
                output_norm: norm(&layer.output_norm)?,
                activation: match layer.act {
                    HiddenAct::Gelu => Activation::GeluErf,
                    HiddenAct::GeluApproximate => Activation::GeluTanh,
                    HiddenAct::Relu => Activation::Relu,
                },
                heads: a.heads,
            });
        }
        Ok(Self {
            word: values(model.word_embeddings.embeddings())?,
            position: values(model.position_embeddings.embeddings())?,
            token_type: values(model.token_type_embeddings.embeddings())?,
            embeddings_norm: norm(&model.embeddings_norm)?,
            layers,
            hidden,
            first_adapted: model.first_adapted_layer(),
            projections: model.adapters().moles.len(),
            experts: model.adapters().config.experts,
        })
    }

    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// The embeddings of `rows` (word + position + token type, layer norm), packed.
    /// A row without tokens, a token id or type id outside the tables, or a row longer
    /// than the position table is an error naming the row.
    fn embed(&self, rows: &[&Tokens]) -> Result<Packed> {
        let h = self.hidden;
        let (vocab, positions, types) = (
            self.word.len() / h,
            self.position.len() / h,
            self.token_type.len() / h,
        );
        let mut spans = Vec::with_capacity(rows.len());
        let mut start = 0;
        for (i, row) in rows.iter().enumerate() {
            let len = row.ids.len();
            if len == 0 {
                candle_core::bail!("row {i} has no token");
            }
            if len > positions {
                candle_core::bail!("row {i}: {len} tokens, more than {positions} positions");
            }
            if row.type_ids.len() != len {
                candle_core::bail!("row {i}: {} type ids for {len} tokens", row.type_ids.len());
            }
            if let Some(id) = row.ids.iter().find(|&&id| id as usize >= vocab) {
                candle_core::bail!("row {i}: token id {id} outside the vocabulary of {vocab}");
            }
            if let Some(t) = row.type_ids.iter().find(|&&t| t as usize >= types) {
                candle_core::bail!("row {i}: token type {t} outside the {types} types");
            }
            spans.push(Span { start, len });
            start += len;
        }
        let mut states = Vec::with_capacity(start * h);
        for row in rows {
            for (p, (&id, &t)) in row.ids.iter().zip(&row.type_ids).enumerate() {
                let word = &self.word[id as usize * h..][..h];
                let position = &self.position[p * h..][..h];
                let token_type = &self.token_type[t as usize * h..][..h];
                states.extend(
                    word.iter()
                        .zip(position)
                        .zip(token_type)
                        .map(|((w, p), t)| w + p + t),
                );
            }
        }
        kernels::layer_norm(&mut states, &self.embeddings_norm);
        Ok(Packed {
            states,
            spans,
            width: h,
        })
    }

    /// Hidden states of `rows` after every layer, row `i` routed by `routings[i]`; with
    /// `user_tokens`, row `i`'s token is prepended at the first adapted layer (the
    /// user-token variant). The routings are checked and the layers' buffers allocated
    /// once for the whole forward.
    pub fn forward(
        &self,
        rows: &[&Tokens],
        routings: &[&UserRouting],
        user_tokens: Option<&[Vec<f32>]>,
    ) -> Result<Packed> {
        if routings.len() != rows.len() {
            candle_core::bail!("{} routings for {} rows", routings.len(), rows.len());
        }
        for (row, r) in routings.iter().enumerate() {
            if r.experts.len() != self.projections || r.weights.len() != self.projections {
                candle_core::bail!(
                    "row {row}: a routing for {} projections, the model has {}",
                    r.experts.len(),
                    self.projections
                );
            }
            if let Some(e) = r.experts.iter().find(|&&e| e as usize >= self.experts) {
                candle_core::bail!("row {row}: expert {e} >= {}", self.experts);
            }
        }
        let mut x = self.embed(rows)?;
        let tokens = x.states.len() / self.hidden + user_tokens.map_or(0, <[_]>::len);
        let mut scratch = self.scratch(tokens);
        let threads = rayon::current_num_threads();
        for (i, layer) in self.layers.iter().enumerate() {
            if i == self.first_adapted
                && let Some(firsts) = user_tokens
            {
                x = x.prepend(firsts);
            }
            layer.forward(&mut x.states, &x.spans, routings, &mut scratch, threads);
        }
        Ok(x)
    }

    pub fn layers(&self) -> usize {
        self.layers.len()
    }

    /// Buffers for a forward of `tokens` tokens.
    fn scratch(&self, tokens: usize) -> Scratch {
        let widest = self
            .layers
            .iter()
            .map(|l| l.intermediate.out)
            .max()
            .unwrap_or(0);
        Scratch {
            qkv: vec![0.0; tokens * 3 * self.hidden],
            context: vec![0.0; tokens * self.hidden],
            out: vec![0.0; tokens * self.hidden],
            intermediate: vec![0.0; tokens * widest],
        }
    }

    /// The embeddings and the layers below [`Self::first_adapted`] (no MoLE: the same for
    /// every user), packed: what training caches per text.
    pub fn frozen_forward(&self, rows: &[&Tokens]) -> Result<Packed> {
        let mut x = self.embed(rows)?;
        let mut scratch = self.scratch(x.states.len() / self.hidden);
        let threads = rayon::current_num_threads();
        for layer in &self.layers[..self.first_adapted] {
            layer.forward(&mut x.states, &x.spans, &[], &mut scratch, threads);
        }
        Ok(x)
    }

    /// Every MoLE projection's stacked LoRA factors (A, B) in routing order, as the
    /// training step updates them.
    pub fn loras_mut(&mut self) -> Vec<LoraMut<'_>> {
        let mut all: Vec<(usize, LoraMut<'_>)> = self
            .layers
            .iter_mut()
            .flat_map(|l| l.low_rank.iter_mut())
            .map(|l| (l.index(), l.parameters_mut()))
            .collect();
        all.sort_by_key(|(index, _)| *index);
        all.into_iter().map(|(_, p)| p).collect()
    }

    /// MoLE projection `index`'s stacked LoRA factors (A, B).
    pub fn lora(&self, index: usize) -> Option<(&[f32], &[f32])> {
        self.layers
            .iter()
            .flat_map(|l| l.low_rank.iter())
            .find(|l| l.index() == index)
            .map(LowRank::parameters)
    }

    /// MoLE projections.
    pub fn projections(&self) -> usize {
        self.projections
    }

    /// The first layer with MoLE projections (the training step's first layer).
    pub fn first_adapted(&self) -> usize {
        self.first_adapted
    }

    /// The training forward of the adapted layers over `hidden` (the frozen layers'
    /// output, packed; the user-token variant's tokens already in), row `i` routed by
    /// `routings[i]`: `hidden` becomes the last layer's output, and what
    /// [`Self::adapted_backward`] reads is returned, one entry an adapted layer.
    pub fn adapted_forward_saving(
        &self,
        hidden: &mut Packed,
        routings: &[&UserRouting],
    ) -> Result<Vec<LayerSaved>> {
        if routings.len() != hidden.spans.len() {
            candle_core::bail!(
                "{} routings for {} rows",
                routings.len(),
                hidden.spans.len()
            );
        }
        let threads = rayon::current_num_threads();
        let mut saved = Vec::new();
        for layer in &self.layers[self.first_adapted..] {
            let mut keep = LayerSaved::default();
            layer.forward_saving(
                &mut hidden.states,
                &hidden.spans,
                routings,
                &mut keep,
                threads,
            );
            saved.push(keep);
        }
        Ok(saved)
    }

    /// The backward of [`Self::adapted_forward_saving`]: `d` holds ∂ of the last
    /// layer's output and is left holding ∂ of `hidden` when `input_gradient` (the
    /// user-token variant's prepended token trains from it); without, the lowest
    /// adapted layer skips the products that only make it (its Q/K/V map's input
    /// gradient is a quarter of its backward: ≈ 12 % of a top-1 step, docs/benchmarks.md)
    /// and `d` is left unspecified. Returns each MoLE projection's gradients in routing
    /// order (∂A, ∂B, ∂w_u per row).
    pub fn adapted_backward(
        &self,
        d: &mut [f32],
        spans: &[Span],
        routings: &[&UserRouting],
        saved: &[LayerSaved],
        input_gradient: bool,
    ) -> Vec<LowRankGrad> {
        let threads = rayon::current_num_threads();
        let mut grads: Vec<Option<LowRankGrad>> = vec![None; self.projections];
        let adapted = &self.layers[self.first_adapted..];
        for (i, (layer, keep)) in adapted.iter().zip(saved).enumerate().rev() {
            let mut layer_grads: Vec<LowRankGrad> = layer
                .low_rank
                .iter()
                .map(|l| l.zero_grad(spans.len()))
                .collect();
            // Every layer above the lowest passes ∂ of its input to the one below.
            let input = input_gradient || i > 0;
            layer.backward(d, spans, routings, keep, &mut layer_grads, input, threads);
            for (low_rank, grad) in layer.low_rank.iter().zip(layer_grads) {
                grads[low_rank.index()] = Some(grad);
            }
        }
        grads.into_iter().flatten().collect()
    }
}
