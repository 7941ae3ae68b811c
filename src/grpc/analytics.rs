//! The tonic adapter of `AnalyticsService`: decode the filter, run the query service, encode.

use super::analytics_convert::{completeness_to_pb, indicators_to_pb, ranking_to_pb, trend_to_pb};
use super::auth::Guard;
use super::pb;
use super::pb::analytics_service_server::AnalyticsService;
use super::status::{invalid_argument, query_status};
use crate::analytics::Scope;
use crate::domain::UnitCode;
use crate::domain::{PeriodId, Violation};
use crate::query::{Labels, QueryService};
use crate::security::{Action, Principal};
use std::pin::Pin;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

pub struct AnalyticsApi {
    pub query: QueryService,
    pub guard: Guard,
}

fn bad(field: &str, value: &str, rule: &str, description: String) -> Status {
    invalid_argument(&[Violation {
        field: field.into(),
        value: value.into(),
        rule: rule.into(),
        description,
    }])
}

fn period(field: &str, raw: &str) -> Result<PeriodId, Status> {
    PeriodId::parse(raw).map_err(|e| {
        bad(
            field,
            raw,
            "period_malformed",
            format!("period {raw:?} {e}"),
        )
    })
}

impl AnalyticsApi {
    /// The caller may read analytics of the scope's node (the policy may keep units to their
    /// own subtree). An unknown node is answered NOT_FOUND by the query itself.
    fn may_read(&self, principal: &Principal, scope: &Scope) -> Result<(), Status> {
        match UnitCode::parse(&scope.node) {
            Ok(node) => self.guard.allowed(principal, Action::ReadAnalytics(node)),
            Err(_) => Err(Status::not_found(format!(
                "no reporting unit {:?}",
                scope.node
            ))),
        }
    }

    /// Decodes the filter and checks the caller may read it.
    fn checked_scope<T>(
        &self,
        request: &Request<T>,
        query: Option<pb::Query>,
    ) -> Result<Scope, Status> {
        let principal = Guard::principal(request)?;
        let scope = self.scope(query)?;
        self.may_read(&principal, &scope)?;
        Ok(scope)
    }

    fn scope(&self, query: Option<pb::Query>) -> Result<Scope, Status> {
        let q = query.ok_or_else(|| bad("query", "", "required", "query is missing".into()))?;
        Ok(Scope {
            period: period("query.period", &q.period)?,
            data_set: q.data_set,
            node: if q.unit.is_empty() {
                self.query.units().root().code.to_string()
            } else {
                q.unit
            },
            indicators: q.indicators,
        })
    }

    fn labels<'a>(
        &self,
        indicators: impl IntoIterator<Item = &'a str>,
        units: impl IntoIterator<Item = &'a str>,
    ) -> Labels {
        Labels::for_codes(self.query.catalog(), self.query.units(), indicators, units)
    }
}

type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::ExportedValue, Status>> + Send>>;

#[tonic::async_trait]
impl AnalyticsService for AnalyticsApi {
    async fn get_indicators(
        &self,
        request: Request<pb::IndicatorsRequest>,
    ) -> Result<Response<pb::IndicatorsResponse>, Status> {
        let query = request.get_ref().query.clone();
        let scope = self.checked_scope(&request, query)?;
        let table = self
            .query
            .indicators(scope)
            .await
            .map_err(|e| query_status(&e))?;
        let labels = self.labels(
            table.indicators.iter().map(|i| i.as_str()),
            table.rows.iter().map(|r| r.unit.as_str()),
        );
        Ok(Response::new(indicators_to_pb(&table, &labels)))
    }

    async fn get_ranking(
        &self,
        request: Request<pb::RankingRequest>,
    ) -> Result<Response<pb::RankingResponse>, Status> {
        let scope = self.checked_scope(&request, request.get_ref().query.clone())?;
        let per_capita = request.get_ref().per_capita.unwrap_or(true);
        let table = self
            .query
            .ranking(scope, per_capita)
            .await
            .map_err(|e| query_status(&e))?;
        let labels = self.labels(
            table.indicators.iter().map(|i| i.indicator.as_str()),
            table.composite.iter().map(|c| c.unit.as_str()).chain(
                table
                    .indicators
                    .iter()
                    .flat_map(|i| i.entries.iter().map(|e| e.unit.as_str())),
            ),
        );
        Ok(Response::new(ranking_to_pb(&table, &labels)))
    }

    async fn get_completeness(
        &self,
        request: Request<pb::CompletenessRequest>,
    ) -> Result<Response<pb::CompletenessResponse>, Status> {
        let query = request.get_ref().query.clone();
        let scope = self.checked_scope(&request, query)?;
        let table = self
            .query
            .completeness(scope)
            .await
            .map_err(|e| query_status(&e))?;
        let labels = self.labels(
            std::iter::empty(),
            std::iter::once(table.node.as_str()).chain(table.units.iter().map(|u| u.unit.as_str())),
        );
        Ok(Response::new(completeness_to_pb(&table, &labels)))
    }

    async fn get_trend(
        &self,
        request: Request<pb::TrendRequest>,
    ) -> Result<Response<pb::TrendResponse>, Status> {
        let query = request.get_ref().query.clone();
        let scope = self.checked_scope(&request, query)?;
        let table = self
            .query
            .trend(scope)
            .await
            .map_err(|e| query_status(&e))?;
        let labels = self.labels(
            table.rows.iter().map(|r| r.indicator.as_str()),
            table.rows.iter().map(|r| r.unit.as_str()),
        );
        Ok(Response::new(trend_to_pb(&table, &labels)))
    }

    type ExportValuesStream = ExportStream;

    async fn export_values(
        &self,
        request: Request<pb::ExportRequest>,
    ) -> Result<Response<Self::ExportValuesStream>, Status> {
        let r = request.get_ref().clone();
        let from = period("from_period", &r.from_period)?;
        let through = period("to_period", &r.to_period)?;
        let scope = self.checked_scope(
            &request,
            Some(pb::Query {
                data_set: r.data_set,
                period: r.from_period,
                unit: r.unit,
                indicators: Vec::new(),
            }),
        )?;
        let scope = Scope {
            period: from,
            ..scope
        };
        let rows = self
            .query
            .export(scope, through)
            .await
            .map_err(|e| query_status(&e))?;
        tracing::info!(values = rows.len(), "export streamed");
        let stream = tokio_stream::iter(rows.into_iter().map(|row| {
            Ok(pb::ExportedValue {
                unit: row.unit.to_string(),
                period: row.period,
                indicator: row.indicator.to_string(),
                value: row.value,
                revision: row.revision,
            })
        }));
        Ok(Response::new(Box::pin(stream)))
    }
}
