//! `tonghop serve`: the aggregator as a long-running service.

use super::ServeArgs;
use crate::aggregator;
use crate::config::{Settings, SettingsLayer, TlsLayer};
use std::process::ExitCode;

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let flags = SettingsLayer {
        listen: args.listen,
        database_url: args.database_url,
        catalog: args.catalog,
        units: args.units,
        max_message_bytes: args.max_message_bytes,
        tls: Some(TlsLayer {
            ca: args.tls_ca,
            cert: args.tls_cert,
            key: args.tls_key,
        }),
        insecure: args.insecure.then_some(true),
        ..SettingsLayer::default()
    };
    // First of all, so that a stop during start-up is a stop, not a kill.
    let stop = shutdown_signal();
    let settings = Settings::resolve(args.config.as_deref(), |k| std::env::var(k).ok(), flags)?;
    let schedule = settings.review_schedule()?;
    let app = aggregator::build(&settings).await?;
    let (stop_scheduler, stopped) = tokio::sync::watch::channel(false);
    let scheduler = schedule.map(|schedule| {
        let holder = format!(
            "{}:{}:{}",
            std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "aggregator".into()),
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        tracing::info!(schedule = %schedule.expression, holder, "yearly review scheduled");
        tokio::spawn(crate::review::schedule::run_forever(
            app.reviewer().clone(),
            schedule,
            holder,
            stopped,
        ))
    });
    app.serve_until(stop).await?;
    let _ = stop_scheduler.send(true);
    if let Some(task) = scheduler {
        let _ = task.await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM (systemd's stop): stop accepting calls, let in-flight ones finish. The
/// handlers are installed when this is called, as the command starts, not when the returned
/// future is first polled: that happens only once the server listens, and a SIGTERM in between
/// (a `systemctl stop` just after a start) killed the process outright instead of stopping it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
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
                _ = received(interrupt, "Ctrl-C") => tracing::info!("ctrl-c received, shutting down"),
                _ = received(terminate, "SIGTERM") => tracing::info!("sigterm received, shutting down"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("ctrl-c received, shutting down");
    }
}
