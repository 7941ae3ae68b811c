//! Assembles a running aggregator from settings: catalog, unit tree, store, ingest use case and
//! gRPC server. Shared by `tonghop serve`, the demo and the tests, so they run the same thing.

use crate::config::Settings;
use crate::domain::{Catalog, UnitTree};
use crate::grpc::Application;
use crate::ingest::Ingestor;
use crate::query::QueryService;
use crate::store::{self, StoreOptions};
use anyhow::Context;
use std::sync::Arc;

pub fn load_catalog(settings: &Settings) -> anyhow::Result<Catalog> {
    match &settings.catalog {
        None => Ok(Catalog::embedded()?),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read catalog {}", path.display()))?;
            Catalog::from_toml(&text).with_context(|| format!("catalog {}", path.display()))
        }
    }
}

pub fn load_units(settings: &Settings) -> anyhow::Result<UnitTree> {
    match &settings.units {
        None => {
            tracing::warn!(
                "no units file configured: using the embedded example province (Tỉnh Bình Sơn); \
                 set --units or TONGHOP_UNITS for a real one"
            );
            Ok(UnitTree::example()?)
        }
        Some(path) => Ok(UnitTree::load(path)?),
    }
}

/// Opens the store (running migrations) and builds the ingest use case.
pub async fn ingestor(settings: &Settings) -> anyhow::Result<Ingestor> {
    let catalog = load_catalog(settings)?;
    let units = load_units(settings)?;
    let options = StoreOptions {
        max_connections: settings.db_max_connections,
        ..StoreOptions::default()
    };
    let store = store::open(&settings.database_url, &options)
        .await
        .with_context(|| {
            format!(
                "cannot open the store at {}",
                store::redact_url(&settings.database_url)
            )
        })?;
    tracing::info!(
        store = store.backend(),
        url = %store::redact_url(&settings.database_url),
        data_sets = catalog.data_sets().len(),
        units = units.all().len(),
        "store ready"
    );
    Ok(Ingestor::new(
        Arc::new(catalog),
        Arc::new(units),
        store,
        settings.limits,
    ))
}

/// The analytics read model over the ingestor's store, loaded now.
pub async fn query_service(ingestor: &Ingestor) -> anyhow::Result<QueryService> {
    Ok(QueryService::load(
        ingestor.store().clone(),
        ingestor.catalog().clone(),
        ingestor.units().clone(),
    )
    .await?)
}

/// Everything up to a bound listener; call `serve_until` or `spawn` on the result.
pub async fn build(settings: &Settings) -> anyhow::Result<Application> {
    let options = settings.server_options()?;
    let ingestor = ingestor(settings).await?;
    let query = query_service(&ingestor).await?;
    Application::bind(settings.listen, ingestor, query, options).await
}
