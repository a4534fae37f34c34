//! Verification of inbound Microsoft Partner Center webhook callbacks.
//!
//! Partner Center posts a JSON event with these headers:
//! - `Authorization: Signature <base64>` (some deliveries use `x-ms-signature: Signature <base64>`),
//! - `X-MS-Certificate-Url`: where the signing certificate is published
//!   (`https://3psostorageacct.blob.core.windows.net/cert/pcnotifications-dispatch.microsoft.com.cer`),
//! - `X-MS-Signature-Algorithm: rsa-sha256`.
//!
//! [`WebhookVerifier::verify`] accepts a request only when, in this order:
//! 1. the three headers are present and the algorithm is `rsa-sha256` (case-insensitive);
//! 2. the certificate URL starts with a configured prefix (no request is made otherwise);
//! 3. the certificate (DER `.cer`, or PEM: the leaf first, then any intermediates), downloaded or
//!    taken from the in-memory cache, chains to a trust anchor (webpki-roots and/or configured PEM
//!    files), is valid at the given time, allows serverAuth and is valid for the configured DNS
//!    name (`pcnotifications-dispatch.microsoft.com`);
//! 4. the signature is RSA PKCS#1 v1.5 SHA-256 over the raw body bytes, by that certificate's key.
//!
//! Only then is the body parsed, into a [`PartnerCenterEvent`].
//!
//! Caching: a certificate is cached per URL (for `certificate_cache_seconds`, measured with the
//! `now_unix` clock passed to `verify`) only after it downloaded, parsed and validated; a failed
//! download or an untrusted certificate is not cached. A cached certificate that no longer
//! validates (expired) is dropped and downloaded again, so a certificate rotated at the same URL
//! is picked up.
//!
//! Intermediates: webpki-roots holds roots only. A certificate served alone (DER) must therefore
//! be issued directly by a trust anchor; if it is issued by an intermediate CA, either the URL
//! serves a PEM bundle with the intermediate, or that CA is added to
//! `extra_trust_anchor_pem_files`. The error says so when the issuer is unknown.
//!
//! Redirects: the check of step 2 applies to the URL asked for and, after the response, to the
//! URL it came from; pass a `reqwest::Client` built with `redirect::Policy::none()` so that a
//! redirect is never followed at all.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use reqwest::Url;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyUsage};

/// Where Partner Center publishes its signing certificate.
pub const DEFAULT_CERT_URL_PREFIX: &str = "https://3psostorageacct.blob.core.windows.net/";
/// The DNS name Partner Center's signing certificate is issued for.
pub const DEFAULT_CERTIFICATE_NAME: &str = "pcnotifications-dispatch.microsoft.com";
/// How long a downloaded certificate is reused by default (24 h).
pub const DEFAULT_CERTIFICATE_CACHE_SECONDS: u64 = 24 * 60 * 60;
/// The only signature algorithm accepted.
pub const SIGNATURE_ALGORITHM: &str = "rsa-sha256";

/// A certificate (or PEM bundle) larger than this is refused.
const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;
/// At most this many certificates in a PEM bundle (leaf and intermediates).
const MAX_CHAIN_LENGTH: usize = 8;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Distinct certificate URLs kept in the cache.
const MAX_CACHED_CERTIFICATES: usize = 32;

#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookVerifySettings {
    /// URL prefixes the certificate may be fetched from. Each must be an `http`/`https` URL whose
    /// path ends with `/` (so that the host cannot be extended: `https://host/`, not `https://host`
    /// followed by `.evil.com`).
    pub allowed_cert_url_prefixes: Vec<String>,
    /// The DNS name the signing certificate must be valid for.
    pub certificate_name: String,
    /// Extra trusted CA certificates (PEM file paths).
    pub extra_trust_anchor_pem_files: Vec<PathBuf>,
    /// Use only the extra anchors (not webpki-roots).
    pub only_extra_trust_anchors: bool,
    /// Seconds a downloaded certificate is reused (0: download for every request).
    pub certificate_cache_seconds: u64,
}

impl Default for WebhookVerifySettings {
    fn default() -> Self {
        Self {
            allowed_cert_url_prefixes: vec![DEFAULT_CERT_URL_PREFIX.to_owned()],
            certificate_name: DEFAULT_CERTIFICATE_NAME.to_owned(),
            extra_trust_anchor_pem_files: Vec::new(),
            only_extra_trust_anchors: false,
            certificate_cache_seconds: DEFAULT_CERTIFICATE_CACHE_SECONDS,
        }
    }
}

/// Why a callback was refused. `BadBody` is a 400; `Config` is the server's fault (raised by
/// [`WebhookVerifier::new`] only); the others mean the request is not proven to come from
/// Partner Center (401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("{}", missing_header_message(.0))]
    MissingHeader(&'static str),
    #[error("X-MS-Signature-Algorithm {0:?} is not supported: only rsa-sha256 is accepted")]
    UnsupportedAlgorithm(String),
    #[error("X-MS-Certificate-Url {0:?} is not under an allowed certificate URL prefix")]
    CertificateUrlNotAllowed(String),
    #[error("could not get the signing certificate: {0}")]
    CertificateFetch(String),
    #[error("the signing certificate is not trusted: {0}")]
    UntrustedCertificate(String),
    #[error(
        "the signature does not verify: it must be the base64 RSA PKCS#1 v1.5 SHA-256 signature of \
         the exact request body by the key of the certificate at X-MS-Certificate-Url"
    )]
    BadSignature,
    #[error("the body is not a Partner Center event: {0}")]
    BadBody(String),
    #[error("Partner Center webhook settings: {0}")]
    Config(String),
}

fn missing_header_message(name: &str) -> String {
    if name == "Authorization" {
        "missing the signature: expected a header `Authorization: Signature <base64>` \
         (or `x-ms-signature: Signature <base64>`)"
            .to_owned()
    } else {
        format!("missing the {name} header")
    }
}

/// A verified Partner Center event.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PartnerCenterEvent {
    /// `EventName`, e.g. `subscription-updated`.
    pub event_name: String,
    /// `ResourceUri`.
    pub resource_uri: Option<String>,
    /// `ResourceName`.
    pub resource_name: Option<String>,
    /// `AuditUri` (or `AuditUrl`).
    pub audit_uri: Option<String>,
    /// `ResourceChangeUtcDate`, as sent.
    pub resource_change_utc_date: Option<String>,
    /// `PartnerId`.
    pub partner_id: Option<String>,
    /// From `…/customers/{id}…` in `ResourceUri`.
    pub customer_id: Option<String>,
    /// From `…/subscriptions/{id}…` in `ResourceUri`, else its `SubscriptionId=` query parameter
    /// (`azure-fraud-event-detected`: `…/v1/fraudEvents?SubscriptionId={id}&EventStatus=…`).
    pub subscription_id: Option<String>,
}

type Chain = Arc<[CertificateDer<'static>]>;

struct CachedCertificate {
    chain: Chain,
    fetched_at_unix: i64,
}

/// The headers of one request, checked: what is left to do needs the network.
struct SignedRequest {
    signature: Vec<u8>,
    certificate_url: Url,
}

/// Verifies Partner Center callbacks. Build it once (it reads the PEM files) and share it.
pub struct WebhookVerifier {
    /// Normalized (parsed and re-serialized) prefixes.
    allowed_prefixes: Vec<String>,
    certificate_name: ServerName<'static>,
    trust_anchors: Vec<TrustAnchor<'static>>,
    http: reqwest::Client,
    cache_seconds: u64,
    cache: Mutex<HashMap<String, CachedCertificate>>,
}

impl std::fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("allowed_prefixes", &self.allowed_prefixes)
            .field("certificate_name", &self.certificate_name)
            .field("trust_anchors", &self.trust_anchors.len())
            .field("cache_seconds", &self.cache_seconds)
            .finish_non_exhaustive()
    }
}

