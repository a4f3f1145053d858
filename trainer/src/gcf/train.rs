//! The GCF training loop: batches of (user, chosen, rejected) triples, a full-graph
//! propagation per step, BTL + L2 loss (eq. 5), AdamW with linear warm-up and cosine
//! decay, validation on each seen user's held-out pair every epoch, best epoch kept.

use std::{collections::HashMap, time::Instant};

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use copl_core::{
    data::{Dataset, Split},
    graph::{GraphIds, PreferenceGraph},
};
use rand::{SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{
    fused,
    model::{EdgeMask, GcfArch, GcfModel, GraphOps, INITIAL_USERS, scores},
};
use crate::optim::{neg_log_sigmoid, schedule};

/// How a training step computes its gradients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StepEngine {
    /// The hand-written forward and backward (`gcf::fused`); the ablations without
    /// transforms fall back to autograd.
    #[default]
    Fused,
    /// Candle's autograd: the reference.
    Autograd,
}

/// Training hyper-parameters; defaults are the authors' (docs/authors-implementation.md).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainConfig {
    pub arch: GcfArch,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    /// Share of all steps spent in linear warm-up (then cosine to 0).
    pub warmup: f64,
    /// λ of eq. 5, on the batch's final embeddings: λ · mean over the batch's pairs of
    /// ‖e_u‖² + ‖e_a‖² + ‖e_b‖². The authors' code adds λ · the batch's *summed* squared
    /// norms to the mean BTL loss (λ = 1e-6, batch 1 024), i.e. ≈ 1e-3 in our per-pair
    /// form, and its strength grows with the batch; ours does not. The default is that
    /// 1e-3. Measured (docs/gcf.md, ufp4-all, full-batch steps at lr 1e-2): 1e-6 lets the
    /// network memorise (training loss 0.001, held-out 77 %, group probe 78 %), 1e-2 is
    /// best (90.6 %, probe 100 %), 1e-1 underfits (71 %).
    pub l2: f64,
    /// Edge-dropout probability on the normalised adjacency values.
    pub edge_dropout: f32,
    pub seed: u64,
    /// Leave each step's own pairs' edges out of that step's propagation
    /// ([`super::model::GraphOps::mask_of`]): the pairs are then predicted from other
    /// users' edges only. Needs batches smaller than the training set.
    #[serde(default)]
    pub mask_batch_edges: bool,
    /// Keep the last epoch's embeddings instead of the best by validation accuracy.
    /// With noisy labels one validation pair a user is mostly noise: under label noise
    /// 0.1 at 1 000 users the best epoch was epoch 22, whose embeddings tell no group
    /// apart (docs/benchmarks.md, issue #13).
    #[serde(default)]
    pub keep_last: bool,
    /// Keep every seen user's layer-0 embedding e_u^(0) (eq. 2's input) at its initial
    /// draw, untrained: a seen user's embedding then comes from their edges through the
    /// layers, as an onboarded user's does, and no free vector a user can fit flipped
    /// labels (issue #13's label noise). Needs message-passing layers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fixed_user_init: bool,
    #[serde(default)]
    pub engine: StepEngine,
    /// Which layer inputs the fused step keeps for its backward (`every-other` trades
    /// ≈ 17 % time for two node buffers at L = 4: what fits 1 000 000 users in 16 GiB).
    #[serde(default)]
    pub layer_inputs: fused::LayerInputs,
    /// Stop each epoch after this many steps (for benchmarks); `None` for full epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps_per_epoch: Option<usize>,
    /// `cpu` or `cuda:N` ([`copl_core::device::parse`]). Off the CPU the step is
    /// autograd's (the fused step is CPU code) and the sparse products gather–scatter
    /// ([`super::spmm`]). Recorded only when not the CPU.
    #[serde(
        default = "copl_core::device::cpu_name",
        skip_serializing_if = "copl_core::device::is_cpu_name"
    )]
    pub device: String,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            arch: GcfArch::default(),
            epochs: 100,
            batch_size: 1024,
            lr: 1e-4,
            weight_decay: 0.01,
            warmup: 0.1,
            l2: 1e-3,
            edge_dropout: 0.1,
            seed: 0,
            mask_batch_edges: false,
            keep_last: false,
            fixed_user_init: false,
            engine: StepEngine::Fused,
            layer_inputs: fused::LayerInputs::All,
            max_steps_per_epoch: None,
            device: copl_core::device::cpu_name(),
        }
    }
}

