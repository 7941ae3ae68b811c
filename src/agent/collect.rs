//! The collection side of the agent: read each due period from its source, compare with
//! the outbox's newest entry of that period, and queue what is new; and `resend`, the
//! operator's way back in after a fix.

use super::source::{Expect, SourceReport};
use super::{
    Agent, AgentError, CollectSummary, Entry, EntryState, Plan, Resent, content_hash, list_periods,
    vn,
};
use crate::domain::{PeriodId, ReportDraft};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tracing::{info, warn};

impl Agent {
    /// The report to send, and the hash that decides whether it is new. The hash is taken
    /// before the settings' default author is filled in: changing `prepared_by` in the settings
    /// must not turn every delivered period into a correction.
    fn draft(&self, plan: &Plan, period: PeriodId, report: SourceReport) -> (ReportDraft, String) {
        let mut draft = ReportDraft {
            // The outbox fixes the submission id when it stores the entry.
            submission_id: String::new(),
            unit_code: self.settings.unit.clone(),
            data_set: plan.data_set.clone(),
            period: period.to_string(),
            values: report.values,
            narrative: report.narrative,
            prepared_by: report.prepared_by.unwrap_or_default(),
            client_time: Some(Utc::now()),
        };
        let hash = content_hash(&draft);
        if draft.prepared_by.is_empty() {
            draft.prepared_by = self.settings.prepared_by.clone();
        }
        (draft, hash)
    }

    /// Reads the source of every period due at `now` and puts new content in the outbox.
    pub async fn collect(&mut self, now: DateTime<Utc>) -> Result<CollectSummary, AgentError> {
        let mut summary = CollectSummary::default();
        let unit = self.settings.unit.clone();
        let mut plans = std::mem::take(&mut self.plans);
        let result = async {
            for plan in &mut plans {
                self.collect_plan(&unit, plan, now, &mut summary).await?;
            }
            Ok::<_, AgentError>(())
        }
        .await;
        self.plans = plans;
        result.map(|()| summary)
    }

    async fn collect_plan(
        &mut self,
        unit: &str,
        plan: &mut Plan,
        now: DateTime<Utc>,
        summary: &mut CollectSummary,
    ) -> Result<(), AgentError> {
        let due = plan.schedule.due_periods(now);
        if due.is_empty() {
            return Ok(());
        }
        let latest: HashMap<String, Entry> = self
            .outbox
            .latest_by_period(&plan.data_set)
            .await?
            .into_iter()
            .map(|e| (e.period.clone(), e))
            .collect();
        let expects: Vec<Expect<'_>> = due
            .iter()
            .map(|p| Expect {
                unit,
                data_set: &plan.data_set,
                period: *p,
                window: plan.schedule.window(p),
            })
            .collect();
        let results = plan.source.read_all(&expects).await;
        let mut missing = Vec::new();
        for (period, result) in due.iter().zip(results) {
            let key = (plan.data_set.clone(), period.to_string());
            let previous = latest.get(&key.1);
            // Periods without data are announced together below, not one line each.
            let has_data = !matches!(result, Ok(None));
            if previous.is_none() && has_data && !self.announced.contains(&key) {
                info!(
                    unit = %unit,
                    data_set = %plan.data_set,
                    period = %period,
                    due_at = %vn(plan.schedule.due_at(period)),
                    deadline = %vn(plan.schedule.deadline(period)),
                    "report due"
                );
                self.announced.insert(key.clone());
            }
            let report = match result {
                Err(e) => {
                    summary.errors += 1;
                    let message = e.to_string();
                    if self.source_errors.get(&key) != Some(&message) {
                        warn!(unit = %unit, data_set = %plan.data_set, period = %period, error = %message,
                              "cannot read the report source; fix it and the next pass sends it");
                        self.source_errors.insert(key, message);
                    }
                    continue;
                }
                Ok(None) => {
                    self.source_errors.remove(&key);
                    if previous.is_none() {
                        missing.push(*period);
                    }
                    continue;
                }
                Ok(Some(report)) => {
                    self.source_errors.remove(&key);
                    report
                }
            };
            let origin = report.origin.clone();
            let (draft, hash) = self.draft(plan, *period, report);
            if previous.is_some_and(|p| p.content_hash == hash) {
                continue;
            }
            let entry = self
                .outbox
                .enqueue(&draft, &hash, &origin, Utc::now())
                .await?;
            match previous {
                None => {
                    summary.queued += 1;
                    info!(unit = %unit, data_set = %plan.data_set, period = %period, entry = entry.id,
                          submission = %entry.submission_id, source = %origin, "report queued");
                }
                Some(p) => {
                    summary.corrections += 1;
                    info!(unit = %unit, data_set = %plan.data_set, period = %period, entry = entry.id,
                          submission = %entry.submission_id, source = %origin,
                          replaces = p.id, replaced_state = p.state.as_str(),
                          replaced_revision = p.sent.as_ref().map(|s| s.revision),
                          "correction queued");
                }
            }
        }
        summary.missing += missing.len();
        if self.missing_logged.get(&plan.data_set) != Some(&missing) {
            let overdue: Vec<PeriodId> = missing
                .iter()
                .filter(|p| plan.schedule.deadline(p) < now)
                .copied()
                .collect();
            let pending: Vec<PeriodId> = missing
                .iter()
                .filter(|p| !overdue.contains(p))
                .copied()
                .collect();
            let source = plan.source.describe();
            if !pending.is_empty() {
                info!(unit = %unit, data_set = %plan.data_set, periods = %list_periods(&pending),
                      source = %source, "report due but the source has no data for it yet");
            }
            if !overdue.is_empty() {
                warn!(unit = %unit, data_set = %plan.data_set, periods = %list_periods(&overdue),
                      source = %source, "report past its deadline and the source has no data");
            }
            self.missing_logged.insert(plan.data_set.clone(), missing);
        }
        Ok(())
    }

