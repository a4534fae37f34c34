//! Reference lists, parsed from text (the caller reads the files; this module does no I/O).

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use jiff::civil::Date;

use crate::values::{CountryCode, ValueError};

/// How an email domain is classed. A domain on both the disposable and the free-mail list is
/// `Disposable` (the stronger signal; it is not also counted as free). A domain on the
/// historical allowlist (known non-disposable) is never `Disposable`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailDomainClass {
    Disposable,
    FreeProvider,
    Other,
}

#[derive(Default)]
pub struct EmailDomainLists {
    disposable: HashSet<String>,
    allow: HashSet<String>,
    free: HashSet<String>,
}

fn domain_lines(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines()
        .map(|l| l.trim().trim_start_matches('.').to_ascii_lowercase())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

impl EmailDomainLists {
    pub fn parse(disposable: &str, allowlist: &str, free: &str) -> Self {
        EmailDomainLists {
            disposable: domain_lines(disposable).collect(),
            allow: domain_lines(allowlist).collect(),
            free: domain_lines(free).collect(),
        }
    }

    pub fn counts(&self) -> (usize, usize, usize) {
        (self.disposable.len(), self.allow.len(), self.free.len())
    }

    /// The domain and each parent (`a.b.c` → `a.b.c`, `b.c`), for suffix matching.
    fn suffixes(domain: &str) -> impl Iterator<Item = &str> {
        let mut rest = Some(domain);
        std::iter::from_fn(move || {
            let cur = rest?;
            rest = cur
                .split_once('.')
                .map(|(_, r)| r)
                .filter(|r| r.contains('.'));
            Some(cur)
        })
    }

    pub fn classify(&self, domain: &str) -> EmailDomainClass {
        let d = domain.to_ascii_lowercase();
        if !self.allow.contains(&d) && Self::suffixes(&d).any(|s| self.disposable.contains(s)) {
            return EmailDomainClass::Disposable;
        }
        if Self::suffixes(&d).any(|s| self.free.contains(s)) {
            return EmailDomainClass::FreeProvider;
        }
        EmailDomainClass::Other
    }
}

/// What the BIN table knows about a card's issuer range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinInfo {
    pub prefix: String,
    pub brand: String,
    pub card_type: String,
    pub category: String,
    pub issuer: String,
    pub country: Option<CountryCode>,
    /// Prepaid or stored-value (gift) card: refused, as the seed article says.
    pub prepaid: bool,
}

/// BIN ranges keyed by prefix; a look-up takes the longest matching prefix (8 down to 4 digits),
/// at most five hash probes.
#[derive(Default)]
pub struct BinTable {
    by_prefix: HashMap<String, BinInfo>,
}

fn is_prepaid(card_type: &str, category: &str) -> bool {
    let t = format!(
        "{} {}",
        card_type.to_ascii_uppercase(),
        category.to_ascii_uppercase()
    );
    t.contains("PREPAID")
        || t.contains("GIFT")
        || t.contains("STORED VALUE")
        || t.contains("STORED-VALUE")
}

impl BinTable {
    /// Parses the CSV layout `BIN,Brand,Type,Category,Issuer,IssuerPhone,IssuerUrl,isoCode2,…`
    /// (header required). Rows with a malformed BIN are an error naming the line.
    pub fn parse_csv(text: &str) -> Result<Self, ValueError> {
        let mut t = BinTable::default();
        t.add_csv(text)?;
        Ok(t)
    }

