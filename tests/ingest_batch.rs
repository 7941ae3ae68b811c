//! How a batch reaches the store: its reports together, so they can share group commits, unless
//! it names a report or a submission id twice. Counted on a real SQLite store by a wrapper that
//! only counts the `record` calls in flight and passes everything through.

mod common;

use chrono::{DateTime, Utc};
use common::valid_report;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tonghop::domain::{Catalog, ReceiptStatus, UnitTree, ValidationLimits};
use tonghop::ingest::Ingestor;
use tonghop::store::reviews::{NewReview, ReviewMeta, ReviewStore, StoredReview};
use tonghop::store::{
    self, NewRevision, Recorded, RowVisitor, Store, StoreError, StoreOptions, StoredRevision,
};

/// A real store, with the most `record` calls that were ever in flight at once.
struct CountingStore {
    inner: Arc<dyn Store>,
    in_flight: AtomicUsize,
    most: AtomicUsize,
}

#[async_trait::async_trait]
impl Store for CountingStore {
    async fn record(&self, revision: NewRevision) -> Result<Recorded, StoreError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        let recorded = self.inner.record(revision).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        recorded
    }
    async fn latest(
        &self,
        unit: &str,
        data_set: &str,
        period: &str,
    ) -> Result<Option<StoredRevision>, StoreError> {
        self.inner.latest(unit, data_set, period).await
    }
    async fn revisions(
        &self,
        unit: &str,
        data_set: &str,
        period: &str,
    ) -> Result<Vec<StoredRevision>, StoreError> {
        self.inner.revisions(unit, data_set, period).await
    }
    async fn visit_current(&self, visitor: &mut RowVisitor<'_>) -> Result<(), StoreError> {
        self.inner.visit_current(visitor).await
    }
    async fn visit_since(
        &self,
        from_seq: i64,
        visitor: &mut RowVisitor<'_>,
    ) -> Result<(), StoreError> {
        self.inner.visit_since(from_seq, visitor).await
    }
    async fn change_counter(&self) -> Result<i64, StoreError> {
        self.inner.change_counter().await
    }
    async fn dump(&self) -> Result<String, StoreError> {
        self.inner.dump().await
    }
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn close(&self) {
        self.inner.close().await
    }
}

#[async_trait::async_trait]
impl ReviewStore for CountingStore {
    async fn save_review(&self, review: &NewReview) -> Result<ReviewMeta, StoreError> {
        self.inner.save_review(review).await
    }
    async fn review(&self, id: i64) -> Result<Option<StoredReview>, StoreError> {
        self.inner.review(id).await
    }
    async fn reviews(&self, year: Option<i32>) -> Result<Vec<ReviewMeta>, StoreError> {
        self.inner.reviews(year).await
    }
    async fn claim_review_job(
        &self,
        scheduled_for: &str,
        holder: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.inner
            .claim_review_job(scheduled_for, holder, now, stale_before)
            .await
    }
    async fn finish_review_job(
        &self,
        scheduled_for: &str,
        review_id: i64,
    ) -> Result<(), StoreError> {
        self.inner.finish_review_job(scheduled_for, review_id).await
    }
    async fn review_jobs(&self) -> Result<Vec<(String, Option<i64>)>, StoreError> {
        self.inner.review_jobs().await
    }
}

async fn counting_ingestor(dir: &tempfile::TempDir) -> (Ingestor, Arc<CountingStore>) {
    let url = format!("sqlite://{}", dir.path().join("batch.db").display());
    let inner = store::open(&url, &StoreOptions::default())
        .await
        .expect("store");
    let counting = Arc::new(CountingStore {
        inner,
        in_flight: AtomicUsize::new(0),
        most: AtomicUsize::new(0),
    });
    let ingestor = Ingestor::new(
        Arc::new(Catalog::embedded().expect("catalog")),
        Arc::new(UnitTree::example().expect("units")),
        counting.clone(),
        ValidationLimits::default(),
    );
    (ingestor, counting)
}

#[tokio::test]
async fn a_batch_of_distinct_reports_is_in_the_store_together() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ingestor, counting) = counting_ingestor(&dir).await;
    // 4 units × 36 months (2016-2018): 144 distinct reports, more than the 64 allowed in the
    // store's queue at once.
    let drafts: Vec<_> = ["BS01", "BS02", "BS03", "BS05"]
        .iter()
        .flat_map(|unit| {
            (0..36).map(move |m| {
                let period = format!("{}{:02}", 2016 + m / 12, m % 12 + 1);
                valid_report(&format!("{unit}-{period}"), unit, &period)
            })
        })
        .collect();
    let ids: Vec<String> = drafts.iter().map(|d| d.submission_id.clone()).collect();
    let outcomes = ingestor
        .submit_batch(drafts.into_iter().map(Ok::<_, ()>).collect())
        .await;

    assert_eq!(outcomes.len(), 144);
    for (outcome, id) in outcomes.iter().zip(&ids) {
        let receipt = match outcome {
            Ok(Ok(receipt)) => receipt,
            other => panic!("{id}: {other:?}"),
        };
        assert_eq!(
            receipt.submission_id.as_str(),
            id,
            "answers in the order sent"
        );
        assert_eq!((receipt.revision, receipt.status), (1, ReceiptStatus::New));
    }
    let most = counting.most.load(Ordering::SeqCst);
    assert!(
        most > 1 && most <= 64,
        "{most} reports were in the store at once; expected 2..=64"
    );
    assert_eq!(counting.change_counter().await.expect("counter"), 144);
    counting.close().await;
}

#[tokio::test]
async fn a_batch_naming_one_report_twice_is_taken_one_report_at_a_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ingestor, counting) = counting_ingestor(&dir).await;
    let mut drafts: Vec<_> = (1..=12)
        .map(|m| {
            let period = format!("2019{m:02}");
            valid_report(&format!("BS03-{period}"), "BS03", &period)
        })
        .collect();
    // A correction of January under a new submission id, at the end of the batch.
    let mut correction = valid_report("BS03-201901-fix", "BS03", "201901");
    common::set_value(&mut correction, "hs_dung_han", 2500.0);
    drafts.push(correction);
    let outcomes = ingestor
        .submit_batch(drafts.into_iter().map(Ok::<_, ()>).collect())
        .await;

    let last = match &outcomes[12] {
        Ok(Ok(receipt)) => receipt,
        other => panic!("the correction: {other:?}"),
    };
    assert_eq!((last.revision, last.status), (2, ReceiptStatus::Revision));
    assert_eq!(counting.most.load(Ordering::SeqCst), 1);
    counting.close().await;
}
