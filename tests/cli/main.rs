//! Integration tests of the `xferstats` binary (one test binary, topic
//! modules, as in ripgrep's `tests/`).

mod badinput;
mod config;
mod cron;
mod digest;
mod enrich;
mod errors;
mod events;
mod follow;
mod follow_torture;
mod forget;
mod formats;
mod grafana;
mod hooks;
mod html;
mod idempotent;
mod ids;
mod influx;
mod influxd;
mod inputs;
mod maintenance;
mod metrics;
mod pg;
mod postgres;
mod realogs;
mod report;
mod rotation;
mod safety;
mod stores;
mod systemd;
mod util;
