//! Fuzzing for xferstats: one target per format parser and decoder, format
//! detection, decoder state, and the configuration parsers ([`targets`]),
//! driven by an in-process mutation engine ([`mutate`], [`engine`]).
//!
//! The engine needs no compiler plugin, no nightly toolchain and no forked
//! process per input, so a campaign of ten million inputs per target fits
//! in minutes on a shared machine, and the same code runs as a
//! deterministic smoke test under `cargo test` (`tests/smoke.rs`).

pub mod engine;
pub mod mutate;
pub mod targets;
