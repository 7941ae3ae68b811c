//! Group commit, for both backends. Every commit waits for a flush to disk, and a transaction
//! per report costs its statements' round trips each time: one transaction per report caps
//! ingest at the disk's flush rate (SQLite, one writer) or at the database's CPU (PostgreSQL,
//! about seven round trips a report). Here one task owns the writing: it takes every report
//! queued while the previous commit was flushing, writes them all in one transaction with a
//! few set-based statements, commits once, and only then answers each caller. An
//! acknowledgement still means "on disk"; a busy moment just shares one commit among many
//! reports. A lone report is written at once, without waiting to gather company.

use super::{NewRevision, Recorded, StoreError};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

/// Most reports in one transaction: bounds how long the writer holds SQLite's lock (readers in
/// WAL mode never wait for it, but a review being written does) and the work redone if the
/// group fails and falls back to one transaction per report.
const MAX_GROUP: usize = 256;

/// Reports waiting for the writer beyond this make callers wait to queue: memory stays bounded
/// whatever the number of connections, and the server's own load shedding sits in front.
const QUEUE_DEPTH: usize = 4 * MAX_GROUP;

struct Pending {
    revision: NewRevision,
    reply: oneshot::Sender<Result<Recorded, StoreError>>,
}

enum Command {
    /// Boxed: a queue slot then costs a pointer, not a whole revision.
    Record(Box<Pending>),
    /// Answered once every report queued before it is committed.
    Finish(oneshot::Sender<()>),
}

/// What a backend gives the committer.
#[async_trait::async_trait]
pub(super) trait GroupWriter: Send + Sync + 'static {
    /// Writes the whole group in one transaction and commits it, returning each report's
    /// outcome in order. On an error the transaction was rolled back: nothing was written.
    async fn commit_group(&self, group: &[&NewRevision]) -> Result<Vec<Recorded>, StoreError>;

    /// One report in a transaction of its own: what a failed group falls back to, so one bad
    /// report (or a race with another process) does not fail the others.
    async fn record_alone(&self, revision: &NewRevision) -> Result<Recorded, StoreError>;
}

/// The handle callers write through; the writing task lives as long as the store.
pub(super) struct GroupCommitter {
    commands: mpsc::Sender<Command>,
}

impl GroupCommitter {
    /// Starts the writing task on the current tokio runtime.
    pub(super) fn start(writer: impl GroupWriter) -> Self {
        let (commands, queue) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(write_groups(writer, queue));
        GroupCommitter { commands }
    }

    /// Returns after the transaction holding this report has committed (or failed).
    pub(super) async fn record(&self, revision: NewRevision) -> Result<Recorded, StoreError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending { revision, reply };
        self.commands
            .send(Command::Record(Box::new(pending)))
            .await
            .map_err(|_| closed())?;
        // A dropped reply means the writer stopped before answering: not stored as far as
        // the caller can know, so it must retry (its submission id makes a retry safe).
        answer.await.map_err(|_| closed())?
    }

    /// Waits until everything queued so far is committed and stops the writer.
    pub(super) async fn finish(&self) {
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::Finish(done)).await.is_ok() {
            let _ = finished.await;
        }
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the store is shutting down; nothing was written".into())
}

async fn write_groups(writer: impl GroupWriter, mut queue: mpsc::Receiver<Command>) {
    let mut group: Vec<Pending> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = queue.recv().await {
        let mut finish = None;
        match first {
            Command::Record(p) => group.push(*p),
            Command::Finish(done) => finish = Some(done),
        }
        // Whatever queued up while the last commit flushed joins this one.
        while finish.is_none() && group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(Command::Record(p)) => group.push(*p),
                Ok(Command::Finish(done)) => finish = Some(done),
                Err(_) => break,
            }
        }
        if !group.is_empty() {
            commit_group(&writer, std::mem::take(&mut group)).await;
        }
        if let Some(done) = finish {
            queue.close();
            // Reports that slipped in before the close still get written, not dropped.
            while let Some(command) = queue.recv().await {
                match command {
                    Command::Record(p) => commit_group(&writer, vec![*p]).await,
                    Command::Finish(other) => {
                        let _ = other.send(());
                    }
                }
            }
            let _ = done.send(());
            return;
        }
    }
}

async fn commit_group(writer: &impl GroupWriter, group: Vec<Pending>) {
    let size = group.len();
    let started = std::time::Instant::now();
    let revisions: Vec<&NewRevision> = group.iter().map(|p| &p.revision).collect();
    match writer.commit_group(&revisions).await {
        Ok(recorded) => {
            // Group sizes and write times: what an operator tunes ingest with.
            debug!(
                reports = size,
                micros = started.elapsed().as_micros() as u64,
                "group committed"
            );
            for (pending, recorded) in group.into_iter().zip(recorded) {
                // A caller that hung up will learn the outcome from its retry's duplicate.
                let _ = pending.reply.send(Ok(recorded));
            }
        }
        Err(e) if size == 1 => {
            for pending in group {
                let _ = pending.reply.send(Err(e.clone()));
            }
        }
        Err(e) => {
            // One report's failure must not fail the others: the group was rolled back as a
            // whole, so each report gets a transaction of its own and its own answer.
            debug!(reports = size, error = %e, "group failed; committing one by one");
            for pending in group {
                let recorded = writer.record_alone(&pending.revision).await;
                let _ = pending.reply.send(recorded);
            }
        }
    }
}
