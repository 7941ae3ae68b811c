//! Thin tonic adapters: decode, call the use case, encode; errors go through `status`.

use super::auth::Guard;
use super::convert::{data_set_to_pb, draft_from_pb, receipt_to_pb, unit_to_pb};
use super::pb;
use super::pb::catalog_service_server::CatalogService;
use super::pb::ingest_service_server::IngestService;
use super::status::{invalid_argument, to_rejection, to_status};
use crate::domain::{UnitCode, Violation};
use crate::ingest::Ingestor;
use crate::security::{Action, Principal};
use tonic::{Request, Response, Status};

pub struct IngestApi {
    pub ingestor: Ingestor,
    pub guard: Guard,
}

impl IngestApi {
    /// A unit may only write its own reports. A unit code that does not even parse names no
    /// unit to protect: validation refuses that report for everyone, and says why.
    fn may_submit(&self, principal: &Principal, report: &pb::Report) -> Result<(), Status> {
        match UnitCode::parse(&report.unit_code) {
            Ok(unit) => self.guard.allowed(principal, Action::SubmitReport(unit)),
            Err(_) => Ok(()),
        }
    }
}

#[tonic::async_trait]
impl IngestService for IngestApi {
    async fn submit(
        &self,
        request: Request<pb::SubmitRequest>,
    ) -> Result<Response<pb::SubmitResponse>, Status> {
        let principal = Guard::principal(&request)?;
        let Some(report) = request.into_inner().report else {
            return Err(invalid_argument(&[Violation {
                field: "report".into(),
                value: String::new(),
                rule: "required".into(),
                description: "SubmitRequest.report is missing".into(),
            }]));
        };
        self.may_submit(&principal, &report)?;
        match self.ingestor.submit(draft_from_pb(report)).await {
            Ok(receipt) => Ok(Response::new(pb::SubmitResponse {
                receipt: Some(receipt_to_pb(&receipt)),
            })),
            Err(e) => Err(to_status(&e)),
        }
    }

    async fn submit_batch(
        &self,
        request: Request<pb::SubmitBatchRequest>,
    ) -> Result<Response<pb::SubmitBatchResponse>, Status> {
        let principal = Guard::principal(&request)?;
        let reports = request.into_inner().reports;
        let submission_ids: Vec<String> = reports.iter().map(|r| r.submission_id.clone()).collect();
        // Each report is checked on its own: a refused one does not hold back the others.
        let batch: Vec<Result<_, Status>> = reports
            .into_iter()
            .map(|report| {
                self.may_submit(&principal, &report)
                    .map(|()| draft_from_pb(report))
            })
            .collect();
        let outcomes = self.ingestor.submit_batch(batch).await;
        let mut response = pb::SubmitBatchResponse::default();
        for (submission_id, outcome) in submission_ids.into_iter().zip(outcomes) {
            let outcome = match outcome {
                Err(status) => {
                    response.rejected += 1;
                    pb::submit_result::Outcome::Rejection(pb::Rejection {
                        code: status.code() as i32,
                        message: status.message().to_owned(),
                        violations: Vec::new(),
                        retryable: false,
                    })
                }
                Ok(Ok(receipt)) => {
                    response.accepted += 1;
                    pb::submit_result::Outcome::Receipt(receipt_to_pb(&receipt))
                }
                Ok(Err(e)) => {
                    response.rejected += 1;
                    pb::submit_result::Outcome::Rejection(to_rejection(&e))
                }
            };
            response.results.push(pb::SubmitResult {
                submission_id,
                outcome: Some(outcome),
            });
        }
        tracing::info!(
            accepted = response.accepted,
            rejected = response.rejected,
            "batch processed"
        );
        Ok(Response::new(response))
    }
}

pub struct CatalogApi {
    pub ingestor: Ingestor,
    pub guard: Guard,
}

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    async fn list_data_sets(
        &self,
        request: Request<pb::ListDataSetsRequest>,
    ) -> Result<Response<pb::ListDataSetsResponse>, Status> {
        self.guard
            .allowed(&Guard::principal(&request)?, Action::ReadCatalog)?;
        let catalog = self.ingestor.catalog();
        Ok(Response::new(pb::ListDataSetsResponse {
            data_sets: catalog
                .data_sets()
                .iter()
                .map(|ds| data_set_to_pb(catalog, ds))
                .collect(),
        }))
    }

    async fn list_units(
        &self,
        request: Request<pb::ListUnitsRequest>,
    ) -> Result<Response<pb::ListUnitsResponse>, Status> {
        self.guard
            .allowed(&Guard::principal(&request)?, Action::ReadCatalog)?;
        let root = request.into_inner().root;
        let units = self.ingestor.units();
        let selected = if root.is_empty() {
            units.subtree(&units.root().code)
        } else {
            let code = UnitCode::parse(&root)
                .map_err(|e| Status::invalid_argument(format!("root {root:?}: unit code {e}")))?;
            if units.get(&code).is_none() {
                return Err(Status::not_found(format!("no reporting unit {code}")));
            }
            units.subtree(&code)
        };
        Ok(Response::new(pb::ListUnitsResponse {
            units: selected.into_iter().map(unit_to_pb).collect(),
        }))
    }
}