impl WebhookVerifier {
    /// Checks the settings and reads the extra trust anchors.
    pub fn new(
        settings: &WebhookVerifySettings,
        http: reqwest::Client,
    ) -> Result<Self, VerifyError> {
        if settings.allowed_cert_url_prefixes.is_empty() {
            return Err(VerifyError::Config(
                "allowed_cert_url_prefixes is empty: no certificate URL would be accepted"
                    .to_owned(),
            ));
        }
        let allowed_prefixes = settings
            .allowed_cert_url_prefixes
            .iter()
            .map(|prefix| normalize_prefix(prefix))
            .collect::<Result<Vec<_>, _>>()?;

        let certificate_name = match ServerName::try_from(settings.certificate_name.clone()) {
            Ok(name @ ServerName::DnsName(_)) => name,
            _ => {
                return Err(VerifyError::Config(format!(
                    "certificate_name {:?} is not a DNS name",
                    settings.certificate_name
                )));
            }
        };

        if settings.only_extra_trust_anchors && settings.extra_trust_anchor_pem_files.is_empty() {
            return Err(VerifyError::Config(
                "only_extra_trust_anchors is set but extra_trust_anchor_pem_files is empty: \
                 no certificate could be trusted"
                    .to_owned(),
            ));
        }
        let mut trust_anchors = Vec::new();
        for path in &settings.extra_trust_anchor_pem_files {
            trust_anchors.extend(read_trust_anchors(path)?);
        }
        if !settings.only_extra_trust_anchors {
            trust_anchors.extend_from_slice(webpki_roots::TLS_SERVER_ROOTS);
        }

        Ok(Self {
            allowed_prefixes,
            certificate_name,
            trust_anchors,
            http,
            cache_seconds: settings.certificate_cache_seconds,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Verifies one callback and parses its body.
    ///
    /// `headers` looks a header up by its lowercase name; `body` is the raw body as received;
    /// `now_unix` (seconds since the epoch) is the time the certificate must be valid at, and the
    /// clock of the certificate cache.
    ///
    /// This reads the headers before it returns the future, which therefore does not hold on to
    /// `headers` and is `Send` even when `headers` is not `Sync`: call it as
    /// `verifier.verify(&|name| …, &body, now).await` (like an `async fn`).
    pub fn verify<'a>(
        &'a self,
        headers: &dyn Fn(&str) -> Option<String>,
        body: &'a [u8],
        now_unix: i64,
    ) -> impl Future<Output = Result<PartnerCenterEvent, VerifyError>> + Send + use<'a> {
        let request = self.read_headers(headers);
        async move {
            let request = request?;
            let chain = self
                .trusted_chain(&request.certificate_url, now_unix)
                .await?;
            let leaf = EndEntityCert::try_from(&chain[0])
                .map_err(|e| VerifyError::UntrustedCertificate(describe_webpki_error(&e, self)))?;
            leaf.verify_signature(
                webpki::ring::RSA_PKCS1_2048_8192_SHA256,
                body,
                &request.signature,
            )
            .map_err(|_| VerifyError::BadSignature)?;
            parse_event(body)
        }
    }

    fn read_headers(
        &self,
        headers: &dyn Fn(&str) -> Option<String>,
    ) -> Result<SignedRequest, VerifyError> {
        let header = |name: &str| {
            headers(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let signature =
            signature_header(&header).ok_or(VerifyError::MissingHeader("Authorization"))?;
        let certificate_url = header("x-ms-certificate-url")
            .ok_or(VerifyError::MissingHeader("X-MS-Certificate-Url"))?;
        let algorithm = header("x-ms-signature-algorithm")
            .ok_or(VerifyError::MissingHeader("X-MS-Signature-Algorithm"))?;
        if !algorithm.eq_ignore_ascii_case(SIGNATURE_ALGORITHM) {
            return Err(VerifyError::UnsupportedAlgorithm(algorithm));
        }
        let certificate_url = self
            .allowed_url(&certificate_url)
            .ok_or(VerifyError::CertificateUrlNotAllowed(certificate_url))?;
        let signature = BASE64.decode(signature.as_bytes()).map_err(|e| {
            tracing::debug!(error = %e, "Partner Center signature is not base64");
            VerifyError::BadSignature
        })?;
        Ok(SignedRequest {
            signature,
            certificate_url,
        })
    }

    /// The URL, parsed, if it starts with an allowed prefix. The comparison is made on the
    /// parsed form (what the request would go to) as well as on the text as sent.
    fn allowed_url(&self, raw: &str) -> Option<Url> {
        let url = Url::parse(raw).ok()?;
        let allowed = self.allowed_prefixes.iter().any(|prefix| {
            url.as_str().starts_with(prefix.as_str())
                && raw
                    .get(..prefix.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
        });
        allowed.then_some(url)
    }

    /// The certificate chain at `url`, validated at `now_unix`.
    async fn trusted_chain(&self, url: &Url, now_unix: i64) -> Result<Chain, VerifyError> {
        let key = url.as_str();
        if let Some(chain) = self.cached(key, now_unix) {
            match self.validate(&chain, now_unix) {
                Ok(()) => return Ok(chain),
                Err(e) => {
                    tracing::info!(url = key, error = %e, "cached Partner Center certificate no longer valid; downloading it again");
                    self.lock_cache().remove(key);
                }
            }
        }
        let chain = self.download(url).await?;
        self.validate(&chain, now_unix)?;
        self.store(key, chain.clone(), now_unix);
        Ok(chain)
    }

    async fn download(&self, url: &Url) -> Result<Chain, VerifyError> {
        let fetch_error =
            |detail: String| VerifyError::CertificateFetch(format!("GET {url}: {detail}"));
        let mut response = self
            .http
            .get(url.clone())
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| fetch_error(error_chain(&e)))?;
        if response.url() != url && self.allowed_url(response.url().as_str()).is_none() {
            return Err(fetch_error(format!(
                "redirected to {}, which is not under an allowed certificate URL prefix",
                response.url()
            )));
        }
        let status = response.status();
        if !status.is_success() {
            return Err(fetch_error(format!("answered {status}")));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_CERTIFICATE_BYTES as u64)
        {
            return Err(fetch_error(format!(
                "the certificate is larger than {MAX_CERTIFICATE_BYTES} bytes"
            )));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| fetch_error(error_chain(&e)))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_CERTIFICATE_BYTES {
                return Err(fetch_error(format!(
                    "the certificate is larger than {MAX_CERTIFICATE_BYTES} bytes"
                )));
            }
        }
        parse_certificates(&bytes).map_err(fetch_error)
    }

    /// Chain to a trust anchor at `now_unix`, for serverAuth, and for the configured name.
    fn validate(
        &self,
        chain: &[CertificateDer<'static>],
        now_unix: i64,
    ) -> Result<(), VerifyError> {
        let untrusted =
            |e: webpki::Error| VerifyError::UntrustedCertificate(describe_webpki_error(&e, self));
        let leaf = EndEntityCert::try_from(&chain[0]).map_err(untrusted)?;
        let time =
            UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now_unix).unwrap_or(0)));
        leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &self.trust_anchors,
            &chain[1..],
            time,
            KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(untrusted)?;
        leaf.verify_is_valid_for_subject_name(&self.certificate_name)
            .map_err(untrusted)
    }

