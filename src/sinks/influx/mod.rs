//! The InfluxDB store (work in progress: line protocol only so far).

pub mod line;
