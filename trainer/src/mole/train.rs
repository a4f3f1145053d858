//! The MoLE training loop (paper §4.2, docs/authors-implementation.md): backbone frozen; LoRA A/B,
//! gates and head trained with the BTL loss −log σ(r(u, a) − r(u, b)) on each seen
//! user's training pairs, the user's fixed L2-normalised GCF embedding feeding the gates
//! (with logit noise while training); AdamW, linear warm-up then cosine, global gradient
//! clipping; validation accuracy every `eval_every` steps, best parameters kept. The
//! paper's §7 options (pair re-weighting, a gate load-balancing term) are in
//! [`super::objective`], off by default.

use std::{collections::HashMap, time::Instant};

use anyhow::{Result, bail};
use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use copl_core::model::{
    frozen_cache::FrozenCache,
    packed::PackedRewardModel,
    reward::{Backbone, RewardModel},
};
use rand::{SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use super::objective::{Reweight, load_balance, pair_loss};
use crate::optim::{clip_grad_norm, schedule};

/// How a training step computes its gradients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MoleEngine {
    /// The packed engine where it runs (BERT on the CPU), autograd elsewhere (Gemma,
    /// CUDA).
    #[default]
    Auto,
    /// Candle's autograd over the padded op-by-op forward: the reference.
    Autograd,
    /// The packed forward and its hand-written backward ([`super::packed`]): BERT on the
    /// CPU, every variant and §7 option (re-weighting, load balancing); 2.6–3.9× the
    /// autograd step, 1.7× PyTorch's (docs/benchmarks.md).
    Packed,
}

impl MoleEngine {
    /// The engine a step of `model` runs: [`MoleEngine::Auto`] decided.
    pub fn resolve(self, model: &RewardModel) -> MoleEngine {
        match self {
            MoleEngine::Auto if PackedRewardModel::applies(model) => MoleEngine::Packed,
            MoleEngine::Auto => MoleEngine::Autograd,
            engine => engine,
        }
    }
}

/// Training hyper-parameters; defaults are the authors' but for the batch (128 pairs is
/// ~1 minute a step on this CPU: see docs/benchmarks.md).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MoleTrainConfig {
    pub steps: usize,
    pub batch_pairs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    /// Share of steps in linear warm-up.
    pub warmup: f64,
    /// Global gradient-norm bound.
    pub clip: f64,
    /// Validate every this many steps (and at the end).
    pub eval_every: usize,
    /// Validation pairs used, spread over the split (0 = all).
    pub val_pairs: usize,
    pub seed: u64,
    /// Bytes of frozen-layer states kept per text (`mole.adapt_layers`), MiB.
    #[serde(default = "default_cache_mib")]
    pub frozen_cache_mib: usize,
    /// Coefficient of the gates' load-balancing loss (0 = off, the paper).
    #[serde(default)]
    pub load_balance: f64,
    /// How pairs' BTL terms are weighted (the paper: all 1).
    #[serde(default)]
    pub reweight: Reweight,
    /// How a step computes its gradients.
    #[serde(default)]
    pub engine: MoleEngine,
    /// Who routes users to experts: the gates (the paper) or, as a diagnostic, the
    /// ground truth (`super::oracle`; the gates then do not train).
    #[serde(default)]
    pub routing: super::oracle::Routing,
    /// How the gates start: on k-means clusters of the seen users' GCF embeddings
    /// ([`super::gate_init`]; the default where gates train) or candle's random
    /// initialisation (the paper's).
    #[serde(default)]
    pub gate_init: super::gate_init::GateInit,
    /// The clusters of `--gate-init kmeans` (None: chosen by silhouette, 2..=M).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_clusters: Option<usize>,
    /// `cpu` or `cuda:N` ([`copl_core::device::parse`]); off the CPU the engine is
    /// autograd's. Recorded only when not the CPU.
    #[serde(
        default = "copl_core::device::cpu_name",
        skip_serializing_if = "copl_core::device::is_cpu_name"
    )]
    pub device: String,
    /// The frozen backbone's dtype: `auto` (BF16 on a GPU, F32 on the CPU), `f32`,
    /// `bf16`. The adapters, gates and head stay F32 (master weights) and are cast to
    /// it inside the forward. Recorded only when not `auto`.
    #[serde(default = "auto", skip_serializing_if = "is_auto")]
    pub dtype: String,
}

fn auto() -> String {
    "auto".into()
}

fn is_auto(dtype: &str) -> bool {
    dtype == "auto"
}

fn default_cache_mib() -> usize {
    4096
}

