//! `tonghop agent run | status | resend`: the district side, as a district operator runs it.
//! `run` is the long-running service (or one pass with `--once`, for a timer); `status` reads
//! the outbox only, so it works while the agent runs and while the province is unreachable.

use super::table::Table;
use super::{EXIT_FAILURE, EXIT_REJECTED, EXIT_RETRY_LATER};
use crate::agent::{Agent, AgentLayer, AgentSettings, Entry, EntryState, Resent};
use crate::domain::period::vietnam_offset;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub command: AgentCommand,
}

/// Settings shared by the agent's subcommands; each flag overrides the file and the
/// `TONGHOP_AGENT_*` variables.
#[derive(Debug, Args)]
pub struct AgentCommon {
    /// Agent settings file (TOML; see deploy/agent.example.toml); also TONGHOP_AGENT_CONFIG.
    #[arg(long, env = "TONGHOP_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Aggregator address, e.g. https://tonghop.tinh.gov.vn:50051.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// This reporting unit's code, e.g. BS03.
    #[arg(long)]
    pub unit: Option<String>,
    /// Outbox file [default: ./data/agent-outbox.db].
    #[arg(long)]
    pub outbox: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Collect due reports and deliver them; runs until SIGTERM or Ctrl-C.
    Run {
        #[command(flatten)]
        common: AgentCommon,
        /// One pass: collect what is due, send until nothing is due now, exit. Exit code 0 all
        /// delivered, 1 something was rejected, 2 a source could not be read, 3 reports wait
        /// for a retry.
        #[arg(long)]
        once: bool,
    },
    /// What is queued, sent (receipt, revision), rejected (why), and when reports are due.
    Status {
        #[command(flatten)]
        common: AgentCommon,
        /// List every sent report, not only the latest 20.
        #[arg(long)]
        all: bool,
    },
    /// Queue a report again after a fix: ENTRY is the number (or submission id) that
    /// `agent status` shows.
    Resend {
        entry: String,
        #[command(flatten)]
        common: AgentCommon,
    },
}

fn settings(common: &AgentCommon) -> anyhow::Result<AgentSettings> {
    let flags = AgentLayer {
        endpoint: common.endpoint.clone(),
        unit: common.unit.clone(),
        outbox: common.outbox.clone(),
        ..AgentLayer::default()
    };
    Ok(AgentSettings::resolve(
        common.config.as_deref(),
        |k| std::env::var(k).ok(),
        flags,
    )?)
}

pub async fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AgentCommand::Run { common, once } => run_agent(&common, once).await,
        AgentCommand::Status { common, all } => status(&common, all).await,
        AgentCommand::Resend { entry, common } => resend(&common, &entry).await,
    }
}

async fn run_agent(common: &AgentCommon, once: bool) -> anyhow::Result<ExitCode> {
    // Installed before the outbox opens, so that a stop during start-up is a stop, not a kill;
    // then the agent finishes the current send and stops.
    let stop =
        (!once).then(|| super::stop_signal::stop_requested("stopping after the current send"));
    let mut agent = Agent::new(settings(common)?).await?;
    if let Some(stop) = stop {
        let result = agent.run_until(stop).await;
        agent.close().await;
        result?;
        return Ok(ExitCode::SUCCESS);
    }
    let result = agent.run_once().await;
    let counts = agent.outbox().counts().await;
    agent.close().await;
    let (collected, sent) = result?;
    let [queued, total_sent, rejected, _] = counts?;
    println!(
        "collected: {} new, {} corrections, {} due without data, {} unreadable",
        collected.queued, collected.corrections, collected.missing, collected.errors
    );
    println!(
        "sent {}, rejected {}, retries scheduled {}; outbox now holds {queued} queued, \
         {total_sent} sent, {rejected} rejected",
        sent.sent, sent.rejected, sent.retrying
    );
    Ok(ExitCode::from(if sent.rejected > 0 {
        EXIT_REJECTED
    } else if collected.errors > 0 {
        EXIT_FAILURE
    } else if queued > 0 {
        EXIT_RETRY_LATER
    } else {
        0
    }))
}

