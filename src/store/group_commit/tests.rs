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
    assert!(matches!(first, Recorded::Conflict { existing_hash, .. } if existing_hash == "sub-1"));
    assert!(matches!(second, Recorded::Conflict { existing_hash, .. } if existing_hash == "sub-2"));
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
    assert!(matches!(first, Recorded::Conflict { existing_hash, .. } if existing_hash == "sub-1"));
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
    assert!(matches!(second, Recorded::Conflict { existing_hash, .. } if existing_hash == "sub-2"));
    within(committer.finish()).await;
}
