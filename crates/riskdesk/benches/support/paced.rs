//! Open-loop load at a fixed rate, shared by the HTTP and scale benches (issue 20, item 5).
//!
//! A closed loop (N connections, each sending its next request when the last is answered)
//! measures throughput; it cannot measure latency under load, because a slow server slows the
//! loop down and the requests it would have received are never sent ("coordinated omission").
//! Interactive traffic does not wait for the server: a sign-up arrives when a person submits
//! the form. So request k is sent at `start + k / rate` on a task of its own, whatever is still
//! in flight, and its latency is counted from that scheduled instant, not from when the
//! generator got round to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub struct Paced {
    /// Answers that were not 2xx, or no answer at all.
    pub errors: usize,
    /// Requests answered per second of the run.
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Sends `rate` requests a second for `secs` seconds, request k built by `make(client, k)`.
#[allow(dead_code)] // each bench uses one of the two
pub async fn paced<F>(rate: f64, secs: f64, make: F) -> Paced
where
    F: Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let n = (rate * secs).round() as usize;
    run(rate, move |k| k < n, make).await
}

/// Sends `rate` requests a second until `stop` is set.
#[allow(dead_code)]
pub async fn paced_until<F>(rate: f64, stop: Arc<AtomicBool>, make: F) -> Paced
where
    F: Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    run(rate, move |_| !stop.load(Ordering::Relaxed), make).await
}

async fn run<F>(rate: f64, more: impl Fn(usize) -> bool, make: F) -> Paced
where
    F: Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let make = Arc::new(make);
    let start = tokio::time::Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let mut k = 0;
    while more(k) {
        let (idx, at) = (k, start + Duration::from_secs_f64(k as f64 / rate));
        k += 1;
        tokio::time::sleep_until(at).await;
        let (c, m) = (client.clone(), make.clone());
        set.spawn(async move {
            let ok = match m(&c, idx).send().await {
                Ok(r) => {
                    let ok = r.status().is_success();
                    let _ = r.bytes().await;
                    ok
                }
                Err(_) => false,
            };
            (at.elapsed().as_micros() as u64, ok)
        });
    }
    let n = k;
    let mut lat = Vec::with_capacity(n);
    let mut errors = 0;
    while let Some(r) = set.join_next().await {
        let (us, ok) = r.unwrap();
        lat.push(us);
        errors += usize::from(!ok);
    }
    let elapsed = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let at = |p: f64| {
        if lat.is_empty() {
            0.0
        } else {
            lat[((lat.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
        }
    };
    Paced {
        errors,
        rps: lat.len() as f64 / elapsed,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    }
}
