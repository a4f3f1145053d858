//! The model backend: one OS thread owns the compute (candle runs its own worker
//! threads for the matrix products) and runs the batches the scheduler packs when it is
//! idle, so no model work ever blocks the async runtime. A batch is padded, conditioned from each
//! row's cached routing (no gate runs) and scored in one forward.
//!
//! A panic in the model is caught per batch: that batch's callers get INTERNAL, the
//! thread goes on, and [`PANICS_BEFORE_FAILED`] panicked batches in a row (or the
//! thread ending) mark the backend failed, which turns health NOT_SERVING so an
//! orchestrator restarts the replica (issue #15: a panic used to end scoring for good
//! while health still said SERVING).

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Arc,
    time::Instant,
};

use copl_core::model::reward::{RewardModel, ServedRow};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use crate::job::{Job, ScoreError, Scored};

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
    failed: watch::Receiver<bool>,
}

/// Panicked batches in a row after which the backend counts as failed (one panic may be
/// one poisonous input; several in a row say the model or its memory is broken).
pub const PANICS_BEFORE_FAILED: usize = 3;

/// Marks the backend failed when the thread ends, however it ends.
struct FailOnExit(watch::Sender<bool>);

impl Drop for FailOnExit {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

impl Backend {
    /// Starts the thread on `model`'s served forward.
    pub fn start(model: Arc<RewardModel>) -> std::io::Result<Self> {
        Self::spawn(move |batch| score(&model, batch).map_err(|e| e.to_string()))
    }

    /// Starts the thread on `score` (rewards of a batch's rows, in order).
    pub(crate) fn spawn(
        mut score: impl FnMut(&[Job]) -> Result<Vec<f32>, String> + Send + 'static,
    ) -> std::io::Result<Self> {
        let (batches, mut rx) = mpsc::unbounded_channel::<(Vec<Job>, OwnedSemaphorePermit)>();
        let (failed_tx, failed) = watch::channel(false);
        std::thread::Builder::new()
            .name("copl-backend".into())
            .spawn(move || {
                let failed = FailOnExit(failed_tx);
                let mut panics_in_a_row = 0;
                while let Some((batch, permit)) = rx.blocking_recv() {
                    // Settled before the callers are answered: a caller that sees the
                    // last panic's error and asks health already sees NOT_SERVING.
                    run_batch(&mut score, batch, |outcome| {
                        match outcome {
                            Outcome::Panicked => panics_in_a_row += 1,
                            Outcome::Ran => panics_in_a_row = 0,
                            Outcome::Skipped => {}
                        }
                        if panics_in_a_row >= PANICS_BEFORE_FAILED {
                            failed.0.send_replace(true);
                        }
                    });
                    drop(permit); // idle again
                }
            })?;
        Ok(Self {
            batches,
            idle: Arc::new(Semaphore::new(1)),
            failed,
        })
    }

