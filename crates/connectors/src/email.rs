//! Email over SMTP (lettre). Plain SMTP to a relay, or STARTTLS when `starttls` is set.

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

/// `[email]` settings.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// The sender, e.g. `Contoso Billing <billing@contoso.example>`.
    pub from: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Upgrade the connection with STARTTLS (required when credentials are sent).
    #[serde(default)]
    pub starttls: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("the address '{0}' is not a valid mailbox")]
    Address(String),
    #[error("could not build the message: {0}")]
    Build(String),
    #[error("SMTP: {0}")]
    Smtp(String),
}

pub struct SmtpSender {
    from: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpSender {
    pub fn new(c: &SmtpConfig) -> Result<Self, EmailError> {
        let from: Mailbox = c
            .from
            .parse()
            .map_err(|_| EmailError::Address(c.from.clone()))?;
        let mut b = if c.starttls {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.host)
                .map_err(|e| EmailError::Smtp(e.to_string()))?
        } else {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host)
        }
        .port(c.port)
        .timeout(Some(std::time::Duration::from_secs(20)));
        if let (Some(u), Some(p)) = (&c.username, &c.password) {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(SmtpSender {
            from,
            transport: b.build(),
        })
    }

    /// Sends one plain-text message. `message_id` is stable per outbox row, so a receiver
    /// (or a mail archive) can tell a re-delivery from a new notice.
    pub async fn send(
        &self,
        to: &str,
        subject: &str,
        body: &str,
        message_id: &str,
    ) -> Result<(), EmailError> {
        let to: Mailbox = to.parse().map_err(|_| EmailError::Address(to.to_owned()))?;
        let msg = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{message_id}@riskdesk>")))
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| EmailError::Build(e.to_string()))?;
        self.transport
            .send(msg)
            .await
            .map(|_| ())
            .map_err(|e| EmailError::Smtp(e.to_string()))
    }
}
