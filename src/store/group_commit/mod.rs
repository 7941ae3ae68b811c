//! Group commit, for both backends. Every commit waits for a flush to disk, and a transaction
//! per report costs its statements' round trips each time: one transaction per report caps
//! ingest at the disk's flush rate (SQLite, one writer) or at the database's CPU (PostgreSQL,
//! about seven round trips a report). Here one task owns the writing: it takes every report
//! queued while the previous commit was flushing, writes them all in one transaction with a
//! few statements for the whole group, commits once, and only then answers each caller. An
//! acknowledgement still means "on disk"; a busy moment just shares one commit among many
//! reports. A lone report is written at once, without waiting to gather company.
//!
//! Answering is a second stage. A backend whose commit returns before the disk has the data
//! (SQLite's group transactions, see `sqlite/`) flushes in `make_durable`, and a task of its
//! own runs that flush for every group committed since the last one while the writer already
//! writes the next group. SQLite's single writer then spends its time on statements, not on
//! waiting for the disk, and no caller hears "stored" before the flush that covers its report
//! has returned.

use super::{NewRevision, Recorded, StoreError};
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error};

/// Most reports in one transaction: bounds how long the writer holds SQLite's lock (readers in
/// WAL mode never wait for it, but a review being written does) and the work redone if the
/// group fails and falls back to one transaction per report.
const MAX_GROUP: usize = 256;

/// Reports waiting for the writer beyond this make callers wait to queue: memory stays bounded
/// whatever the number of connections, and the server's own load shedding sits in front.
const QUEUE_DEPTH: usize = 4 * MAX_GROUP;

/// Committed groups queued for the flushing task, besides those it is flushing. Past this the
/// writer waits for the disk rather than run further ahead of it: one group writing while the
/// previous ones flush is the whole gain, and a longer run-ahead would only hold more answers
/// back.
const UNFLUSHED_GROUPS: usize = 4;

type Reply = oneshot::Sender<Result<Recorded, StoreError>>;

struct Pending {
    revision: NewRevision,
    reply: Reply,
}

/// A report's outcome, committed, waiting for the flush before its caller hears it.
type Answer = (Reply, Result<Recorded, StoreError>);

enum Command {
    /// Boxed: a queue slot then costs a pointer, not a whole revision.
    Record(Box<Pending>),
    /// Stop once every report queued before it is committed, flushed and answered.
    Finish,
}

/// What a backend gives the committer.
#[async_trait::async_trait]
pub(super) trait GroupWriter: Send + Sync + 'static {
    /// Writes the whole group in one transaction and commits it, returning each report's
    /// outcome in order. On an error the transaction was rolled back: nothing was written.
    /// The commit may return before the data is on disk; nobody is answered until
    /// `make_durable` has returned after it.
    async fn commit_group(&self, group: &[&NewRevision]) -> Result<Vec<Recorded>, StoreError>;

    /// One report in a transaction of its own: what a failed group falls back to, so one bad
    /// report (or a race with another process) does not fail the others.
    async fn record_alone(&self, revision: &NewRevision) -> Result<Recorded, StoreError>;

    /// Puts every commit that has returned so far on disk. A backend whose commits are durable
    /// when they return has nothing to do.
    async fn make_durable(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Waits for the backend's own work left on the writer's runtime once the last group is
    /// answered (a connection on its way back to its pool), before that runtime stops: a task
    /// of a stopped runtime is dropped, not finished. Nothing to wait for by default.
    async fn settle(&self) {}
}

/// The handle callers write through; the writing task lives as long as the store.
pub(super) struct GroupCommitter {
    commands: mpsc::Sender<Command>,
    /// Turns true (or closes) when the writing task has stopped, every report answered.
    stopped: watch::Receiver<bool>,
    /// Set once a flush fails (or the flushing task is gone): from then on nothing is written.
    flush_failure: Arc<OnceLock<StoreError>>,
}

impl GroupCommitter {
    /// Starts the writing and the answering tasks on the current tokio runtime.
    pub(super) fn start(writer: impl GroupWriter) -> Self {
        let (commands, queue) = mpsc::channel(QUEUE_DEPTH);
        let (stop, stopped) = watch::channel(false);
        let flush_failure = Arc::new(OnceLock::new());
        let failure = flush_failure.clone();
        tokio::spawn(async move {
            write_groups(Arc::new(writer), queue, failure).await;
            let _ = stop.send(true);
        });
        GroupCommitter {
            commands,
            stopped,
            flush_failure,
        }
    }

