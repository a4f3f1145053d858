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
}

impl Job {
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
