//! `tonghop bench`: reproducible benchmarks that print their figures and a ratio against a
//! baseline measured in the same run.

use super::BenchArgs;
use std::process::ExitCode;

pub async fn run(_args: BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not written yet")
}
