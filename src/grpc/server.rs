//! The aggregator's gRPC server: binds its own listener (port 0 in tests, like zero2prod's
//! `Application::build`), serves ingest, catalog, analytics, health and reflection behind mutual
//! TLS and the gate (identity, rate limit), with limits on message size, request time and
//! per-connection concurrency, and stops gracefully: in-flight calls finish, and nothing is
//! acknowledged that is not committed.

use super::analytics::AnalyticsApi;
use super::auth::{Gate, Guard};
use super::pb;
use super::pb::analytics_service_server::AnalyticsServiceServer;
use super::pb::catalog_service_server::CatalogServiceServer;
use super::pb::ingest_service_server::IngestServiceServer;
use super::pb::review_service_server::ReviewServiceServer;
use super::review::ReviewApi;
use super::services::{CatalogApi, IngestApi};
use crate::ingest::Ingestor;
use crate::query::QueryService;
use crate::review::Reviewer;
use crate::security::Policy;
use crate::security::rate::{RateLimit, RateLimiter};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// The server's certificate and key, and the CA whose client certificates it accepts (PEM).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How the server protects itself and decides who may do what.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Larger messages are refused by the transport before they are decoded.
    pub max_message_bytes: usize,
    /// A call running longer is cancelled (DEADLINE_EXCEEDED... for the client: retry later).
    pub request_timeout: Duration,
    /// Calls served at once on one connection; more wait in line.
    pub concurrency_per_connection: usize,
    /// Calls in flight over all connections; past it calls are refused with UNAVAILABLE and
    /// RetryInfo.
    pub max_concurrent_calls: usize,
    /// `None` is plaintext: only with `--insecure` or in the demo.
    pub tls: Option<TlsFiles>,
    pub policy: Policy,
    pub rate_limit: Option<RateLimit>,
}

impl ServerOptions {
    /// Plaintext, no rate limit: the demo and most tests.
    pub fn insecure() -> Self {
        ServerOptions {
            max_message_bytes: crate::config::DEFAULT_MAX_MESSAGE_BYTES,
            request_timeout: Duration::from_secs(30),
            concurrency_per_connection: 64,
            max_concurrent_calls: 1024,
            tls: None,
            policy: Policy::default(),
            rate_limit: None,
        }
    }
}

pub struct Application {
    listener: TcpListener,
    ingestor: Ingestor,
    query: QueryService,
    reviewer: Reviewer,
    options: ServerOptions,
}

/// The listener's connections with `TCP_NODELAY` set, as tonic sets it when it binds the port
/// itself (it ignores its own setting for a listener handed to it). Without it an answer written
/// while the previous one is still unacknowledged waits for the peer's delayed ACK.
fn accepting(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// A server running in the background (demo, tests).
pub struct ServerHandle {
    pub addr: SocketAddr,
    tls: bool,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl ServerHandle {
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Graceful stop: waits for in-flight calls.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await?
    }
}

fn read(what: &str, path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {what} {}: {e}", path.display()))
}

impl Application {
    pub async fn bind(
        listen: SocketAddr,
        ingestor: Ingestor,
        query: QueryService,
        options: ServerOptions,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        // Reviews are of the catalog's first data set (the periodic report districts send).
        let data_set = ingestor
            .catalog()
            .data_sets()
            .first()
            .map(|d| d.code.to_string())
            .unwrap_or_default();
        let reviewer = Reviewer::new(query.clone(), &data_set);
        Ok(Application {
            listener,
            ingestor,
            query,
            reviewer,
            options,
        })
    }

    /// Uses this reviewer (another data set, a test clock) instead of the default one.
    pub fn with_reviewer(mut self, reviewer: Reviewer) -> Self {
        self.reviewer = reviewer;
        self
    }

    pub fn reviewer(&self) -> &Reviewer {
        &self.reviewer
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` completes, then lets in-flight calls finish.
    pub async fn serve_until(self, stop: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let options = &self.options;
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
        health_reporter
            .set_serving::<ReviewServiceServer<ReviewApi>>()
            .await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let gate = Gate {
            mutual_tls: options.tls.is_some(),
            limiter: options.rate_limit.map(|l| Arc::new(RateLimiter::new(l))),
        };
        let guard = Guard {
            policy: options.policy,
            units: self.ingestor.units().clone(),
        };
        let limit = options.max_message_bytes;
        let ingest = InterceptedService::new(
            IngestServiceServer::new(IngestApi {
                ingestor: self.ingestor.clone(),
                guard: guard.clone(),
            })
            .max_decoding_message_size(limit),
            gate.clone(),
        );
        let catalog = InterceptedService::new(
            CatalogServiceServer::new(CatalogApi {
                ingestor: self.ingestor.clone(),
                guard: guard.clone(),
            })
            .max_decoding_message_size(limit),
            gate.clone(),
        );
        let analytics = InterceptedService::new(
            AnalyticsServiceServer::new(AnalyticsApi {
                query: self.query.clone(),
                guard: guard.clone(),
            })
            .max_decoding_message_size(limit),
            gate.clone(),
        );
        let review = InterceptedService::new(
            ReviewServiceServer::new(ReviewApi {
                reviewer: self.reviewer.clone(),
                guard,
            })
            .max_decoding_message_size(limit),
            gate,
        );
        let addr = self.listener.local_addr()?;
        let mut builder = tonic::transport::Server::builder()
            .timeout(options.request_timeout)
            .concurrency_limit_per_connection(options.concurrency_per_connection);
        match &options.tls {
            Some(tls) => {
                let config = ServerTlsConfig::new()
                    .identity(Identity::from_pem(
                        read("server certificate", &tls.cert)?,
                        read("server key", &tls.key)?,
                    ))
                    // Required, not optional: a call without a certificate from this CA never
                    // gets past the handshake, let alone to a handler.
                    .client_ca_root(Certificate::from_pem(read("CA certificate", &tls.ca)?));
                builder = builder.tls_config(config)?;
                tracing::info!(%addr, "mutual TLS: client certificates from the province CA required");
            }
            None => tracing::warn!(
                %addr,
                "plaintext gRPC (--insecure): callers are not identified and every call is allowed"
            ),
        }
        tracing::info!(%addr, store = self.ingestor.store().backend(), "aggregator listening");
        builder
            .layer(super::overload::OverloadLayer::new(
                options.max_concurrent_calls,
                Duration::from_millis(200),
            ))
            .trace_fn(|request| tracing::info_span!("rpc", method = %request.uri().path()))
            .add_service(health_service)
            .add_service(reflection)
            .add_service(ingest)
            .add_service(catalog)
            .add_service(analytics)
            .add_service(review)
            .serve_with_incoming_shutdown(accepting(self.listener), stop)
            .await?;
        tracing::info!("aggregator stopped; in-flight calls finished");
        Ok(())
    }

    /// Runs in a background task until `ServerHandle::shutdown`.
    pub fn spawn(self) -> anyhow::Result<ServerHandle> {
        let addr = self.local_addr()?;
        let tls = self.options.tls.is_some();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.serve_until(async {
            let _ = stopped.await;
        }));
        Ok(ServerHandle {
            addr,
            tls,
            stop: Some(stop),
            task,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::accepting;
    use tokio::net::{TcpListener, TcpStream};
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn accepted_connections_send_without_waiting_for_acknowledgements() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let mut incoming = accepting(listener);
        let _client = TcpStream::connect(addr).await.expect("connect");
        let accepted = incoming
            .next()
            .await
            .expect("a connection")
            .expect("accepted");
        assert!(accepted.nodelay().expect("TCP_NODELAY readable"));
    }
}
