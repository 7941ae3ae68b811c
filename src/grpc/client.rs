//! The client side of the contract, in domain types: `tonghop submit`, the demo and tests use
//! it, and the district agent will.

use super::analytics_convert::{
    BadCode, completeness_from_pb, indicators_from_pb, ranking_from_pb, trend_from_pb,
};
use super::convert::{draft_to_pb, receipt_from_pb, violation_from_pb};
use super::one_frame::OneFrame;
use super::pb;
use super::pb::analytics_service_client::AnalyticsServiceClient;
use super::pb::catalog_service_client::CatalogServiceClient;
use super::pb::ingest_service_client::IngestServiceClient;
use super::pb::review_service_client::ReviewServiceClient;
use super::review::{meta_from_pb, review_from_pb};
use super::status::is_retryable;
use crate::analytics::{Completeness, ExportRow, IndicatorTable, RankingTable, Scope, TrendTable};
use crate::domain::{IndicatorCode, Receipt, ReportDraft, UnitCode, Violation};
use crate::query::Labelled;
use crate::store::reviews::{ReviewMeta, StoredReview};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Why a report was not accepted, as the client sees it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct SubmitFailure {
    pub code: Code,
    pub message: String,
    /// Every broken rule, for INVALID_ARGUMENT.
    pub violations: Vec<Violation>,
    /// The OTLP table: whether sending the same report again later may succeed.
    pub retryable: bool,
    /// The server's RetryInfo delay, when it gave one.
    pub retry_after: Option<Duration>,
}

impl SubmitFailure {
    pub(super) fn from_status(status: &Status) -> Self {
        let details = status.get_error_details();
        let violations = details
            .bad_request()
            .map(|br| {
                br.field_violations
                    .iter()
                    .map(|v| Violation {
                        field: v.field.clone(),
                        value: String::new(),
                        rule: v.reason.clone(),
                        description: v.description.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        SubmitFailure {
            code: status.code(),
            message: status.message().to_owned(),
            violations,
            retryable: is_retryable(status.code())
                || (status.code() == Code::ResourceExhausted && details.retry_info().is_some()),
            retry_after: details.retry_info().and_then(|r| r.retry_delay),
        }
    }

    /// A failure this client found itself, with no violations and no retry advice.
    pub(super) fn not_retryable(code: Code, message: impl Into<String>) -> Self {
        SubmitFailure {
            code,
            message: message.into(),
            violations: Vec::new(),
            retryable: false,
            retry_after: None,
        }
    }

    pub(super) fn malformed_receipt() -> Self {
        Self::not_retryable(
            Code::Internal,
            "the server answered with a receipt this client cannot read",
        )
    }
}

impl From<BadCode> for SubmitFailure {
    fn from(e: BadCode) -> Self {
        SubmitFailure::not_retryable(Code::Internal, e.to_string())
    }
}

fn query_pb(scope: &Scope) -> Option<pb::Query> {
    Some(pb::Query {
        data_set: scope.data_set.clone(),
        period: scope.period.to_string(),
        unit: scope.node.clone(),
        indicators: scope.indicators.clone(),
    })
}

/// This client's identity for mutual TLS: the province's CA certificate, and this unit's (or
/// analyst's, or administrator's) certificate and private key, all PEM files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct ClientTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn read_pem(what: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {what} {}: {e}", path.display()))
}

fn configured(endpoint: &str, tls: Option<&ClientTls>) -> anyhow::Result<Endpoint> {
    let mut configured = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|e| anyhow::anyhow!("bad endpoint {endpoint:?}: {e}"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60));
    if let Some(tls) = tls {
        let config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read_pem("CA certificate", &tls.ca)?))
            .identity(Identity::from_pem(
                read_pem("certificate", &tls.cert)?,
                read_pem("private key", &tls.key)?,
            ));
        configured = configured
            .tls_config(config)
            .map_err(|e| anyhow::anyhow!("TLS settings for {endpoint}: {e}"))?;
    }
    Ok(configured)
}

/// A data set as a district system discovers it.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSetInfo {
    pub code: String,
    pub name_vi: String,
    pub period_type: String,
    pub indicators: Vec<(String, bool)>,
}

#[derive(Clone)]
pub struct AggregatorClient {
    /// Reports go as one closing DATA frame each: one TCP segment fewer per call.
    ingest: IngestServiceClient<OneFrame<Channel>>,
    catalog: CatalogServiceClient<Channel>,
    analytics: AnalyticsServiceClient<Channel>,
    review: ReviewServiceClient<Channel>,
}

