//! Readers for the files `riskdesk ingest` accepts, each turning records into events
//! (`Result<Event, reason>` per record, so a bad record is reported and skipped):
//!
//! - **NDJSON**: one event per line in the `POST /v1/events` contract.
//! - **FOCUS** cost-and-usage CSV (1.0 and 1.2): a usage event per row.
//!
//! Which one a file is comes from its first bytes ([`detect`]).

use std::collections::HashMap;
use std::io::BufRead;

use jiff::Timestamp;
use riskdesk_domain::monitoring::{Event, RawEvent};
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Focus,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Ndjson => "NDJSON events",
            Format::Focus => "FOCUS cost and usage CSV",
        }
    }
}

/// Recognises a file by its start: `{` is NDJSON; a CSV header naming `BilledCost` and
/// `ChargePeriodStart` is FOCUS.
pub fn detect(head: &[u8]) -> Result<Format, String> {
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if text.starts_with('{') {
        return Ok(Format::Ndjson);
    }
    let header = text.lines().next().unwrap_or("");
    if header.contains("BilledCost") && header.contains("ChargePeriodStart") {
        return Ok(Format::Focus);
    }
    Err("not a format riskdesk reads: expected NDJSON events (one JSON object per line) or a FOCUS CSV (header with BilledCost and ChargePeriodStart)".into())
}

/// Options for files whose rows do not say everything an event needs.
#[derive(Clone, Debug, Default)]
pub struct FileOptions {
    /// FOCUS: the column naming the customer (default `SubAccountId`, else `BillingAccountId`).
    pub customer_column: Option<String>,
    /// Every record belongs to this customer (the partner's external id).
    pub customer_external_id: Option<String>,
    /// FOCUS: the currency when the file has no `BillingCurrency` column.
    pub currency: Option<String>,
}

/// NDJSON: one event per line (blank lines skipped, line numbers kept).
pub fn ndjson<R: BufRead>(reader: R) -> impl Iterator<Item = (usize, Result<Event, String>)> {
    reader
        .lines()
        .enumerate()
        .filter_map(|(i, line)| match line {
            Err(e) => Some((i, Err(format!("unreadable line: {e}")))),
            Ok(l) if l.trim().is_empty() => None,
            Ok(l) => Some((
                i,
                serde_json::from_str::<RawEvent>(&l)
                    .map_err(|e| e.to_string())
                    .and_then(RawEvent::validate),
            )),
        })
}

/// FOCUS: a usage event per row. `event_id` is the row's `Id` column if it has one, else a
/// hash of the whole row and its occurrence number, so loading the same file twice stores
/// nothing new.
pub fn focus<R: std::io::Read>(
    reader: R,
    opts: &FileOptions,
) -> Result<impl Iterator<Item = (usize, Result<Event, String>)>, String> {
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers = csv
        .headers()
        .map_err(|e| format!("unreadable header: {e}"))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
    };
    // The customer: the named column, or per row the first non-empty of SubAccountId and
    // BillingAccountId.
    let customer_cols: Vec<usize> = match &opts.customer_column {
        Some(c) => vec![col(c).ok_or_else(|| format!("the file has no column '{c}'"))?],
        None => [col("SubAccountId"), col("BillingAccountId")]
            .into_iter()
            .flatten()
            .collect(),
    };
    let c = FocusColumns {
        id: col("Id"),
        customer: customer_cols,
        start: col("ChargePeriodStart").ok_or("the file has no ChargePeriodStart column")?,
        cost: col("BilledCost").ok_or("the file has no BilledCost column")?,
        currency: col("BillingCurrency"),
        category: col("ServiceCategory"),
        service: col("ServiceName"),
        sku: col("SkuId"),
        description: col("ChargeDescription"),
        region: col("RegionId").or_else(|| col("RegionName")),
        resource: col("ResourceId"),
        quantity: col("ConsumedQuantity"),
        unit: col("ConsumedUnit"),
    };
    let opts = opts.clone();
    let mut seen: HashMap<[u8; 16], u32> = HashMap::new();
    Ok(csv.into_records().enumerate().map(move |(i, rec)| {
        // Line numbers count the header as line 0.
        let line = i + 1;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => return (line, Err(format!("unreadable row: {e}"))),
        };
        // Identical rows are distinct charges: the n-th copy gets its own id, the same in
        // every load of the file (and of a reordered export).
        let mut h = Sha256::new();
        for f in rec.iter() {
            h.update(f.as_bytes());
            h.update([0x1f]);
        }
        let digest: [u8; 16] = h.finalize()[..16].try_into().unwrap_or([0; 16]);
        let n = seen.entry(digest).or_insert(0);
        let row_key = format!("{}-{}", hex::encode(digest), n);
        *n += 1;
        (line, focus_row(&rec, &c, &opts, &row_key))
    }))
}

