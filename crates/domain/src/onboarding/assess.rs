//! One sign-up in, one decision out: `assess` is pure — the caller looks up velocity counts and
//! fraud links and passes them in as [`SignupFacts`], so the same inputs always give the same
//! answer and any assessment can be replayed.

use std::net::IpAddr;

use jiff::Timestamp;
use serde::Serialize;

use super::geo::GeoDb;
use super::lists::{BinTable, EmailDomainClass, EmailDomainLists, FatfList, FatfLists};
use super::policy::{CompiledPolicy, CountryOverride};
use crate::money::Money;
use crate::values::{CountryCode, DomainName, Email};

macro_rules! reason_codes {
    ($($v:ident => $s:literal, $points:expr, $doc:literal;)*) => {
        /// Every reason an assessment can give. Codes are a public contract: never rename one.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ReasonCode { $($v),* }
        impl ReasonCode {
            pub const ALL: &'static [ReasonCode] = &[$(ReasonCode::$v),*];
            pub fn as_str(self) -> &'static str { match self { $(ReasonCode::$v => $s),* } }
            pub fn parse(s: &str) -> Option<Self> { match s { $($s => Some(ReasonCode::$v),)* _ => None } }
            pub fn default_points(self) -> u32 { match self { $(ReasonCode::$v => $points),* } }
            /// What the code means, for documentation.
            pub fn describe(self) -> &'static str { match self { $(ReasonCode::$v => $doc),* } }
        }
    };
}

reason_codes! {
    EmailDisposable => "email_disposable", 40, "The email domain (or a parent) is on the disposable-domain list and not on the known-good allowlist. A domain on both the disposable and the free-mail list counts as disposable only.";
    EmailFreeProvider => "email_free_provider", 10, "The email domain is a free-mail provider.";
    EmailDomainMismatch => "email_domain_mismatch", 10, "A corporate email whose domain is neither the company's domain nor a subdomain of it (not raised for free or disposable mail, which already count).";
    PhoneInvalid => "phone_invalid", 25, "The phone number is well-formed E.164 but not a valid number anywhere (libphonenumber metadata).";
    PhoneCountryMismatch => "phone_country_mismatch", 15, "The phone number belongs to another country than the company's.";
    IpCountryMismatch => "ip_country_mismatch", 15, "The sign-up IP is located in another country than the company's (needs a location database).";
    IpAnonymous => "ip_anonymous", 35, "The sign-up IP is an anonymous VPN, public or residential proxy, or Tor exit node (needs an Anonymous-IP database).";
    CountryHighRisk => "country_high_risk", 25, "The company's country is on the FATF increased-monitoring list on the assessment date, or marked high by the partner.";
    CountrySanctioned => "country_sanctioned", 100, "The company's country is on the FATF call-for-action list on the assessment date, or marked sanctioned by the partner.";
    CardPrepaid => "card_prepaid", 100, "The card's BIN is a prepaid or stored-value (gift) range: refused, as the seed article says.";
    CardCountryMismatch => "card_country_mismatch", 20, "The card was issued in another country than the company's.";
    VelocityIp => "velocity_ip", 30, "Too many sign-ups from this IP address in the window.";
    VelocityIpSubnet => "velocity_ip_subnet", 20, "Too many sign-ups from this /24 (IPv4) or /64 (IPv6) in the window.";
    VelocityDevice => "velocity_device", 30, "Too many sign-ups from this device in the window.";
    VelocityCard => "velocity_card", 40, "Too many sign-ups with this card (BIN and last four) in the window.";
    VelocityPhone => "velocity_phone", 30, "Too many sign-ups with this phone number in the window.";
    VelocityEmailDomain => "velocity_email_domain", 20, "Too many sign-ups from this corporate email domain in the window (free-mail domains are not counted).";
    LinkedToFraud => "linked_to_fraud", 60, "Shares an email, phone, card, device or IP with a customer or sign-up marked fraudulent.";
    IdentityUnverified => "identity_unverified", 30, "The verification provider could not verify the company or contact.";
    Blocklisted => "blocklisted", 100, "An identifier of the sign-up (email, email or company domain, phone, IP in a blocked range, card BIN, device) is on the partner's block list (refused by default).";
    CreditLow => "credit_low", 30, "The verification provider's credit score is below the policy's `credit_low_below`.";
}

