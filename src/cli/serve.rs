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
    // First of all, so that a stop during start-up is a stop, not a kill; then the server
    // stops accepting calls and lets in-flight ones finish.
    let stop = super::stop_signal::stop_requested("shutting down");
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