struct FocusColumns {
    id: Option<usize>,
    customer: Vec<usize>,
    start: usize,
    cost: usize,
    currency: Option<usize>,
    category: Option<usize>,
    service: Option<usize>,
    sku: Option<usize>,
    description: Option<usize>,
    region: Option<usize>,
    resource: Option<usize>,
    quantity: Option<usize>,
    unit: Option<usize>,
}

/// A FOCUS cell: empty and the literal `NULL`/`null` are absent.
fn cell(rec: &csv::StringRecord, i: Option<usize>) -> Option<String> {
    let v = rec.get(i?)?.trim();
    (!v.is_empty() && !v.eq_ignore_ascii_case("null")).then(|| v.to_owned())
}

/// FOCUS datetimes are UTC: `2024-09-18 22:00:00` or `2024-09-18T22:00:00Z`.
fn focus_time(s: &str) -> Result<String, String> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t.to_string());
    }
    let civil: jiff::civil::DateTime = s
        .replace(' ', "T")
        .trim_end_matches('Z')
        .parse()
        .map_err(|_| format!("ChargePeriodStart '{s}' is not a date-time"))?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp().to_string())
        .map_err(|e| format!("ChargePeriodStart '{s}': {e}"))
}

fn focus_row(
    rec: &csv::StringRecord,
    c: &FocusColumns,
    opts: &FileOptions,
    row_key: &str,
) -> Result<Event, String> {
    let event_id = match cell(rec, c.id) {
        Some(id) => format!("focus:{id}"),
        None => format!("focus:{row_key}"),
    };
    let customer = opts
        .customer_external_id
        .clone()
        .or_else(|| c.customer.iter().find_map(|i| cell(rec, Some(*i))))
        .ok_or("no customer: the row has no SubAccountId/BillingAccountId (use --customer-column or --customer-external-id)")?;
    let start = cell(rec, Some(c.start)).ok_or("ChargePeriodStart is empty")?;
    let cost = cell(rec, Some(c.cost)).ok_or("BilledCost is empty")?;
    let currency = cell(rec, c.currency)
        .or_else(|| opts.currency.clone())
        .ok_or("no BillingCurrency (pass --currency)")?;
    let category = cell(rec, c.category)
        .or_else(|| cell(rec, c.service))
        .unwrap_or_else(|| "Uncategorized".into());
    let meter = cell(rec, c.sku)
        .or_else(|| cell(rec, c.description))
        .or_else(|| cell(rec, c.service))
        .unwrap_or_else(|| "unknown".into());
    let raw = RawEvent {
        kind: Some("usage".into()),
        event_id: Some(event_id),
        customer_external_id: Some(customer),
        time: Some(focus_time(&start)?),
        meter_category: Some(category),
        meter_name: Some(meter),
        region: Some(cell(rec, c.region).unwrap_or_else(|| "global".into())),
        resource_id: cell(rec, c.resource),
        quantity: cell(rec, c.quantity).map(serde_json::Value::String),
        unit: cell(rec, c.unit),
        cost: Some(serde_json::Value::String(cost)),
        currency: Some(currency),
        ..RawEvent::default()
    };
    raw.validate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format_and_refuses_others() {
        assert_eq!(detect(b"{\"type\":\"usage\"}\n").unwrap(), Format::Ndjson);
        assert_eq!(
            detect(b"\xef\xbb\xbf\"AvailabilityZone\",\"BilledCost\",\"ChargePeriodStart\"\n")
                .unwrap(),
            Format::Focus
        );
        assert!(detect(b"a,b,c\n1,2,3\n").is_err());
    }

    #[test]
    fn focus_times_are_utc() {
        assert_eq!(
            focus_time("2024-09-18 22:00:00").unwrap(),
            "2024-09-18T22:00:00Z"
        );
        assert_eq!(
            focus_time("2023-01-01T00:00:00Z").unwrap(),
            "2023-01-01T00:00:00Z"
        );
        assert!(focus_time("5/1/25").is_err());
    }
}