/// The training pairs in batches, the one sampling rule of both engines: a seeded
/// shuffle, drawn in order, reshuffled at the end of each pass. Both engines draw their
/// gate noise from the same generator ([`Self::gate_noise`]), after each batch.
pub struct Batches<'a> {
    train: &'a [TextPair],
    order: Vec<usize>,
    cursor: usize,
    rng: ChaCha8Rng,
}

impl<'a> Batches<'a> {
    pub fn new(train: &'a [TextPair], seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut rng);
        Self {
            train,
            order,
            cursor: 0,
            rng,
        }
    }

    /// The next `pairs` training pairs (all of them when there are fewer).
    pub fn next(&mut self, pairs: usize) -> Vec<&'a TextPair> {
        let mut batch = Vec::with_capacity(pairs.min(self.train.len()));
        for _ in 0..pairs.min(self.train.len()) {
            if self.cursor == self.order.len() {
                self.order.shuffle(&mut self.rng);
                self.cursor = 0;
            }
            batch.push(&self.train[self.order[self.cursor]]);
            self.cursor += 1;
        }
        batch
    }

    /// The generator the batches come from.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// A step's noise on the gate logits z (eq. 9; N(0, σ²), the authors' implementation's,
    /// training only) for `rows` rows
    /// (chosen then rejected): per projection `[rows × experts]`, drawn after the batch
    /// from the batches' generator — one rule for both engines, so a run is fixed by its
    /// `--seed`. `None` when σ = 0.
    pub fn gate_noise(
        &mut self,
        projections: usize,
        experts: usize,
        rows: usize,
        std: f64,
    ) -> Result<Option<Vec<Vec<f32>>>> {
        if std <= 0.0 {
            return Ok(None);
        }
        let normal = Normal::new(0f32, std as f32)?;
        Ok(Some(
            (0..projections)
                .map(|_| {
                    (0..rows * experts)
                        .map(|_| normal.sample(&mut self.rng))
                        .collect()
                })
                .collect(),
        ))
    }
}

impl MoleTrainConfig {
    /// Warm-up steps of the schedule: `warmup` × steps, at least one.
    pub fn warmup_steps(&self) -> usize {
        ((self.warmup * self.steps as f64).round() as usize).max(1)
    }

    /// An empty frozen-state cache of the configured size.
    pub fn frozen_cache(&self) -> FrozenCache {
        FrozenCache::new(self.frozen_cache_mib << 20)
    }
}

impl Default for MoleTrainConfig {
    fn default() -> Self {
        Self {
            steps: 1500,
            batch_pairs: 16,
            lr: 5e-5,
            weight_decay: 1e-3,
            warmup: 0.03,
            clip: 1.0,
            eval_every: 100,
            val_pairs: 256,
            seed: 0,
            frozen_cache_mib: default_cache_mib(),
            load_balance: 0.0,
            reweight: Reweight::None,
            engine: MoleEngine::Auto,
            routing: super::oracle::Routing::Gates,
            gate_init: super::gate_init::GateInit::Auto,
            gate_clusters: None,
            device: copl_core::device::cpu_name(),
            dtype: auto(),
        }
    }
}

/// A pair to train or score: the user's gate input, prompt, chosen and rejected text.
#[derive(Clone, Debug)]
pub struct TextPair {
    pub user: Vec<f32>,
    pub prompt: String,
    pub chosen: String,
    pub rejected: String,
    /// The pair's weight in the training loss (1 unless re-weighted).
    pub weight: f32,
}

/// A batch's rows to score: every pair's (prompt, chosen), then every pair's (prompt,
/// rejected) — the order both engines' BTL loss (eq. 10) reads the rewards in.
pub fn chosen_then_rejected<'a>(pairs: &[&'a TextPair]) -> Vec<(&'a str, &'a str)> {
    let chosen = pairs.iter().map(|p| (p.prompt.as_str(), p.chosen.as_str()));
    let rejected = pairs
        .iter()
        .map(|p| (p.prompt.as_str(), p.rejected.as_str()));
    chosen.chain(rejected).collect()
}

/// One validation point.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: usize,
    pub train_loss: f64,
    pub val_accuracy: f64,
    pub seconds: f64,
    /// How the gates route the seen users with ground truth at this step (CoPL, when
    /// users.jsonl has groups or weights).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing: Option<super::routing::RoutingMeasure>,
}

/// How training went.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MoleTraining {
    /// The engine the steps ran (`Auto` resolved).
    pub engine: MoleEngine,
    pub best_step: usize,
    pub best_val_accuracy: f64,
    pub history: Vec<StepRecord>,
    pub train_seconds: f64,
    /// Training pairs per second (forward + backward + step), validation excluded.
    pub pairs_per_second: f64,
    /// Texts whose frozen-layer states were cached, and the share of rows (training
    /// and validation) served from the cache.
    pub frozen_cache_texts: usize,
    pub frozen_cache_hit_rate: f64,
}

