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

use tokio::sync::{mpsc, oneshot, watch};

pub use crate::job::{Row, ScoreError, Scored};
use crate::{backend::Backend, job::Job};

/// Packing limits of a model batch.
#[derive(Clone, Copy, Debug)]
pub struct BatchLimits {
    pub max_rows: usize,
    /// Tokens the forward computes: rows × longest row when it pads (`padded`), the
    /// rows' own tokens when it packs them.
    pub max_tokens: usize,
    /// Whether the model pads a batch to its longest row (candle's reference forward)
    /// or packs rows (the packed forward: no padding).
    pub padded: bool,
    pub max_queued: usize,
    /// Wait for more jobs while they arrive less than this apart (at most 4×) when a
    /// batch is not full and the backend is idle.
    pub linger: Duration,
}

impl BatchLimits {
    /// The tokens `rows` rows of `tokens` tokens in all, the longest `width`, cost the
    /// forward: rows × longest when it pads, the rows' own tokens when it packs. The one
    /// rule both the handlers (splitting a request into jobs) and the batching task
    /// (packing jobs into a batch) charge by.
    pub fn cost(&self, rows: usize, tokens: usize, width: usize) -> usize {
        if self.padded { rows * width } else { tokens }
    }

    /// Whether such rows fit one model batch.
    pub fn fits(&self, rows: usize, tokens: usize, width: usize) -> bool {
        rows <= self.max_rows && self.cost(rows, tokens, width) <= self.max_tokens
    }
}

/// Room in the bounded queue, taken before the work it is for: a request takes one job's
/// room before it is tokenised (a full queue refuses it before any work) and grows it to
/// all its jobs before the first is queued (a request is admitted whole or refused whole:
/// RESOURCE_EXHAUSTED never follows a partial compute). Room not used is given back
/// when the reservation drops.
#[derive(Debug)]
#[must_use]
pub struct Reservation {
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    jobs: usize,
}

impl Reservation {
    /// Grows the room to `jobs` jobs, or refuses (keeping what it had).
    pub fn grow(&mut self, jobs: usize) -> Result<(), ScoreError> {
        let extra = jobs.saturating_sub(self.jobs);
        take_room(&self.queued, self.max_queued, extra)?;
        self.jobs += extra;
        Ok(())
    }

    /// One job's room out of this reservation (None when it has none left).
    fn take_one(&mut self) -> Option<JobRoom> {
        self.jobs = self.jobs.checked_sub(1)?;
        Some(JobRoom(Reservation {
            queued: self.queued.clone(),
            max_queued: self.max_queued,
            jobs: 1,
        }))
    }

    /// Splits the room into one [`JobRoom`] per job.
    pub fn into_jobs(mut self) -> Vec<JobRoom> {
        std::iter::from_fn(|| self.take_one()).collect()
    }
}

/// The room of exactly one job, split off a [`Reservation`]: what
/// [`Scheduler::score`] queues a job in.
#[derive(Debug)]
#[must_use]
pub struct JobRoom(Reservation);

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.jobs > 0 {
            self.queued.fetch_sub(self.jobs, Ordering::SeqCst);
            publish_depth(&self.queued);
        }
    }
}

/// Takes room for `jobs` jobs in the queue counted by `queued`, all or none.
fn take_room(queued: &AtomicUsize, max_queued: usize, jobs: usize) -> Result<(), ScoreError> {
    if jobs == 0 {
        return Ok(());
    }
    let before = queued.fetch_add(jobs, Ordering::SeqCst);
    if before + jobs > max_queued {
        queued.fetch_sub(jobs, Ordering::SeqCst);
        // Another thread's publish may have read the count with these jobs in it: set
        // the gauge again, or it can stay above the queue (a refused burst at the end of
        // a stream left `copl_queue_depth` at 5 on an empty queue).
        publish_depth(queued);
        return Err(ScoreError::Overloaded(before));
    }
    publish_depth(queued);
    Ok(())
}

/// Sets `copl_queue_depth` from the count. Several threads change the count, so each
/// sets the gauge again until it reads what it set: the last writer leaves the count
/// there, not a value another thread computed before it. (Each change's own "left"
/// value, set in turn, could leave a stale depth behind.)
fn publish_depth(queued: &AtomicUsize) {
    let mut depth = queued.load(Ordering::SeqCst);
    loop {
        metrics::gauge!("copl_queue_depth").set(depth as f64);
        let now = queued.load(Ordering::SeqCst);
        if now == depth {
            return;
        }
        depth = now;
    }
}