    fn lock_cache(&self) -> MutexGuard<'_, HashMap<String, CachedCertificate>> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn is_fresh(&self, entry: &CachedCertificate, now_unix: i64) -> bool {
        now_unix
            .checked_sub(entry.fetched_at_unix)
            .and_then(|age| u64::try_from(age).ok())
            .is_some_and(|age| age < self.cache_seconds)
    }

    fn cached(&self, key: &str, now_unix: i64) -> Option<Chain> {
        let mut cache = self.lock_cache();
        let entry = cache.get(key)?;
        if self.is_fresh(entry, now_unix) {
            Some(entry.chain.clone())
        } else {
            cache.remove(key);
            None
        }
    }

    fn store(&self, key: &str, chain: Chain, now_unix: i64) {
        if self.cache_seconds == 0 {
            return;
        }
        let mut cache = self.lock_cache();
        cache.retain(|_, entry| self.is_fresh(entry, now_unix));
        if cache.len() >= MAX_CACHED_CERTIFICATES && !cache.contains_key(key) {
            let oldest = cache
                .iter()
                .min_by_key(|(_, entry)| entry.fetched_at_unix)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                cache.remove(&oldest);
            }
        }
        cache.insert(
            key.to_owned(),
            CachedCertificate {
                chain,
                fetched_at_unix: now_unix,
            },
        );
    }
}

/// Standard base64; padding optional.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The base64 signature from `Authorization: Signature <b64>`, else from `x-ms-signature`
/// (`Signature <b64>`, or the bare value).
fn signature_header(header: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    fn after_scheme(value: &str) -> Option<String> {
        let (scheme, rest) = value.split_once(char::is_whitespace)?;
        let rest = rest.trim();
        (scheme.eq_ignore_ascii_case("Signature") && !rest.is_empty()).then(|| rest.to_owned())
    }
    if let Some(signature) = header("authorization").and_then(|v| after_scheme(&v)) {
        return Some(signature);
    }
    let value = header("x-ms-signature")?;
    if let Some(signature) = after_scheme(&value) {
        return Some(signature);
    }
    (!value.contains(char::is_whitespace) && !value.eq_ignore_ascii_case("Signature"))
        .then_some(value)
}

fn normalize_prefix(prefix: &str) -> Result<String, VerifyError> {
    let bad = |why: &str| {
        Err(VerifyError::Config(format!(
            "allowed_cert_url_prefixes: {prefix:?} {why}"
        )))
    };
    let Ok(url) = Url::parse(prefix) else {
        return bad("is not a URL");
    };
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return bad("is not an http(s) URL with a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return bad("has a user name or password");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return bad("has a query or fragment");
    }
    if !url.as_str().ends_with('/') {
        return bad("must end with `/` (e.g. `https://host/` or `https://host/cert/`)");
    }
    Ok(url.as_str().to_owned())
}

fn read_trust_anchors(path: &std::path::Path) -> Result<Vec<TrustAnchor<'static>>, VerifyError> {
    let name = path.display();
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| VerifyError::Config(format!("trust anchor file {name}: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| VerifyError::Config(format!("trust anchor file {name}: {e}")))?;
    if certificates.is_empty() {
        return Err(VerifyError::Config(format!(
            "trust anchor file {name}: no `-----BEGIN CERTIFICATE-----` section in it"
        )));
    }
    certificates
        .iter()
        .enumerate()
        .map(|(i, der)| {
            webpki::anchor_from_trusted_cert(der)
                .map(|anchor| anchor.to_owned())
                .map_err(|e| {
                    VerifyError::Config(format!(
                        "trust anchor file {name}: certificate {} is not usable: {e:?}",
                        i + 1
                    ))
                })
        })
        .collect()
}

/// A DER certificate, or PEM certificates (the leaf first, then intermediates).
fn parse_certificates(bytes: &[u8]) -> Result<Chain, String> {
    let chain: Vec<CertificateDer<'static>> = if bytes.trim_ascii_start().starts_with(b"-----BEGIN")
    {
        let chain = CertificateDer::pem_slice_iter(bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the PEM is not valid: {e}"))?;
        if chain.is_empty() {
            return Err("the PEM has no `-----BEGIN CERTIFICATE-----` section".to_owned());
        }
        chain
    } else if bytes.is_empty() {
        return Err("the response is empty".to_owned());
    } else {
        vec![CertificateDer::from(bytes.to_vec())]
    };
    if chain.len() > MAX_CHAIN_LENGTH {
        return Err(format!(
            "the PEM holds {} certificates (at most {MAX_CHAIN_LENGTH})",
            chain.len()
        ));
    }
    EndEntityCert::try_from(&chain[0])
        .map_err(|e| format!("the response is not an X.509 certificate (DER or PEM): {e:?}"))?;
    Ok(chain.into())
}

fn describe_webpki_error(error: &webpki::Error, verifier: &WebhookVerifier) -> String {
    use webpki::Error as E;
    let at = |t: &UnixTime| {
        i64::try_from(t.as_secs())
            .ok()
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .map_or_else(|| format!("{} (Unix)", t.as_secs()), |ts| ts.to_string())
    };
    match error {
        E::UnknownIssuer => {
            "it does not chain to a trusted root: its issuer is not a trust anchor \
             (a certificate issued by an intermediate CA needs that CA, served in a PEM bundle \
             after the certificate or added to extra_trust_anchor_pem_files)"
                .to_owned()
        }
        E::CertExpired { time, not_after } => {
            format!("it expired at {} (checked at {})", at(not_after), at(time))
        }
        E::CertNotValidYet { time, not_before } => {
            format!(
                "it is valid only from {} (checked at {})",
                at(not_before),
                at(time)
            )
        }
        E::CertNotValidForName(context) => {
            let presented: Vec<&str> = context
                .presented
                .iter()
                .map(|p| {
                    p.strip_prefix("DnsName(\"")
                        .and_then(|p| p.strip_suffix("\")"))
                        .unwrap_or(p)
                })
                .collect();
            format!(
                "it is not valid for {} (its names: {})",
                server_name(&verifier.certificate_name),
                if presented.is_empty() {
                    "none".to_owned()
                } else {
                    presented.join(", ")
                }
            )
        }
        E::CaUsedAsEndEntity => "it is a CA certificate, not an end-entity certificate".to_owned(),
        E::RequiredEkuNotFoundContext(_) => {
            "its extended key usage does not allow serverAuth".to_owned()
        }
        E::InvalidSignatureForPublicKey => {
            "the issuer's signature on it does not verify".to_owned()
        }
        E::BadDer | E::BadDerTime => "it is not valid DER".to_owned(),
        other => format!("webpki refused it: {other:?}"),
    }
}

fn server_name(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(dns) => dns.as_ref().to_owned(),
        other => format!("{other:?}"),
    }
}

/// `error: source: source…`, since reqwest's own message leaves the cause out.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The event in a verified body. Field names are matched case-insensitively; unknown fields are
/// ignored.
fn parse_event(body: &[u8]) -> Result<PartnerCenterEvent, VerifyError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| VerifyError::BadBody(format!("it is not JSON: {e}")))?;
    let serde_json::Value::Object(fields) = value else {
        return Err(VerifyError::BadBody("it is not a JSON object".to_owned()));
    };
    let field = |name: &str| -> Result<Option<String>, VerifyError> {
        let mut found: Option<(&String, &serde_json::Value)> = None;
        for (key, value) in &fields {
            if !key.eq_ignore_ascii_case(name) {
                continue;
            }
            if let Some((first, _)) = found {
                return Err(VerifyError::BadBody(format!(
                    "{name} appears twice (as {first:?} and {key:?})"
                )));
            }
            found = Some((key, value));
        }
        match found {
            None | Some((_, serde_json::Value::Null)) => Ok(None),
            Some((_, serde_json::Value::String(text))) => Ok(Some(text.clone())),
            Some((key, other)) => Err(VerifyError::BadBody(format!(
                "{key} must be a string, not {}",
                json_type(other)
            ))),
        }
    };
    let event_name = field("EventName")?
        .filter(|name| !name.trim().is_empty())
        .ok_or_else(|| VerifyError::BadBody("it has no EventName".to_owned()))?;
    let resource_uri = field("ResourceUri")?;
    let audit_uri = match field("AuditUri")? {
        Some(uri) => Some(uri),
        None => field("AuditUrl")?,
    };
    let (customer_id, subscription_id) = resource_uri
        .as_deref()
        .map(ids_from_resource_uri)
        .unwrap_or_default();
    Ok(PartnerCenterEvent {
        event_name,
        resource_name: field("ResourceName")?,
        audit_uri,
        resource_change_utc_date: field("ResourceChangeUtcDate")?,
        partner_id: field("PartnerId")?,
        customer_id,
        subscription_id,
        resource_uri,
    })
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// `(customer id, subscription id)` from `…/customers/{id}/subscriptions/{id}…` or
/// `…?SubscriptionId={id}`.
fn ids_from_resource_uri(uri: &str) -> (Option<String>, Option<String>) {
    let url = Url::parse(uri)
        .or_else(|_| Url::parse("https://relative.invalid/").and_then(|base| base.join(uri)));
    let Ok(url) = url else {
        return (None, None);
    };
    let segments: Vec<&str> = url
        .path_segments()
        .map(Iterator::collect)
        .unwrap_or_default();
    let after = |name: &str| {
        segments
            .windows(2)
            .find(|pair| pair[0].eq_ignore_ascii_case(name) && !pair[1].is_empty())
            .map(|pair| percent_decode(pair[1]))
    };
    let customer_id = after("customers");
    let subscription_id = after("subscriptions").or_else(|| {
        url.query_pairs()
            .find(|(key, value)| key.eq_ignore_ascii_case("SubscriptionId") && !value.is_empty())
            .map(|(_, value)| value.into_owned())
    });
    (customer_id, subscription_id)
}

