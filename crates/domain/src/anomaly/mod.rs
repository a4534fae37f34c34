//! Anomaly detection on a series (a customer's hourly spend per meter category, or any
//! `timestamp,value` series from `riskdesk detect`), and the Numenta Anomaly Benchmark scoring
//! used to evaluate it.

pub mod detector;
pub mod nab;
pub mod scenarios;