/// Rewards `[2n]` of pairs: chosen rows first, then rejected rows; the frozen layers'
/// states from `cache`.
fn pair_rewards(
    model: &RewardModel,
    pairs: &[&TextPair],
    noise: Option<&[Vec<f32>]>,
    cache: &mut FrozenCache,
) -> Result<Tensor> {
    Ok(routed_pair_rewards(model, pairs, noise, cache)?.0)
}

/// [`pair_rewards`] with the rows' routings (for the load-balancing loss).
fn routed_pair_rewards(
    model: &RewardModel,
    pairs: &[&TextPair],
    noise: Option<&[Vec<f32>]>,
    cache: &mut FrozenCache,
) -> Result<(Tensor, Vec<copl_core::model::Routing>)> {
    let items = chosen_then_rejected(pairs);
    let dim = pairs.first().map_or(0, |p| p.user.len());
    let users: Vec<f32> = pairs
        .iter()
        .chain(pairs.iter())
        .flat_map(|p| p.user.iter().copied())
        .collect();
    let users = Tensor::from_vec(users, (items.len(), dim), &model.device)?;
    let rows = model.tokenize(&items, true)?;
    let conditioning = model.condition(&users, noise)?;
    let rewards = model.score_cached(&rows.iter().collect::<Vec<_>>(), &conditioning, cache)?;
    Ok((rewards, conditioning.routings))
}

/// Rewards `[n]` of `(prompt, response)` items for users `[n, d_user]` as training and
/// evaluation compute them: the gates run on the embeddings (with training noise when
/// `noise`), over-long items are truncated, frozen layers' states come from `cache`.
pub fn text_rewards(
    model: &RewardModel,
    items: &[(&str, &str)],
    users: &Tensor,
    noise: Option<&[Vec<f32>]>,
    cache: &mut FrozenCache,
) -> Result<Tensor> {
    let rows = model.tokenize(items, true)?;
    let conditioning = model.condition(users, noise)?;
    Ok(model.score_cached(&rows.iter().collect::<Vec<_>>(), &conditioning, cache)?)
}

/// Share of `pairs` whose chosen response the model rewards higher, in batches.
pub fn accuracy(
    model: &RewardModel,
    pairs: &[TextPair],
    batch: usize,
    cache: &mut FrozenCache,
) -> Result<f64> {
    if pairs.is_empty() {
        return Ok(f64::NAN);
    }
    let right = correct(model, pairs, batch, cache)?;
    Ok(right.iter().filter(|&&r| r).count() as f64 / pairs.len() as f64)
}

/// Per pair, whether the model rewards the chosen response higher; in batches.
pub fn correct(
    model: &RewardModel,
    pairs: &[TextPair],
    batch: usize,
    cache: &mut FrozenCache,
) -> Result<Vec<bool>> {
    let mut right = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(batch.max(1)) {
        let refs: Vec<&TextPair> = chunk.iter().collect();
        let r: Vec<f32> = pair_rewards(model, &refs, None, cache)?.to_vec1()?;
        let n = chunk.len();
        right.extend((0..n).map(|i| r[i] > r[n + i]));
    }
    Ok(right)
}

