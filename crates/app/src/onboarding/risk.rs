//! The onboarding risk engine as the server holds it: reference data (shipped, or the
//! partner's files named in `riskdesk.toml`) and the compiled policy. Loaded once at start-up;
//! a missing or corrupt file stops the start with a message naming it.

use std::path::{Path, PathBuf};

use riskdesk_domain::CountryCode;
use riskdesk_domain::onboarding::assess::RiskData;
use riskdesk_domain::onboarding::geo::GeoDb;
use riskdesk_domain::onboarding::lists::{BinTable, EmailDomainLists};
use riskdesk_domain::onboarding::policy::{CompiledPolicy, Policy};
use riskdesk_domain::onboarding::shipped;
use serde::{Deserialize, Serialize};

/// A partner-defined BIN range (overrides the table for that prefix).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BinRange {
    pub prefix: String,
    pub prepaid: bool,
    pub country: Option<String>,
}

/// `[data]` in riskdesk.toml: where to read reference data instead of the shipped copies.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataSettings {
    pub disposable_domains: Option<PathBuf>,
    pub disposable_allowlist: Option<PathBuf>,
    pub free_mail_domains: Option<PathBuf>,
    /// BIN tables (CSV: BIN,Brand,Type,Category,Issuer,…,isoCode2); replace the shipped ones.
    pub bin_tables: Vec<PathBuf>,
    pub bin_ranges: Vec<BinRange>,
    /// GeoIP2/GeoLite2 City or Country database (.mmdb).
    pub geoip_location: Option<PathBuf>,
    /// GeoIP2 Anonymous-IP database (.mmdb).
    pub geoip_anonymous: Option<PathBuf>,
}

/// One loaded data set, for `riskdesk data status`.
#[derive(Clone, Debug, Serialize)]
pub struct DataSetStatus {
    pub name: &'static str,
    /// `shipped (…)`, a file path, or `not configured`.
    pub source: String,
    pub entries: usize,
    /// The file's modification time, or the shipped copy's upstream date.
    pub as_of: String,
}

pub struct RiskEngine {
    pub data: RiskData,
    pub policy: CompiledPolicy,
    pub status: Vec<DataSetStatus>,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{what}: cannot read {}: {e}", path.display()))
}

fn text(path: &Path, what: &str) -> Result<String, String> {
    String::from_utf8(read(path, what)?)
        .map_err(|_| format!("{what}: {} is not UTF-8 text", path.display()))
}

fn modified(path: &Path) -> String {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| jiff::Timestamp::try_from(t).ok())
        .map(|t| t.to_string())
        .unwrap_or_else(|| "unknown".into())
}

impl RiskEngine {
    /// The shipped data and the default policy (no GeoIP databases).
    pub fn shipped() -> Result<Self, String> {
        Self::load(&DataSettings::default(), &Policy::default())
    }

    pub fn load(s: &DataSettings, policy: &Policy) -> Result<Self, String> {
        let policy = policy
            .compile()
            .map_err(|errs| format!("onboarding policy: {}", errs.join("; ")))?;
        let mut status = Vec::new();
        let shipped_src = |what: &str| format!("shipped ({what})");

        let disposable = match &s.disposable_domains {
            Some(p) => (
                text(p, "disposable_domains")?,
                p.display().to_string(),
                modified(p),
            ),
            None => (
                shipped::DISPOSABLE.to_owned(),
                shipped_src("data/disposable-email-domains, CC0"),
                "2026-08-21".into(),
            ),
        };
        let allow = match &s.disposable_allowlist {
            Some(p) => text(p, "disposable_allowlist")?,
            None => shipped::DISPOSABLE_ALLOW.to_owned(),
        };
        let free = match &s.free_mail_domains {
            Some(p) => (
                text(p, "free_mail_domains")?,
                p.display().to_string(),
                modified(p),
            ),
            None => (
                shipped::FREE_MAIL.to_owned(),
                shipped_src("data/free-email-providers, ISC"),
                "2020-07-03".into(),
            ),
        };
        let email_lists = EmailDomainLists::parse(&disposable.0, &allow, &free.0);
        let (nd, _, nf) = email_lists.counts();
        status.push(DataSetStatus {
            name: "disposable_domains",
            source: disposable.1,
            entries: nd,
            as_of: disposable.2,
        });
        status.push(DataSetStatus {
            name: "free_mail_domains",
            source: free.1,
            entries: nf,
            as_of: free.2,
        });

        let mut bins = BinTable::default();
        if s.bin_tables.is_empty() {
            for csv in shipped::BIN_TABLES {
                bins.add_csv(csv)
                    .map_err(|e| format!("shipped BIN table: {e}"))?;
            }
            status.push(DataSetStatus {
                name: "bin_table",
                source: shipped_src("data/bin-list-data starter subsets, CC BY 4.0"),
                entries: bins.len(),
                as_of: "2026-03-14".into(),
            });
        } else {
            for p in &s.bin_tables {
                bins.add_csv(&text(p, "bin_tables")?)
                    .map_err(|e| format!("bin_tables: {}: {e}", p.display()))?;
            }
            let names: Vec<String> = s
                .bin_tables
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            status.push(DataSetStatus {
                name: "bin_table",
                source: names.join(", "),
                entries: bins.len(),
                as_of: modified(&s.bin_tables[0]),
            });
        }
        for r in &s.bin_ranges {
            let country = r
                .country
                .as_deref()
                .map(CountryCode::parse)
                .transpose()
                .map_err(|e| format!("bin_ranges {}: {e}", r.prefix))?;
            bins.add_range(&r.prefix, r.prepaid, country)
                .map_err(|e| format!("bin_ranges: {e}"))?;
        }

        let fatf = shipped::fatf().map_err(|e| format!("shipped FATF lists: {e}"))?;
        status.push(DataSetStatus {
            name: "fatf_lists",
            source: shipped_src("data/fatf-lists"),
            entries: fatf.len(),
            as_of: format!(
                "{} (changes from {})",
                fatf.snapshot_date(),
                fatf.range_start()
            ),
        });

        let location = s
            .geoip_location
            .as_ref()
            .map(|p| read(p, "geoip_location"))
            .transpose()?;
        let anonymous = s
            .geoip_anonymous
            .as_ref()
            .map(|p| read(p, "geoip_anonymous"))
            .transpose()?;
        let geo = GeoDb::new(location, anonymous).map_err(|e| e.0)?;
        for (name, path) in [
            ("geoip_location", &s.geoip_location),
            ("geoip_anonymous", &s.geoip_anonymous),
        ] {
            status.push(match path {
                Some(p) => DataSetStatus {
                    name,
                    source: p.display().to_string(),
                    entries: 1,
                    as_of: modified(p),
                },
                None => DataSetStatus {
                    name,
                    source: "not configured: IP signals are skipped".into(),
                    entries: 0,
                    as_of: "-".into(),
                },
            });
        }
        Ok(RiskEngine {
            data: RiskData {
                email_lists,
                bins,
                fatf,
                geo,
            },
            policy,
            status,
        })
    }
}

impl std::fmt::Debug for RiskEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RiskEngine")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}
