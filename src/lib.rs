//! tonghop: a provincial aggregator for periodic district reports. District nodes push reports
//! over gRPC; the aggregator validates them against a catalog, stores every revision, and
//! answers analysts. The binary in `main.rs` is a thin shell around this library.

pub mod agent;
pub mod aggregator;
pub mod analytics;
pub mod cli;
pub mod config;
pub mod domain;
pub mod format;
pub mod grpc;
pub mod ingest;
pub mod query;
pub mod review;
pub mod security;
pub mod store;
