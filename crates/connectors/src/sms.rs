//! Sending SMS through Twilio's Programmable Messaging REST API
//! (`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP basic auth with the account
//! SID and auth token, form fields `To`, `From`, `Body`; answers `201` with the message `sid`
//! and `status`, errors as `{"code", "message", "more_info", "status"}`).
//!
//! Sending is not idempotent at the provider, so a send is retried only when it certainly did
//! not happen: a connection that never opened, or `429 Too Many Requests`. A timeout or a 5xx
//! may have sent the message and is reported, not retried (the user can ask for a new code).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[sms]` in riskdesk.toml.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SmsSettings {
    pub account_sid: String,
    pub auth_token: String,
    /// The sender: a Twilio number in E.164 or a messaging service's alphanumeric sender.
    pub from: String,
    /// Default `https://api.twilio.com`; tests point it at a local fake.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_retries")]
    pub retries: u32,
}

fn default_base_url() -> String {
    "https://api.twilio.com".into()
}
fn default_timeout_ms() -> u64 {
    5_000
}
fn default_retries() -> u32 {
    2
}

#[derive(Debug, Deserialize)]
struct MessageCreated {
    sid: String,
}

#[derive(Debug, Deserialize)]
struct TwilioError {
    code: Option<i64>,
    message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SMS provider: {0}")]
pub struct SmsError(pub String);

pub struct SmsClient {
    http: reqwest::Client,
    settings: SmsSettings,
}

impl SmsClient {
    pub fn new(settings: SmsSettings) -> Result<Self, String> {
        reqwest::Url::parse(&settings.base_url).map_err(|e| format!("sms.base_url: {e}"))?;
        if settings.account_sid.trim().is_empty() || settings.auth_token.trim().is_empty() {
            return Err("sms: account_sid and auth_token are required".into());
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .build()
            .map_err(|e| format!("sms client: {e}"))?;
        Ok(SmsClient { http, settings })
    }

    /// Sends `body` to `to` (E.164); returns the provider's message id.
    pub async fn send(&self, to: &str, body: &str) -> Result<String, SmsError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.settings.base_url.trim_end_matches('/'),
            self.settings.account_sid
        );
        let mut last = String::new();
        for attempt in 0..=self.settings.retries {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200u64 << (attempt - 1).min(5))).await;
            }
            let sent = self
                .http
                .post(&url)
                .basic_auth(&self.settings.account_sid, Some(&self.settings.auth_token))
                .form(&[
                    ("To", to),
                    ("From", self.settings.from.as_str()),
                    ("Body", body),
                ])
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    return r
                        .json::<MessageCreated>()
                        .await
                        .map(|m| m.sid)
                        .map_err(|e| SmsError(format!("unreadable answer: {e}")));
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let err = r.json::<TwilioError>().await.ok();
                    last = format!(
                        "HTTP {status}{}",
                        err.map(|e| format!(
                            " (code {}: {})",
                            e.code.unwrap_or(0),
                            e.message.unwrap_or_default()
                        ))
                        .unwrap_or_default()
                    );
                    if status != 429 {
                        return Err(SmsError(last));
                    }
                }
                Err(e) if e.is_connect() => last = format!("cannot connect: {e}"),
                Err(e) if e.is_timeout() => {
                    return Err(SmsError(format!(
                        "no answer within {} ms (the message may have been sent)",
                        self.settings.timeout_ms
                    )));
                }
                Err(e) => return Err(SmsError(format!("transport error: {e}"))),
            }
        }
        Err(SmsError(last))
    }
}
