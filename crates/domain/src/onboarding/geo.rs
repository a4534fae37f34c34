//! IP intelligence from MaxMind-format databases (GeoIP2/GeoLite2 City or Country, and
//! Anonymous-IP), opened from bytes the caller read. A database that fails to open or to answer
//! a probe is refused at load time, never at request time.

use std::net::IpAddr;

use maxminddb::{Reader, geoip2};

use crate::values::ValueError;

pub struct GeoDb {
    location: Option<Reader<Vec<u8>>>,
    anonymous: Option<Reader<Vec<u8>>>,
}

/// What the databases say about one address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpFacts {
    pub country: Option<String>,
    /// Anonymous VPN, public proxy, Tor exit, residential proxy or hosting provider.
    pub anonymous: bool,
    pub tor_exit: bool,
}

fn open(what: &str, bytes: Vec<u8>, expect: &[&str]) -> Result<Reader<Vec<u8>>, ValueError> {
    let r = Reader::from_source(bytes)
        .map_err(|e| ValueError(format!("{what}: not a readable MaxMind database: {e}")))?;
    let kind = r.metadata().database_type.clone();
    if !expect.iter().any(|e| kind.contains(e)) {
        return Err(ValueError(format!(
            "{what}: database type is '{kind}', expected one of {expect:?}"
        )));
    }
    // Probe both address families so a corrupt search tree or data section fails now.
    for probe in ["1.1.1.1", "2001:4860:4860::8888", "81.2.69.142"] {
        if let Ok(ip) = probe.parse::<IpAddr>() {
            match r.lookup(ip) {
                Ok(res) => {
                    res.decode::<serde_ignored_any::Any>()
                        .map_err(|e| ValueError(format!("{what}: corrupt data: {e}")))?;
                }
                Err(e) => return Err(ValueError(format!("{what}: corrupt search tree: {e}"))),
            }
        }
    }
    Ok(r)
}

/// A decode target that accepts any value (used only to exercise the data section).
mod serde_ignored_any {
    pub struct Any;
    impl<'de> serde::Deserialize<'de> for Any {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            serde::de::IgnoredAny::deserialize(d).map(|_| Any)
        }
    }
}

impl GeoDb {
    pub fn new(location: Option<Vec<u8>>, anonymous: Option<Vec<u8>>) -> Result<Self, ValueError> {
        Ok(GeoDb {
            location: location
                .map(|b| open("location database", b, &["City", "Country", "Enterprise"]))
                .transpose()?,
            anonymous: anonymous
                .map(|b| open("anonymous-IP database", b, &["Anonymous"]))
                .transpose()?,
        })
    }

    pub fn has_location(&self) -> bool {
        self.location.is_some()
    }

    pub fn has_anonymous(&self) -> bool {
        self.anonymous.is_some()
    }

    pub fn lookup(&self, ip: IpAddr) -> IpFacts {
        let mut f = IpFacts::default();
        if let Some(r) = &self.location {
            if let Ok(Some(c)) = r.lookup(ip).and_then(|res| res.decode::<geoip2::Country>()) {
                f.country = c
                    .country
                    .iso_code
                    .or(c.registered_country.iso_code)
                    .map(str::to_owned);
            }
        }
        if let Some(r) = &self.anonymous {
            if let Ok(Some(a)) = r
                .lookup(ip)
                .and_then(|res| res.decode::<geoip2::AnonymousIp>())
            {
                f.tor_exit = a.is_tor_exit_node.unwrap_or(false);
                f.anonymous = a.is_anonymous.unwrap_or(false)
                    || a.is_anonymous_vpn.unwrap_or(false)
                    || a.is_public_proxy.unwrap_or(false)
                    || a.is_residential_proxy.unwrap_or(false)
                    || f.tor_exit;
            }
        }
        f
    }
}