    /// After a fix: reads the source of the entry's period again. Changed content becomes a
    /// new entry; the same content of a rejected entry is queued again. It keeps its submission
    /// id (the aggregator stored nothing under it, or, should it have, recognises it), unless
    /// the refusal was ALREADY_EXISTS: that id is taken, so it gets a fresh one.
    pub async fn resend(&mut self, key: &str) -> Result<Resent, AgentError> {
        let entry = self.outbox.find(key).await?.ok_or_else(|| {
            AgentError::Resend(format!(
                "no outbox entry {key:?}; `tonghop agent status` lists the entries"
            ))
        })?;
        let index = self
            .plans
            .iter()
            .position(|p| p.data_set == entry.data_set)
            .ok_or_else(|| {
                AgentError::Resend(format!(
                    "entry #{} is for data set {}, which is no longer in [[reports]]",
                    entry.id, entry.data_set
                ))
            })?;
        let period = PeriodId::parse(&entry.period).map_err(|e| {
            AgentError::Resend(format!(
                "entry #{} has period {:?} {e}",
                entry.id, entry.period
            ))
        })?;
        let history = self.outbox.history(&entry.data_set, &entry.period).await?;
        let newest = history.last().cloned().unwrap_or_else(|| entry.clone());

        let unit = self.settings.unit.clone();
        let mut plan = self.plans.remove(index);
        let expect = Expect {
            unit: &unit,
            data_set: &entry.data_set,
            period,
            window: plan.schedule.window(&period),
        };
        let read = plan.source.read_all(&[expect]).await.pop();
        let draft = match read {
            Some(Ok(Some(report))) => {
                Some((report.origin.clone(), self.draft(&plan, period, report)))
            }
            Some(Err(e)) => {
                self.plans.insert(index, plan);
                return Err(AgentError::Resend(format!(
                    "cannot read the source of {} {period}: {e}",
                    entry.data_set
                )));
            }
            _ => None,
        };
        self.plans.insert(index, plan);
        if let Some((origin, (draft, hash))) = draft
            && hash != newest.content_hash
        {
            let created = self
                .outbox
                .enqueue(&draft, &hash, &origin, Utc::now())
                .await?;
            info!(unit = %unit, data_set = %entry.data_set, period = %period, entry = created.id,
                  submission = %created.submission_id, "correction queued by resend");
            return Ok(Resent::NewEntry(Box::new(created)));
        }
        if newest.id != entry.id {
            return Ok(Resent::Replaced {
                newer: Box::new(newest),
            });
        }
        match entry.state {
            EntryState::Rejected => {
                let taken = entry
                    .rejection
                    .as_ref()
                    .is_some_and(|r| r.code == format!("{:?}", tonic::Code::AlreadyExists));
                let fresh = taken.then(|| {
                    let suffix = uuid::Uuid::new_v4().simple().to_string();
                    format!("{}-r{}", entry.submission_id, &suffix[..8])
                });
                self.outbox
                    .requeue(entry.id, fresh.as_deref(), Utc::now())
                    .await?;
                info!(unit = %unit, data_set = %entry.data_set, period = %period, entry = entry.id,
                      "rejected report queued again by resend");
                let again = self.outbox.get(entry.id).await?.unwrap_or(entry);
                Ok(Resent::Requeued(Box::new(again)))
            }
            EntryState::Queued => Ok(Resent::AlreadyQueued(Box::new(entry))),
            EntryState::Sent => Ok(Resent::AlreadySent(Box::new(entry))),
            EntryState::Superseded => Ok(Resent::Replaced {
                newer: Box::new(newest),
            }),
        }
    }
}
