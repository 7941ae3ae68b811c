//! Group commit, for both backends. Every commit waits for a flush to disk, and a transaction
//! per report costs its statements' round trips each time: one transaction per report caps
//! ingest at the disk's flush rate (SQLite, one writer) or at the database's CPU (PostgreSQL,
//! about seven round trips a report). Here one task owns the writing: it takes every report
//! queued while the previous commit was flushing, writes them all in one transaction with a
//! few set-based statements, commits once, and only then answers each caller. An
//! acknowledgement still means "on disk"; a busy moment just shares one commit among many
//! reports. A lone report is written at once, without waiting to gather company.
//!
//! Answering is a second stage. A backend whose commit returns before the disk has the data
//! (SQLite's group transactions, see `sqlite.rs`) flushes in `make_durable`, and a task of its
//! own runs that flush for every group committed since the last one while the writer already
//! writes the next group. SQLite's single writer then spends its time on statements, not on
//! waiting for the disk, and no caller hears "stored" before the flush that covers its report
//! has returned.

use super::{NewRevision, Recorded, StoreError};
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error};

/// Most reports in one transaction: bounds how long the writer holds SQLite's lock (readers in
/// WAL mode never wait for it, but a review being written does) and the work redone if the
/// group fails and falls back to one transaction per report.
const MAX_GROUP: usize = 256;

/// Reports waiting for the writer beyond this make callers wait to queue: memory stays bounded
/// whatever the number of connections, and the server's own load shedding sits in front.
const QUEUE_DEPTH: usize = 4 * MAX_GROUP;

/// Committed groups waiting for their flush. Past this the writer waits for the disk rather
/// than run further ahead of it: one group writing while the previous ones flush is the whole
/// gain, and a longer run-ahead would only hold more answers back.
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
    /// Answered once every report queued before it is committed and flushed.
    Finish(oneshot::Sender<()>),
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
}

/// The handle callers write through; the writing task lives as long as the store.
pub(super) struct GroupCommitter {
    commands: mpsc::Sender<Command>,
}

impl GroupCommitter {
    /// Starts the writing and the answering tasks on the current tokio runtime.
    pub(super) fn start(writer: impl GroupWriter) -> Self {
        let (commands, queue) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(write_groups(Arc::new(writer), queue));
        GroupCommitter { commands }
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
        // A dropped reply means the writer stopped before answering: not stored as far as
        // the caller can know, so it must retry (its submission id makes a retry safe).
        answer.await.map_err(|_| closed())?
    }

