//! Bulk loading and SQL baselines for the benchmarks (SQL lives under `store/`).
