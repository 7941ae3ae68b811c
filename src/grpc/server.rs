//! The aggregator's gRPC server: binds its own listener (port 0 in tests, like zero2prod's
//! `Application::build`), serves ingest, catalog, health and reflection, and stops gracefully:
//! in-flight calls finish, and nothing is acknowledged that is not committed.

use super::analytics::AnalyticsApi;
use super::pb;
use super::pb::analytics_service_server::AnalyticsServiceServer;
use super::pb::catalog_service_server::CatalogServiceServer;
use super::pb::ingest_service_server::IngestServiceServer;
use super::services::{CatalogApi, IngestApi};
use crate::ingest::Ingestor;
use crate::query::QueryService;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

pub struct Application {
    listener: TcpListener,
    ingestor: Ingestor,
    query: QueryService,
    max_message_bytes: usize,
}

/// A server running in the background (demo, tests).
pub struct ServerHandle {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl ServerHandle {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Graceful stop: waits for in-flight calls.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await?
    }
}

impl Application {
    pub async fn bind(
        listen: SocketAddr,
        ingestor: Ingestor,
        query: QueryService,
        max_message_bytes: usize,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        Ok(Application {
            listener,
            ingestor,
            query,
            max_message_bytes,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` completes, then lets in-flight calls finish.
    pub async fn serve_until(self, stop: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<IngestServiceServer<IngestApi>>()
            .await;
        health_reporter
            .set_serving::<CatalogServiceServer<CatalogApi>>()
            .await;
        health_reporter
            .set_serving::<AnalyticsServiceServer<AnalyticsApi>>()
            .await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let ingest = IngestServiceServer::new(IngestApi {
            ingestor: self.ingestor.clone(),
        })
        .max_decoding_message_size(self.max_message_bytes);
        let catalog = CatalogServiceServer::new(CatalogApi {
            ingestor: self.ingestor.clone(),
        })
        .max_decoding_message_size(self.max_message_bytes);
        let analytics = AnalyticsServiceServer::new(AnalyticsApi {
            query: self.query.clone(),
        })
        .max_decoding_message_size(self.max_message_bytes);
        let addr = self.listener.local_addr()?;
        tracing::info!(%addr, store = self.ingestor.store().backend(), "aggregator listening");
        tonic::transport::Server::builder()
            .trace_fn(|request| tracing::info_span!("rpc", method = %request.uri().path()))
            .add_service(health_service)
            .add_service(reflection)
            .add_service(ingest)
            .add_service(catalog)
            .add_service(analytics)
            .serve_with_incoming_shutdown(TcpListenerStream::new(self.listener), stop)
            .await?;
        tracing::info!("aggregator stopped; in-flight calls finished");
        Ok(())
    }

    /// Runs in a background task until `ServerHandle::shutdown`.
    pub fn spawn(self) -> anyhow::Result<ServerHandle> {
        let addr = self.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.serve_until(async {
            let _ = stopped.await;
        }));
        Ok(ServerHandle {
            addr,
            stop: Some(stop),
            task,
        })
    }
}
