//! The scheduler between the RPC handlers and the model (text-embeddings-inference's
//! router → queue → backend split): handlers submit *jobs* (the tokenised rows of one
//! request, at most one model batch's worth), a batching task packs jobs into model
//! batches under a row and token budget, and [`crate::backend`] runs them on its own
//! thread. The queue is bounded: a job beyond `max_queued_requests` is refused at once
//! (RESOURCE_EXHAUSTED). Jobs whose caller went away or whose deadline passed are
//! dropped before compute. A batch is packed when the backend is idle, from every job
//! waiting then; jobs keep arriving (tokenised by their handlers) while a batch runs.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use copl_core::model::reward::Tokens;
use tokio::sync::{mpsc, oneshot};

use crate::{backend::Backend, users::Condition};

/// One row to score: a tokenised input and its user.
#[derive(Clone, Debug)]
pub struct Row {
    pub tokens: Tokens,
    pub condition: Arc<Condition>,
}

/// What a job's caller gets back.
#[derive(Clone, Debug)]
pub struct Scored {
    /// One reward per row, in order.
    pub rewards: Vec<f32>,
    pub queue_time: Duration,
    pub inference_time: Duration,
}

/// Why a job was not scored.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("the queue is full ({0} requests waiting); retry with back-off")]
    Overloaded(usize),
    #[error("the deadline passed before the request reached the model")]
    DeadlineExceeded,
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("model: {0}")]
    Model(String),
}

/// One request's rows, scored in one model batch.
#[derive(Debug)]
pub(crate) struct Job {
    pub rows: Vec<Row>,
    pub deadline: Option<Instant>,
    pub enqueued: Instant,
    pub reply: oneshot::Sender<Result<Scored, ScoreError>>,
}

impl Job {
    fn width(&self) -> usize {
        self.rows
            .iter()
            .map(|r| r.tokens.ids.len())
            .max()
            .unwrap_or(0)
    }

    /// Answers a job that will not be scored (the caller may have gone: ignored).
    fn refuse(self, error: ScoreError) {
        let _ = self.reply.send(Err(error));
    }
}

/// Packing limits of a model batch.
#[derive(Clone, Copy, Debug)]
pub struct BatchLimits {
    pub max_rows: usize,
    /// Rows × longest row (padding included).
    pub max_tokens: usize,
    pub max_queued: usize,
    /// Wait for more jobs while they arrive less than this apart (at most 4×) when a
    /// batch is not full and the backend is idle.
    pub linger: Duration,
}

/// The handle the RPC handlers use; cheap to clone.
#[derive(Clone, Debug)]
pub struct Scheduler {
    jobs: mpsc::UnboundedSender<Job>,
    limits: BatchLimits,
    /// Jobs waiting for a batch (the bound of `max_queued`; `copl_queue_depth`).
    queued: Arc<AtomicUsize>,
}

impl Scheduler {
    /// Starts the batching task (on the current runtime) in front of `backend`.
    pub fn start(backend: Backend, limits: BatchLimits) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        tokio::spawn(batching(rx, backend, limits, queued.clone()));
        Self {
            jobs,
            limits,
            queued,
        }
    }

    pub fn limits(&self) -> BatchLimits {
        self.limits
    }

    /// Scores `rows` (at most one batch: `max_rows`, `max_tokens`) in one model batch.
    pub async fn score(
        &self,
        rows: Vec<Row>,
        deadline: Option<Instant>,
    ) -> Result<Scored, ScoreError> {
        let queued = self.queued.fetch_add(1, Ordering::SeqCst);
        if queued >= self.limits.max_queued {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(ScoreError::Overloaded(queued));
        }
        metrics::gauge!("copl_queue_depth").set((queued + 1) as f64);
        let (reply, answer) = oneshot::channel();
        let job = Job {
            rows,
            deadline,
            enqueued: Instant::now(),
            reply,
        };
        if self.jobs.send(job).is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(ScoreError::ShuttingDown);
        }
        answer.await.unwrap_or(Err(ScoreError::ShuttingDown))
    }
}