impl AggregatorClient {
    /// Connects to `http://host:port` (plaintext; see `connect_with` for mutual TLS).
    pub async fn connect(endpoint: &str) -> anyhow::Result<Self> {
        Self::connect_with(endpoint, None).await
    }

    /// Connects now, with this client's certificate when `tls` is given
    /// (`https://host:port`; the host must be named in the server's certificate).
    pub async fn connect_with(endpoint: &str, tls: Option<&ClientTls>) -> anyhow::Result<Self> {
        let channel = configured(endpoint, tls)?
            .connect()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach the aggregator at {endpoint}: {e}"))?;
        Ok(Self::from_channel(channel))
    }

    /// A client that connects on first use (no error while the aggregator is still down).
    pub fn connect_lazy(endpoint: &str) -> anyhow::Result<Self> {
        Self::connect_lazy_with(endpoint, None)
    }

    pub fn connect_lazy_with(endpoint: &str, tls: Option<&ClientTls>) -> anyhow::Result<Self> {
        Ok(Self::from_channel(
            configured(endpoint, tls)?.connect_lazy(),
        ))
    }

    fn from_channel(channel: Channel) -> Self {
        AggregatorClient {
            // The server enforces its own limit; the client must not refuse first.
            ingest: IngestServiceClient::new(OneFrame::new(channel.clone()))
                .max_encoding_message_size(usize::MAX),
            catalog: CatalogServiceClient::new(channel.clone()),
            review: ReviewServiceClient::new(channel.clone())
                .max_decoding_message_size(64 * 1024 * 1024),
            analytics: AnalyticsServiceClient::new(channel)
                .max_decoding_message_size(64 * 1024 * 1024),
        }
    }

    pub async fn submit(&mut self, draft: &ReportDraft) -> Result<Receipt, SubmitFailure> {
        let response = self
            .ingest
            .submit(pb::SubmitRequest {
                report: Some(draft_to_pb(draft)),
            })
            .await
            .map_err(|s| SubmitFailure::from_status(&s))?;
        response
            .into_inner()
            .receipt
            .and_then(receipt_from_pb)
            .ok_or_else(SubmitFailure::malformed_receipt)
    }

    /// One result per report, in order; the call itself can fail as a whole (transport).
    pub async fn submit_batch(
        &mut self,
        drafts: &[ReportDraft],
    ) -> Result<Vec<Result<Receipt, SubmitFailure>>, SubmitFailure> {
        let response = self
            .ingest
            .submit_batch(pb::SubmitBatchRequest {
                reports: drafts.iter().map(draft_to_pb).collect(),
            })
            .await
            .map_err(|s| SubmitFailure::from_status(&s))?
            .into_inner();
        Ok(response
            .results
            .into_iter()
            .map(|result| match result.outcome {
                Some(pb::submit_result::Outcome::Receipt(r)) => {
                    receipt_from_pb(r).ok_or_else(SubmitFailure::malformed_receipt)
                }
                Some(pb::submit_result::Outcome::Rejection(r)) => Err(SubmitFailure {
                    code: Code::from_i32(r.code),
                    message: r.message,
                    violations: r.violations.into_iter().map(violation_from_pb).collect(),
                    retryable: r.retryable,
                    retry_after: None,
                }),
                None => Err(SubmitFailure::malformed_receipt()),
            })
            .collect())
    }

    pub async fn data_sets(&mut self) -> Result<Vec<DataSetInfo>, SubmitFailure> {
        let response = self
            .catalog
            .list_data_sets(pb::ListDataSetsRequest {})
            .await
            .map_err(|s| SubmitFailure::from_status(&s))?;
        Ok(response
            .into_inner()
            .data_sets
            .into_iter()
            .map(|ds| DataSetInfo {
                period_type: pb::PeriodType::try_from(ds.period_type)
                    .map(|t| t.as_str_name().to_owned())
                    .unwrap_or_default(),
                code: ds.code,
                name_vi: ds.name_vi,
                indicators: ds
                    .indicators
                    .into_iter()
                    .map(|i| (i.code, i.required))
                    .collect(),
            })
            .collect())
    }

    /// (code, parent, level, population) of the units under `root` ("" for all).
    pub async fn units(
        &mut self,
        root: &str,
    ) -> Result<Vec<(String, String, String, u64)>, SubmitFailure> {
        let response = self
            .catalog
            .list_units(pb::ListUnitsRequest { root: root.into() })
            .await
            .map_err(|s| SubmitFailure::from_status(&s))?;
        Ok(response
            .into_inner()
            .units
            .into_iter()
            .map(|u| (u.code, u.parent, u.level, u.population))
            .collect())
    }