/// `%XX` escapes of a path segment decoded (the segment as is when they do not make UTF-8).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| segment.to_owned())
}

/// Test helpers, also for other crates' tests (feature `fake`): the fixture keys and
/// certificates in `crates/connectors/tests/fixtures/pc-webhook/` (see its README; test-only
/// keys), signing, and a local server that publishes the fixture certificates.
#[cfg(any(test, feature = "fake"))]
pub mod test_support {
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use base64::Engine as _;
    use rustls_pki_types::PrivatePkcs8KeyDer;
    use rustls_pki_types::pem::PemObject;

    use super::WebhookVerifySettings;

    /// Absolute path of the fixture directory.
    pub const FIXTURES_DIR: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pc-webhook");
    /// The signing key matching `leaf.cer` (PKCS#8 PEM).
    pub const LEAF_KEY: &str = "leaf.key.pem";
    /// The signing certificate (DER), for `pcnotifications-dispatch.microsoft.com`, issued by `ca.pem`.
    pub const LEAF_CERT: &str = "leaf.cer";
    /// The test root CA to trust.
    pub const TEST_CA: &str = "ca.pem";

    pub fn fixture_path(name: &str) -> PathBuf {
        PathBuf::from(FIXTURES_DIR).join(name)
    }

    /// A fixture's bytes (panics when it is missing).
    pub fn fixture(name: &str) -> Vec<u8> {
        let path = fixture_path(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
    }

    /// The PEM text of `leaf.key.pem`.
    pub fn leaf_key_pem() -> String {
        String::from_utf8(fixture(LEAF_KEY)).expect("the key is PEM text")
    }

    /// Base64 RSA PKCS#1 v1.5 SHA-256 signature of `body`, as Partner Center puts it after
    /// `Authorization: Signature `. Panics when the key is not an RSA PKCS#8 PEM key.
    pub fn sign(pkcs8_pem: &str, body: &[u8]) -> String {
        let der = PrivatePkcs8KeyDer::from_pem_slice(pkcs8_pem.as_bytes())
            .expect("a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----)");
        let key = ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            .expect("an RSA PKCS#8 private key");
        let mut signature = vec![0; key.public().modulus_len()];
        key.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            body,
            &mut signature,
        )
        .expect("RSA signing");
        base64::engine::general_purpose::STANDARD.encode(signature)
    }

    /// Settings that trust only the test CA and fetch certificates under `allowed_prefix`
    /// (e.g. [`CertServer::base_url`]).
    pub fn settings(allowed_prefix: &str) -> WebhookVerifySettings {
        WebhookVerifySettings {
            allowed_cert_url_prefixes: vec![allowed_prefix.to_owned()],
            extra_trust_anchor_pem_files: vec![fixture_path(TEST_CA)],
            only_extra_trust_anchors: true,
            ..WebhookVerifySettings::default()
        }
    }

    /// A local HTTP server publishing every fixture at `GET /cert/{file name}`, counting requests.
    pub struct CertServer {
        /// `http://127.0.0.1:{port}/`
        pub base_url: String,
        hits: Arc<Mutex<HashMap<String, usize>>>,
        failures: Arc<AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    impl CertServer {
        pub async fn start() -> CertServer {
            let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
            let failures = Arc::new(AtomicUsize::new(0));
            let state = (hits.clone(), failures.clone());
            let app = axum::Router::new()
                .route("/cert/{name}", axum::routing::get(serve_fixture))
                .with_state(state);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1:0");
            let port = listener.local_addr().expect("local address").port();
            let task = tokio::spawn(async move {
                axum::serve(listener, app)
                    .await
                    .expect("certificate server");
            });
            CertServer {
                base_url: format!("http://127.0.0.1:{port}/"),
                hits,
                failures,
                task,
            }
        }

        /// The URL of a fixture: `{base_url}cert/{name}`.
        pub fn url(&self, name: &str) -> String {
            format!("{}cert/{name}", self.base_url)
        }

        /// Requests so far for `/cert/{name}` (answered or not).
        pub fn hits(&self, name: &str) -> usize {
            self.hits.lock().unwrap().get(name).copied().unwrap_or(0)
        }

        /// Requests so far, all paths.
        pub fn total_hits(&self) -> usize {
            self.hits.lock().unwrap().values().sum()
        }

        /// The next `n` requests get a 503.
        pub fn fail_next(&self, n: usize) {
            self.failures.store(n, Ordering::SeqCst);
        }
    }

    impl Drop for CertServer {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    type State = (Arc<Mutex<HashMap<String, usize>>>, Arc<AtomicUsize>);