/// Pairs as graph rows: (user, chosen, rejected).
pub type PairRows = Vec<(u32, u32, u32)>;

/// The pairs of `split` whose user is a graph node (seen users only). Test pairs on new
/// texts (neither response in a training or validation pair: `synth
/// --heldout-prompts`) are left out: a graph model holds no edge of them, so its score
/// of them is its initial embedding's noise (the reward model's eval reports them).
pub fn pair_rows(dataset: &Dataset, ids: &GraphIds, split: Split) -> PairRows {
    let users = ids.user_rows();
    let annotated = (split == Split::Test).then(|| dataset.annotated_texts());
    dataset
        .split(split)
        .filter_map(|a| {
            let pair = (
                *users.get(a.user.as_str())?,
                dataset.response_row(&a.chosen)? as u32,
                dataset.response_row(&a.rejected)? as u32,
            );
            match &annotated {
                Some(texts) if texts.new_pair(pair.1 as usize, pair.2 as usize) => None,
                _ => Some(pair),
            }
        })
        .collect()
}

fn columns(pairs: &[(u32, u32, u32)], device: &Device) -> Result<(Tensor, Tensor, Tensor)> {
    let u: Vec<u32> = pairs.iter().map(|p| p.0).collect();
    let a: Vec<u32> = pairs.iter().map(|p| p.1).collect();
    let b: Vec<u32> = pairs.iter().map(|p| p.2).collect();
    Ok((
        Tensor::new(u, device)?,
        Tensor::new(a, device)?,
        Tensor::new(b, device)?,
    ))
}

/// Share of pairs the embeddings order as annotated: s(u,a) > s(u,b) (eq. 4).
pub fn accuracy(users: &Tensor, responses: &Tensor, pairs: &[(u32, u32, u32)]) -> Result<f64> {
    if pairs.is_empty() {
        return Ok(f64::NAN);
    }
    let (u, a, b) = columns(pairs, users.device())?;
    let eu = users.index_select(&u, 0)?;
    let margin = (scores(&eu, &responses.index_select(&a, 0)?)?
        - scores(&eu, &responses.index_select(&b, 0)?)?)?;
    let right: f64 = margin
        .gt(0.0)?
        .to_dtype(DType::F64)?
        .sum_all()?
        .to_scalar()?;
    Ok(right / pairs.len() as f64)
}

/// One epoch's figures.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_accuracy: f64,
    pub seconds: f64,
    pub steps: usize,
    pub seconds_per_step: f64,
    /// Each step's seconds (for benchmarks; not written).
    #[serde(skip)]
    pub step_seconds: Vec<f64>,
}

/// A trained model (at its best epoch) and how training went.
pub struct GcfTraining {
    pub model: GcfModel,
    /// Final (layer-L) embeddings at the best epoch, unnormalised.
    pub users: Tensor,
    pub responses: Tensor,
    pub best_epoch: usize,
    pub best_val_accuracy: f64,
    pub history: Vec<EpochRecord>,
    pub seconds: f64,
}

/// Trains GCF on `train` pairs, choosing the epoch by accuracy on `val` pairs.
/// `on_epoch` sees each epoch's record (for progress display).
pub fn train(
    graph: &PreferenceGraph,
    train_pairs: &[(u32, u32, u32)],
    val_pairs: &[(u32, u32, u32)],
    config: &TrainConfig,
    device: &Device,
    on_epoch: impl FnMut(&EpochRecord, usize),
) -> Result<GcfTraining> {
    train_from(
        graph,
        train_pairs,
        val_pairs,
        config,
        device,
        None,
        on_epoch,
    )
}

