//! The server's own log: what a client sends is logged escaped and shortened.

use super::*;

/// A log writer into memory, shared with the test.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        log.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything this test binary logs, from the moment a test asks for it. A global subscriber,
/// because tracing caches each call site's interest globally: a subscriber set for one thread
/// only misses events whose call sites another test's thread saw first.
fn captured_log() -> &'static LogBuffer {
    static LOG: std::sync::OnceLock<LogBuffer> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log = LogBuffer::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in this test binary (TEST_LOG unset)");
        log
    })
}

/// A rejected report is logged with its submission id, unit and period as received. Codes
/// with a line break or an escape sequence must not forge log lines or drive an operator's
/// terminal, and a megabyte code must not become a megabyte log line.
#[tokio::test]
async fn rejected_codes_are_logged_escaped_and_shortened() {
    let log = captured_log();
    let mut target = Target::start().await;
    let cases = [
        (
            Slot::UnitCode,
            "BS02\n2026-01-01T00:00:00Z  INFO forged: report accepted".to_owned(),
        ),
        (
            Slot::SubmissionId,
            "logtest:\u{1b}[2J\u{1b}[31mcleared".to_owned(),
        ),
        (Slot::Period, "A".repeat(MEGABYTE)),
    ];
    for (n, (slot, value)) in cases.into_iter().enumerate() {
        let case = format!("{} logged", slot.field());
        let mut draft = slot.draft(n, value);
        if slot != Slot::SubmissionId {
            draft.submission_id = format!("logtest:{n}");
        }
        target
            .refused(&case, &draft, slot.field(), slot.malformed_rule(), &[])
            .await;
    }
    target.finish().await;
    let text =
        String::from_utf8_lossy(&log.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    // Other tests log concurrently: judge the lines of this test's reports.
    let ours: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("report rejected") && line.contains("logtest:"))
        .collect();
    assert_eq!(ours.len(), 3, "the three rejections are logged:\n{ours:#?}");
    let mut problems = Vec::new();
    if text
        .lines()
        .any(|line| line.starts_with("2026-01-01T00:00:00Z  INFO forged"))
    {
        problems.push("a line break in a unit code starts a new log line".to_owned());
    }
    if ours.iter().any(|line| line.contains('\u{1b}')) {
        problems.push("an escape sequence reaches the log".to_owned());
    }
    let longest = ours.iter().map(|line| line.len()).max().unwrap_or(0);
    if longest > 16 * 1024 {
        problems.push(format!("a log line of {longest} bytes"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
