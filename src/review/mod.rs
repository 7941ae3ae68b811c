//! The yearly review (*báo cáo tổng kết*): gathered from the analytics, composed as a
//! Vietnamese administrative report, rendered as Markdown, HTML and CSV, and stored as an
//! immutable version that records the store change counter it was built from.

pub mod compose;
pub mod gather;
pub mod render;
pub mod schedule;
pub mod tables;

pub use gather::{ReviewError, ReviewRequest};

use crate::domain::Calendar;
use crate::ingest::Clock;
use crate::query::QueryService;
use crate::store::Store;
use crate::store::reviews::{NewReview, ReviewMeta};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Makes and stores reviews of one data set.
#[derive(Clone)]
pub struct Reviewer {
    query: QueryService,
    data_set: String,
    clock: Clock,
}

impl Reviewer {
    pub fn new(query: QueryService, data_set: &str) -> Self {
        Reviewer {
            query,
            data_set: data_set.to_owned(),
            clock: Arc::new(Utc::now),
        }
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        self.query.store()
    }

    pub fn query(&self) -> &QueryService {
        &self.query
    }

    /// The calendar of the reviewed data set (it decides the yearly window).
    pub fn calendar(&self) -> Calendar {
        self.query
            .catalog()
            .data_set(&self.data_set)
            .map(|d| d.calendar)
            .unwrap_or(Calendar::Decree09)
    }

    /// Gathers, composes, renders and stores a new review version.
    pub async fn generate(
        &self,
        year: i32,
        node: &str,
        english: bool,
        trigger: &str,
    ) -> Result<ReviewMeta, ReviewError> {
        let request = ReviewRequest {
            year,
            node: node.to_owned(),
            english,
            data_set: self.data_set.clone(),
        };
        let data = gather::gather(&self.query, &request, self.now()).await?;
        // Composing and drawing the charts is CPU work: keep it off the async threads.
        let (markdown, html, tables, node, generated_at, change_counter) =
            tokio::task::spawn_blocking(move || {
                let doc = compose::compose(&data);
                (
                    render::markdown(&doc),
                    render::html(&doc),
                    tables::csv_tables(&data),
                    data.node.to_string(),
                    data.generated_at,
                    data.change_counter,
                )
            })
            .await
            .map_err(|e| ReviewError::Invalid(format!("review rendering failed: {e}")))?;
        let meta = self
            .store()
            .save_review(&NewReview {
                year,
                node,
                lang: if english { "en" } else { "vi" }.into(),
                trigger: trigger.into(),
                generated_at,
                change_counter,
                markdown,
                html,
                tables,
            })
            .await?;
        tracing::info!(
            review = meta.id,
            year,
            trigger,
            change_counter,
            "review generated"
        );
        Ok(meta)
    }
}