/// What velocity counts sign-ups by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VelocityKind {
    Ip,
    IpSubnet,
    Device,
    Card,
    Phone,
    EmailDomain,
}

impl VelocityKind {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ip" => Self::Ip,
            "ip_subnet" => Self::IpSubnet,
            "device" => Self::Device,
            "card" => Self::Card,
            "phone" => Self::Phone,
            "email_domain" => Self::EmailDomain,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::IpSubnet => "ip_subnet",
            Self::Device => "device",
            Self::Card => "card",
            Self::Phone => "phone",
            Self::EmailDomain => "email_domain",
        }
    }

    fn reason(self) -> ReasonCode {
        match self {
            Self::Ip => ReasonCode::VelocityIp,
            Self::IpSubnet => ReasonCode::VelocityIpSubnet,
            Self::Device => ReasonCode::VelocityDevice,
            Self::Card => ReasonCode::VelocityCard,
            Self::Phone => ReasonCode::VelocityPhone,
            Self::EmailDomain => ReasonCode::VelocityEmailDomain,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PaymentInstrument {
    Card {
        /// 6 to 8 digits.
        bin: String,
        last4: String,
        country: Option<CountryCode>,
    },
    BankTransfer,
    Invoice,
}

/// A validated sign-up.
#[derive(Clone, Debug)]
pub struct SignupInput {
    pub company_name: String,
    pub company_domain: DomainName,
    pub company_country: CountryCode,
    pub email: Email,
    /// E.164 text (syntax checked at the edge; validity is a signal).
    pub phone: Option<String>,
    pub ip: IpAddr,
    pub device_id: Option<String>,
    pub payment: Option<PaymentInstrument>,
    pub as_of: Timestamp,
}

/// The facts only storage knows, looked up before assessing.
#[derive(Clone, Debug, Default)]
pub struct SignupFacts {
    /// For each velocity rule: sign-ups with the same value in its window, this one included
    /// (storage may stop counting just past the rule's limit).
    pub velocity: Vec<(VelocityKind, String, u32)>,
    /// Identifiers this sign-up shares with something marked fraudulent, e.g. `email:x@y.z`.
    pub fraud_links: Vec<String>,
    pub verification: VerificationFacts,
    /// Block-list entries the sign-up matches, e.g. `domain example.com`.
    pub blocked: Vec<String>,
}

/// What the external verification provider answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum VerificationFacts {
    #[default]
    NotConfigured,
    Answered {
        /// None: the provider could not tell.
        identity_verified: Option<bool>,
        credit_score: Option<u32>,
    },
    /// The provider failed (down, timing out, circuit open): the sign-up is held for review.
    Unavailable,
}

/// The reference data assessments run against.
pub struct RiskData {
    pub email_lists: EmailDomainLists,
    pub bins: BinTable,
    pub fatf: FatfLists,
    pub geo: GeoDb,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Review,
    Reject,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Review => "review",
            Decision::Reject => "reject",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub code: &'static str,
    pub message: String,
    pub points: u32,
}

/// A signal that could not be evaluated, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub signal: &'static str,
    pub why: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    pub decision: Decision,
    pub score: u32,
    pub reasons: Vec<Reason>,
    pub credit_limit: Money,
    pub prepayment_required: bool,
    pub mfa_required: bool,
    pub skipped: Vec<Skipped>,
}

/// The values velocity counts this sign-up under (one per kind that applies).
pub fn velocity_keys(input: &SignupInput, lists: &EmailDomainLists) -> Vec<(VelocityKind, String)> {
    let mut keys = vec![(VelocityKind::Ip, input.ip.to_string())];
    keys.push((
        VelocityKind::IpSubnet,
        match input.ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                format!("{}.{}.{}.0/24", o[0], o[1], o[2])
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    ));
    if let Some(d) = &input.device_id {
        keys.push((VelocityKind::Device, d.clone()));
    }
    if let Some(PaymentInstrument::Card { bin, last4, .. }) = &input.payment {
        keys.push((VelocityKind::Card, format!("{bin}:{last4}")));
    }
    if let Some(p) = &input.phone {
        keys.push((VelocityKind::Phone, p.clone()));
    }
    if lists.classify(input.email.domain()) == EmailDomainClass::Other {
        keys.push((VelocityKind::EmailDomain, input.email.domain().to_owned()));
    }
    keys
}

