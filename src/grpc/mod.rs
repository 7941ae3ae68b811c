//! The gRPC edge: generated protobuf types, the adapters that turn them into domain types and
//! back, the one table that maps domain errors to status codes, the server and the client.
//! Nothing outside this module sees a prost type.

mod analytics;
mod analytics_convert;
mod auth;
pub mod client;
mod convert;
pub mod lean_client;
mod one_frame;
mod overload;
mod review;
mod server;
mod services;
mod status;

pub use server::{Application, ServerHandle, ServerOptions, TlsFiles};
pub use status::RETRY_DELAY_STORE_UNAVAILABLE;

/// Generated from `proto/tonghop/v1/*.proto` by `build.rs`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub(crate) mod pb {
    tonic::include_proto!("tonghop.v1");

    /// The encoded descriptors, served by gRPC reflection (grpcurl works without .proto files).
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/tonghop_descriptor.bin"));
}