    /// Starts the writing and the answering tasks on threads and a runtime of their own, for a
    /// backend whose connections do not belong to a runtime (SQLite's). The writer is ingest's
    /// one serial step: on the server's shared runtime it waited in a worker's queue behind the
    /// calls being decoded, so under load it spent more time waiting to run than running. Here
    /// the writing task has a thread to itself, which its writer may block for a whole group
    /// (SQLite's group write is synchronous), and the answering task runs on a second thread.
    pub(super) fn start_on_own_thread(writer: impl GroupWriter) -> Result<Self, StoreError> {
        let (commands, queue) = mpsc::channel(QUEUE_DEPTH);
        let (stop, stopped) = watch::channel(false);
        let flush_failure = Arc::new(OnceLock::new());
        let failure = flush_failure.clone();
        let start_failed = |e: std::io::Error| {
            StoreError::Internal(format!("cannot start the store's writing thread: {e}"))
        };
        // The runtime is built on the new thread: one dropped here, inside the caller's runtime,
        // would panic. The thread says whether it got one.
        let (started, start) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("tonghop-writer".into())
            .spawn(move || {
                // The writing task runs in `block_on`, on this thread, and may block it for a
                // group's write (SQLite's is synchronous); the answering task and the pool's
                // own tasks run on the one worker meanwhile, so a flushed group is answered
                // while the next is written.
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("tonghop-store")
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = started.send(Err(e));
                        return;
                    }
                };
                let _ = started.send(Ok(()));
                let writer = Arc::new(writer);
                // Ends when every handle is dropped or finished, after answering all it took.
                runtime.block_on(async {
                    write_groups(writer.clone(), queue, failure).await;
                    writer.settle().await;
                });
                drop(runtime);
                // Only now is the writer wholly stopped: closing the store may go ahead.
                let _ = stop.send(true);
            })
            .map_err(start_failed)?;
        // A wait of a runtime's construction, once, when the store opens.
        match start.recv() {
            Ok(Ok(())) => Ok(GroupCommitter {
                commands,
                stopped,
                flush_failure,
            }),
            Ok(Err(e)) => Err(start_failed(e)),
            Err(_) => Err(StoreError::Internal(
                "the store's writing thread ended as it started".into(),
            )),
        }
    }

    /// Returns after the transaction holding this report has committed and been flushed (or
    /// failed).
    pub(super) async fn record(&self, revision: NewRevision) -> Result<Recorded, StoreError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending { revision, reply };
        self.commands
            .send(Command::Record(Box::new(pending)))
            .await
            .map_err(|_| closed())?;
        // A dropped reply means the store stopped before answering: the report may or may not
        // be stored, so the caller must resend it (its submission id makes a resend safe).
        answer.await.map_err(|_| unconfirmed())?
    }

    /// The error every write is refused with once a flush has failed, if one has: a write
    /// outside the group committer (a review) must not be stored either, since after a failed
    /// flush the kernel may report pages clean that never reached the disk, and a later flush
    /// of the same file can then succeed without them.
    pub(super) fn refusal(&self) -> Option<StoreError> {
        self.flush_failure.get().cloned()
    }

    /// Waits until everything queued so far is committed, flushed and answered, and stops the
    /// writer. Any number of callers may finish; each returns only once the writer has stopped.
    pub(super) async fn finish(&self) {
        // Refused when another finish already closed the queue: the wait below still holds.
        let _ = self.commands.send(Command::Finish).await;
        let mut stopped = self.stopped.clone();
        // An error means the writing task is gone, which is stopped too.
        let _ = stopped.wait_for(|stopped| *stopped).await;
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the store is shutting down; nothing was written".into())
}

fn unconfirmed() -> StoreError {
    StoreError::Unavailable(
        "the store stopped before confirming this report; send it again (a report already \
         stored is then answered as a duplicate)"
            .into(),
    )
}

