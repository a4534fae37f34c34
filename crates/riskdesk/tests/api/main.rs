//! The API tested as a user sees it: over HTTP against a real server and database. Runs on
//! SQLite by default and on PostgreSQL with RISKDESK_TEST_BACKEND=postgres.

mod anomaly;
mod audit;
mod auth;
mod billing;
mod cli;
mod customers;
mod dashboard;
mod detect;
mod detectors;
mod dunning;
mod edges;
mod helpers;
mod ingest;
mod mfa;
mod monitoring;
mod response;
mod rules;
mod scale;
mod signups;
mod stream;
mod subscriptions;
mod sweep;
