//! A short-lived cache of authenticated tokens, so a read costs one database round trip, not
//! two. Only successful look-ups are cached, keyed by the token's SHA-256 (never the secret),
//! for `ttl`: a token revoked from another process (the CLI) stops working within `ttl`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use riskdesk_storage::tokens::{Principal, hash_secret};

const MAX_ENTRIES: usize = 10_000;

pub struct AuthCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Principal, Instant)>>,
}

impl AuthCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, secret: &str) -> Option<Principal> {
        if self.ttl.is_zero() {
            return None;
        }
        let key = hash_secret(secret);
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(p, _)| p.clone())
    }

    pub fn put(&self, secret: &str, p: &Principal) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            map.retain(|_, (_, at)| at.elapsed() < ttl);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(hash_secret(secret), (p.clone(), Instant::now()));
    }
}