/// Packs waiting jobs into batches: the oldest job first (no starvation), then the
/// others closest to its length, while the row and token budgets allow.
async fn batching(
    mut rx: mpsc::UnboundedReceiver<Job>,
    backend: Backend,
    limits: BatchLimits,
    queued: Arc<AtomicUsize>,
) {
    let mut pending: Vec<Job> = Vec::new();
    let mut last_rows = 0;
    loop {
        if pending.is_empty() {
            match rx.recv().await {
                Some(job) => pending.push(job),
                None => return,
            }
        }
        // Wait for the backend, taking in jobs (and pruning dead ones) meanwhile.
        let idle = tokio::select! {
            idle = backend.idle() => idle,
            job = rx.recv() => {
                match job {
                    Some(job) => pending.push(job),
                    None => return,
                }
                prune(&mut pending, &queued);
                continue;
            }
        };
        while let Ok(job) = rx.try_recv() {
            pending.push(job);
        }
        if !linger(&mut rx, &mut pending, limits, last_rows).await {
            return;
        }
        prune(&mut pending, &queued);
        if pending.is_empty() {
            continue; // the permit drops: the backend stays idle
        }
        let batch = take_batch(&mut pending, limits);
        let left = queued.fetch_sub(batch.len(), Ordering::SeqCst) - batch.len();
        metrics::gauge!("copl_queue_depth").set(left as f64);
        let rows: usize = batch.iter().map(|j| j.rows.len()).sum();
        let width = batch.iter().map(Job::width).max().unwrap_or(0);
        last_rows = rows;
        metrics::histogram!("copl_batch_rows").record(rows as f64);
        metrics::histogram!("copl_batch_tokens").record((rows * width) as f64);
        if let Err(returned) = backend.run(batch, idle) {
            for job in returned {
                job.refuse(ScoreError::ShuttingDown);
            }
            return;
        }
    }
}

/// Takes in jobs while they keep coming less than `limits.linger` apart, up to `expected`
/// rows (the previous batch's: its callers, just answered, are coming back), a full batch,
/// or 4 × `linger` in all. A lone caller never waits. False when the channel closed.
async fn linger(
    rx: &mut mpsc::UnboundedReceiver<Job>,
    pending: &mut Vec<Job>,
    limits: BatchLimits,
    expected: usize,
) -> bool {
    if limits.linger.is_zero() {
        return true;
    }
    let until = Instant::now() + 4 * limits.linger;
    let mut rows: usize = pending.iter().map(|j| j.rows.len()).sum();
    while rows < expected.min(limits.max_rows) {
        let wait = limits
            .linger
            .min(until.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(job)) => {
                rows += job.rows.len();
                pending.push(job);
            }
            Ok(None) => return false,
            Err(_) => break,
        }
    }
    true
}

/// Drops the jobs whose caller went away and refuses those whose deadline passed.
fn prune(pending: &mut Vec<Job>, queued: &AtomicUsize) {
    let now = Instant::now();
    let mut live = Vec::with_capacity(pending.len());
    for job in pending.drain(..) {
        if job.reply.is_closed() {
            queued.fetch_sub(1, Ordering::SeqCst);
            metrics::counter!("copl_jobs_dropped_total", "reason" => "cancelled").increment(1);
        } else if job.deadline.is_some_and(|d| d <= now) {
            queued.fetch_sub(1, Ordering::SeqCst);
            metrics::counter!("copl_jobs_dropped_total", "reason" => "deadline").increment(1);
            job.refuse(ScoreError::DeadlineExceeded);
        } else {
            live.push(job);
        }
    }
    *pending = live;
}

/// Removes one batch's jobs from `pending` (kept in arrival order).
fn take_batch(pending: &mut Vec<Job>, limits: BatchLimits) -> Vec<Job> {
    let first = pending.remove(0);
    let anchor = first.width();
    let (mut rows, mut width) = (first.rows.len(), anchor);
    let mut order: Vec<usize> = (0..pending.len()).collect();
    order.sort_by_key(|&i| pending[i].width().abs_diff(anchor));
    let mut chosen = Vec::new();
    for i in order {
        let job = &pending[i];
        let w = width.max(job.width());
        let r = rows + job.rows.len();
        if r <= limits.max_rows && r * w <= limits.max_tokens {
            rows = r;
            width = w;
            chosen.push(i);
        }
    }
    chosen.sort_unstable();
    let mut batch = vec![first];
    for (taken, i) in chosen.into_iter().enumerate() {
        batch.push(pending.remove(i - taken));
    }
    batch
}