fn phone_country(phone: &str) -> Result<Option<String>, ()> {
    // The vendored regex-cache compiles libphonenumber's expressions in ASCII mode, which
    // matches as Unicode mode does only on ASCII text: anything else is not E.164 anyway.
    if !phone.is_ascii() {
        return Err(());
    }
    let n = phonenumber::parse(None, phone).map_err(|_| ())?;
    if !phonenumber::is_valid(&n) {
        return Err(());
    }
    Ok(n.country().id().map(|id| format!("{id:?}")))
}

pub fn assess(
    input: &SignupInput,
    facts: &SignupFacts,
    data: &RiskData,
    policy: &CompiledPolicy,
) -> Assessment {
    let mut reasons: Vec<Reason> = Vec::new();
    let mut skipped = Vec::new();
    let mut add = |code: ReasonCode, message: String| {
        if !reasons.iter().any(|r| r.code == code.as_str()) {
            reasons.push(Reason {
                code: code.as_str(),
                message,
                points: policy.points(code),
            });
        }
    };
    let country = input.company_country;

    // Email.
    let email_domain = input.email.domain();
    match data.email_lists.classify(email_domain) {
        EmailDomainClass::Disposable => add(
            ReasonCode::EmailDisposable,
            format!("{email_domain} is a disposable email domain"),
        ),
        EmailDomainClass::FreeProvider => add(
            ReasonCode::EmailFreeProvider,
            format!("{email_domain} is a free email provider"),
        ),
        EmailDomainClass::Other => {
            let company = input.company_domain.as_str();
            if email_domain != company && !email_domain.ends_with(&format!(".{company}")) {
                add(
                    ReasonCode::EmailDomainMismatch,
                    format!("email domain {email_domain} is not the company domain {company}"),
                );
            }
        }
    }

    // Phone.
    if let Some(p) = &input.phone {
        match phone_country(p) {
            Err(()) => add(
                ReasonCode::PhoneInvalid,
                format!("{p} is not a valid phone number"),
            ),
            Ok(Some(pc)) if pc != country.as_str() => add(
                ReasonCode::PhoneCountryMismatch,
                format!("phone number is from {pc}, company is in {country}"),
            ),
            Ok(_) => {}
        }
    }

    // IP.
    if data.geo.has_location() || data.geo.has_anonymous() {
        let f = data.geo.lookup(input.ip);
        if data.geo.has_location() {
            if let Some(ipc) = &f.country {
                if ipc != country.as_str() {
                    add(
                        ReasonCode::IpCountryMismatch,
                        format!(
                            "sign-up IP {} is in {ipc}, company is in {country}",
                            input.ip
                        ),
                    );
                }
            }
        }
        if f.anonymous {
            let what = if f.tor_exit {
                "a Tor exit node"
            } else {
                "an anonymous proxy or VPN"
            };
            add(
                ReasonCode::IpAnonymous,
                format!("sign-up IP {} is {what}", input.ip),
            );
        }
    }
    if !data.geo.has_location() {
        skipped.push(Skipped {
            signal: "ip_country_mismatch",
            why: "no location (GeoIP2/GeoLite2 City or Country) database is configured",
        });
    }
    if !data.geo.has_anonymous() {
        skipped.push(Skipped {
            signal: "ip_anonymous",
            why: "no Anonymous-IP database is configured",
        });
    }

    // Country.
    let date = input.as_of.to_zoned(jiff::tz::TimeZone::UTC).date();
    let listed = match policy.country_overrides.get(&country) {
        Some(CountryOverride::Sanctioned) => {
            Some((FatfList::CallForAction, "the partner's country policy"))
        }
        Some(CountryOverride::High) => Some((
            FatfList::IncreasedMonitoring,
            "the partner's country policy",
        )),
        Some(CountryOverride::None) => None,
        None => data
            .fatf
            .listed_on(country, date)
            .map(|l| (l, "the FATF lists")),
    };
    match listed {
        Some((FatfList::CallForAction, src)) => add(
            ReasonCode::CountrySanctioned,
            format!("{country} is a call-for-action jurisdiction on {date} per {src}"),
        ),
        Some((FatfList::IncreasedMonitoring, src)) => add(
            ReasonCode::CountryHighRisk,
            format!("{country} is under increased monitoring on {date} per {src}"),
        ),
        None => {}
    }

    // Payment instrument.
    if let Some(PaymentInstrument::Card {
        bin,
        country: stated,
        ..
    }) = &input.payment
    {
        let info = data.bins.lookup(bin);
        if info.is_some_and(|i| i.prepaid) {
            let i = info
                .map(|i| format!("{} {} {}", i.brand, i.card_type, i.category))
                .unwrap_or_default();
            add(
                ReasonCode::CardPrepaid,
                format!("BIN {bin} is a prepaid or stored-value card ({})", i.trim()),
            );
        }
        if let Some(cc) = info.and_then(|i| i.country).or(*stated) {
            if cc != country {
                add(
                    ReasonCode::CardCountryMismatch,
                    format!("card issued in {cc}, company is in {country}"),
                );
            }
        }
        if info.is_none() {
            skipped.push(Skipped {
                signal: "card_prepaid",
                why: "the card's BIN is not in the BIN table",
            });
        }
    }

    // Velocity.
    for (kind, window, max) in &policy.velocity {
        if let Some((_, value, count)) = facts.velocity.iter().find(|(k, _, _)| k == kind) {
            if count > max {
                add(
                    kind.reason(),
                    format!(
                        "more than {max} sign-ups with {} {value} in the last {window} s",
                        kind.as_str().replace('_', " ")
                    ),
                );
            }
        }
    }

    // Links to known fraud.
    if !facts.fraud_links.is_empty() {
        add(
            ReasonCode::LinkedToFraud,
            format!(
                "shares {} with a customer or sign-up marked fraudulent",
                facts.fraud_links.join(", ")
            ),
        );
    }

    // The partner's block list.
    if !facts.blocked.is_empty() {
        add(
            ReasonCode::Blocklisted,
            format!("on the block list: {}", facts.blocked.join(", ")),
        );
    }

    // External verification.
    let mut provider_down = false;
    match &facts.verification {
        VerificationFacts::NotConfigured => {
            skipped.push(Skipped {
                signal: "identity_unverified",
                why: "no verification provider is configured",
            });
            skipped.push(Skipped {
                signal: "credit_low",
                why: "no verification provider is configured",
            });
        }
        VerificationFacts::Unavailable => {
            provider_down = true;
            skipped.push(Skipped {
                signal: "identity_unverified",
                why: "the verification provider did not answer: held for review",
            });
            skipped.push(Skipped {
                signal: "credit_low",
                why: "the verification provider did not answer: held for review",
            });
        }
        VerificationFacts::Answered {
            identity_verified,
            credit_score,
        } => {
            match identity_verified {
                Some(false) => add(
                    ReasonCode::IdentityUnverified,
                    "the verification provider could not verify this identity".into(),
                ),
                Some(true) => {}
                None => skipped.push(Skipped {
                    signal: "identity_unverified",
                    why: "the verification provider could not tell",
                }),
            }
            match credit_score {
                Some(c) if *c < policy.credit_low_below => add(
                    ReasonCode::CreditLow,
                    format!("credit score {c} is below {}", policy.credit_low_below),
                ),
                Some(_) => {}
                None => skipped.push(Skipped {
                    signal: "credit_low",
                    why: "the verification provider gave no credit score",
                }),
            }
        }
    }

    let score = reasons.iter().map(|r| r.points).sum::<u32>().min(100);
    let hard = reasons
        .iter()
        .any(|r| policy.hard_reject.iter().any(|h| h.as_str() == r.code));
    let decision = if hard || score >= policy.reject_at {
        Decision::Reject
    } else if score >= policy.review_at || !facts.fraud_links.is_empty() || provider_down {
        Decision::Review
    } else {
        Decision::Approve
    };
    let (_, limit, prepay) = policy
        .credit_bands
        .iter()
        .find(|(max, _, _)| score <= *max)
        .copied()
        .unwrap_or((
            100,
            Money {
                minor: 0,
                currency: policy.currency,
            },
            true,
        ));
    let (limit, prepayment_required) = match decision {
        Decision::Reject => (
            Money {
                minor: 0,
                currency: policy.currency,
            },
            true,
        ),
        _ => (limit, prepay),
    };
    Assessment {
        decision,
        score,
        reasons,
        credit_limit: limit,
        prepayment_required,
        mfa_required: score >= policy.mfa_from_score,
        skipped,
    }
}
