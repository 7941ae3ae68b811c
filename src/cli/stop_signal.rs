//! Ctrl-C and SIGTERM (systemd's and Docker's stop) for the long-running commands, installed
//! as the command starts. A handler installed only when its future is first polled comes too
//! late: `serve` polls it once it listens and the agent once its outbox is open, and a SIGTERM
//! before that (a `systemctl stop` just after a start) met the signal's default action and
//! killed the process instead of stopping it.

use std::future::Future;

/// Installs the handlers now; the future ends at the first Ctrl-C or SIGTERM, logging which,
/// with `then` saying what the command does next ("shutting down").
pub(super) fn stop_requested(then: &'static str) -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        let received = |installed: std::io::Result<Signal>, name: &'static str| async move {
            match installed {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for {name}");
                    std::future::pending::<()>().await;
                }
            }
        };
        async move {
            tokio::select! {
                _ = received(interrupt, "Ctrl-C") => tracing::info!("ctrl-c received, {then}"),
                _ = received(terminate, "SIGTERM") => tracing::info!("sigterm received, {then}"),
            }
        }
    }
    #[cfg(not(unix))]
    async move {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("ctrl-c received, {then}");
    }
}