/// The handle the RPC handlers use; cheap to clone.
#[derive(Clone, Debug)]
pub struct Scheduler {
    jobs: mpsc::UnboundedSender<Job>,
    /// The backend's failure signal ([`Backend::failed`]).
    failed: watch::Receiver<bool>,
    limits: BatchLimits,
    /// Jobs waiting for a batch (the bound of `max_queued`; `copl_queue_depth`).
    queued: Arc<AtomicUsize>,
}

impl Scheduler {
    /// Starts the batching task (on the current runtime) in front of `backend`.
    pub fn start(backend: Backend, limits: BatchLimits) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let failed = backend.failed();
        tokio::spawn(batching(rx, backend, limits, queued.clone()));
        Self {
            jobs,
            failed,
            limits,
            queued,
        }
    }

    /// Turns true once the model backend has failed (health then says NOT_SERVING).
    pub fn backend_failed(&self) -> watch::Receiver<bool> {
        self.failed.clone()
    }

    pub fn limits(&self) -> BatchLimits {
        self.limits
    }

    /// Room for one job in the queue, refused at once (RESOURCE_EXHAUSTED) when it is
    /// full: taken before the request's work ([`Reservation`]).
    pub fn reserve(&self) -> Result<Reservation, ScoreError> {
        take_room(&self.queued, self.limits.max_queued, 1)?;
        Ok(Reservation {
            queued: self.queued.clone(),
            max_queued: self.limits.max_queued,
            jobs: 1,
        })
    }

    /// Scores `rows` (at most one batch: `max_rows`, `max_tokens`) in one model batch,
    /// queued in `room`.
    pub async fn score(
        &self,
        room: JobRoom,
        rows: Vec<Row>,
        deadline: Option<Instant>,
    ) -> Result<Scored, ScoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job::new(rows, deadline, reply);
        if self.jobs.send(job).is_err() {
            return Err(ScoreError::ShuttingDown); // the room drops: given back
        }
        // Queued: the batching task gives the room back when it takes the job out.
        let JobRoom(mut room) = room;
        room.jobs = 0;
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
        queued.fetch_sub(batch.len(), Ordering::SeqCst);
        publish_depth(&queued);
        let rows: usize = batch.iter().map(|j| j.rows.len()).sum();
        last_rows = rows;
        metrics::histogram!("copl_batch_rows").record(rows as f64);
        metrics::histogram!("copl_batch_tokens").record(batch_tokens(&batch, limits) as f64);
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
    let pending_len = pending.len();
    let mut live = Vec::with_capacity(pending_len);
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
    // Dropped jobs leave the queue too (the gauge stayed at their count when every
    // pending job was a gone client's: nothing else set it until the next batch).
    if live.len() != pending_len {
        publish_depth(queued);
    }
    *pending = live;
}

/// The tokens a batch of `jobs` costs the forward (padding included when it pads).
fn batch_tokens(jobs: &[Job], limits: BatchLimits) -> usize {
    let rows: usize = jobs.iter().map(|j| j.rows.len()).sum();
    let tokens = jobs.iter().map(Job::tokens).sum();
    limits.cost(rows, tokens, jobs.iter().map(Job::width).max().unwrap_or(0))
}

