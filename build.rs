//! Compiles the public contract in `proto/` with protox (pure Rust), so building tonghop never
//! needs a system `protoc`. The encoded descriptor set is kept for gRPC server reflection.

use prost::Message;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/tonghop/v1/report.proto",
        "proto/tonghop/v1/ingest.proto",
        "proto/tonghop/v1/catalog.proto",
        "proto/tonghop/v1/analytics.proto",
        "proto/tonghop/v1/review.proto",
    ];
    for proto in &protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    // `sqlx::migrate!` embeds these folders at compile time; without this a new migration
    // alone would not rebuild the crate, and the binary would run without it.
    println!("cargo:rerun-if-changed=src/store/migrations");
    let descriptors = protox::compile(protos, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("tonghop_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