    /// Turns true (and stays so) once the backend has failed: its thread ended, or
    /// [`PANICS_BEFORE_FAILED`] batches in a row panicked.
    pub fn failed(&self) -> watch::Receiver<bool> {
        self.failed.clone()
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

/// What became of one batch.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Every caller had gone: nothing computed.
    Skipped,
    Ran,
    Panicked,
}

/// Scores `batch`, hands its outcome to `settle`, then answers its callers.
fn run_batch(
    score: &mut impl FnMut(&[Job]) -> Result<Vec<f32>, String>,
    batch: Vec<Job>,
    settle: impl FnOnce(Outcome),
) {
    // Callers that went away while the batch waited are not computed.
    let mut batch: Vec<Job> = batch.into_iter().filter(|j| !j.reply.is_closed()).collect();
    if batch.is_empty() {
        return settle(Outcome::Skipped);
    }
    // Each call's `queue` span ends and its `forward` span (this batch's forward, shared)
    // begins: a call's trace shows tokenise, queue and forward as its children.
    let (rows, jobs) = (
        batch.iter().map(|j| j.rows.len()).sum::<usize>(),
        batch.len(),
    );
    let forward: Vec<tracing::Span> = batch
        .iter_mut()
        .map(|job| {
            job.dequeued();
            tracing::info_span!(
                parent: &job.span,
                "forward",
                rows = job.rows.len(),
                batch_rows = rows,
                batch_jobs = jobs
            )
        })
        .collect();
    let started = Instant::now();
    // The model holds no state a half-done batch could leave inconsistent (weights are
    // read-only; scratch is per call), so going on after a panic is sound.
    let (result, outcome) = match catch_unwind(AssertUnwindSafe(|| score(&batch))) {
        Ok(result) => (result, Outcome::Ran),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            tracing::error!(panic = %what, rows = batch.iter().map(|j| j.rows.len()).sum::<usize>(), "the model panicked on a batch");
            metrics::counter!("copl_backend_panics_total").increment(1);
            (
                Err(format!(
                    "the model failed on this batch (a panic: {what}); retry, and report it if it repeats"
                )),
                Outcome::Panicked,
            )
        }
    };
    settle(outcome);
    let inference_time = started.elapsed();
    drop(forward);
    metrics::histogram!("copl_batch_duration_seconds").record(inference_time.as_secs_f64());
    match result {
        Ok(rewards) if rewards.len() != batch.iter().map(|j| j.rows.len()).sum::<usize>() => {
            tracing::error!(
                rewards = rewards.len(),
                "the model returned a reward count unlike the batch's rows"
            );
            for job in batch {
                let _ = job.reply.send(Err(ScoreError::Model(
                    "the model returned a reward count unlike the batch's rows".into(),
                )));
            }
        }
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
                let _ = job.reply.send(Err(ScoreError::Model(e.clone())));
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{job::Row, users::Condition};
    use copl_core::model::{UserRouting, reward::Tokens};
    use tokio::sync::oneshot;

    /// A one-row job whose only token is `token`, and where its answer arrives.
    fn job(token: u32) -> (Job, oneshot::Receiver<Result<Scored, ScoreError>>) {
        let (reply, answer) = oneshot::channel();
        let row = Row {
            tokens: Tokens {
                ids: vec![token],
                type_ids: vec![0],
            },
            condition: Arc::new(Condition {
                routing: UserRouting::population(0),
                embedding: Vec::new(),
                personalised: false,
            }),
        };
        let job = Job::new(vec![row], None, reply);
        (job, answer)
    }

    async fn run(backend: &Backend, token: u32) -> Result<Scored, ScoreError> {
        let (job, answer) = job(token);
        let idle = backend.idle().await;
        backend.run(vec![job], idle).unwrap();
        answer.await.unwrap()
    }

    #[tokio::test]
    async fn a_panicking_batch_fails_alone_and_panics_in_a_row_mark_the_backend_failed() {
        // Token 0 panics; any other is scored as its value.
        let backend = Backend::spawn(|batch: &[Job]| {
            let token = batch[0].rows[0].tokens.ids[0];
            assert_ne!(token, 0, "poisonous input");
            Ok(vec![token as f32])
        })
        .unwrap();
        let failed = backend.failed();
        let refused = run(&backend, 0).await.unwrap_err();
        assert!(
            matches!(&refused, ScoreError::Model(m) if m.contains("panic") && m.contains("poisonous input")),
            "{refused:?}"
        );
        // The thread goes on: the next batch is scored, and one panic is not a failure.
        assert_eq!(run(&backend, 7).await.unwrap().rewards, vec![7.0]);
        assert!(!*failed.borrow());
        for _ in 0..PANICS_BEFORE_FAILED - 1 {
            run(&backend, 0).await.unwrap_err();
        }
        assert!(
            !*failed.borrow(),
            "{} panics in a row are not yet a failure",
            PANICS_BEFORE_FAILED - 1
        );
        run(&backend, 0).await.unwrap_err();
        assert!(*failed.borrow());
        // Still answering (health tells the orchestrator; calls do not hang).
        assert_eq!(run(&backend, 3).await.unwrap().rewards, vec![3.0]);
    }

    #[tokio::test]
    async fn a_wrong_reward_count_is_an_error_not_a_panic() {
        let backend = Backend::spawn(|_: &[Job]| Ok(Vec::new())).unwrap();
        let refused = run(&backend, 1).await.unwrap_err();
        assert!(matches!(refused, ScoreError::Model(_)), "{refused:?}");
        assert!(!*backend.failed().borrow());
    }
}
