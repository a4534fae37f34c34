//! The reference data compiled into the binary, so a fresh install assesses sign-ups with no
//! set-up. Sources and licences: `data/*/SOURCE.txt` and `LICENSE*` beside each file. A partner
//! points to fuller or newer files in `riskdesk.toml` (`[data]`).

use jiff::civil::date;

use super::lists::{BinTable, EmailDomainLists, FatfLists};
use crate::values::ValueError;

pub const DISPOSABLE: &str =
    include_str!("../../../../data/disposable-email-domains/disposable_email_blocklist.conf");
pub const DISPOSABLE_ALLOW: &str = include_str!(
    "../../../../data/disposable-email-domains/allowlist_historical_removed_2026-04-12.conf"
);
pub const FREE_MAIL: &str = include_str!("../../../../data/free-email-providers/free.txt");
pub const FATF_SNAPSHOT: &str =
    include_str!("../../../../data/fatf-lists/fatf_lists_as_of_2026-06-19.csv");
pub const FATF_CHANGES: &str =
    include_str!("../../../../data/fatf-lists/fatf_list_changes_2025-06_to_2026-06.csv");
pub const BIN_TABLES: [&str; 2] = [
    include_str!("../../../../data/bin-list-data/bin-list-data_mixed_800_subset.csv"),
    include_str!("../../../../data/bin-list-data/bin-list-data_IN_subset.csv"),
];

pub fn email_lists() -> EmailDomainLists {
    EmailDomainLists::parse(DISPOSABLE, DISPOSABLE_ALLOW, FREE_MAIL)
}

pub fn fatf() -> Result<FatfLists, ValueError> {
    FatfLists::parse(date(2026, 6, 19), FATF_SNAPSHOT, FATF_CHANGES)
}

pub fn bins() -> Result<BinTable, ValueError> {
    let mut t = BinTable::default();
    for csv in BIN_TABLES {
        t.add_csv(csv)?;
    }
    Ok(t)
}
