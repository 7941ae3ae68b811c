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
//! (SQLite's group transactions, see `sqlite.rs`) flushes in `make_durable`, and a task of its
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
        /// A submission id whose commit blocks the writing thread itself, as SQLite's
        /// synchronous group write does, until the test sends on the channel (20 s at most).
        blocking_commit: Option<(&'static str, Mutex<std::sync::mpsc::Receiver<()>>)>,
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
            if let Some((id, release)) = &self.blocking_commit
                && ids.contains(id)
            {
                let release = release.lock().expect("release lock");
                // Longer than `within`'s 10 s, so a test that fails does so at its `within`.
                let _ = release.recv_timeout(Duration::from_secs(20));
                self.log(format!("commit {id} returns"));
            }
            // The submission id, as the existing hash, tells the answers apart.
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
            blocking_commit: None,
        };
        (GroupCommitter::start(writer), events, flushes)
    }

    /// Records a report on a task of its own, so the test can watch it wait.
    fn spawn_record(
        committer: &Arc<GroupCommitter>,
        id: &'static str,
        unit: &'static str,
    ) -> tokio::task::JoinHandle<Result<Recorded, StoreError>> {
        let committer = committer.clone();
        tokio::spawn(async move { committer.record(new_revision(id, unit, "h")).await })
    }

    /// A committer that hangs fails the test instead of hanging it.
    async fn within<F: std::future::Future>(future: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(10), future)
            .await
            .expect("answered within 10 s")
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
        let first = spawn_record(&committer, "sub-1", "D01");
        wait_for(&events, "flush starts").await;
        // The first group's flush is held: a second report is still committed meanwhile.
        let second = spawn_record(&committer, "sub-2", "D02");
        wait_for(&events, "commit sub-2").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!first.is_finished(), "answered before its flush returned");
        assert!(!second.is_finished(), "answered before its flush returned");

        flushes.add_permits(2);
        let first = within(first).await.expect("task").expect("recorded");
        let second = within(second).await.expect("task").expect("recorded");
        assert!(
            matches!(first, Recorded::Conflict { existing_hash, .. } if existing_hash == "sub-1")
        );
        assert!(
            matches!(second, Recorded::Conflict { existing_hash, .. } if existing_hash == "sub-2")
        );
        within(committer.finish()).await;
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
        let failed = within(committer.record(new_revision("sub-1", "D01", "h"))).await;
        let Err(StoreError::Unavailable(message)) = failed else {
            panic!("a report whose flush failed was answered {failed:?}");
        };
        assert!(message.contains("could not flush"), "{message}");
        // The OS error is for the server's log, not for a client.
        assert!(!message.contains("EIO"), "{message}");
        let refused = within(committer.record(new_revision("sub-2", "D02", "h"))).await;
        assert_eq!(refused, Err(StoreError::Unavailable(message.clone())));
        // What a review's write is refused with too.
        assert_eq!(committer.refusal(), Some(StoreError::Unavailable(message)));
        within(committer.finish()).await;
        let commits = events
            .lock()
            .expect("events lock")
            .iter()
            .filter(|e| e.starts_with("commit"))
            .count();
        assert_eq!(commits, 1, "a report was written after a failed flush");
    }

    #[tokio::test]
    async fn finish_returns_only_once_every_report_before_it_is_flushed_and_answered() {
        let (committer, events, flushes) = committer(false);
        let committer = Arc::new(committer);
        let report = spawn_record(&committer, "sub-1", "D01");
        wait_for(&events, "flush starts").await;
        // Two callers finish while the flush is held; neither may return before it.
        let finishing: Vec<_> = (0..2)
            .map(|_| {
                let c = committer.clone();
                tokio::spawn(async move { c.finish().await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        for f in &finishing {
            assert!(!f.is_finished(), "finish returned before the flush");
        }
        flushes.add_permits(1);
        for f in finishing {
            within(f).await.expect("task");
        }
        assert!(
            report.is_finished(),
            "finish returned before the report was answered"
        );
        let answer = within(report).await.expect("task");
        assert!(
            matches!(answer, Ok(Recorded::Conflict { .. })),
            "{answer:?}"
        );
    }

    #[tokio::test]
    async fn on_its_own_thread_a_flushed_group_is_answered_while_the_next_blocks_the_writer() {
        // SQLite's group write blocks the writing thread for the whole group. The answers of
        // the group before it, once flushed, must not wait for that: with the writing and the
        // answering tasks on one current-thread runtime (tried, and the benchmark's p99 went
        // from about 20 ms to 60-100 ms) this test fails at its first `within`.
        let events = Arc::new(Mutex::new(Vec::new()));
        let flushes = Arc::new(Semaphore::new(0));
        let (release, released) = std::sync::mpsc::channel();
        let writer = ScriptedWriter {
            events: events.clone(),
            flushes: flushes.clone(),
            flush_fails: false,
            blocking_commit: Some(("sub-2", Mutex::new(released))),
        };
        let committer = Arc::new(GroupCommitter::start_on_own_thread(writer).expect("started"));
        let first = spawn_record(&committer, "sub-1", "D01");
        wait_for(&events, "flush starts").await;
        let second = spawn_record(&committer, "sub-2", "D02");
        wait_for(&events, "commit sub-2").await;
        // The writing thread is now blocked in sub-2's commit; sub-1's flush may end.
        flushes.add_permits(1);
        let first = within(first).await.expect("task").expect("recorded");
        assert!(
            matches!(first, Recorded::Conflict { existing_hash, .. } if existing_hash == "sub-1")
        );
        assert!(
            !events
                .lock()
                .expect("events lock")
                .iter()
                .any(|e| e == "commit sub-2 returns"),
            "sub-1 was answered only after sub-2's commit returned"
        );
        release.send(()).expect("the writer waits");
        flushes.add_permits(1);
        let second = within(second).await.expect("task").expect("recorded");
        assert!(
            matches!(second, Recorded::Conflict { existing_hash, .. } if existing_hash == "sub-2")
        );
        within(committer.finish()).await;
    }
}
