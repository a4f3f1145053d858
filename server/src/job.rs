//! A job: the tokenised rows of one request that the scheduler ([`crate::scheduler`])
//! packs into a model batch and the backend ([`crate::backend`]) scores, with what its
//! caller gets back. Both sides use it; it uses neither (no module cycle).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use copl_core::model::reward::Tokens;
use tokio::sync::oneshot;

use crate::users::Condition;

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
    /// The call's span (`rpc`, with its request id): the parent of the `queue` span and
    /// of the `forward` span the backend opens for this job's share of a batch.
    pub span: tracing::Span,
    /// `queue`: open from submission until the backend takes the job into a batch
    /// ([`Self::dequeued`]).
    pub queued: tracing::Span,
}

impl Job {
    /// A job of `rows` queued now, in the current span (the call's).
    pub(crate) fn new(
        rows: Vec<Row>,
        deadline: Option<Instant>,
        reply: oneshot::Sender<Result<Scored, ScoreError>>,
    ) -> Self {
        let span = tracing::Span::current();
        let queued = tracing::info_span!(parent: &span, "queue", rows = rows.len());
        Self {
            rows,
            deadline,
            enqueued: Instant::now(),
            reply,
            span,
            queued,
        }
    }

    /// Closes the `queue` span: the job is in a batch now.
    pub(crate) fn dequeued(&mut self) {
        self.queued = tracing::Span::none();
    }

    pub(crate) fn width(&self) -> usize {
        self.rows
            .iter()
            .map(|r| r.tokens.ids.len())
            .max()
            .unwrap_or(0)
    }

    /// Tokens of all its rows (no padding).
    pub(crate) fn tokens(&self) -> usize {
        self.rows.iter().map(|r| r.tokens.ids.len()).sum()
    }

    /// Answers a job that will not be scored (the caller may have gone: ignored).
    pub(crate) fn refuse(self, error: ScoreError) {
        let _ = self.reply.send(Err(error));
    }
}
