//! SQLite's WAL checkpoints, moved off the writer. By default the connection that commits
//! past 1,000 WAL pages copies them into the database file and flushes it inside its COMMIT:
//! on the group writer, ingest's one serial step, that copy took about a tenth of its CPU and
//! made the group that ran it a latency spike. Here a connection of its own copies the WAL
//! shortly after each group that stored a revision, on its own thread, while the writer goes
//! on writing; the
//! writer's own checkpoint stays, at a higher threshold, as the bound on the WAL's length
//! when the checkpoints beside it cannot catch up (a passive checkpoint never waits for the
//! writer, so under steady load it copies most of the WAL but rarely all of it, and SQLite
//! only starts the WAL over once all of it is copied).

use super::StoreError;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// WAL pages past which the writer checkpoints inside its own commit, as SQLite does by
/// default at 1,000: the WAL then stays under about 32 MiB at 4 KiB pages whatever the load.
/// Under the ingest benchmark the writer appends up to about 4,000 pages between two
/// checkpoints beside it (one group rewrites every B-tree page it touches), so a lower bound
/// would still have the writer checkpoint itself now and then.
pub(super) const WRITER_CHECKPOINT_PAGES: u32 = 8_000;

/// The shortest time between two checkpoints beside the writer. Each one flushes the database
/// file, a second flush competing with the WAL's for the disk; many groups share one.
const PAUSE: Duration = Duration::from_millis(100);

/// Checkpoints the database's WAL beside the writer whenever `due` says there is new WAL to
/// copy, at most once per `PAUSE`.
pub(super) struct Checkpointer {
    due: Arc<Notify>,
    /// The last checkpoint's WAL pages and pages copied, for tests to check that they ran.
    #[cfg(test)]
    pub(super) last: Arc<std::sync::Mutex<Option<(i64, i64)>>>,
    stop: watch::Sender<bool>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Opens the checkpointing connection (read-write: a read-only one may not checkpoint) and
    /// starts its task on the current runtime. The connection only ever checkpoints, so it
    /// never takes the write lock the writer holds for its groups.
    pub(super) async fn start(connect: &SqliteConnectOptions) -> Result<Self, StoreError> {
        let conn = SqliteConnection::connect_with(connect).await?;
        let due = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        #[cfg(test)]
        let last = Arc::new(std::sync::Mutex::new(None));
        let task = tokio::spawn(checkpoint_when_due(
            conn,
            due.clone(),
            stopped,
            #[cfg(test)]
            last.clone(),
        ));
        Ok(Checkpointer {
            due,
            #[cfg(test)]
            last,
            stop,
            task: std::sync::Mutex::new(Some(task)),
        })
    }

    /// The handle the writer signals new WAL through; a signal while a checkpoint runs or
    /// pauses is kept, so the WAL written meanwhile is copied by the next one.
    pub(super) fn due(&self) -> Arc<Notify> {
        self.due.clone()
    }

    /// Stops the task after any checkpoint it is running, and closes its connection.
    pub(super) async fn stop(&self) {
        let _ = self.stop.send(true);
        let task = match self.task.lock() {
            Ok(mut task) => task.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(task) = task
            && let Err(e) = task.await
        {
            warn!(error = %e, "the WAL checkpointing task ended abnormally");
        }
    }
}

async fn checkpoint_when_due(
    mut conn: SqliteConnection,
    due: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
    #[cfg(test)] last: Arc<std::sync::Mutex<Option<(i64, i64)>>>,
) {
    loop {
        tokio::select! {
            _ = due.notified() => {}
            _ = stopped.wait_for(|stop| *stop) => break,
        }
        // PASSIVE never waits for the writer or the readers: it copies what it can now.
        // Its row: whether it had to stop early, the WAL's pages, the pages copied so far.
        let started = std::time::Instant::now();
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut conn)
            .await
        {
            Ok((busy, wal_pages, copied)) => {
                debug!(
                    busy,
                    wal_pages,
                    copied,
                    micros = started.elapsed().as_micros() as u64,
                    "WAL checkpoint beside the writer"
                );
                #[cfg(test)]
                if let Ok(mut last) = last.lock() {
                    *last = Some((wal_pages, copied));
                }
            }
            // Not fatal: the writer's own checkpoint still bounds the WAL.
            Err(e) => warn!(error = %e, "a WAL checkpoint beside the writer failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(PAUSE) => {}
            _ = stopped.wait_for(|stop| *stop) => break,
        }
    }
    if let Err(e) = conn.close().await {
        warn!(error = %e, "closing the WAL checkpointing connection");
    }
}