    /// Indicators of `scope.node` ("" for the root) and of each reporting unit under it.
    pub async fn indicators(
        &mut self,
        scope: &Scope,
    ) -> Result<Labelled<IndicatorTable>, SubmitFailure> {
        let response = self
            .analytics
            .get_indicators(pb::IndicatorsRequest {
                query: query_pb(scope),
            })
            .await
            .map_err(|s| SubmitFailure::from_status(&s))?;
        let (answer, labels) = indicators_from_pb(response.into_inner())?;
        Ok(Labelled { answer, labels })
    }

    /// Rankings and the composite score; `per_capita: None` takes the server's default (on).
    pub async fn ranking(
        &mut self,
        scope: &Scope,
        per_capita: Option<bool>,
    ) -> Result<Labelled<RankingTable>, SubmitFailure> {
        let response = self
            .analytics
            .get_ranking(pb::RankingRequest {
                query: query_pb(scope),
                per_capita,
            })
            .await
            .map_err(|s| SubmitFailure::from_status(&s))?;
        let (answer, labels) = ranking_from_pb(response.into_inner())?;
        Ok(Labelled { answer, labels })
    }

    pub async fn completeness(
        &mut self,
        scope: &Scope,
    ) -> Result<Labelled<Completeness>, SubmitFailure> {
        let response = self
            .analytics
            .get_completeness(pb::CompletenessRequest {
                query: query_pb(scope),
            })
            .await
            .map_err(|s| SubmitFailure::from_status(&s))?;
        let (answer, labels) = completeness_from_pb(response.into_inner())?;
        Ok(Labelled { answer, labels })
    }

    pub async fn trend(&mut self, scope: &Scope) -> Result<Labelled<TrendTable>, SubmitFailure> {
        let response = self
            .analytics
            .get_trend(pb::TrendRequest {
                query: query_pb(scope),
            })
            .await
            .map_err(|s| SubmitFailure::from_status(&s))?;
        let (answer, labels) = trend_from_pb(response.into_inner())?;
        Ok(Labelled { answer, labels })
    }

    /// Every latest value from `scope.period` through `through`, read from the stream.
    pub async fn export(
        &mut self,
        scope: &Scope,
        through: &str,
    ) -> Result<Vec<ExportRow>, SubmitFailure> {
        let mut stream = self
            .analytics
            .export_values(pb::ExportRequest {
                data_set: scope.data_set.clone(),
                from_period: scope.period.to_string(),
                to_period: through.into(),
                unit: scope.node.clone(),
            })
            .await
            .map_err(|s| SubmitFailure::from_status(&s))?
            .into_inner();
        let mut rows = Vec::new();
        while let Some(v) = stream
            .message()
            .await
            .map_err(|s| SubmitFailure::from_status(&s))?
        {
            rows.push(ExportRow {
                unit: UnitCode::parse(&v.unit).map_err(|_| BadCode(v.unit.clone()))?,
                period: v.period,
                indicator: IndicatorCode::parse(&v.indicator)
                    .map_err(|_| BadCode(v.indicator.clone()))?,
                value: v.value,
                revision: v.revision,
            });
        }
        Ok(rows)
    }

    /// Generates a review now (administrators) and returns its version.
    pub async fn generate_review(
        &mut self,
        year: i32,
        unit: &str,
        lang: &str,
    ) -> Result<ReviewMeta, SubmitFailure> {
        let response = self
            .review
            .generate_review(pb::GenerateReviewRequest {
                year,
                unit: unit.into(),
                lang: lang.into(),
            })
            .await
            .map_err(|s| SubmitFailure::from_status(&s))?;
        Ok(meta_from_pb(response.into_inner()))
    }

    pub async fn review(&mut self, id: i64) -> Result<StoredReview, SubmitFailure> {
        let response = self
            .review
            .get_review(pb::GetReviewRequest { id })
            .await
            .map_err(|s| SubmitFailure::from_status(&s))?;
        Ok(review_from_pb(response.into_inner()))
    }

    pub async fn reviews(&mut self, year: Option<i32>) -> Result<Vec<ReviewMeta>, SubmitFailure> {
        let response = self
            .review
            .list_reviews(pb::ListReviewsRequest { year })
            .await
            .map_err(|s| SubmitFailure::from_status(&s))?;
        Ok(response
            .into_inner()
            .reviews
            .into_iter()
            .map(meta_from_pb)
            .collect())
    }
}
