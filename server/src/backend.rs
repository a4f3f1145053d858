//! The model backend: one OS thread owns the compute (candle runs its own worker
//! threads for the matrix products) and runs the batches the scheduler packs when it is
//! idle, so no model work ever blocks the async runtime. A batch is padded, conditioned from each
//! row's cached routing (no gate runs) and scored in one forward.

use std::{sync::Arc, time::Instant};

use copl_core::model::reward::{RewardModel, ServedRow};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::scheduler::{Job, ScoreError, Scored};

/// The sending side of the backend thread. The backend is *pulled*: the scheduler packs a
/// batch only when the thread is idle ([`Backend::idle`]), from everything waiting at that
/// moment. (Packing ahead froze a one-row batch while the rest of a burst waited behind
/// it: at concurrency 8 the server then ran batches of 1 and 7 in turn.) Tokenisation,
/// the costly part of preparing a batch, is already done by the handlers while the
/// previous batch runs.
#[derive(Clone, Debug)]
pub struct Backend {
    batches: mpsc::UnboundedSender<(Vec<Job>, OwnedSemaphorePermit)>,
    idle: Arc<Semaphore>,
}

impl Backend {
    /// Starts the thread.
    pub fn start(model: Arc<RewardModel>) -> std::io::Result<Self> {
        let (batches, mut rx) = mpsc::unbounded_channel::<(Vec<Job>, OwnedSemaphorePermit)>();
        std::thread::Builder::new()
            .name("copl-backend".into())
            .spawn(move || {
                while let Some((batch, permit)) = rx.blocking_recv() {
                    run_batch(&model, batch);
                    drop(permit); // idle again
                }
            })?;
        Ok(Self {
            batches,
            idle: Arc::new(Semaphore::new(1)),
        })
    }

    /// Waits until the thread has no batch; the permit goes with the next batch.
    pub(crate) async fn idle(&self) -> OwnedSemaphorePermit {
        self.idle
            .clone()
            .acquire_owned()
            .await
            .expect("the backend semaphore is never closed")
    }

    /// Hands a batch to the idle thread; gives the jobs back when the thread is gone.
    pub(crate) fn run(&self, batch: Vec<Job>, idle: OwnedSemaphorePermit) -> Result<(), Vec<Job>> {
        self.batches.send((batch, idle)).map_err(|e| e.0.0)
    }
}

fn run_batch(model: &RewardModel, batch: Vec<Job>) {
    // Callers that went away while the batch waited are not computed.
    let batch: Vec<Job> = batch.into_iter().filter(|j| !j.reply.is_closed()).collect();
    if batch.is_empty() {
        return;
    }
    let started = Instant::now();
    let result = score(model, &batch);
    let inference_time = started.elapsed();
    metrics::histogram!("copl_batch_duration_seconds").record(inference_time.as_secs_f64());
    match result {
        Ok(rewards) => {
            let mut offset = 0;
            for job in batch {
                let n = job.rows.len();
                let scored = Scored {
                    rewards: rewards[offset..offset + n].to_vec(),
                    queue_time: started.saturating_duration_since(job.enqueued),
                    inference_time,
                };
                offset += n;
                let _ = job.reply.send(Ok(scored));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "model batch failed");
            for job in batch {
                let _ = job.reply.send(Err(ScoreError::Model(e.to_string())));
            }
        }
    }
}

fn score(model: &RewardModel, batch: &[Job]) -> candle_core::Result<Vec<f32>> {
    let rows: Vec<ServedRow<'_>> = batch
        .iter()
        .flat_map(|j| j.rows.iter())
        .map(|r| ServedRow {
            tokens: &r.tokens,
            routing: &r.condition.routing,
            embedding: &r.condition.embedding,
        })
        .collect();
    model.score_served(&rows)
}
