//! The partner's block list: typed identifiers (email, domain, phone, IP address or range,
//! card BIN, device), each until an optional expiry. Values are normalised on the way in so a
//! look-up is an equality (ranges: a containment test).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::values::{DomainName, Email, Phone};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    Email,
    /// An email or company domain (and its subdomains).
    Domain,
    Phone,
    /// An address or a CIDR range.
    Ip,
    /// A card BIN (6 to 8 digits): every card starting with it.
    Bin,
    Device,
}

impl BlockKind {
    pub const ALL: [BlockKind; 6] = [
        BlockKind::Email,
        BlockKind::Domain,
        BlockKind::Phone,
        BlockKind::Ip,
        BlockKind::Bin,
        BlockKind::Device,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            BlockKind::Email => "email",
            BlockKind::Domain => "domain",
            BlockKind::Phone => "phone",
            BlockKind::Ip => "ip",
            BlockKind::Bin => "bin",
            BlockKind::Device => "device",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An IP range: the network address (host bits cleared) and the prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    pub network: IpAddr,
    pub prefix: u8,
}

impl IpRange {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let ip: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not an IP address or CIDR range"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{s}': the prefix length must be 0 to {max}"))?,
        };
        Ok(IpRange {
            network: mask(ip, prefix),
            prefix,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.prefix) == self.network
    }
}

impl std::fmt::Display for IpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v) => {
            let bits = u32::from(v);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v) => {
            let bits = u128::from(v);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

/// The stored form of a value of this kind, or why it is not one.
pub fn normalize(kind: BlockKind, raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    match kind {
        BlockKind::Email => Email::parse(raw)
            .map(|e| e.to_string().to_ascii_lowercase())
            .map_err(|e| e.0),
        BlockKind::Domain => DomainName::parse(raw)
            .map(|d| d.to_string().to_ascii_lowercase())
            .map_err(|e| e.0),
        BlockKind::Phone => Phone::parse(raw).map(|p| p.to_string()).map_err(|e| e.0),
        BlockKind::Ip => IpRange::parse(raw).map(|r| r.to_string()),
        BlockKind::Bin => {
            if (6..=8).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit()) {
                Ok(raw.to_owned())
            } else {
                Err(format!("'{raw}' is not a BIN (6 to 8 digits)"))
            }
        }
        BlockKind::Device => {
            if raw.is_empty() || raw.chars().count() > 200 || raw.chars().any(char::is_control) {
                Err("a device id is 1 to 200 printable characters".into())
            } else {
                Ok(raw.to_owned())
            }
        }
    }
}

/// What a sign-up or customer is checked against the list with.
#[derive(Clone, Debug, Default)]
pub struct Identifiers {
    pub email: Option<String>,
    /// Email and company domains.
    pub domains: Vec<String>,
    pub phone: Option<String>,
    pub ip: Option<IpAddr>,
    /// The card number's first digits (the BIN as given).
    pub card_prefix: Option<String>,
    pub device: Option<String>,
}

impl Identifiers {
    /// The exact (kind, value) pairs a stored entry may equal: the email, each domain and its
    /// parents (blocking `example.com` blocks `mail.example.com`), the phone, the device, and
    /// every 6–8 digit prefix of the card.
    pub fn exact_keys(&self) -> Vec<(BlockKind, String)> {
        let mut out = Vec::new();
        if let Some(e) = &self.email {
            out.push((BlockKind::Email, e.to_ascii_lowercase()));
        }
        for d in &self.domains {
            let d = d.to_ascii_lowercase();
            let labels: Vec<&str> = d.split('.').collect();
            for i in 0..labels.len().saturating_sub(1) {
                out.push((BlockKind::Domain, labels[i..].join(".")));
            }
        }
        if let Some(p) = &self.phone {
            out.push((BlockKind::Phone, p.clone()));
        }
        if let Some(d) = &self.device {
            out.push((BlockKind::Device, d.clone()));
        }
        if let Some(c) = &self.card_prefix {
            for n in 6..=8.min(c.len()) {
                out.push((BlockKind::Bin, c[..n].to_owned()));
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// Which active entries (kind, stored value) match these identifiers, described for a reason
/// message, e.g. `domain example.com`.
pub fn matches(entries: &[(BlockKind, String)], ids: &Identifiers) -> Vec<String> {
    let exact = ids.exact_keys();
    let mut out = Vec::new();
    for (kind, value) in entries {
        let hit = match kind {
            BlockKind::Ip => match (IpRange::parse(value), ids.ip) {
                (Ok(r), Some(ip)) => r.contains(ip),
                _ => false,
            },
            _ => exact.iter().any(|(k, v)| k == kind && v == value),
        };
        if hit {
            out.push(format!("{} {value}", kind.as_str()));
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_normalised_or_refused() {
        assert_eq!(
            normalize(BlockKind::Email, " Bad@Example.COM "),
            Ok("bad@example.com".into())
        );
        assert_eq!(
            normalize(BlockKind::Ip, "203.0.113.77/24"),
            Ok("203.0.113.0/24".into())
        );
        assert_eq!(
            normalize(BlockKind::Ip, "2001:db8::1"),
            Ok("2001:db8::1/128".into())
        );
        assert!(normalize(BlockKind::Ip, "203.0.113.0/33").is_err());
        assert!(normalize(BlockKind::Ip, "not-an-ip").is_err());
        assert_eq!(normalize(BlockKind::Bin, "411111"), Ok("411111".into()));
        assert!(normalize(BlockKind::Bin, "4111").is_err());
        assert!(normalize(BlockKind::Phone, "12345").is_err());
        assert!(normalize(BlockKind::Device, "").is_err());
    }

    #[test]
    fn ranges_domains_and_bins_match_what_they_cover() {
        let entries = vec![
            (BlockKind::Ip, "203.0.113.0/24".to_owned()),
            (BlockKind::Domain, "example.com".to_owned()),
            (BlockKind::Bin, "411111".to_owned()),
        ];
        let ids = Identifiers {
            email: Some("a@mail.example.com".into()),
            domains: vec!["mail.example.com".into(), "contoso.com".into()],
            ip: Some("203.0.113.200".parse().unwrap()),
            card_prefix: Some("41111122".into()),
            ..Default::default()
        };
        assert_eq!(
            matches(&entries, &ids),
            ["bin 411111", "domain example.com", "ip 203.0.113.0/24"]
        );
        let clean = Identifiers {
            email: Some("a@example.org".into()),
            domains: vec!["example.org".into()],
            ip: Some("198.51.100.1".parse().unwrap()),
            card_prefix: Some("511111".into()),
            ..Default::default()
        };
        assert!(matches(&entries, &clean).is_empty());
        // An IPv6 address is never inside an IPv4 range.
        let v6 = Identifiers {
            ip: Some("::ffff:203.0.113.5".parse().unwrap()),
            ..Default::default()
        };
        assert!(matches(&entries, &v6).is_empty());
    }
}
