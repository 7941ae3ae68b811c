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
    app.serve_until(shutdown_signal()).await?;
    let _ = stop_scheduler.send(true);
    if let Some(task) = scheduler {
        let _ = task.await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM (systemd's stop): stop accepting calls, let in-flight ones finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("ctrl-c received, shutting down"),
        _ = terminate => tracing::info!("sigterm received, shutting down"),
    }
}
