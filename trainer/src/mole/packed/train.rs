//! The training loop on the packed step: `copl-train mole --engine packed` (or `auto`).

use anyhow::Result;
use candle_nn::VarMap;
use copl_core::model::reward::RewardModel;

use super::{PackedFrozenCache, PackedStep};
use crate::mole::train::{Batches, TextPair};

/// [`crate::mole::train::train_autograd`] with the packed step: the same batches, schedule, clipping,
/// validation and best-parameter choice; the trainable buffers live in the step and are
/// written back to `trainable` for each validation and at the end (the best ones).
#[allow(clippy::too_many_arguments)]
pub fn train_packed(
    model: &mut RewardModel,
    trainable: &VarMap,
    train: &[TextPair],
    val: &[TextPair],
    probe: Option<&crate::mole::routing::RoutingProbe>,
    config: &crate::mole::train::MoleTrainConfig,
    cache: &mut copl_core::model::frozen_cache::FrozenCache,
    on_step: &mut dyn FnMut(usize, f64),
) -> Result<crate::mole::train::MoleTraining> {
    use std::time::Instant;

    use crate::mole::train::{MoleTraining, StepRecord, accuracy};
    use crate::optim::{BufferAdamW, clip_buffers, schedule};

    let mut step_state = PackedStep::new(model)?;
    step_state.frozen_gates = config.routing.is_oracle();
    // Without frozen layers (MoLE in every layer) there is nothing worth caching.
    let budget = if step_state.bert.first_adapted() == 0 {
        0
    } else {
        config.frozen_cache_mib << 20
    };
    let mut frozen = PackedFrozenCache::new(budget);
    let mut optimiser = BufferAdamW::new(config.lr, config.weight_decay);
    let val = crate::mole::train::spread(val.to_vec(), config.val_pairs);
    let warmup = config.warmup_steps();
    let mut batches = Batches::new(train, config.seed);
    let started = Instant::now();
    let mut training_seconds = 0f64;
    let mut best: Option<(usize, f64, Vec<Vec<f32>>)> = None;
    let mut history = Vec::new();
    let (mut loss_sum, mut loss_count) = (0f64, 0usize);
    for step in 0..config.steps {
        let step_started = Instant::now();
        let batch = batches.next(config.batch_pairs);
        let noise = batches.gate_noise(
            step_state.gates.len(),
            model.config.mole.experts,
            2 * batch.len(),
            model.config.mole.gate_noise,
        )?;
        let (loss, mut grads) = step_state.loss_and_gradients(
            model,
            &batch,
            noise.as_deref(),
            config.reweight,
            config.load_balance,
            &mut frozen,
        )?;
        clip_buffers(grads.buffers_mut(), config.clip);
        optimiser.lr = schedule(config.lr, step, warmup, config.steps);
        optimiser.step(
            step_state.parameters_mut(),
            grads.buffers_mut().into_iter().map(|g| &*g).collect(),
        );
        training_seconds += step_started.elapsed().as_secs_f64();
        loss_sum += loss;
        loss_count += 1;
        on_step(step, loss);
        let last = step + 1 == config.steps;
        if (step + 1) % config.eval_every.max(1) == 0 || last {
            step_state.write_back(model, trainable)?;
            let val_accuracy = accuracy(model, &val, 32, cache)?;
            let routing = probe.map(|p| p.measure(model)).transpose()?.flatten();
            history.push(StepRecord {
                step: step + 1,
                train_loss: loss_sum / loss_count.max(1) as f64,
                val_accuracy,
                seconds: started.elapsed().as_secs_f64(),
                routing,
            });
            (loss_sum, loss_count) = (0.0, 0);
            if best.as_ref().is_none_or(|b| val_accuracy > b.1) {
                let snapshot = step_state
                    .parameters_mut()
                    .iter()
                    .map(|b| b.to_vec())
                    .collect();
                best = Some((step + 1, val_accuracy, snapshot));
            }
        }
    }
    let (best_step, best_val_accuracy, snapshot) =
        best.ok_or_else(|| anyhow::anyhow!("no validation ran"))?;
    for (buffer, values) in step_state.parameters_mut().into_iter().zip(snapshot) {
        buffer.copy_from_slice(&values);
    }
    step_state.write_back(model, trainable)?;
    let pairs = (config.steps * config.batch_pairs.min(train.len())) as f64;
    Ok(MoleTraining {
        engine: crate::mole::train::MoleEngine::Packed,
        best_step,
        best_val_accuracy,
        history,
        train_seconds: started.elapsed().as_secs_f64(),
        pairs_per_second: pairs / training_seconds.max(1e-9),
        frozen_cache_texts: frozen.len(),
        frozen_cache_hit_rate: if frozen.is_empty() {
            0.0
        } else {
            frozen.hit_rate()
        },
    })
}