/// The writing task. Answers go to the flushing task, which has answered everything and ended
/// before this returns; the caller then reports the writer stopped.
async fn write_groups<W: GroupWriter>(
    writer: Arc<W>,
    mut queue: mpsc::Receiver<Command>,
    flush_failure: Arc<OnceLock<StoreError>>,
) {
    let (committed, to_flush) = mpsc::channel(UNFLUSHED_GROUPS);
    let flusher = tokio::spawn(flush_and_answer(
        writer.clone(),
        to_flush,
        flush_failure.clone(),
    ));
    let stage = Stage {
        writer: &*writer,
        committed: &committed,
        flush_failure: &flush_failure,
    };
    let mut group: Vec<Pending> = Vec::with_capacity(MAX_GROUP);
    let mut finishing = false;
    while let Some(first) = queue.recv().await {
        match first {
            Command::Record(p) => group.push(*p),
            Command::Finish => finishing = true,
        }
        // Whatever queued up while the last group was written joins this one.
        while !finishing && group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(Command::Record(p)) => group.push(*p),
                Ok(Command::Finish) => finishing = true,
                Err(_) => break,
            }
        }
        if !group.is_empty() {
            stage.commit_group(std::mem::take(&mut group)).await;
        }
        if finishing {
            queue.close();
            // Reports that slipped in before the close still get written, not dropped.
            while let Some(command) = queue.recv().await {
                if let Command::Record(p) = command {
                    stage.commit_group(vec![*p]).await;
                }
            }
            break;
        }
    }
    // Every group is handed over; the flushing task ends once it has answered them all.
    drop(committed);
    if let Err(e) = flusher.await {
        error!(error = %e, "the task answering flushed reports ended abnormally");
    }
}

/// What writing one group needs from the writing task.
struct Stage<'a, W> {
    writer: &'a W,
    committed: &'a mpsc::Sender<Vec<Answer>>,
    flush_failure: &'a OnceLock<StoreError>,
}

impl<W: GroupWriter> Stage<'_, W> {
    async fn commit_group(&self, group: Vec<Pending>) {
        if let Some(failure) = self.flush_failure.get() {
            // A failed flush may have lost pages the kernel then reports clean: writing on
            // would risk answering "stored" for data that never reaches the disk.
            for pending in group {
                let _ = pending.reply.send(Err(failure.clone()));
            }
            return;
        }
        let answers = self.write(group).await;
        if let Err(mpsc::error::SendError(answers)) = self.committed.send(answers).await {
            // The flushing task is gone (it panicked): nothing can be confirmed on disk, so
            // nothing more is written either.
            error!("the task flushing committed reports is gone; refusing further writes");
            let failure = self.flush_failure.get_or_init(unconfirmed).clone();
            for (reply, _) in answers {
                let _ = reply.send(Err(failure.clone()));
            }
        }
    }

    async fn write(&self, group: Vec<Pending>) -> Vec<Answer> {
        let size = group.len();
        let started = std::time::Instant::now();
        let revisions: Vec<&NewRevision> = group.iter().map(|p| &p.revision).collect();
        match self.writer.commit_group(&revisions).await {
            Ok(recorded) => {
                // Group sizes and write times: what an operator tunes ingest with.
                debug!(
                    reports = size,
                    micros = started.elapsed().as_micros() as u64,
                    "group committed"
                );
                group
                    .into_iter()
                    .map(|p| p.reply)
                    .zip(recorded.into_iter().map(Ok))
                    .collect()
            }
            Err(e) if size == 1 => group
                .into_iter()
                .map(|p| (p.reply, Err(e.clone())))
                .collect(),
            Err(e) => {
                // One report's failure must not fail the others: the group was rolled back as
                // a whole, so each report gets a transaction of its own and its own answer.
                debug!(reports = size, error = %e, "group failed; committing one by one");
                let mut answers = Vec::with_capacity(size);
                for pending in group {
                    let recorded = self.writer.record_alone(&pending.revision).await;
                    answers.push((pending.reply, recorded));
                }
                answers
            }
        }
    }
}

/// The answering task: one flush for every group committed since the last flush, then the
/// answers of all of them. A caller that hung up learns the outcome from its retry.
async fn flush_and_answer<W: GroupWriter>(
    writer: Arc<W>,
    mut committed: mpsc::Receiver<Vec<Answer>>,
    flush_failure: Arc<OnceLock<StoreError>>,
) {
    while let Some(mut answers) = committed.recv().await {
        while let Ok(more) = committed.try_recv() {
            answers.extend(more);
        }
        let flushed = match flush_failure.get() {
            Some(failure) => Err(failure.clone()),
            None => writer.make_durable().await,
        };
        match flushed {
            Ok(()) => {
                for (reply, outcome) in answers {
                    let _ = reply.send(outcome);
                }
            }
            Err(e) => {
                // The detail (a path, an OS error) is for the operator; callers get the rule.
                error!(
                    error = %e,
                    "flushing committed reports failed; refusing further reports until restarted"
                );
                let failure = StoreError::Unavailable(
                    "the store could not flush to disk; it takes no more reports until it is \
                     restarted, and reports it did not confirm must be sent again"
                        .into(),
                );
                let failure = flush_failure.get_or_init(|| failure).clone();
                for (reply, _) in answers {
                    let _ = reply.send(Err(failure.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
