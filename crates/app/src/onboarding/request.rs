//! A sign-up as the partner sends it (`POST /v1/signups/assess`, the batch file's lines) and
//! its validation into the domain's input. The request is also the stored form of a sign-up,
//! re-read on approval, so the application owns it; adapters only hand it the bytes.

use riskdesk_domain::customer::parse_name;
use riskdesk_domain::onboarding::assess::{PaymentInstrument, SignupInput};
use riskdesk_domain::values::bounded_text;
use riskdesk_domain::{CloudInstance, CountryCode, DomainName, Email, Locale};
use serde::{Deserialize, Serialize};

use super::CustomerDetails;
use crate::kernel::error::{AppError, Validator};
use crate::kernel::json::parse_json;

#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CompanyIn {
    pub name: String,
    pub domain: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub address: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ContactIn {
    pub email: String,
    /// E.164.
    pub phone: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = PaymentInstrumentIn))]
#[serde(deny_unknown_fields)]
pub struct PaymentIn {
    /// card, bank_transfer or invoice.
    #[serde(rename = "type")]
    pub kind: String,
    /// Cards: the first 6 to 8 digits.
    pub bin: Option<String>,
    /// Cards: the last 4 digits.
    pub last4: Option<String>,
    /// Cards: the issuing country, if known (ISO 3166-1 alpha-2).
    pub country: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AssessRequest {
    pub company: CompanyIn,
    pub contact: ContactIn,
    /// The sign-up's IP address (IPv4 or IPv6).
    pub ip: String,
    pub device_id: Option<String>,
    pub payment_instrument: Option<PaymentIn>,
    #[cfg_attr(feature = "openapi", schema(value_type = CloudInstance))]
    pub cloud_instance: String,
    /// The customer's language for notices; default en.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Locale>))]
    pub locale: Option<String>,
    /// RFC 3339; default now. Lists (FATF) and velocity windows are read at this time.
    pub as_of: Option<String>,
}

fn digits(
    field: &str,
    s: &str,
    lens: std::ops::RangeInclusive<usize>,
    v: &mut Validator,
) -> Option<String> {
    let ok = lens.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        v.fail(
            field,
            format!("must be {} to {} digits", lens.start(), lens.end()),
        );
        return None;
    }
    Some(s.to_owned())
}

/// Validates an assessment request (also used to re-read a stored one on approval).
pub fn parse_request(
    raw: serde_json::Value,
    now: jiff::Timestamp,
) -> Result<(SignupInput, CustomerDetails), AppError> {
    parse_request_bytes(&serde_json::to_vec(&raw).unwrap_or_default(), now)
}

/// Validates an assessment request given as JSON bytes.
pub fn parse_request_bytes(
    raw: &[u8],
    now: jiff::Timestamp,
) -> Result<(SignupInput, CustomerDetails), AppError> {
    let r: AssessRequest = parse_json(raw)?;
    let mut v = Validator::default();
    let name = v.check("company.name", parse_name(&r.company.name));
    let domain = v.check("company.domain", DomainName::parse(&r.company.domain));
    let country = v.check("company.country", CountryCode::parse(&r.company.country));
    let address = r
        .company
        .address
        .as_deref()
        .and_then(|a| v.check("company.address", bounded_text("address", a, 500)));
    let email = v.check("contact.email", Email::parse(&r.contact.email));
    let phone = r.contact.phone.as_deref().and_then(|p| {
        let p = p.trim();
        let ok = p.len() >= 8
            && p.len() <= 16
            && p.starts_with('+')
            && p[1..].bytes().all(|b| b.is_ascii_digit());
        if !ok {
            v.fail(
                "contact.phone",
                format!("'{p}' is not in E.164 form: '+' then 7 to 15 digits"),
            );
        }
        ok.then(|| p.to_owned())
    });
    let contact_name = r
        .contact
        .name
        .as_deref()
        .and_then(|n| v.check("contact.name", bounded_text("name", n, 200)));
    let ip = v.check(
        "ip",
        r.ip.trim()
            .parse::<std::net::IpAddr>()
            .map_err(|_| format!("'{}' is not an IPv4 or IPv6 address", r.ip)),
    );
    let device_id = r
        .device_id
        .as_deref()
        .and_then(|d| v.check("device_id", bounded_text("device_id", d, 200)));
    let payment = match &r.payment_instrument {
        None => None,
        Some(p) => match p.kind.as_str() {
            "card" => {
                let bin = match &p.bin {
                    Some(b) => digits("payment_instrument.bin", b, 6..=8, &mut v),
                    None => {
                        v.fail("payment_instrument.bin", "is required for a card");
                        None
                    }
                };
                let last4 = match &p.last4 {
                    Some(l) => digits("payment_instrument.last4", l, 4..=4, &mut v),
                    None => {
                        v.fail("payment_instrument.last4", "is required for a card");
                        None
                    }
                };
                let country = p
                    .country
                    .as_deref()
                    .and_then(|c| v.check("payment_instrument.country", CountryCode::parse(c)));
                match (bin, last4) {
                    (Some(bin), Some(last4)) => Some(PaymentInstrument::Card {
                        bin,
                        last4,
                        country,
                    }),
                    _ => None,
                }
            }
            "bank_transfer" => Some(PaymentInstrument::BankTransfer),
            "invoice" => Some(PaymentInstrument::Invoice),
            other => {
                v.fail(
                    "payment_instrument.type",
                    format!("'{other}' is not one of card, bank_transfer, invoice"),
                );
                None
            }
        },
    };
    let cloud = v.check(
        "cloud_instance",
        CloudInstance::parse(&r.cloud_instance)
            .ok_or("must be one of global, us_government, germany, china_21vianet"),
    );
    let locale = v.check("locale", Locale::parse(r.locale.as_deref().unwrap_or("en")));
    let as_of = match &r.as_of {
        None => Some(now),
        Some(t) => v.check(
            "as_of",
            t.parse::<jiff::Timestamp>()
                .map_err(|e| format!("'{t}' is not an RFC 3339 time: {e}")),
        ),
    };
    v.finish()?;
    match (name, domain, country, email, ip, cloud, locale, as_of) {
        (
            Some(name),
            Some(domain),
            Some(country),
            Some(email),
            Some(ip),
            Some(cloud),
            Some(locale),
            Some(as_of),
        ) => Ok((
            SignupInput {
                company_name: name.clone(),
                company_domain: domain,
                company_country: country,
                email,
                phone,
                ip,
                device_id,
                payment,
                as_of,
            },
            CustomerDetails {
                company_name: name,
                address,
                contact_name,
                locale,
                cloud_instance: cloud,
            },
        )),
        _ => Err(AppError::Internal(
            "validation passed with a missing value".into(),
        )),
    }
}
