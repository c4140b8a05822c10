//! Enrolments committed together. Each commit of a durable store waits for the disk (an
//! fsync with SQLite's `synchronous=FULL`), and writers take their turn one at a time, so
//! with one transaction per enrolment a fleet enrolling at once queues on the disk. A
//! single task writes instead whatever enrolments are waiting when it is free, in one
//! transaction, and answers each caller with its own outcome: a lone enrolment is written
//! at once, a burst shares its commits.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use crate::domain::agent::Agent;
use crate::domain::audit::AuditEvent;

/// At most this many enrolments share a transaction.
const MAX_BATCH: usize = 64;
/// Enrolments waiting beyond this make their callers wait to queue.
const QUEUE_LENGTH: usize = 1024;

/// One agent to insert, with its certificate and the audit event of its enrolment.
pub(super) struct AgentInsert {
    pub agent: Agent,
    pub certificate_pem: String,
    pub event: AuditEvent,
    /// The caller's span (its request id), for the audit line the writing task logs.
    pub span: tracing::Span,
}

type Reply = oneshot::Sender<Result<(), StoreError>>;

/// The queue in front of the writing task.
pub(super) struct GroupCommit {
    queue: mpsc::Sender<(AgentInsert, Reply)>,
}

impl GroupCommit {
    /// Starts the writing task. `write` writes a batch and returns one outcome per insert,
    /// in order. The task ends when the store holding this queue is dropped.
    pub fn start<W, F>(mut write: W) -> Self
    where
        W: FnMut(Vec<AgentInsert>) -> F + Send + 'static,
        F: Future<Output = Vec<Result<(), StoreError>>> + Send,
    {
        let (queue, mut waiting) = mpsc::channel::<(AgentInsert, Reply)>(QUEUE_LENGTH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (inserts, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
                let outcomes = write(inserts).await;
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    // A caller that went away no longer waits for its answer; its agent is
                    // stored all the same and reaches the index through the change feed.
                    let _ = reply.send(outcome);
                }
            }
        });
        Self { queue }
    }

    /// Inserts one agent, committed with whatever other enrolments wait alongside it.
    pub async fn insert(&self, insert: AgentInsert) -> Result<(), StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send((insert, reply))
            .await
            .map_err(|_| closed())?;
        outcome.await.map_err(|_| closed())?
    }
}

/// The writing task is gone: the store is shutting down.
fn closed() -> StoreError {
    StoreError::Unavailable(Arc::new(sqlx::Error::PoolClosed))
}