/// Trains `model`'s trainable tensors (`trainable`, which built it) on `train` with
/// candle's autograd (the reference; `run_mole` picks the engine, `MoleEngine::resolve`),
/// validating on `val`; leaves the best parameters in `trainable`. Frozen-layer states
/// go to `cache` (kept for the caller's evaluation).
#[allow(clippy::too_many_arguments)]
pub fn train_autograd(
    model: &mut RewardModel,
    trainable: &VarMap,
    train: &[TextPair],
    val: &[TextPair],
    probe: Option<&super::routing::RoutingProbe>,
    config: &MoleTrainConfig,
    cache: &mut FrozenCache,
    on_step: &mut dyn FnMut(usize, f64),
) -> Result<MoleTraining> {
    if train.is_empty() {
        bail!("no training pairs");
    }
    // The fused layer norm has no backward: training would cut the gradient silently.
    // Validation and what the caller gets back use the fused (faster) one.
    let differentiable = |model: &mut RewardModel, on: bool| {
        if let Backbone::Bert(bert) = &mut model.backbone {
            bert.differentiable = on;
        }
    };
    differentiable(model, true);
    // Gates only route under CoPL; elsewhere they get no gradient and are not trained.
    // Oracle gates are set, not learnt (`super::oracle`).
    let gated = model.config.variant.uses_gates() && !config.routing.is_oracle();
    let vars: Vec<(String, candle_core::Var)> = {
        let data = trainable
            .data()
            .lock()
            .map_err(|_| anyhow::anyhow!("var map poisoned"))?;
        let mut v: Vec<_> = data
            .iter()
            .filter(|(name, _)| gated || !name.contains(".gate."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let mut optimiser = AdamW::new(
        vars.iter().map(|(_, v)| v.clone()).collect(),
        ParamsAdamW {
            lr: config.lr,
            weight_decay: config.weight_decay,
            ..ParamsAdamW::default()
        },
    )?;
    let val = spread(val.to_vec(), config.val_pairs);
    let val = val.as_slice();
    let warmup = config.warmup_steps();
    let mut batches = Batches::new(train, config.seed);
    let started = Instant::now();
    let mut training_seconds = 0f64;
    let mut best: Option<(usize, f64, HashMap<String, Tensor>)> = None;
    let mut history = Vec::new();
    let mut loss_sum = 0f64;
    let mut loss_count = 0usize;
    for step in 0..config.steps {
        let step_started = Instant::now();
        let batch = batches.next(config.batch_pairs);
        let mole = &model.config.mole;
        let noise = batches.gate_noise(
            model.backbone.adapters().moles.len(),
            mole.experts,
            2 * batch.len(),
            mole.gate_noise,
        )?;
        let (r, routings) = routed_pair_rewards(model, &batch, noise.as_deref(), cache)?;
        let n = batch.len();
        let margin = (r.narrow(0, 0, n)? - r.narrow(0, n, n)?)?;
        let weights: Vec<f32> = batch.iter().map(|p| p.weight).collect();
        let weights = Tensor::from_vec(weights, n, &model.device)?.to_dtype(margin.dtype())?;
        let mut loss = pair_loss(&margin, &weights, config.reweight)?;
        if config.load_balance > 0.0
            && let Some(balance) = load_balance(&routings)?
        {
            loss = (loss + (balance.to_dtype(margin.dtype())? * config.load_balance)?)?;
        }
        let mut grads = loss.backward()?;
        clip_grad_norm(&mut grads, &vars, config.clip)?;
        optimiser.set_learning_rate(schedule(config.lr, step, warmup, config.steps));
        optimiser.step(&grads)?;
        training_seconds += step_started.elapsed().as_secs_f64();
        let loss: f32 = loss.to_scalar()?;
        loss_sum += f64::from(loss);
        loss_count += 1;
        on_step(step, f64::from(loss));
        let last = step + 1 == config.steps;
        if (step + 1) % config.eval_every.max(1) == 0 || last {
            differentiable(model, false);
            let val_accuracy = accuracy(model, val, 32, cache)?;
            let routing = probe.map(|p| p.measure(model)).transpose()?.flatten();
            differentiable(model, true);
            history.push(StepRecord {
                step: step + 1,
                train_loss: loss_sum / loss_count.max(1) as f64,
                val_accuracy,
                seconds: started.elapsed().as_secs_f64(),
                routing,
            });
            loss_sum = 0.0;
            loss_count = 0;
            if best.as_ref().is_none_or(|b| val_accuracy > b.1) {
                let snapshot = vars
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), v.as_tensor().copy()?)))
                    .collect::<candle_core::Result<_>>()?;
                best = Some((step + 1, val_accuracy, snapshot));
            }
        }
    }
    differentiable(model, false);
    let (best_step, best_val_accuracy, snapshot) =
        best.ok_or_else(|| anyhow::anyhow!("no validation ran"))?;
    for (name, var) in &vars {
        if let Some(t) = snapshot.get(name) {
            var.set(t)?;
        }
    }
    let pairs = (config.steps * config.batch_pairs.min(train.len())) as f64;
    Ok(MoleTraining {
        engine: MoleEngine::Autograd,
        best_step,
        best_val_accuracy,
        history,
        train_seconds: started.elapsed().as_secs_f64(),
        pairs_per_second: pairs / training_seconds.max(1e-9),
        frozen_cache_texts: cache.len(),
        frozen_cache_hit_rate: cache.hit_rate(),
    })
}

/// The device models train on here.
pub fn device() -> Device {
    Device::Cpu
}

/// At most `limit` of `pairs` (0 = all), taken at an even stride so every part of the
/// split (pairs come user by user) is represented.
pub fn spread<T>(pairs: Vec<T>, limit: usize) -> Vec<T> {
    if limit == 0 || pairs.len() <= limit {
        return pairs;
    }
    let stride = pairs.len() as f64 / limit as f64;
    let keep: Vec<usize> = (0..limit).map(|i| (i as f64 * stride) as usize).collect();
    pairs
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.binary_search(i).is_ok())
        .map(|(_, p)| p)
        .collect()
}
