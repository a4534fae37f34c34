//! Aging of receivables: each open invoice falls in one bucket by how many days past its due
//! date (or its issue date) it is on the `as_of` day. A pure function of the open items and
//! the day, so any past date reproduces exactly.

use std::collections::BTreeMap;

use super::Day;
use crate::values::ValueError;

/// What "days old" counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    DueDate,
    IssueDate,
}

impl Basis {
    pub fn parse(s: &str) -> Result<Basis, ValueError> {
        match s {
            "due_date" => Ok(Basis::DueDate),
            "issue_date" => Ok(Basis::IssueDate),
            _ => Err(ValueError(format!(
                "'{s}' is not an aging basis; use due_date or issue_date"
            ))),
        }
    }
}

/// Bucket edges in days: `[30, 60, 90]` gives Current, 1–30, 31–60, 61–90, 90+.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buckets {
    edges: Vec<u32>,
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets {
            edges: vec![30, 60, 90],
        }
    }
}

impl Buckets {
    /// Edges must be strictly increasing positive day counts; at most 12.
    pub fn new(edges: Vec<u32>) -> Result<Buckets, ValueError> {
        if edges.is_empty() || edges.len() > 12 {
            return Err(ValueError(
                "give between 1 and 12 bucket edges in days, e.g. 30,60,90".into(),
            ));
        }
        if edges[0] == 0 || edges.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ValueError(format!(
                "bucket edges must be positive and strictly increasing, got {edges:?}"
            )));
        }
        Ok(Buckets { edges })
    }

    /// Parses "30,60,90".
    pub fn parse(s: &str) -> Result<Buckets, ValueError> {
        let edges = s
            .split(',')
            .map(|p| {
                p.trim()
                    .parse::<u32>()
                    .map_err(|_| ValueError(format!("'{p}' is not a number of days")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Buckets::new(edges)
    }

    /// Labels: "current", "1-30", "31-60", "61-90", "90+".
    pub fn labels(&self) -> Vec<String> {
        let mut out = vec!["current".to_owned()];
        let mut from = 1;
        for e in &self.edges {
            out.push(format!("{from}-{e}"));
            from = e + 1;
        }
        out.push(format!("{}+", self.edges.last().copied().unwrap_or(0)));
        out
    }

    pub fn len(&self) -> usize {
        self.edges.len() + 2
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bucket of an item `days_past` days past its anchor (≤ 0: current).
    pub fn index(&self, days_past: i64) -> usize {
        if days_past <= 0 {
            return 0;
        }
        for (i, e) in self.edges.iter().enumerate() {
            if days_past <= *e as i64 {
                return i + 1;
            }
        }
        self.edges.len() + 1
    }
}

/// One open receivable as aging sees it.
#[derive(Clone, Debug)]
pub struct OpenItem<K> {
    pub key: K,
    pub currency: String,
    pub issue_day: Day,
    pub due_day: Day,
    /// Open amount in minor units on the `as_of` day (> 0).
    pub open_minor: i64,
}

/// Amounts per bucket for one (key, currency), in minor units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub buckets: Vec<i64>,
    pub total: i64,
    pub items: u64,
}

/// Ages items into per-(key, currency) rows and per-currency totals.
pub fn age<K: Ord + Clone>(
    items: impl IntoIterator<Item = OpenItem<K>>,
    as_of: Day,
    basis: Basis,
    buckets: &Buckets,
) -> (BTreeMap<(K, String), Row>, BTreeMap<String, Row>) {
    let empty = || Row {
        buckets: vec![0; buckets.len()],
        total: 0,
        items: 0,
    };
    let mut rows: BTreeMap<(K, String), Row> = BTreeMap::new();
    let mut totals: BTreeMap<String, Row> = BTreeMap::new();
    for it in items {
        let anchor = match basis {
            Basis::DueDate => it.due_day,
            Basis::IssueDate => it.issue_day,
        };
        let b = buckets.index((as_of.0 - anchor.0) as i64);
        for row in [
            rows.entry((it.key.clone(), it.currency.clone()))
                .or_insert_with(empty),
            totals.entry(it.currency.clone()).or_insert_with(empty),
        ] {
            row.buckets[b] += it.open_minor;
            row.total += it.open_minor;
            row.items += 1;
        }
    }
    (rows, totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str, cur: &str, due: &str, open: i64) -> OpenItem<String> {
        let due = Day::parse(due).unwrap();
        OpenItem {
            key: key.into(),
            currency: cur.into(),
            issue_day: due.plus(-30),
            due_day: due,
            open_minor: open,
        }
    }

    #[test]
    fn edges_are_inclusive_and_current_means_not_yet_past_due() {
        let b = Buckets::default();
        assert_eq!(b.labels(), ["current", "1-30", "31-60", "61-90", "90+"]);
        assert_eq!(b.index(-5), 0);
        assert_eq!(b.index(0), 0);
        assert_eq!(b.index(1), 1);
        assert_eq!(b.index(30), 1);
        assert_eq!(b.index(31), 2);
        assert_eq!(b.index(90), 3);
        assert_eq!(b.index(91), 4);
        assert!(Buckets::parse("30,30").is_err());
        assert!(Buckets::parse("0,10").is_err());
        assert_eq!(
            Buckets::parse("15, 45").unwrap().labels(),
            ["current", "1-15", "16-45", "45+"]
        );
    }

    #[test]
    fn items_age_per_customer_and_currency_and_total_per_currency() {
        let as_of = Day::parse("2026-11-30").unwrap();
        let (rows, totals) = age(
            vec![
                item("a", "USD", "2026-12-05", 100),
                item("a", "USD", "2026-11-20", 250),
                item("a", "EUR", "2026-08-01", 999),
                item("b", "USD", "2026-10-01", 50),
            ],
            as_of,
            Basis::DueDate,
            &Buckets::default(),
        );
        let a_usd = &rows[&("a".to_owned(), "USD".to_owned())];
        assert_eq!(a_usd.buckets, vec![100, 250, 0, 0, 0]);
        assert_eq!(a_usd.total, 350);
        assert_eq!(
            rows[&("a".to_owned(), "EUR".to_owned())].buckets,
            vec![0, 0, 0, 0, 999]
        );
        assert_eq!(totals["USD"].buckets, vec![100, 250, 50, 0, 0]);
        assert_eq!(totals["USD"].items, 3);
        // By issue date the same items are older.
        let (_, by_issue) = age(
            vec![item("a", "USD", "2026-12-05", 100)],
            as_of,
            Basis::IssueDate,
            &Buckets::default(),
        );
        assert_eq!(by_issue["USD"].buckets, vec![0, 100, 0, 0, 0]);
    }
}