    /// Waits until everything queued so far is committed and flushed, and stops the writer.
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

/// The writing task. Answers go to the flushing task, which is stopped (and has answered
/// everything) before `Finish` is answered.
async fn write_groups<W: GroupWriter>(writer: Arc<W>, mut queue: mpsc::Receiver<Command>) {
    let (committed, to_flush) = mpsc::channel(UNFLUSHED_GROUPS);
    // Set once by the flushing task when a flush fails; from then on nothing more is written.
    let flush_failure = Arc::new(OnceLock::new());
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
    let mut finish = None;
    while let Some(first) = queue.recv().await {
        match first {
            Command::Record(p) => group.push(*p),
            Command::Finish(done) => finish = Some(done),
        }
        // Whatever queued up while the last group was written joins this one.
        while finish.is_none() && group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(Command::Record(p)) => group.push(*p),
                Ok(Command::Finish(done)) => finish = Some(done),
                Err(_) => break,
            }
        }
        if !group.is_empty() {
            stage.commit_group(std::mem::take(&mut group)).await;
        }
        if finish.is_some() {
            queue.close();
            // Reports that slipped in before the close still get written, not dropped.
            while let Some(command) = queue.recv().await {
                match command {
                    Command::Record(p) => stage.commit_group(vec![*p]).await,
                    Command::Finish(other) => {
                        let _ = other.send(());
                    }
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
    if let Some(done) = finish {
        let _ = done.send(());
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
            // The flushing task is gone (it panicked): nothing can be confirmed on disk.
            for (reply, _) in answers {
                let _ = reply.send(Err(StoreError::Unavailable(
                    "the store stopped before flushing this report; retry".into(),
                )));
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
                error!(error = %e, "flushing committed reports failed; refusing further writes");
                let failure = StoreError::Unavailable(format!(
                    "the store could not flush to disk ({e}); it takes no more reports until \
                     it is restarted, and the reports it did not confirm must be sent again"
                ));
                let failure = flush_failure.get_or_init(|| failure).clone();
                for (reply, _) in answers {
                    let _ = reply.send(Err(failure.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The committer's ordering against a writer that records what it is asked and whose flush
    //! the test opens and fails at will: the ordering is the committer's own logic, and a real
    //! disk cannot be made to hold a flush back or fail one on cue. The backends' writers are
    //! exercised over real SQLite files and a real PostgreSQL in `tests/`.
    use super::*;
    use crate::store::group_write::tests::new_revision;
    use std::sync::Mutex;
    use std::time::Duration;
    use tokio::sync::Semaphore;

    struct ScriptedWriter {
        events: Arc<Mutex<Vec<String>>>,
        /// One permit per flush allowed to finish.
        flushes: Arc<Semaphore>,
        flush_fails: bool,
    }

    impl ScriptedWriter {
        fn log(&self, event: String) {
            self.events.lock().expect("events lock").push(event);
        }
    }

    #[async_trait::async_trait]
    impl GroupWriter for ScriptedWriter {
        async fn commit_group(&self, group: &[&NewRevision]) -> Result<Vec<Recorded>, StoreError> {
            let ids: Vec<&str> = group
                .iter()
                .map(|n| n.report.submission_id.as_str())
                .collect();
            self.log(format!("commit {}", ids.join(",")));
            // The revision number stands in for the outcome, so a test can tell answers apart.
            Ok((0..group.len())
                .map(|i| Recorded::Conflict {
                    existing_hash: ids[i].to_owned(),
                    existing_revision: 1,
                })
                .collect())
        }

        async fn record_alone(&self, _: &NewRevision) -> Result<Recorded, StoreError> {
            Err(StoreError::Internal("no group in these tests fails".into()))
        }

        async fn make_durable(&self) -> Result<(), StoreError> {
            self.log("flush starts".into());
            let permit = self.flushes.acquire().await.expect("semaphore open");
            permit.forget();
            self.log("flush ends".into());
            if self.flush_fails {
                return Err(StoreError::Internal("EIO".into()));
            }
            Ok(())
        }
    }

    fn committer(flush_fails: bool) -> (GroupCommitter, Arc<Mutex<Vec<String>>>, Arc<Semaphore>) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let flushes = Arc::new(Semaphore::new(0));
        let writer = ScriptedWriter {
            events: events.clone(),
            flushes: flushes.clone(),
            flush_fails,
        };
        (GroupCommitter::start(writer), events, flushes)
    }

    async fn wait_for(events: &Mutex<Vec<String>>, event: &str) {
        for _ in 0..500 {
            if events
                .lock()
                .expect("events lock")
                .iter()
                .any(|e| e == event)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!(
            "never saw {event:?}: {:?}",
            events.lock().expect("events lock")
        );
    }

    #[tokio::test]
    async fn no_caller_hears_before_the_flush_and_the_writer_runs_ahead_of_it() {
        let (committer, events, flushes) = committer(false);
        let committer = Arc::new(committer);
        let first = tokio::spawn({
            let c = committer.clone();
            async move { c.record(new_revision("sub-1", "D01", "h")).await }
        });
        wait_for(&events, "flush starts").await;
        // The first group's flush is held: a second report is still committed meanwhile.
        let second = tokio::spawn({
            let c = committer.clone();
            async move { c.record(new_revision("sub-2", "D02", "h")).await }
        });
        wait_for(&events, "commit sub-2").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!first.is_finished(), "answered before its flush returned");
        assert!(!second.is_finished(), "answered before its flush returned");

        flushes.add_permits(2);
        let first = first.await.expect("task").expect("recorded");
        let second = second.await.expect("task").expect("recorded");
        assert!(
            matches!(first, Recorded::Conflict { existing_hash, .. } if existing_hash == "sub-1")
        );
        assert!(
            matches!(second, Recorded::Conflict { existing_hash, .. } if existing_hash == "sub-2")
        );
        committer.finish().await;
        let events = events.lock().expect("events lock").clone();
        assert_eq!(
            events[..3],
            ["commit sub-1", "flush starts", "commit sub-2"],
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn a_failed_flush_fails_its_reports_and_refuses_the_next_ones() {
        let (committer, events, flushes) = committer(true);
        flushes.add_permits(10);
        let failed = committer.record(new_revision("sub-1", "D01", "h")).await;
        let Err(StoreError::Unavailable(message)) = failed else {
            panic!("a report whose flush failed was answered {failed:?}");
        };
        assert!(
            message.contains("could not flush") && message.contains("EIO"),
            "{message}"
        );
        let refused = committer.record(new_revision("sub-2", "D02", "h")).await;
        assert_eq!(refused, Err(StoreError::Unavailable(message)));
        committer.finish().await;
        let commits = events
            .lock()
            .expect("events lock")
            .iter()
            .filter(|e| e.starts_with("commit"))
            .count();
        assert_eq!(commits, 1, "a report was written after a failed flush");
    }
}