    async fn serve_fixture(
        axum::extract::State((hits, failures)): axum::extract::State<State>,
        axum::extract::Path(name): axum::extract::Path<String>,
    ) -> (axum::http::StatusCode, Vec<u8>) {
        *hits.lock().unwrap().entry(name.clone()).or_default() += 1;
        if failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                b"try later".to_vec(),
            );
        }
        let servable = !name.contains(['/', '\\']) && !name.starts_with('.');
        match std::fs::read(fixture_path(&name)) {
            Ok(bytes) if servable => (axum::http::StatusCode::OK, bytes),
            _ => (
                axum::http::StatusCode::NOT_FOUND,
                b"no such fixture".to_vec(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::test_support::{CertServer, fixture_path, leaf_key_pem, settings, sign};
    use super::*;

    /// 2030-03-17: inside the fixtures' validity (2026-11-21 .. 2046-11-16).
    const NOW: i64 = 1_900_000_000;
    const AFTER_EXPIRY: i64 = 2_500_000_000; // 2049
    const CUSTOMER: &str = "3f1c2a9e-7f47-4c7b-9a4c-0d8c1b2e5a10";
    const SUBSCRIPTION: &str = "9b6e4c1d-2a3f-4e5b-8c7d-1a2b3c4d5e6f";

    fn subscription_updated() -> Vec<u8> {
        format!(
            r#"{{"EventName":"subscription-updated","ResourceUri":"http://api.partnercenter.microsoft.com/webhooks/v1/customers/{CUSTOMER}/subscriptions/{SUBSCRIPTION}","ResourceName":"subscription","AuditUri":"https://api.partnercenter.microsoft.com/v1/auditrecords/a1b2","ResourceChangeUtcDate":"2017-11-16T16:19:06.3520276+00:00"}}"#
        )
        .into_bytes()
    }

    fn headers(signature: &str, cert_url: &str, algorithm: &str) -> HashMap<&'static str, String> {
        HashMap::from([
            ("authorization", format!("Signature {signature}")),
            ("x-ms-certificate-url", cert_url.to_owned()),
            ("x-ms-signature-algorithm", algorithm.to_owned()),
        ])
    }

    async fn verify_with(
        verifier: &WebhookVerifier,
        headers: &HashMap<&'static str, String>,
        body: &[u8],
        now: i64,
    ) -> Result<PartnerCenterEvent, VerifyError> {
        verifier
            .verify(&|name| headers.get(name).cloned(), body, now)
            .await
    }

    fn verifier_for(server: &CertServer) -> WebhookVerifier {
        WebhookVerifier::new(&settings(&server.base_url), reqwest::Client::new()).unwrap()
    }

    fn untrusted(result: Result<PartnerCenterEvent, VerifyError>) -> String {
        match result {
            Err(VerifyError::UntrustedCertificate(why)) => why,
            other => panic!("expected UntrustedCertificate, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_signed_event_verifies_and_parses_with_its_ids() {
        let server = CertServer::start().await;
        let verifier = verifier_for(&server);
        let body = subscription_updated();
        let h = headers(
            &sign(&leaf_key_pem(), &body),
            &server.url("leaf.cer"),
            "rsa-sha256",
        );
        let event = verify_with(&verifier, &h, &body, NOW).await.unwrap();
        assert_eq!(
            event,
            PartnerCenterEvent {
                event_name: "subscription-updated".into(),
                resource_uri: Some(format!(
                    "http://api.partnercenter.microsoft.com/webhooks/v1/customers/{CUSTOMER}/subscriptions/{SUBSCRIPTION}"
                )),
                resource_name: Some("subscription".into()),
                audit_uri: Some(
                    "https://api.partnercenter.microsoft.com/v1/auditrecords/a1b2".into()
                ),
                resource_change_utc_date: Some("2017-11-16T16:19:06.3520276+00:00".into()),
                partner_id: None,
                customer_id: Some(CUSTOMER.into()),
                subscription_id: Some(SUBSCRIPTION.into()),
            }
        );
        assert_eq!(server.hits("leaf.cer"), 1);
    }

    #[tokio::test]
    async fn a_fraud_event_gets_its_subscription_from_the_query_and_field_names_ignore_case() {
        let server = CertServer::start().await;
        let verifier = verifier_for(&server);
        let body = format!(
            r#"{{"eventName":"azure-fraud-event-detected","resourceUri":"https://api.partnercenter.microsoft.com/v1/fraudEvents?SubscriptionId={SUBSCRIPTION}&EventStatus=Active","resourceName":"fraudEvent","auditUrl":"https://api.partnercenter.microsoft.com/v1/auditrecords/x","resourceChangeUtcDate":"2024-01-02T03:04:05Z","partnerId":"p-1","brandNewField":{{"a":[1,2]}}}}"#
        )
        .into_bytes();
        let h = headers(
            &sign(&leaf_key_pem(), &body),
            &server.url("leaf.cer"),
            "RSA-SHA256",
        );
        let event = verify_with(&verifier, &h, &body, NOW).await.unwrap();
        assert_eq!(event.event_name, "azure-fraud-event-detected");
        assert_eq!(event.resource_name.as_deref(), Some("fraudEvent"));
        assert_eq!(
            event.audit_uri.as_deref(),
            Some("https://api.partnercenter.microsoft.com/v1/auditrecords/x")
        );
        assert_eq!(event.partner_id.as_deref(), Some("p-1"));
        assert_eq!(event.customer_id, None);
        assert_eq!(event.subscription_id.as_deref(), Some(SUBSCRIPTION));
    }

    #[tokio::test]
    async fn the_x_ms_signature_header_is_accepted_too() {
        let server = CertServer::start().await;
        let verifier = verifier_for(&server);
        let body = subscription_updated();
        let signature = sign(&leaf_key_pem(), &body);
        for value in [format!("Signature {signature}"), signature.clone()] {
            let h = HashMap::from([
                ("x-ms-signature", value.clone()),
                ("x-ms-certificate-url", server.url("leaf.cer")),
                ("x-ms-signature-algorithm", "rsa-sha256".to_owned()),
            ]);
            let event = verify_with(&verifier, &h, &body, NOW).await.unwrap();
            assert_eq!(
                event.subscription_id.as_deref(),
                Some(SUBSCRIPTION),
                "{value}"
            );
        }
        // A different Authorization scheme (e.g. added by a proxy) does not hide x-ms-signature.
        let h = HashMap::from([
            ("authorization", "Bearer abc".to_owned()),
            ("x-ms-signature", format!("Signature {signature}")),
            ("x-ms-certificate-url", server.url("leaf.cer")),
            ("x-ms-signature-algorithm", "rsa-sha256".to_owned()),
        ]);
        assert!(verify_with(&verifier, &h, &body, NOW).await.is_ok());
    }

    #[tokio::test]
    async fn a_body_changed_after_signing_or_a_foreign_signature_is_refused() {
        let server = CertServer::start().await;
        let verifier = verifier_for(&server);
        let body = subscription_updated();
        let signature = sign(&leaf_key_pem(), &body);
        let url = server.url("leaf.cer");

        let mut altered = body.clone();
        altered.extend_from_slice(b" ");
        let h = headers(&signature, &url, "rsa-sha256");
        assert_eq!(
            verify_with(&verifier, &h, &altered, NOW).await,
            Err(VerifyError::BadSignature)
        );
        // Altered into something that is not JSON: still the signature that is reported, since
        // the body is not looked at before the signature verifies.
        assert_eq!(
            verify_with(&verifier, &h, &body[..body.len() - 1], NOW).await,
            Err(VerifyError::BadSignature)
        );

        // Signed by another key, with the genuine certificate's URL.
        let attacker_key = String::from_utf8(test_support::fixture("attacker.key.pem")).unwrap();
        let h = headers(&sign(&attacker_key, &body), &url, "rsa-sha256");
        assert_eq!(
            verify_with(&verifier, &h, &body, NOW).await,
            Err(VerifyError::BadSignature)
        );

        // Not base64 at all.
        let h = headers("not*base64!", &url, "rsa-sha256");
        assert_eq!(
            verify_with(&verifier, &h, &body, NOW).await,
            Err(VerifyError::BadSignature)
        );

        // The genuine signature still verifies.
        let h = headers(&signature, &url, "rsa-sha256");
        assert!(verify_with(&verifier, &h, &body, NOW).await.is_ok());
    }

    #[tokio::test]
    async fn a_signed_body_that_is_not_an_event_is_a_bad_body() {
        let server = CertServer::start().await;
        let verifier = verifier_for(&server);
        for (body, expected) in [
            (&b"not json"[..], "it is not JSON"),
            (b"[1]", "it is not a JSON object"),
            (br#"{"ResourceUri":"x"}"#, "it has no EventName"),
            (
                br#"{"EventName":7}"#,
                "EventName must be a string, not a number",
            ),
        ] {
            let h = headers(
                &sign(&leaf_key_pem(), body),
                &server.url("leaf.cer"),
                "rsa-sha256",
            );
            match verify_with(&verifier, &h, body, NOW).await {
                Err(VerifyError::BadBody(why)) => assert!(why.starts_with(expected), "{why}"),
                other => panic!("expected BadBody for {body:?}, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn an_attackers_self_signed_certificate_is_untrusted_and_not_cached() {
        let server = CertServer::start().await;
        let verifier = verifier_for(&server);
        let body = subscription_updated();
        let attacker_key = String::from_utf8(test_support::fixture("attacker.key.pem")).unwrap();
        let h = headers(
            &sign(&attacker_key, &body),
            &server.url("attacker.cer"),
            "rsa-sha256",
        );
        let why = untrusted(verify_with(&verifier, &h, &body, NOW).await);
        assert!(why.contains("does not chain to a trusted root"), "{why}");
        untrusted(verify_with(&verifier, &h, &body, NOW).await);
        assert_eq!(
            server.hits("attacker.cer"),
            2,
            "an untrusted certificate is not cached"
        );
    }

    #[tokio::test]
    async fn a_certificate_for_another_name_is_untrusted() {
        let server = CertServer::start().await;
        let verifier = verifier_for(&server);
        let body = subscription_updated();
        // Same key as the genuine certificate, issued by the trusted test CA, for evil.example.com.
        let h = headers(
            &sign(&leaf_key_pem(), &body),
            &server.url("other-name.cer"),
            "rsa-sha256",
        );
        let why = untrusted(verify_with(&verifier, &h, &body, NOW).await);
        assert_eq!(
            why,
            "it is not valid for pcnotifications-dispatch.microsoft.com (its names: evil.example.com)"
        );
    }

    #[tokio::test]
    async fn the_certificate_must_be_valid_at_the_given_time() {
        let server = CertServer::start().await;
        let verifier = verifier_for(&server);
        let body = subscription_updated();
        let h = headers(
            &sign(&leaf_key_pem(), &body),
            &server.url("leaf.cer"),
            "rsa-sha256",
        );
        let why = untrusted(verify_with(&verifier, &h, &body, AFTER_EXPIRY).await);
        assert!(why.starts_with("it expired at 2046-11-16T"), "{why}");
        let why = untrusted(verify_with(&verifier, &h, &body, 1_700_000_000).await); // 2023
        assert!(
            why.starts_with("it is valid only from 2026-11-21T"),
            "{why}"
        );
    }

    #[tokio::test]
    async fn an_intermediate_is_taken_from_a_pem_bundle_and_missing_otherwise() {
        let server = CertServer::start().await;
        let verifier = verifier_for(&server);
        let body = subscription_updated();
        let signature = sign(&leaf_key_pem(), &body);

        let h = headers(
            &signature,
            &server.url("leaf-via-intermediate-chain.pem"),
            "rsa-sha256",
        );
        let event = verify_with(&verifier, &h, &body, NOW).await.unwrap();
        assert_eq!(event.customer_id.as_deref(), Some(CUSTOMER));

        let h = headers(
            &signature,
            &server.url("leaf-via-intermediate.cer"),
            "rsa-sha256",
        );
        let why = untrusted(verify_with(&verifier, &h, &body, NOW).await);
        assert!(why.contains("issued by an intermediate CA"), "{why}");

        // A PEM file with just the leaf works like the DER one.
        let h = headers(&signature, &server.url("leaf.pem"), "rsa-sha256");
        assert!(verify_with(&verifier, &h, &body, NOW).await.is_ok());
    }

    #[tokio::test]
    async fn a_certificate_url_outside_the_allowed_prefixes_is_never_fetched() {
        let server = CertServer::start().await;
        let verifier = verifier_for(&server);
        let body = subscription_updated();
        let signature = sign(&leaf_key_pem(), &body);
        // Same server, other host name: not under http://127.0.0.1:{port}/.
        let other_host = server.url("leaf.cer").replace("127.0.0.1", "localhost");
        for url in [
            other_host.clone(),
            "https://evil.example.com/cert/leaf.cer".to_owned(),
            "not a url".to_owned(),
        ] {
            let h = headers(&signature, &url, "rsa-sha256");
            assert_eq!(
                verify_with(&verifier, &h, &body, NOW).await,
                Err(VerifyError::CertificateUrlNotAllowed(url.clone()))
            );
        }
        assert_eq!(server.total_hits(), 0);
    }

    #[test]
    fn the_default_prefix_cannot_be_stretched_to_another_host() {
        let verifier =
            WebhookVerifier::new(&WebhookVerifySettings::default(), reqwest::Client::new())
                .unwrap();
        for allowed in [
            "https://3psostorageacct.blob.core.windows.net/cert/pcnotifications-dispatch.microsoft.com.cer",
            "HTTPS://3psostorageacct.blob.core.windows.net/cert/x.cer",
        ] {
            assert!(verifier.allowed_url(allowed).is_some(), "{allowed}");
        }
        for refused in [
            "https://3psostorageacct.blob.core.windows.net.evil.com/cert/x.cer",
            "https://3psostorageacct.blob.core.windows.net@evil.com/cert/x.cer",
            "https://3psostorageacct.blob.core.windows.net:8443/cert/x.cer",
            "https://evil.com/https://3psostorageacct.blob.core.windows.net/",
            "http://3psostorageacct.blob.core.windows.net/cert/x.cer",
            "https://user@3psostorageacct.blob.core.windows.net/cert/x.cer",
            " https://3psostorageacct.blob.core.windows.net/cert/x.cer",
        ] {
            assert!(verifier.allowed_url(refused).is_none(), "{refused}");
        }
    }

    #[tokio::test]
    async fn a_redirect_out_of_the_allowed_prefixes_is_refused() {
        let server = CertServer::start().await;
        // The certificate server is on another port: outside the redirector's prefix.
        let target = server.url("leaf.cer");
        let app = axum::Router::new().route(
            "/cert/moved.cer",
            axum::routing::get(move || {
                let target = target.clone();
                async move { axum::response::Redirect::temporary(&target) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let redirector = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let base = format!("http://127.0.0.1:{port}/");
        let verifier = WebhookVerifier::new(&settings(&base), reqwest::Client::new()).unwrap();
        let body = subscription_updated();
        let h = headers(
            &sign(&leaf_key_pem(), &body),
            &format!("{base}cert/moved.cer"),
            "rsa-sha256",
        );
        match verify_with(&verifier, &h, &body, NOW).await {
            Err(VerifyError::CertificateFetch(why)) => {
                assert!(
                    why.contains("which is not under an allowed certificate URL prefix"),
                    "{why}"
                )
            }
            other => panic!("expected CertificateFetch, got {other:?}"),
        }
        redirector.abort();
    }

    #[tokio::test]
    async fn missing_headers_and_other_algorithms_are_refused_before_any_download() {
        let server = CertServer::start().await;
        let verifier = verifier_for(&server);
        let body = subscription_updated();
        let full = headers(
            &sign(&leaf_key_pem(), &body),
            &server.url("leaf.cer"),
            "rsa-sha256",
        );
        for (removed, expected) in [
            ("authorization", "Authorization"),
            ("x-ms-certificate-url", "X-MS-Certificate-Url"),
            ("x-ms-signature-algorithm", "X-MS-Signature-Algorithm"),
        ] {
            let mut h = full.clone();
            h.remove(removed);
            assert_eq!(
                verify_with(&verifier, &h, &body, NOW).await,
                Err(VerifyError::MissingHeader(expected))
            );
            h.insert(removed, "  ".to_owned());
            assert_eq!(
                verify_with(&verifier, &h, &body, NOW).await,
                Err(VerifyError::MissingHeader(expected)),
                "a blank {removed} is missing"
            );
        }
        let mut h = full.clone();
        h.insert("authorization", format!("Bearer {}", full["authorization"]));
        assert_eq!(
            verify_with(&verifier, &h, &body, NOW).await,
            Err(VerifyError::MissingHeader("Authorization"))
        );
        let mut h = full.clone();
        h.insert("x-ms-signature-algorithm", "rsa-sha1".to_owned());
        let refused = verify_with(&verifier, &h, &body, NOW).await;
        assert_eq!(
            refused,
            Err(VerifyError::UnsupportedAlgorithm("rsa-sha1".into()))
        );
        assert_eq!(
            refused.unwrap_err().to_string(),
            r#"X-MS-Signature-Algorithm "rsa-sha1" is not supported: only rsa-sha256 is accepted"#
        );
        assert_eq!(server.total_hits(), 0);
        assert!(verify_with(&verifier, &full, &body, NOW).await.is_ok());
    }

    #[tokio::test]
    async fn the_certificate_is_cached_per_url_for_its_ttl() {
        let server = CertServer::start().await;
        let verifier = verifier_for(&server);
        let body = subscription_updated();
        let h = headers(
            &sign(&leaf_key_pem(), &body),
            &server.url("leaf.cer"),
            "rsa-sha256",
        );
        verify_with(&verifier, &h, &body, NOW).await.unwrap();
        verify_with(&verifier, &h, &body, NOW + 60).await.unwrap();
        verify_with(&verifier, &h, &body, NOW + 86_399)
            .await
            .unwrap();
        assert_eq!(server.hits("leaf.cer"), 1);
        verify_with(&verifier, &h, &body, NOW + 86_400)
            .await
            .unwrap();
        assert_eq!(server.hits("leaf.cer"), 2, "downloaded again after 24 h");
        verify_with(&verifier, &h, &body, NOW + 86_401)
            .await
            .unwrap();
        assert_eq!(server.hits("leaf.cer"), 2);

        // Another URL is another entry.
        let h2 = headers(
            &sign(&leaf_key_pem(), &body),
            &server.url("leaf.pem"),
            "rsa-sha256",
        );
        verify_with(&verifier, &h2, &body, NOW).await.unwrap();
        verify_with(&verifier, &h2, &body, NOW).await.unwrap();
        assert_eq!(server.hits("leaf.pem"), 1);

        // TTL 0: no caching.
        let uncached = WebhookVerifier::new(
            &WebhookVerifySettings {
                certificate_cache_seconds: 0,
                ..settings(&server.base_url)
            },
            reqwest::Client::new(),
        )
        .unwrap();
        verify_with(&uncached, &h, &body, NOW).await.unwrap();
        verify_with(&uncached, &h, &body, NOW).await.unwrap();
        assert_eq!(server.hits("leaf.cer"), 4);
    }

    #[tokio::test]
    async fn a_failed_download_is_not_cached() {
        let server = CertServer::start().await;
        let verifier = verifier_for(&server);
        let body = subscription_updated();
        let url = server.url("leaf.cer");
        let h = headers(&sign(&leaf_key_pem(), &body), &url, "rsa-sha256");
        server.fail_next(1);
        assert_eq!(
            verify_with(&verifier, &h, &body, NOW).await,
            Err(VerifyError::CertificateFetch(format!(
                "GET {url}: answered 503 Service Unavailable"
            )))
        );
        verify_with(&verifier, &h, &body, NOW).await.unwrap();
        verify_with(&verifier, &h, &body, NOW).await.unwrap();
        assert_eq!(server.hits("leaf.cer"), 2);

        let missing = headers(
            &sign(&leaf_key_pem(), &body),
            &server.url("nope.cer"),
            "rsa-sha256",
        );
        match verify_with(&verifier, &missing, &body, NOW).await {
            Err(VerifyError::CertificateFetch(why)) => {
                assert!(why.ends_with("answered 404 Not Found"), "{why}")
            }
            other => panic!("expected CertificateFetch, got {other:?}"),
        }
        // Not a certificate at all (the README is served as text).
        let text = headers(
            &sign(&leaf_key_pem(), &body),
            &server.url("README.md"),
            "rsa-sha256",
        );
        match verify_with(&verifier, &text, &body, NOW).await {
            Err(VerifyError::CertificateFetch(why)) => {
                assert!(why.contains("not an X.509 certificate"), "{why}")
            }
            other => panic!("expected CertificateFetch, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_cached_certificate_that_expired_is_downloaded_again() {
        let server = CertServer::start().await;
        let verifier = WebhookVerifier::new(
            &WebhookVerifySettings {
                certificate_cache_seconds: u64::MAX,
                ..settings(&server.base_url)
            },
            reqwest::Client::new(),
        )
        .unwrap();
        let body = subscription_updated();
        let h = headers(
            &sign(&leaf_key_pem(), &body),
            &server.url("leaf.cer"),
            "rsa-sha256",
        );
        verify_with(&verifier, &h, &body, NOW).await.unwrap();
        assert_eq!(server.hits("leaf.cer"), 1);
        untrusted(verify_with(&verifier, &h, &body, AFTER_EXPIRY).await);
        assert_eq!(
            server.hits("leaf.cer"),
            2,
            "the expired cached copy was replaced by a download"
        );
        assert!(verifier.lock_cache().is_empty());
    }

    #[tokio::test]
    async fn the_default_trust_anchors_do_not_trust_the_test_ca() {
        let server = CertServer::start().await;
        let verifier = WebhookVerifier::new(
            &WebhookVerifySettings {
                allowed_cert_url_prefixes: vec![server.base_url.clone()],
                ..WebhookVerifySettings::default()
            },
            reqwest::Client::new(),
        )
        .unwrap();
        assert_eq!(
            verifier.trust_anchors.len(),
            webpki_roots::TLS_SERVER_ROOTS.len()
        );
        let body = subscription_updated();
        let h = headers(
            &sign(&leaf_key_pem(), &body),
            &server.url("leaf.cer"),
            "rsa-sha256",
        );
        untrusted(verify_with(&verifier, &h, &body, NOW).await);

        // Extra anchors are added to webpki-roots unless only_extra_trust_anchors is set.
        let both = WebhookVerifier::new(
            &WebhookVerifySettings {
                only_extra_trust_anchors: false,
                ..settings(&server.base_url)
            },
            reqwest::Client::new(),
        )
        .unwrap();
        assert_eq!(
            both.trust_anchors.len(),
            webpki_roots::TLS_SERVER_ROOTS.len() + 1
        );
        assert!(verify_with(&both, &h, &body, NOW).await.is_ok());
    }

    #[test]
    fn settings_default_and_deserialize_strictly() {
        let defaults: WebhookVerifySettings = serde_json::from_str("{}").unwrap();
        assert_eq!(
            defaults.allowed_cert_url_prefixes,
            ["https://3psostorageacct.blob.core.windows.net/"]
        );
        assert_eq!(
            defaults.certificate_name,
            "pcnotifications-dispatch.microsoft.com"
        );
        assert!(defaults.extra_trust_anchor_pem_files.is_empty());
        assert!(!defaults.only_extra_trust_anchors);
        assert_eq!(defaults.certificate_cache_seconds, 86_400);
        let err = serde_json::from_str::<WebhookVerifySettings>(r#"{"certificate_url":"x"}"#)
            .unwrap_err();
        assert!(
            err.to_string().contains("unknown field `certificate_url`"),
            "{err}"
        );
    }

    #[test]
    fn bad_settings_are_refused_with_what_is_wrong() {
        let client = reqwest::Client::new;
        let config_error = |s: WebhookVerifySettings| match WebhookVerifier::new(&s, client()) {
            Err(VerifyError::Config(why)) => why,
            other => panic!("expected Config, got {other:?}"),
        };
        let missing = fixture_path("no-such-file.pem");
        let why = config_error(WebhookVerifySettings {
            extra_trust_anchor_pem_files: vec![missing.clone()],
            ..Default::default()
        });
        assert!(
            why.starts_with(&format!("trust anchor file {}: ", missing.display())),
            "{why}"
        );

        let not_a_cert = fixture_path("leaf.key.pem");
        let why = config_error(WebhookVerifySettings {
            extra_trust_anchor_pem_files: vec![not_a_cert.clone()],
            ..Default::default()
        });
        assert_eq!(
            why,
            format!(
                "trust anchor file {}: no `-----BEGIN CERTIFICATE-----` section in it",
                not_a_cert.display()
            )
        );

        let why = config_error(WebhookVerifySettings {
            only_extra_trust_anchors: true,
            ..Default::default()
        });
        assert!(why.starts_with("only_extra_trust_anchors is set"), "{why}");

        let why = config_error(WebhookVerifySettings {
            allowed_cert_url_prefixes: vec![],
            ..Default::default()
        });
        assert!(
            why.starts_with("allowed_cert_url_prefixes is empty"),
            "{why}"
        );

        for (prefix, expected) in [
            (
                "https://3psostorageacct.blob.core.windows.net/cert",
                "must end with `/`",
            ),
            ("ftp://example.com/", "is not an http(s) URL with a host"),
            ("example.com/", "is not a URL"),
            ("https://u:p@example.com/", "has a user name or password"),
        ] {
            let why = config_error(WebhookVerifySettings {
                allowed_cert_url_prefixes: vec![prefix.to_owned()],
                ..Default::default()
            });
            assert!(why.contains(expected), "{prefix}: {why}");
        }
        // Without a path the origin is normalized to `https://host/`, which is fine.
        assert!(
            WebhookVerifier::new(
                &WebhookVerifySettings {
                    allowed_cert_url_prefixes: vec!["https://example.com".to_owned()],
                    ..Default::default()
                },
                client()
            )
            .is_ok()
        );

        let why = config_error(WebhookVerifySettings {
            certificate_name: "10.0.0.1".to_owned(),
            ..Default::default()
        });
        assert_eq!(why, r#"certificate_name "10.0.0.1" is not a DNS name"#);
    }

    #[test]
    fn resource_uris_give_customer_and_subscription_ids() {
        let cases = [
            (
                "https://api.partnercenter.microsoft.com/webhooks/v1/customers/c-1/subscriptions/s-1",
                (Some("c-1"), Some("s-1")),
            ),
            (
                "https://api.partnercenter.microsoft.com/v1/Customers/c-1/Subscriptions/s-1/upgrades",
                (Some("c-1"), Some("s-1")),
            ),
            (
                "https://api.partnercenter.microsoft.com/v1/customers/c-1",
                (Some("c-1"), None),
            ),
            (
                "https://api.partnercenter.microsoft.com/v1/fraudEvents?subscriptionid=s-2&EventStatus=Active",
                (None, Some("s-2")),
            ),
            (
                "/v1/customers/c%2D3/subscriptions/s-3",
                (Some("c-3"), Some("s-3")),
            ),
            (
                "https://api.partnercenter.microsoft.com/v1/customers/",
                (None, None),
            ),
            (
                "https://api.partnercenter.microsoft.com/v1/invoices/i-1",
                (None, None),
            ),
        ];
        for (uri, (customer, subscription)) in cases {
            let (c, s) = ids_from_resource_uri(uri);
            assert_eq!(
                (c.as_deref(), s.as_deref()),
                (customer, subscription),
                "{uri}"
            );
        }
    }

    #[test]
    fn event_fields_are_matched_without_case_and_ambiguity_is_refused() {
        let event = parse_event(
            "\u{feff}{\"EVENTNAME\":\"test-created\",\"AuditUri\":null,\"AuditUrl\":\"u\",\"ResourceUri\":null}"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(event.event_name, "test-created");
        assert_eq!(event.audit_uri.as_deref(), Some("u"));
        assert_eq!(event.resource_uri, None);
        assert_eq!(
            parse_event(br#"{"EventName":"a","eventName":"b"}"#),
            Err(VerifyError::BadBody(
                r#"EventName appears twice (as "EventName" and "eventName")"#.into()
            ))
        );
        assert_eq!(
            parse_event(br#"{"EventName":" "}"#),
            Err(VerifyError::BadBody("it has no EventName".into()))
        );
    }

    #[test]
    fn error_messages_are_readable() {
        assert_eq!(
            VerifyError::MissingHeader("Authorization").to_string(),
            "missing the signature: expected a header `Authorization: Signature <base64>` \
             (or `x-ms-signature: Signature <base64>`)"
        );
        assert_eq!(
            VerifyError::MissingHeader("X-MS-Certificate-Url").to_string(),
            "missing the X-MS-Certificate-Url header"
        );
        assert_eq!(
            VerifyError::CertificateUrlNotAllowed("https://evil.example.com/x.cer".into())
                .to_string(),
            r#"X-MS-Certificate-Url "https://evil.example.com/x.cer" is not under an allowed certificate URL prefix"#
        );
    }

    /// The future must be `Send` (axum handlers) even when the header lookup is not `Sync`.
    #[test]
    fn the_verify_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let verifier =
            WebhookVerifier::new(&WebhookVerifySettings::default(), reqwest::Client::new())
                .unwrap();
        let not_sync = std::rc::Rc::new(std::cell::RefCell::new(HashMap::<String, String>::new()));
        let lookup = move |name: &str| not_sync.borrow().get(name).cloned();
        let future = verifier.verify(&lookup, b"{}", NOW);
        assert_send(&future);
        fn assert_shareable<T: Send + Sync>() {}
        assert_shareable::<WebhookVerifier>();
    }
}