    pub fn add_csv(&mut self, text: &str) -> Result<(), ValueError> {
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        let headers = rdr
            .headers()
            .map_err(|e| ValueError(format!("BIN table header: {e}")))?
            .clone();
        let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let (Some(bin), Some(brand), Some(ty), Some(cat), Some(issuer), Some(country)) = (
            col("BIN"),
            col("Brand"),
            col("Type"),
            col("Category"),
            col("Issuer"),
            col("isoCode2"),
        ) else {
            return Err(ValueError(
                "BIN table must have the columns BIN, Brand, Type, Category, Issuer, isoCode2"
                    .into(),
            ));
        };
        for (i, rec) in rdr.records().enumerate() {
            let rec = rec.map_err(|e| ValueError(format!("BIN table line {}: {e}", i + 2)))?;
            let get = |c: usize| rec.get(c).unwrap_or("").trim().to_owned();
            let prefix = get(bin);
            if !(4..=8).contains(&prefix.len()) || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                if prefix.len() < 4 && prefix.bytes().all(|b| b.is_ascii_digit()) {
                    continue; // too short to identify an issuer: skipped, not an error
                }
                return Err(ValueError(format!(
                    "BIN table line {}: '{prefix}' is not a 4 to 8 digit BIN",
                    i + 2
                )));
            }
            let (card_type, category) = (get(ty), get(cat));
            let info = BinInfo {
                prepaid: is_prepaid(&card_type, &category),
                brand: get(brand),
                issuer: get(issuer),
                country: CountryCode::parse(&get(country)).ok(),
                prefix: prefix.clone(),
                card_type,
                category,
            };
            self.by_prefix.insert(prefix, info);
        }
        Ok(())
    }

    /// Adds a partner's own range (overrides the table for that prefix).
    pub fn add_range(
        &mut self,
        prefix: &str,
        prepaid: bool,
        country: Option<CountryCode>,
    ) -> Result<(), ValueError> {
        if !(4..=8).contains(&prefix.len()) || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError(format!(
                "'{prefix}' is not a 4 to 8 digit BIN prefix"
            )));
        }
        self.by_prefix.insert(
            prefix.to_owned(),
            BinInfo {
                prefix: prefix.to_owned(),
                brand: String::new(),
                card_type: String::new(),
                category: "PARTNER".into(),
                issuer: String::new(),
                country,
                prepaid,
            },
        );
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.by_prefix.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_prefix.is_empty()
    }

    pub fn lookup(&self, bin: &str) -> Option<&BinInfo> {
        (4..=bin.len().min(8))
            .rev()
            .find_map(|n| self.by_prefix.get(&bin[..n]))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatfList {
    /// "High-risk jurisdictions subject to a call for action" (the black list).
    CallForAction,
    /// "Jurisdictions under increased monitoring" (the grey list).
    IncreasedMonitoring,
}

/// FATF lists at any date in the range of the changes file: the snapshot, with later changes
/// undone for earlier dates.
pub struct FatfLists {
    snapshot_date: Date,
    snapshot: HashMap<CountryCode, FatfList>,
    /// (plenary end date, list, added?, country), oldest first.
    changes: Vec<(Date, FatfList, bool, CountryCode)>,
}

fn parse_list(s: &str) -> Result<FatfList, ValueError> {
    match s {
        "call_for_action" => Ok(FatfList::CallForAction),
        "increased_monitoring" => Ok(FatfList::IncreasedMonitoring),
        other => Err(ValueError(format!("unknown FATF list '{other}'"))),
    }
}

impl FatfLists {
    /// `snapshot_csv`: `list,fatf_action,jurisdiction,iso3166_alpha2` as of `snapshot_date`;
    /// `changes_csv`: `plenary_end_date,list,change,jurisdiction,iso3166_alpha2`.
    pub fn parse(
        snapshot_date: Date,
        snapshot_csv: &str,
        changes_csv: &str,
    ) -> Result<Self, ValueError> {
        let mut snapshot = HashMap::default();
        let mut rdr = csv::Reader::from_reader(snapshot_csv.as_bytes());
        for (i, r) in rdr.records().enumerate() {
            let r = r.map_err(|e| ValueError(format!("FATF list line {}: {e}", i + 2)))?;
            let cc = CountryCode::parse(r.get(3).unwrap_or(""))
                .map_err(|e| ValueError(format!("FATF list line {}: {e}", i + 2)))?;
            snapshot.insert(cc, parse_list(r.get(0).unwrap_or(""))?);
        }
        let mut changes = Vec::new();
        let mut rdr = csv::Reader::from_reader(changes_csv.as_bytes());
        for (i, r) in rdr.records().enumerate() {
            let r = r.map_err(|e| ValueError(format!("FATF changes line {}: {e}", i + 2)))?;
            let date: Date = r
                .get(0)
                .unwrap_or("")
                .parse()
                .map_err(|e| ValueError(format!("FATF changes line {}: {e}", i + 2)))?;
            let added = match r.get(2) {
                Some("added") => true,
                Some("removed") => false,
                other => {
                    return Err(ValueError(format!(
                        "FATF changes line {}: change {other:?}",
                        i + 2
                    )));
                }
            };
            let cc = CountryCode::parse(r.get(4).unwrap_or(""))
                .map_err(|e| ValueError(format!("FATF changes line {}: {e}", i + 2)))?;
            changes.push((date, parse_list(r.get(1).unwrap_or(""))?, added, cc));
        }
        changes.sort_by_key(|c| c.0);
        Ok(FatfLists {
            snapshot_date,
            snapshot,
            changes,
        })
    }

    /// The first date the lists can be answered for exactly.
    pub fn range_start(&self) -> Date {
        self.changes
            .first()
            .map(|c| c.0)
            .unwrap_or(self.snapshot_date)
    }

    pub fn snapshot_date(&self) -> Date {
        self.snapshot_date
    }

    pub fn len(&self) -> usize {
        self.snapshot.len()
    }

    pub fn is_empty(&self) -> bool {
        self.snapshot.is_empty()
    }

    /// The list `country` was on at `date` (changes take effect on their plenary end date).
    /// Before the range start the earliest known state is answered.
    pub fn listed_on(&self, country: CountryCode, date: Date) -> Option<FatfList> {
        let mut state = self.snapshot.get(&country).copied();
        // Undo, newest first, every change to this country after `date`.
        for (d, list, added, cc) in self.changes.iter().rev() {
            if *d <= date {
                break;
            }
            if *cc == country {
                state = if *added { None } else { Some(*list) };
            }
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_classes() {
        let l = EmailDomainLists::parse(
            "mailinator.com\nboth.example\n",
            "known-good.com\n",
            "gmail.com\nboth.example\n",
        );
        assert_eq!(l.classify("mailinator.com"), EmailDomainClass::Disposable);
        assert_eq!(
            l.classify("eu.mailinator.com"),
            EmailDomainClass::Disposable
        );
        assert_eq!(l.classify("both.example"), EmailDomainClass::Disposable);
        assert_eq!(l.classify("gmail.com"), EmailDomainClass::FreeProvider);
        assert_eq!(l.classify("contoso.com"), EmailDomainClass::Other);
        assert_eq!(l.classify("notmailinator.com"), EmailDomainClass::Other);
    }

    #[test]
    fn bins_longest_prefix() {
        let mut t = BinTable::parse_csv(
            "BIN,Brand,Type,Category,Issuer,IssuerPhone,IssuerUrl,isoCode2,isoCode3,CountryName\n\
             4111,VISA,CREDIT,CLASSIC,X,,,US,USA,US\n411122,VISA,DEBIT,PREPAID,Y,,,GB,GBR,UK\n",
        )
        .unwrap();
        assert!(!t.lookup("41111111").unwrap().prepaid);
        assert!(t.lookup("41112233").unwrap().prepaid);
        assert_eq!(t.lookup("411122").unwrap().country.unwrap().as_str(), "GB");
        assert!(t.lookup("5500").is_none());
        t.add_range("550000", true, None).unwrap();
        assert!(t.lookup("55000012").unwrap().prepaid);
        assert!(BinTable::parse_csv("BIN,Brand\n1,2\n").is_err());
    }
}
