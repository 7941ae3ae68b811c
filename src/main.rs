//! The `tonghop` command: parse the command line, set up logging, hand over to `cli`.

use clap::Parser;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args = tonghop::cli::Cli::parse();
    tonghop::cli::init_tracing(&args);
    match tonghop::cli::run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(tonghop::cli::EXIT_FAILURE)
        }
    }
}
