//! The model backend: one OS thread owns the compute (candle runs its own worker
//! threads for the matrix products) and runs the batches the scheduler packs, so no
//! model work ever blocks the async runtime. A batch is padded, conditioned from each
//! row's cached routing (no gate runs) and scored in one forward.

use std::{sync::Arc, time::Instant};

use copl_core::model::reward::RewardModel;
use tokio::sync::mpsc;

use crate::scheduler::{Job, ScoreError, Scored};

/// The sending side of the backend thread; one batch waits while one runs.
#[derive(Clone, Debug)]
pub struct Backend {
    batches: mpsc::Sender<Vec<Job>>,
}

impl Backend {
    /// Starts the thread.
    pub fn start(model: Arc<RewardModel>) -> std::io::Result<Self> {
        let (batches, mut rx) = mpsc::channel::<Vec<Job>>(1);
        std::thread::Builder::new()
            .name("copl-backend".into())
            .spawn(move || {
                while let Some(batch) = rx.blocking_recv() {
                    run_batch(&model, batch);
                }
            })?;
        Ok(Self { batches })
    }

    /// Hands a batch to the thread (waits while another batch is waiting); gives the
    /// jobs back when the thread is gone.
    pub(crate) async fn run(&self, batch: Vec<Job>) -> Result<(), Vec<Job>> {
        self.batches.send(batch).await.map_err(|e| e.0)
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
    let rows: Vec<_> = batch.iter().flat_map(|j| j.rows.iter()).collect();
    let tokens: Vec<_> = rows.iter().map(|r| &r.tokens).collect();
    let routings: Vec<_> = rows.iter().map(|r| &r.condition.routing).collect();
    let embeddings: Vec<&[f32]> = rows
        .iter()
        .map(|r| r.condition.embedding.as_slice())
        .collect();
    let padded = model.pad(&tokens)?;
    let conditioning = model.condition_cached(&routings, &embeddings)?;
    model
        .score(&padded, &conditioning)?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1()
}