/// Removes one batch's jobs from `pending` (kept in arrival order): the oldest, then
/// whatever fits the limits — oldest first for a packing forward; for a padding one,
/// jobs of the nearest width first (less padding).
fn take_batch(pending: &mut Vec<Job>, limits: BatchLimits) -> Vec<Job> {
    let first = pending.remove(0);
    let anchor = first.width();
    let (mut rows, mut width, mut tokens) = (first.rows.len(), anchor, first.tokens());
    let mut order: Vec<usize> = (0..pending.len()).collect();
    if limits.padded {
        order.sort_by_key(|&i| pending[i].width().abs_diff(anchor));
    }
    let mut chosen = Vec::new();
    for i in order {
        let job = &pending[i];
        let w = width.max(job.width());
        let r = rows + job.rows.len();
        let t = tokens + job.tokens();
        if limits.fits(r, t, w) {
            rows = r;
            width = w;
            tokens = t;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::users::Condition;
    use copl_core::model::{UserRouting, reward::Tokens};

    fn job(lengths: &[usize]) -> Job {
        let condition = Arc::new(Condition {
            routing: UserRouting::population(0),
            embedding: Vec::new(),
            personalised: false,
        });
        Job::new(
            lengths
                .iter()
                .map(|&n| Row {
                    tokens: Tokens {
                        ids: vec![1; n],
                        type_ids: vec![0; n],
                    },
                    condition: condition.clone(),
                })
                .collect(),
            None,
            oneshot::channel().0,
        )
    }

    fn limits(padded: bool) -> BatchLimits {
        BatchLimits {
            max_rows: 64,
            max_tokens: 200,
            padded,
            max_queued: 16,
            linger: Duration::ZERO,
        }
    }

    fn lengths(batch: &[Job]) -> Vec<usize> {
        batch.iter().map(|j| j.tokens()).collect()
    }

    #[test]
    fn a_packing_forward_is_charged_its_rows_own_tokens_oldest_first() {
        // One long row and many short ones: 100 + 10 × 10 = 200 real tokens fit, though
        // padded to the longest they would be 11 × 100.
        let mut pending: Vec<Job> = std::iter::once(job(&[100]))
            .chain((0..12).map(|_| job(&[10])))
            .collect();
        let batch = take_batch(&mut pending, limits(false));
        assert_eq!(lengths(&batch), [vec![100], vec![10; 10]].concat());
        assert_eq!(batch_tokens(&batch, limits(false)), 200);
        assert_eq!(pending.len(), 2);
    }

    #[test]
    fn a_padding_forward_is_charged_rows_times_the_longest_nearest_width_first() {
        let mut pending = vec![job(&[40]), job(&[100]), job(&[50]), job(&[45])];
        let batch = take_batch(&mut pending, limits(true));
        // 40, then the nearest widths 45 and 50 (3 rows × 50 = 150, kept in arrival
        // order); adding 100 would cost 4 × 100.
        assert_eq!(lengths(&batch), vec![40, 50, 45]);
        assert_eq!(batch_tokens(&batch, limits(true)), 150);
        assert_eq!(lengths(&pending), vec![100]);
    }

    /// Spans as a tracing layer sees them: (id, name, parent id) on creation, ids on
    /// close. Installed as the process's default once (the backend thread's spans go to
    /// the global dispatcher, not a test's thread-local one).
    #[derive(Default)]
    struct Recorded {
        opened: Vec<(u64, &'static str, Option<u64>)>,
        closed: Vec<u64>,
    }

    struct Recorder(Arc<std::sync::Mutex<Recorded>>);

    impl<S> tracing_subscriber::Layer<S> for Recorder
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        fn on_new_span(
            &self,
            attrs: &tracing::span::Attributes<'_>,
            id: &tracing::span::Id,
            ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let parent = attrs.parent().cloned().or_else(|| {
                attrs
                    .is_contextual()
                    .then(|| ctx.current_span().id().cloned())
                    .flatten()
            });
            let mut recorded = self.0.lock().unwrap();
            recorded.opened.push((
                id.into_u64(),
                attrs.metadata().name(),
                parent.map(|p| p.into_u64()),
            ));
        }

        fn on_close(&self, id: tracing::span::Id, _: tracing_subscriber::layer::Context<'_, S>) {
            self.0.lock().unwrap().closed.push(id.into_u64());
        }
    }

    fn recorded() -> Arc<std::sync::Mutex<Recorded>> {
        use tracing_subscriber::layer::SubscriberExt;
        static RECORDED: std::sync::OnceLock<Arc<std::sync::Mutex<Recorded>>> =
            std::sync::OnceLock::new();
        RECORDED
            .get_or_init(|| {
                let recorded = Arc::new(std::sync::Mutex::new(Recorded::default()));
                let subscriber = tracing_subscriber::registry().with(Recorder(recorded.clone()));
                tracing::subscriber::set_global_default(subscriber).unwrap();
                recorded
            })
            .clone()
    }

    /// A call's trace: its `queue` span (closed when the backend takes the job) and its
    /// `forward` span (the batch's forward) are children of the call's span, whichever
    /// thread opens them.
    #[tokio::test]
    async fn a_calls_queue_and_forward_spans_are_children_of_its_span() {
        use tracing::Instrument;
        let recorded = recorded();
        let backend = crate::backend::Backend::spawn(|batch: &[Job]| {
            Ok(vec![0.5; batch.iter().map(|j| j.rows.len()).sum()])
        })
        .unwrap();
        let scheduler = Scheduler::start(backend, limits(false));
        let call = tracing::info_span!("rpc", test = "spans");
        let room = scheduler.reserve().unwrap().into_jobs().pop().unwrap();
        let rows = job(&[4, 6]).rows;
        let scored = scheduler
            .score(room, rows, None)
            .instrument(call.clone())
            .await
            .unwrap();
        assert_eq!(scored.rewards, vec![0.5, 0.5]);
        let call = call.id().unwrap().into_u64();
        let recorded = recorded.lock().unwrap();
        let children: Vec<(u64, &str)> = recorded
            .opened
            .iter()
            .filter(|(_, _, parent)| *parent == Some(call))
            .map(|&(id, name, _)| (id, name))
            .collect();
        let names: Vec<&str> = children.iter().map(|c| c.1).collect();
        assert_eq!(names, vec!["queue", "forward"], "{:?}", recorded.opened);
        for (id, name) in children {
            assert!(recorded.closed.contains(&id), "{name} never closed");
        }
    }
}