fn vn(t: DateTime<Utc>) -> String {
    t.with_timezone(&vietnam_offset())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

async fn status(common: &AgentCommon, all: bool) -> anyhow::Result<ExitCode> {
    let settings = settings(common)?;
    if !settings.outbox.exists() {
        println!(
            "no outbox at {} yet: the agent has not run with these settings",
            settings.outbox.display()
        );
    }
    let agent = Agent::new(settings).await?;
    let text = render_status(&agent, all, Utc::now()).await;
    agent.close().await;
    print!("{}", text?);
    Ok(ExitCode::SUCCESS)
}

/// The whole status report as text (tested on its own).
pub async fn render_status(agent: &Agent, all: bool, now: DateTime<Utc>) -> anyhow::Result<String> {
    let outbox = agent.outbox();
    let s = agent.settings();
    let [queued, sent, rejected, superseded] = outbox.counts().await?;
    let mut out = format!(
        "unit {} → {}\noutbox {}: {queued} queued, {sent} sent, {rejected} rejected, \
         {superseded} superseded\n",
        s.unit,
        s.endpoint,
        outbox.path().display()
    );

    let queued = outbox.in_state(EntryState::Queued).await?;
    if !queued.is_empty() {
        out.push_str("\nQueued (times +07:00)\n");
        let mut t = Table::new(
            &[
                "#",
                "data set",
                "period",
                "attempts",
                "next attempt",
                "last error",
            ],
            &[true, false, false, true, false, false],
        );
        for e in &queued {
            t.row(vec![
                e.id.to_string(),
                e.data_set.clone(),
                e.period.clone(),
                e.attempts.to_string(),
                vn(e.next_attempt_at),
                e.last_error.clone().unwrap_or_default(),
            ]);
        }
        out.push_str(&t.render());
    }

    let sent = outbox.in_state(EntryState::Sent).await?;
    if !sent.is_empty() {
        let shown = if all { sent.len() } else { sent.len().min(20) };
        out.push_str(&if shown < sent.len() {
            format!(
                "\nSent: latest {shown} of {} (--all lists every one; times +07:00)\n",
                sent.len()
            )
        } else {
            "\nSent (times +07:00)\n".to_owned()
        });
        let mut t = Table::new(
            &[
                "#",
                "data set",
                "period",
                "revision",
                "receipt",
                "received",
                "on time",
                "submission id",
            ],
            &[true, false, false, true, false, false, false, false],
        );
        for e in &sent[sent.len() - shown..] {
            let info = e.sent.as_ref();
            t.row(vec![
                e.id.to_string(),
                e.data_set.clone(),
                e.period.clone(),
                info.map(|i| i.revision.to_string()).unwrap_or_default(),
                info.map(|i| i.status.clone()).unwrap_or_default(),
                info.map(|i| vn(i.received_at)).unwrap_or_default(),
                info.map(|i| if i.on_time { "yes" } else { "late" }.to_owned())
                    .unwrap_or_default(),
                e.submission_id.clone(),
            ]);
        }
        out.push_str(&t.render());
    }

    let rejected = outbox.in_state(EntryState::Rejected).await?;
    if !rejected.is_empty() {
        out.push_str("\nRejected\n");
        let mut newest: HashMap<(String, String), Entry> = HashMap::new();
        for plan in agent.plans() {
            for e in outbox.latest_by_period(&plan.data_set).await? {
                newest.insert((e.data_set.clone(), e.period.clone()), e);
            }
        }
        for e in &rejected {
            out.push_str(&describe_rejected(
                e,
                newest.get(&(e.data_set.clone(), e.period.clone())),
            ));
        }
    }

    // Due periods the outbox has nothing for: the source had no data (or could not be read).
    let mut waiting = Table::new(
        &[
            "data set",
            "due, not in the outbox",
            "past deadline",
            "periods",
        ],
        &[false, true, true, false],
    );
    let mut any_waiting = false;
    for plan in agent.plans() {
        let known: std::collections::HashSet<String> = outbox
            .latest_by_period(&plan.data_set)
            .await?
            .into_iter()
            .map(|e| e.period)
            .collect();
        let missing: Vec<_> = plan
            .schedule
            .due_periods(now)
            .into_iter()
            .filter(|p| !known.contains(&p.to_string()))
            .collect();
        if missing.is_empty() {
            continue;
        }
        any_waiting = true;
        let overdue = missing
            .iter()
            .filter(|p| plan.schedule.deadline(p) < now)
            .count();
        let mut shown: Vec<String> = missing.iter().take(6).map(|p| p.to_string()).collect();
        if missing.len() > shown.len() {
            shown.push("…".into());
        }
        waiting.row(vec![
            plan.data_set.clone(),
            missing.len().to_string(),
            overdue.to_string(),
            shown.join(", "),
        ]);
    }
    if any_waiting {
        out.push_str("\nWaiting for data (the source has nothing for these due periods yet)\n");
        out.push_str(&waiting.render());
    }

    out.push_str("\nNext due (times +07:00)\n");
    let mut t = Table::new(
        &["data set", "period", "due", "deadline", "source"],
        &[false; 5],
    );
    for plan in agent.plans() {
        let (period, due, deadline) = match plan.schedule.next_due(now) {
            Some((p, at)) => (p.to_string(), vn(at), vn(plan.schedule.deadline(&p))),
            None => ("–".into(), "–".into(), "–".into()),
        };
        t.row(vec![
            plan.data_set.clone(),
            period,
            due,
            deadline,
            plan.source_description(),
        ]);
    }
    out.push_str(&t.render());
    Ok(out)
}

fn describe_rejected(e: &Entry, newest: Option<&Entry>) -> String {
    // With violations listed below, the message (their summary) would only repeat them.
    let reason = match &e.rejection {
        Some(r) if !r.violations.is_empty() => {
            format!("{}: {} problem(s)", r.code, r.violations.len())
        }
        Some(r) => format!("{}: {}", r.code, r.message),
        None => e.last_error.clone().unwrap_or_default(),
    };
    let mut out = format!("  #{} {} {}  {reason}\n", e.id, e.data_set, e.period);
    if let Some(n) = newest.filter(|n| n.id != e.id) {
        let revision = n
            .sent
            .as_ref()
            .map(|s| format!(", revision {}", s.revision))
            .unwrap_or_default();
        out.push_str(&format!(
            "      replaced by #{} ({}{revision})\n",
            n.id,
            n.state.as_str()
        ));
        return out;
    }
    for v in e.rejection.iter().flat_map(|r| &r.violations) {
        out.push_str(&format!(
            "      {}  [{}]  {}\n",
            v.field, v.rule, v.description
        ));
    }
    out.push_str(&format!(
        "      fix the source and the agent sends the new figures by itself; after a fix at the \
         province: tonghop agent resend {}\n",
        e.id
    ));
    out
}

async fn resend(common: &AgentCommon, key: &str) -> anyhow::Result<ExitCode> {
    let mut agent = Agent::new(settings(common)?).await?;
    let result = agent.resend(key).await;
    agent.close().await;
    let line = |e: &Entry| format!("#{} {} {}", e.id, e.data_set, e.period);
    match result? {
        Resent::NewEntry(e) => println!(
            "{}: the source has new figures; queued as a new entry (submission id {})",
            line(&e),
            e.submission_id
        ),
        Resent::Requeued(e) => println!(
            "{}: queued again (submission id {}); the running agent sends it at its next pass, \
             or run `tonghop agent run --once`",
            line(&e),
            e.submission_id
        ),
        Resent::AlreadyQueued(e) => println!(
            "{}: already queued; next attempt {} (+07:00)",
            line(&e),
            vn(e.next_attempt_at)
        ),
        Resent::AlreadySent(e) => println!(
            "{}: already delivered as revision {} and the source has not changed; nothing to send",
            line(&e),
            e.sent.as_ref().map(|s| s.revision).unwrap_or_default()
        ),
        Resent::Replaced { newer } => println!(
            "a newer entry of that period exists: {} ({}); resend that one if needed",
            line(&newer),
            newer.state.as_str()
        ),
    }
    Ok(ExitCode::SUCCESS)
}
