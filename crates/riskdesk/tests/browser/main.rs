//! The dashboard tested in a real browser (headless Chromium over WebDriver): what staff do,
//! as they do it. See `harness.rs` for the setup and the skip rule.

mod harness;
mod money;
mod people;
mod queue;
mod tour;