/// [`train`], starting from `init` (every variable, named as
/// [`GcfModel::named_vars`] names them, shaped for `graph`) instead of a fresh draw:
/// a warm start ([`super::warm`]).
pub fn train_from(
    graph: &PreferenceGraph,
    train_pairs: &[(u32, u32, u32)],
    val_pairs: &[(u32, u32, u32)],
    config: &TrainConfig,
    device: &Device,
    init: Option<&HashMap<String, Tensor>>,
    mut on_epoch: impl FnMut(&EpochRecord, usize),
) -> Result<GcfTraining> {
    if config.fixed_user_init && config.arch.layers == 0 {
        return Err(candle_core::Error::Msg(
            "a fixed layer-0 user embedding needs message-passing layers \
             (matrix factorisation would never train its users)"
                .into(),
        ));
    }
    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let model = GcfModel::new(
        config.arch.clone(),
        graph.users,
        graph.responses,
        &mut rng,
        DType::F32,
        device,
    )?;
    if let Some(init) = init {
        let on_device: HashMap<String, Tensor> = init
            .iter()
            .map(|(name, t)| Ok((name.clone(), t.to_device(device)?)))
            .collect::<Result<_>>()?;
        model.restore(&on_device)?;
    }
    let ops = GraphOps::new(graph);
    let mut engine = Engine::new(model, config, device)?;
    let batch = config.batch_size.max(1);
    let steps_per_epoch = train_pairs.len().div_ceil(batch).max(1);
    let total_steps = steps_per_epoch * config.epochs.max(1);
    let warmup_steps = ((config.warmup * total_steps as f64).round() as usize).max(1);
    let mut order: Vec<usize> = (0..train_pairs.len()).collect();
    let mut step = 0usize;
    let mut best: Option<Best> = None;
    let mut history = Vec::new();

    for epoch in 1..=config.epochs {
        let epoch_started = Instant::now();
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        let mut seen_pairs = 0usize;
        let mut steps = 0usize;
        let mut step_seconds = Vec::new();
        for chunk in order.chunks(batch) {
            if config.max_steps_per_epoch.is_some_and(|max| steps >= max) {
                break;
            }
            let step_started = Instant::now();
            let lr = schedule(config.lr, step, warmup_steps, total_steps);
            let pairs: Vec<(u32, u32, u32)> = chunk.iter().map(|&i| train_pairs[i]).collect();
            let mask = if config.mask_batch_edges {
                ops.mask_of(&pairs)
            } else {
                EdgeMask::default()
            };
            let loss = engine.step(&ops, &pairs, &mask, lr, config, &mut rng)?;
            loss_sum += loss * pairs.len() as f64;
            seen_pairs += pairs.len();
            step += 1;
            steps += 1;
            step_seconds.push(step_started.elapsed().as_secs_f64());
        }
        let (users, responses) = engine.embeddings(&ops)?;
        let val_accuracy = accuracy(&users, &responses, val_pairs)?;
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / seen_pairs.max(1) as f64,
            val_accuracy,
            seconds: epoch_started.elapsed().as_secs_f64(),
            steps,
            seconds_per_step: step_seconds.iter().sum::<f64>() / steps.max(1) as f64,
            step_seconds,
        };
        on_epoch(&record, config.epochs);
        history.push(record);
        // With `keep_last` only the last epoch is snapshotted (not every one on the way).
        let keep = if config.keep_last {
            epoch == config.epochs
        } else {
            match &best {
                None => true,
                Some((_, acc, ..)) => {
                    val_accuracy > *acc || (acc.is_nan() && !val_accuracy.is_nan())
                }
            }
        };
        if keep {
            best = Some((epoch, val_accuracy, engine.snapshot()?, users, responses));
        }
    }
    let (best_epoch, best_val_accuracy, snapshot, users, responses) = match best {
        Some(best) => best,
        None => {
            let (users, responses) = engine.embeddings(&ops)?;
            (0, f64::NAN, engine.snapshot()?, users, responses)
        }
    };
    let model = engine.into_model(snapshot)?;
    Ok(GcfTraining {
        model,
        users,
        responses,
        best_epoch,
        best_val_accuracy,
        history,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The best epoch so far: epoch, validation accuracy, parameters, final embeddings.
type Best = (usize, f64, Snapshot, Tensor, Tensor);

/// The parameters at one epoch, in the engine's own form.
enum Snapshot {
    Fused(fused::Params),
    Autograd(HashMap<String, Tensor>),
}

/// How a step is computed: the fused step with its hand-written backward (every model
/// with transforms), or candle's autograd (the ablations without, and the reference).
enum Engine {
    Fused(Box<FusedState>),
    Autograd(GcfModel, AdamW),
}

/// The fused engine's parameters, gradient buffer (kept across steps) and optimiser.
/// It holds no candle copy of the parameters (at 1 000 000 users one is 1.4 GB): the
/// model is rebuilt from the buffers at the end.
struct FusedState {
    params: fused::Params,
    grad: fused::Params,
    optimizer: fused::AdamW,
    arch: GcfArch,
    device: Device,
}

impl Engine {
    fn new(model: GcfModel, config: &TrainConfig, device: &Device) -> Result<Self> {
        if config.engine == StepEngine::Fused
            && device.is_cpu()
            && let Some(params) = fused::Params::from_model(&model)?
        {
            let arch = model.arch.clone();
            drop(model);
            return Ok(Engine::Fused(Box::new(FusedState {
                grad: params.zeros_like(),
                optimizer: fused::AdamW::new(
                    config.lr,
                    config.weight_decay,
                    config.fixed_user_init,
                ),
                params,
                arch,
                device: device.clone(),
            })));
        }
        let vars = model
            .named_vars()
            .into_iter()
            .filter(|(name, _)| !(config.fixed_user_init && name == INITIAL_USERS))
            .map(|(_, v)| v.clone())
            .collect();
        let optimizer = AdamW::new(
            vars,
            ParamsAdamW {
                lr: config.lr,
                weight_decay: config.weight_decay,
                ..ParamsAdamW::default()
            },
        )?;
        Ok(Engine::Autograd(model, optimizer))
    }

    fn snapshot(&self) -> Result<Snapshot> {
        Ok(match self {
            Engine::Fused(state) => Snapshot::Fused(state.params.clone()),
            Engine::Autograd(model, _) => Snapshot::Autograd(model.snapshot()?),
        })
    }

    /// The model with the parameters of `snapshot`.
    fn into_model(self, snapshot: Snapshot) -> Result<GcfModel> {
        match (self, snapshot) {
            (Engine::Fused(state), Snapshot::Fused(params)) => {
                let FusedState {
                    arch,
                    device,
                    params: current,
                    ..
                } = *state;
                // Initial values are overwritten: any generator will do.
                let model = GcfModel::new(
                    arch,
                    current.users(),
                    current.responses(),
                    &mut ChaCha8Rng::seed_from_u64(0),
                    DType::F32,
                    &device,
                )?;
                drop(current);
                params.write_to(&model)?;
                Ok(model)
            }
            (Engine::Autograd(model, _), Snapshot::Autograd(vars)) => {
                model.restore(&vars)?;
                Ok(model)
            }
            _ => Err(candle_core::Error::Msg(
                "a snapshot of another engine".into(),
            )),
        }
    }

    /// One optimiser step on `pairs` at learning rate `lr`; returns the batch's loss.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        ops: &GraphOps,
        pairs: &[(u32, u32, u32)],
        mask: &EdgeMask,
        lr: f64,
        config: &TrainConfig,
        rng: &mut ChaCha8Rng,
    ) -> Result<f64> {
        match self {
            Engine::Fused(state) => {
                let FusedState {
                    params,
                    grad,
                    optimizer,
                    ..
                } = state.as_mut();
                fused::clear(grad);
                let noise = fused::StepNoise {
                    dropout: config.edge_dropout,
                    rng,
                    mask,
                };
                let loss = fused::loss_and_gradients(
                    params,
                    ops,
                    pairs,
                    config.l2,
                    Some(noise),
                    config.layer_inputs,
                    grad,
                );
                optimizer.set_lr(lr);
                optimizer.step(params, grad);
                Ok(loss)
            }
            Engine::Autograd(model, optimizer) => {
                optimizer.set_learning_rate(lr);
                let device = model.device();
                let (u, a, b) = columns(pairs, &device)?;
                let (users, responses) =
                    model.propagate_masked(ops, Some((config.edge_dropout, rng)), mask)?;
                let eu = users.index_select(&u, 0)?;
                let ea = responses.index_select(&a, 0)?;
                let eb = responses.index_select(&b, 0)?;
                let margin = (scores(&eu, &ea)? - scores(&eu, &eb)?)?;
                let btl = neg_log_sigmoid(&margin)?.mean_all()?;
                let norms =
                    ((eu.sqr()?.sum_all()? + ea.sqr()?.sum_all()?)? + eb.sqr()?.sum_all()?)?;
                let loss = (btl + (norms * (config.l2 / pairs.len() as f64))?)?;
                optimizer.backward_step(&loss)?;
                Ok(f64::from(loss.to_scalar::<f32>()?))
            }
        }
    }

    /// The final embeddings without dropout (eq. 2–3).
    fn embeddings(&self, ops: &GraphOps) -> Result<(Tensor, Tensor)> {
        match self {
            Engine::Fused(state) => {
                let params = &state.params;
                let (users, responses) = fused::propagate(params, ops);
                let d = params.dim;
                Ok((
                    Tensor::from_vec(users, (params.users(), d), &state.device)?,
                    Tensor::from_vec(responses, (params.responses(), d), &state.device)?,
                ))
            }
            Engine::Autograd(model, _) => model.propagate(ops, None),
        }
    }
}
