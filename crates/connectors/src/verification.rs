//! Identity and credit verification providers (credit bureaus, business registries, identity
//! services) behind one documented HTTP interface (`docs/verification-provider.md`):
//!
//! `POST {url}/v1/verify` with `Authorization: Bearer {api_key}` and `Idempotency-Key:
//! {reference}`, body `{"reference", "company": {"name", "domain", "country"}, "contact":
//! {"email", "phone", "name"}}`; answer `200 {"identity": "verified"|"unverified"|"unknown",
//! "credit_score": 0–100 or null, "provider_reference"}`.
//!
//! Each attempt has a timeout; 5xx, 429 and transport errors are retried with exponential
//! back-off (the same `Idempotency-Key`, so a provider never bills or records twice); other 4xx
//! are final. A circuit breaker stops calling a provider that keeps failing. Any failure is
//! reported as [`Verification::Unavailable`], which the assessment turns into a review — never
//! a silent approve.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::breaker::Breaker;

/// `[verification]` in riskdesk.toml.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VerificationSettings {
    /// Base URL, e.g. `https://verify.example.com`.
    pub url: String,
    pub api_key: String,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Retries after the first attempt.
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// Consecutive failed calls that open the circuit.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    #[serde(default = "default_breaker_open_seconds")]
    pub breaker_open_seconds: u64,
}

fn default_timeout_ms() -> u64 {
    2_000
}
fn default_retries() -> u32 {
    2
}
fn default_backoff_ms() -> u64 {
    100
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_open_seconds() -> u64 {
    30
}

#[derive(Clone, Debug, Serialize)]
pub struct VerifyRequest {
    pub reference: String,
    pub company: VerifyCompany,
    pub contact: VerifyContact,
}

#[derive(Clone, Debug, Serialize)]
pub struct VerifyCompany {
    pub name: String,
    pub domain: String,
    pub country: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct VerifyContact {
    pub email: String,
    pub phone: Option<String>,
    pub name: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
struct VerifyResponse {
    identity: String,
    credit_score: Option<u32>,
    provider_reference: Option<String>,
}

/// What the provider said, or why it could not say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Verification {
    Answered {
        identity_verified: Option<bool>,
        credit_score: Option<u32>,
        provider_reference: Option<String>,
    },
    Unavailable {
        why: String,
    },
}

pub struct VerificationClient {
    http: reqwest::Client,
    settings: VerificationSettings,
    breaker: Breaker,
}

impl VerificationClient {
    pub fn new(settings: VerificationSettings) -> Result<Self, String> {
        let url =
            reqwest::Url::parse(&settings.url).map_err(|e| format!("verification.url: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("verification.url: must be http or https".into());
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .build()
            .map_err(|e| format!("verification client: {e}"))?;
        let breaker = Breaker::new(
            settings.breaker_failures,
            Duration::from_secs(settings.breaker_open_seconds),
        );
        Ok(VerificationClient {
            http,
            settings,
            breaker,
        })
    }

    pub async fn verify(&self, req: &VerifyRequest) -> Verification {
        if !self.breaker.allow() {
            return Verification::Unavailable {
                why: "the verification provider is failing; circuit open".into(),
            };
        }
        let url = format!("{}/v1/verify", self.settings.url.trim_end_matches('/'));
        let mut last = String::new();
        for attempt in 0..=self.settings.retries {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(
                    self.settings.backoff_ms << (attempt - 1).min(6),
                ))
                .await;
            }
            let sent = self
                .http
                .post(&url)
                .bearer_auth(&self.settings.api_key)
                .header("Idempotency-Key", &req.reference)
                .json(req)
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => match r.json::<VerifyResponse>().await {
                    Ok(v) => {
                        self.breaker.success();
                        let identity_verified = match v.identity.as_str() {
                            "verified" => Some(true),
                            "unverified" => Some(false),
                            _ => None,
                        };
                        return Verification::Answered {
                            identity_verified,
                            credit_score: v.credit_score.map(|c| c.min(100)),
                            provider_reference: v.provider_reference,
                        };
                    }
                    Err(e) => {
                        last = format!("unreadable answer: {e}");
                        break;
                    }
                },
                Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => {
                    last = format!("HTTP {}", r.status().as_u16())
                }
                Ok(r) => {
                    last = format!("HTTP {} (not retried)", r.status().as_u16());
                    break;
                }
                Err(e) if e.is_timeout() => {
                    last = format!("no answer within {} ms", self.settings.timeout_ms)
                }
                Err(e) => last = format!("transport error: {e}"),
            }
            tracing::warn!(attempt, error = %last, "verification provider call failed");
        }
        self.breaker.failure();
        Verification::Unavailable {
            why: format!("verification provider failed: {last}"),
        }
    }
}
