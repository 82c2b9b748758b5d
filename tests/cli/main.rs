//! Integration tests of the `xferstats` binary (one test binary, topic
//! modules, as in ripgrep's `tests/`).

mod badinput;
mod config;
mod cron;
mod enrich;
mod errors;
mod events;
mod forget;
mod formats;
mod grafana;
mod html;
mod idempotent;
mod ids;
mod influx;
mod influxd;
mod inputs;
mod maintenance;
mod pg;
mod postgres;
mod realogs;
mod report;
mod rotation;
mod safety;
mod stores;
mod systemd;
mod util;
