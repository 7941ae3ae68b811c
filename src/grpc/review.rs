//! The tonic adapter of `ReviewService`, and its client side.

use super::auth::Guard;
use super::convert::{from_timestamp, timestamp};
use super::pb;
use super::pb::review_service_server::ReviewService;
use crate::review::{ReviewError, Reviewer};
use crate::security::Action;
use crate::store::reviews::{ReviewMeta, StoredReview};
use tonic::{Request, Response, Status};

pub struct ReviewApi {
    pub reviewer: Reviewer,
    pub guard: Guard,
}

fn info(m: &ReviewMeta) -> pb::ReviewInfo {
    pb::ReviewInfo {
        id: m.id,
        year: m.year,
        unit: m.node.clone(),
        lang: m.lang.clone(),
        trigger: m.trigger.clone(),
        generated_at: Some(timestamp(m.generated_at)),
        change_counter: m.change_counter,
    }
}

pub fn meta_from_pb(i: pb::ReviewInfo) -> ReviewMeta {
    ReviewMeta {
        id: i.id,
        year: i.year,
        node: i.unit,
        lang: i.lang,
        trigger: i.trigger,
        generated_at: i
            .generated_at
            .as_ref()
            .and_then(from_timestamp)
            .unwrap_or_default(),
        change_counter: i.change_counter,
    }
}

pub fn review_from_pb(r: pb::Review) -> StoredReview {
    StoredReview {
        meta: meta_from_pb(r.info.unwrap_or_default()),
        markdown: r.markdown,
        html: r.html,
        tables: r.tables.into_iter().map(|t| (t.name, t.csv)).collect(),
    }
}

fn review_status(e: &ReviewError) -> Status {
    match e {
        ReviewError::Invalid(msg) => Status::invalid_argument(msg.clone()),
        ReviewError::Query(q) => super::status::query_status(q),
        ReviewError::Store(s) => {
            super::status::to_status(&crate::ingest::IngestError::Store(s.clone()))
        }
    }
}

#[tonic::async_trait]
impl ReviewService for ReviewApi {
    async fn generate_review(
        &self,
        request: Request<pb::GenerateReviewRequest>,
    ) -> Result<Response<pb::ReviewInfo>, Status> {
        self.guard
            .allowed(&Guard::principal(&request)?, Action::Administer)?;
        let r = request.into_inner();
        if !(crate::domain::period::MIN_YEAR..=crate::domain::period::MAX_YEAR).contains(&r.year) {
            return Err(Status::invalid_argument(format!(
                "year {} is outside {}..={}",
                r.year,
                crate::domain::period::MIN_YEAR,
                crate::domain::period::MAX_YEAR
            )));
        }
        let english = match r.lang.as_str() {
            "" | "vi" => false,
            "en" => true,
            other => {
                return Err(Status::invalid_argument(format!(
                    "lang {other:?}: use \"vi\" or \"en\""
                )));
            }
        };
        let meta = self
            .reviewer
            .generate(r.year, &r.unit, english, "on_demand")
            .await
            .map_err(|e| review_status(&e))?;
        Ok(Response::new(info(&meta)))
    }

    async fn get_review(
        &self,
        request: Request<pb::GetReviewRequest>,
    ) -> Result<Response<pb::Review>, Status> {
        self.guard
            .allowed(&Guard::principal(&request)?, Action::ReadReviews)?;
        let id = request.into_inner().id;
        let stored = self
            .reviewer
            .store()
            .review(id)
            .await
            .map_err(|e| review_status(&ReviewError::Store(e)))?
            .ok_or_else(|| Status::not_found(format!("no review {id}")))?;
        Ok(Response::new(pb::Review {
            info: Some(info(&stored.meta)),
            markdown: stored.markdown,
            html: stored.html,
            tables: stored
                .tables
                .into_iter()
                .map(|(name, csv)| pb::CsvTable { name, csv })
                .collect(),
        }))
    }

    async fn list_reviews(
        &self,
        request: Request<pb::ListReviewsRequest>,
    ) -> Result<Response<pb::ListReviewsResponse>, Status> {
        self.guard
            .allowed(&Guard::principal(&request)?, Action::ReadReviews)?;
        let year = request.into_inner().year;
        let reviews = self
            .reviewer
            .store()
            .reviews(year)
            .await
            .map_err(|e| review_status(&ReviewError::Store(e)))?;
        Ok(Response::new(pb::ListReviewsResponse {
            reviews: reviews.iter().map(info).collect(),
        }))
    }
}
