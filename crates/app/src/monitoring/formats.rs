//! Readers for the files `riskdesk ingest` accepts, each turning records into events
//! (`Result<Event, reason>` per record, so a bad record is reported and skipped):
//!
//! - **NDJSON**: one event per line in the `POST /v1/events` contract.
//! - **FOCUS** cost-and-usage CSV (1.0 and 1.2): a usage event per row.
//! - **Partner Center** JSON responses (`{"totalCount", "items": [...]}`): rated daily usage
//!   line items (`DailyRatedUsageLineItem`) become usage events, audit records (`AuditRecord`)
//!   activity events.
//! - **Azure Activity Log** JSON, both published shapes: the REST API's event objects (one
//!   object, `{"value": [...]}`, or the REST specification's example document) and the
//!   storage-account / Event Hubs export `{"records": [...]}`.
//!
//! JSON documents are read whole (they are API responses and exports of bounded size); NDJSON
//! and CSV stream.
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
    /// A JSON document: Partner Center or Azure Activity Log (told apart per record).
    JsonDocument,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Ndjson => "NDJSON events",
            Format::Focus => "FOCUS cost and usage CSV",
            Format::JsonDocument => "Partner Center / Azure Activity Log JSON",
        }
    }
}

/// Recognises a file by its start: `{` is NDJSON; a CSV header naming `BilledCost` and
/// `ChargePeriodStart` is FOCUS.
pub fn detect(head: &[u8]) -> Result<Format, String> {
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if text.starts_with('{') {
        // NDJSON has a complete object on its first line; a JSON document spans lines.
        let first = text.lines().next().unwrap_or("");
        return Ok(
            if serde_json::from_str::<serde::de::IgnoredAny>(first).is_ok() && !is_document(first) {
                Format::Ndjson
            } else {
                Format::JsonDocument
            },
        );
    }
    if text.starts_with('[') {
        return Ok(Format::JsonDocument);
    }
    let header = text.lines().next().unwrap_or("");
    if header.contains("BilledCost") && header.contains("ChargePeriodStart") {
        return Ok(Format::Focus);
    }
    Err("not a format riskdesk reads: expected NDJSON events (one JSON object per line), a FOCUS CSV (header with BilledCost and ChargePeriodStart), or a Partner Center / Azure Activity Log JSON document".into())
}

/// A one-line JSON document (not an event): a Partner Center or Activity Log wrapper.
fn is_document(line: &str) -> bool {
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line)
        .map(|m| {
            ["items", "records", "value", "eventDataId", "responses"]
                .iter()
                .any(|k| m.contains_key(*k))
        })
        .unwrap_or(false)
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
    let mut keys = OccurrenceKeys::default();
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
        let row_key = keys.key(h);
        (line, focus_row(&rec, &c, &opts, &row_key))
    }))
}

/// Ids for records that have none: the hash of the record and its occurrence number, so
/// identical records are distinct charges and loading the same file (or a reordered export)
/// again gives the same ids.
#[derive(Default)]
struct OccurrenceKeys {
    seen: HashMap<[u8; 16], u32>,
}

impl OccurrenceKeys {
    fn key(&mut self, record_hash: Sha256) -> String {
        let digest: [u8; 16] = record_hash.finalize()[..16].try_into().unwrap_or([0; 16]);
        let n = self.seen.entry(digest).or_insert(0);
        let key = format!("{}-{}", hex::encode(digest), n);
        *n += 1;
        key
    }
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
    utc_time(s).map_err(|_| format!("ChargePeriodStart '{s}' is not a date-time"))
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

/// A Partner Center or Azure Activity Log document: one event per record it holds.
pub fn json_document(
    text: &str,
    opts: &FileOptions,
) -> Result<Vec<(usize, Result<Event, String>)>, String> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    // Raw texts of the records, so numbers keep the digits they were written with.
    let raw: Box<serde_json::value::RawValue> =
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let records = records_of(&doc, raw.get())?;
    let mut keys = OccurrenceKeys::default();
    Ok(records
        .into_iter()
        .enumerate()
        .map(|(i, (value, raw))| {
            let mut h = Sha256::new();
            h.update(raw.as_bytes());
            let key = keys.key(h);
            (i, record_event(&value, &raw, opts, &key))
        })
        .collect())
}

/// The records of a document with their raw text: `items` (Partner Center), `records`
/// (Activity Log export), `value` (Activity Log REST list), the REST specification's example
/// (`responses.200.body.value`), a bare array, or a single Activity Log event.
fn records_of(
    doc: &serde_json::Value,
    raw: &str,
) -> Result<Vec<(serde_json::Value, String)>, String> {
    #[derive(serde::Deserialize)]
    struct Wrapper<'a> {
        #[serde(borrow)]
        items: Option<Vec<&'a serde_json::value::RawValue>>,
        #[serde(borrow)]
        records: Option<Vec<&'a serde_json::value::RawValue>>,
        #[serde(borrow)]
        value: Option<Vec<&'a serde_json::value::RawValue>>,
        #[serde(borrow)]
        responses: Option<HashMap<String, Responses<'a>>>,
    }
    #[derive(serde::Deserialize)]
    struct Responses<'a> {
        #[serde(borrow)]
        body: Option<BodyValue<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct BodyValue<'a> {
        #[serde(borrow)]
        value: Option<Vec<&'a serde_json::value::RawValue>>,
    }
    let to_pairs = |list: Vec<&serde_json::value::RawValue>| -> Result<Vec<(serde_json::Value, String)>, String> {
        list.into_iter()
            .map(|r| {
                serde_json::from_str(r.get())
                    .map(|v| (v, r.get().to_owned()))
                    .map_err(|e| e.to_string())
            })
            .collect()
    };
    if doc.is_array() {
        let list: Vec<&serde_json::value::RawValue> =
            serde_json::from_str(raw).map_err(|e| e.to_string())?;
        return to_pairs(list);
    }
    let w: Wrapper = serde_json::from_str(raw).map_err(|e| e.to_string())?;
    if let Some(l) = w.items.or(w.records).or(w.value) {
        return to_pairs(l);
    }
    if let Some(l) = w
        .responses
        .and_then(|mut r| r.remove("200"))
        .and_then(|r| r.body)
        .and_then(|b| b.value)
    {
        return to_pairs(l);
    }
    if doc.get("eventDataId").is_some() {
        return Ok(vec![(doc.clone(), raw.to_owned())]);
    }
    Err("a JSON document without records: expected `items` (Partner Center), `records` or `value` (Azure Activity Log), or one Activity Log event".into())
}

fn str_at<'a>(v: &'a serde_json::Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str().map(str::trim).filter(|s| !s.is_empty())
}

/// The literal text of a number field in a record's raw JSON (so `30.7197334080551` keeps its
/// digits instead of passing through a float).
fn number_text(raw: &str, field: &str) -> Option<String> {
    let map: HashMap<String, &serde_json::value::RawValue> = serde_json::from_str(raw).ok()?;
    let v = map.get(field)?.get().trim();
    Some(v.trim_matches('"').to_owned()).filter(|s| !s.is_empty() && s != "null")
}

/// A decimal written as a JSON number (possibly with an exponent) as a plain decimal string
/// rounded half-to-even to 12 decimals — Partner Center publishes costs as floating-point
/// numbers with up to 13 decimals, so their last digit is below what a cost keeps.
pub fn json_decimal(text: &str) -> Result<String, String> {
    let bad = || format!("'{text}' is not a number");
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i32>().map_err(|_| bad())?),
        None => (t, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    // digits × 10^(exp - frac.len())
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
    let keep = crate_cost_decimals();
    // Decimals after the point, in i64 (an exponent of ±2^31 must not overflow): beyond 40
    // digits before the point no cost is meant; beyond what rounding can keep it is zero.
    let scale = frac.len() as i64 - i64::from(exp);
    if scale < -40 {
        return Err(format!(
            "'{text}' is out of range (its exponent is too large)"
        ));
    }
    let mut scale = scale.min(i64::from(keep) + digits.len() as i64 + 1) as i32;
    if scale < 0 {
        digits.extend(std::iter::repeat_n(0, (-scale) as usize));
        scale = 0;
    }
    if scale > keep {
        let drop = (scale - keep) as usize;
        if drop > digits.len() {
            digits = vec![0];
        } else {
            let (kept, dropped) = digits.split_at(digits.len() - drop);
            let mut kept = kept.to_vec();
            let first = dropped.first().copied().unwrap_or(0);
            let rest_nonzero = dropped.iter().skip(1).any(|d| *d != 0);
            let last_odd = kept.last().is_some_and(|d| d % 2 == 1);
            if first > 5 || (first == 5 && (rest_nonzero || last_odd)) {
                // add one at the last kept digit
                let mut i = kept.len();
                loop {
                    if i == 0 {
                        kept.insert(0, 1);
                        break;
                    }
                    i -= 1;
                    if kept[i] == 9 {
                        kept[i] = 0;
                    } else {
                        kept[i] += 1;
                        break;
                    }
                }
            }
            digits = kept;
        }
        scale = keep;
    }
    while digits.len() <= scale as usize {
        digits.insert(0, 0);
    }
    let split = digits.len() - scale as usize;
    let int: String = digits[..split]
        .iter()
        .map(|d| char::from(b'0' + d))
        .collect();
    let frac: String = digits[split..]
        .iter()
        .map(|d| char::from(b'0' + d))
        .collect();
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let body = if frac.is_empty() {
        int.to_owned()
    } else {
        format!("{int}.{frac}")
    };
    Ok(if neg && body.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        format!("-{body}")
    } else {
        body
    })
}

fn crate_cost_decimals() -> i32 {
    riskdesk_domain::monitoring::cost::COST_DECIMALS as i32
}

fn record_event(
    v: &serde_json::Value,
    raw: &str,
    opts: &FileOptions,
    key: &str,
) -> Result<Event, String> {
    let object_type = str_at(v, &["attributes", "objectType"]);
    if v.get("billingPreTaxTotal").is_some() || object_type == Some("DailyRatedUsageLineItem") {
        return pc_rated_usage(v, raw, opts, key);
    }
    if v.get("operationType").is_some() || object_type == Some("AuditRecord") {
        return pc_audit(v, opts, key);
    }
    if v.get("eventTimestamp").is_some() {
        return activity_rest(v, opts);
    }
    if v.get("operationName").is_some() && v.get("time").is_some() {
        return activity_export(v, opts, key);
    }
    Err(match object_type {
        Some(t) => format!("Partner Center object '{t}' is not one riskdesk reads (DailyRatedUsageLineItem, AuditRecord)"),
        None => "a record riskdesk does not recognise (neither a Partner Center line item or audit record nor an Activity Log event)".into(),
    })
}

fn customer_from(opts: &FileOptions, found: Option<&str>, what: &str) -> Result<String, String> {
    opts.customer_external_id
        .clone()
        .or_else(|| found.map(str::to_owned))
        .ok_or_else(|| {
            format!("no customer: the record has no {what} (use --customer-external-id)")
        })
}

/// A usage line item pulled from Partner Center (its raw JSON text): a usage event keyed by the
/// line item's **identity** — customer, Azure subscription (entitlement), usage day, meter,
/// resource, charge type — not by its amounts, so pulling it again (unbilled, then billed on
/// the invoice) adds nothing; a line item corrected later keeps the cost first pulled. The
/// customer is the record's `customerId` as an external id (the caller maps it to its link).
pub fn pc_line_item(raw: &str) -> Result<Event, String> {
    let v: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| format!("a line item is not JSON: {e}"))?;
    let mut h = Sha256::new();
    for f in [
        "customerId",
        "entitlementId",
        "subscriptionId",
        "usageDate",
        "meterId",
        "meterName",
        "resourceUri",
        "resourceGroup",
        "chargeType",
        "unitPrice",
    ] {
        h.update(f.as_bytes());
        h.update([0]);
        h.update(str_at(&v, &[f]).unwrap_or("").as_bytes());
        if let Some(n) = number_text(raw, f).filter(|_| str_at(&v, &[f]).is_none()) {
            h.update(n.as_bytes());
        }
        h.update([0]);
    }
    let key = hex::encode(&h.finalize()[..16]);
    pc_rated_usage(&v, raw, &FileOptions::default(), &key)
}

/// `DailyRatedUsageLineItem` (unbilled or billed consumption): a usage event.
fn pc_rated_usage(
    v: &serde_json::Value,
    raw: &str,
    opts: &FileOptions,
    key: &str,
) -> Result<Event, String> {
    let customer = customer_from(opts, str_at(v, &["customerId"]), "customerId")?;
    let time = str_at(v, &["usageDate"]).ok_or("usageDate is missing")?;
    let cost = number_text(raw, "billingPreTaxTotal").ok_or("billingPreTaxTotal is missing")?;
    RawEvent {
        kind: Some("usage".into()),
        event_id: Some(format!("pc-usage:{key}")),
        customer_external_id: Some(customer),
        time: Some(utc_time(time)?),
        meter_category: Some(
            str_at(v, &["meterCategory"])
                .unwrap_or("Uncategorized")
                .to_owned(),
        ),
        meter_name: Some(
            str_at(v, &["meterName"])
                .or_else(|| str_at(v, &["skuName"]))
                .unwrap_or("unknown")
                .to_owned(),
        ),
        region: Some(
            str_at(v, &["resourceLocation"])
                .or_else(|| str_at(v, &["meterRegion"]))
                .unwrap_or("global")
                .to_owned(),
        ),
        resource_id: str_at(v, &["resourceUri"]).map(str::to_owned),
        quantity: number_text(raw, "quantity")
            .map(|q| json_decimal(&q).map(serde_json::Value::String))
            .transpose()?,
        unit: str_at(v, &["unitOfMeasure"]).map(str::to_owned),
        cost: Some(serde_json::Value::String(json_decimal(&cost)?)),
        currency: Some(
            str_at(v, &["billingCurrency"])
                .ok_or("billingCurrency is missing")?
                .to_owned(),
        ),
        ..RawEvent::default()
    }
    .validate()
}

/// A Partner Center audit record as pulled from the API: an activity event whose customer is
/// the record's `customerId` (as an external id: the caller maps it to a linked customer).
pub fn pc_audit_record(v: &serde_json::Value) -> Result<Event, String> {
    pc_audit(v, &FileOptions::default(), "")
}

/// `AuditRecord` (Partner Center activity): an activity event.
fn pc_audit(v: &serde_json::Value, opts: &FileOptions, key: &str) -> Result<Event, String> {
    let customer = customer_from(opts, str_at(v, &["customerId"]), "customerId")?;
    let time = str_at(v, &["operationDate"]).ok_or("operationDate is missing")?;
    let mut props = serde_json::Map::new();
    for k in ["resourceType", "customerName", "applicationId", "sessionId"] {
        if let Some(x) = v.get(k).filter(|x| !x.is_null()) {
            props.insert(k.into(), x.clone());
        }
    }
    RawEvent {
        kind: Some("activity".into()),
        event_id: Some(format!(
            "pc-audit:{}",
            str_at(v, &["id"])
                .map(str::to_owned)
                .unwrap_or_else(|| key.to_owned())
        )),
        customer_external_id: Some(customer),
        time: Some(utc_time(time)?),
        operation: Some(
            str_at(v, &["operationType"])
                .ok_or("operationType is missing")?
                .to_owned(),
        ),
        actor: str_at(v, &["userPrincipalName"]).map(str::to_owned),
        status: str_at(v, &["operationStatus"]).map(str::to_owned),
        properties: Some(serde_json::Value::Object(props)),
        ..RawEvent::default()
    }
    .validate()
}

/// The subscription id in an Azure resource id (`/subscriptions/<id>/…`), lower-cased.
fn azure_subscription(resource_id: &str) -> Option<String> {
    let lower = resource_id.to_ascii_lowercase();
    let rest = lower.split("/subscriptions/").nth(1)?;
    let id = rest.split('/').next()?;
    (!id.is_empty() && !id.starts_with('<')).then(|| id.to_owned())
}

/// An Activity Log event pulled from Azure Resource Manager for a customer's subscription: an
/// activity event of the Partner Center customer `pc_customer` (as an external id: the caller
/// maps it to its linked customers), keyed by `eventDataId`.
pub fn arm_activity_event(v: &serde_json::Value, pc_customer: &str) -> Result<Event, String> {
    activity_rest(
        v,
        &FileOptions {
            customer_external_id: Some(pc_customer.to_owned()),
            ..FileOptions::default()
        },
    )
}

/// An Activity Log event from the REST API: an activity event. The customer is
/// `--customer-external-id` or the Azure subscription id (give the customer that external id).
/// A succeeded write the detectors know gets their operation name (`vm_created`,
/// `firewall_rule_opened`, … see `riskdesk_domain::monitoring::azure_ops`), its ARM name kept
/// as `properties.arm_operation`; any other keeps its ARM name.
fn activity_rest(v: &serde_json::Value, opts: &FileOptions) -> Result<Event, String> {
    let sub = str_at(v, &["subscriptionId"])
        .filter(|s| !s.starts_with('<'))
        .map(str::to_ascii_lowercase)
        .or_else(|| str_at(v, &["resourceId"]).and_then(azure_subscription));
    let customer = customer_from(opts, sub.as_deref(), "Azure subscription id")?;
    let time = str_at(v, &["eventTimestamp"]).ok_or("eventTimestamp is missing")?;
    let mut props = serde_json::Map::new();
    for (k, path) in [
        ("category", &["category", "value"][..]),
        ("level", &["level"][..]),
        ("resource_id", &["resourceId"][..]),
        ("resource_provider", &["resourceProviderName", "value"][..]),
        ("client_ip", &["httpRequest", "clientIpAddress"][..]),
        ("substatus", &["subStatus", "value"][..]),
    ] {
        if let Some(x) = str_at(v, path) {
            props.insert(k.into(), serde_json::Value::String(x.to_owned()));
        }
    }
    let arm_operation = str_at(v, &["operationName", "value"])
        .or_else(|| str_at(v, &["operationName"]))
        .ok_or("operationName is missing")?;
    let c = riskdesk_domain::monitoring::azure_ops::classify(
        arm_operation,
        str_at(v, &["status", "value"]),
        str_at(v, &["properties", "statusCode"]),
        str_at(v, &["properties", "requestbody"]),
    );
    if c.operation.is_some() {
        props.insert(
            "arm_operation".into(),
            serde_json::Value::String(arm_operation.to_owned()),
        );
    }
    props.extend(c.properties);
    RawEvent {
        kind: Some("activity".into()),
        event_id: Some(format!(
            "azure:{}",
            str_at(v, &["eventDataId"]).ok_or("eventDataId is missing")?
        )),
        customer_external_id: Some(customer),
        time: Some(utc_time(time)?),
        operation: Some(c.operation.unwrap_or(arm_operation).to_owned()),
        actor: str_at(v, &["caller"]).map(str::to_owned),
        status: str_at(v, &["status", "value"]).map(str::to_owned),
        properties: Some(serde_json::Value::Object(props)),
        ..RawEvent::default()
    }
    .validate()
}

/// An Activity Log record as exported to a storage account or Event Hubs: an activity event.
fn activity_export(v: &serde_json::Value, opts: &FileOptions, key: &str) -> Result<Event, String> {
    let sub = str_at(v, &["resourceId"]).and_then(azure_subscription);
    let customer = customer_from(opts, sub.as_deref(), "Azure subscription id")?;
    let time = str_at(v, &["time"]).ok_or("time is missing")?;
    let actor = str_at(
        v,
        &[
            "identity",
            "claims",
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
        ],
    )
    .or_else(|| str_at(v, &["identity", "claims", "name"]))
    .or_else(|| str_at(v, &["identity", "claims", "appid"]))
    .or_else(|| str_at(v, &["callerIpAddress"]));
    let mut props = serde_json::Map::new();
    for (k, path) in [
        ("category", &["category"][..]),
        ("level", &["level"][..]),
        ("resource_id", &["resourceId"][..]),
        ("client_ip", &["callerIpAddress"][..]),
        ("result_signature", &["resultSignature"][..]),
        (
            "role",
            &["identity", "authorization", "evidence", "role"][..],
        ),
    ] {
        if let Some(x) = str_at(v, path) {
            props.insert(k.into(), serde_json::Value::String(x.to_owned()));
        }
    }
    let arm_operation = str_at(v, &["operationName"]).ok_or("operationName is missing")?;
    let c = riskdesk_domain::monitoring::azure_ops::classify(
        arm_operation,
        str_at(v, &["resultType"]).map(|r| match r {
            // Exports write `Success` where the REST API writes `Succeeded`.
            "Success" => "Succeeded",
            other => other,
        }),
        str_at(v, &["properties", "statusCode"]),
        str_at(v, &["properties", "requestbody"]),
    );
    if c.operation.is_some() {
        props.insert(
            "arm_operation".into(),
            serde_json::Value::String(arm_operation.to_owned()),
        );
    }
    props.extend(c.properties);
    RawEvent {
        kind: Some("activity".into()),
        event_id: Some(format!(
            "azure:{}",
            str_at(v, &["eventDataId"])
                .map(str::to_owned)
                .unwrap_or_else(|| key.to_owned())
        )),
        customer_external_id: Some(customer),
        time: Some(utc_time(time)?),
        operation: Some(c.operation.unwrap_or(arm_operation).to_owned()),
        actor: actor.map(str::to_owned),
        status: str_at(v, &["resultType"]).map(str::to_owned),
        properties: Some(serde_json::Value::Object(props)),
        ..RawEvent::default()
    }
    .validate()
}

/// Times in these files: RFC 3339, or without an offset (Partner Center's `2019-08-05T00:00:00`,
/// FOCUS's `2024-09-18 22:00:00`), which is UTC.
fn utc_time(s: &str) -> Result<String, String> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t.to_string());
    }
    let civil: jiff::civil::DateTime = s
        .replace(' ', "T")
        .trim_end_matches('Z')
        .parse()
        .map_err(|_| format!("'{s}' is not a date-time"))?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp().to_string())
        .map_err(|e| format!("'{s}': {e}"))
}

#[cfg(test)]
mod json_tests {
    use super::*;

    #[test]
    fn a_line_item_is_keyed_by_what_it_is_not_by_what_it_costs() {
        let item = |cost: &str, meter: &str| {
            format!(
                r#"{{"customerId": "c1", "entitlementId": "az-1", "usageDate": "2026-11-02T00:00:00Z", "meterId": "{meter}",
                "meterCategory": "Storage", "billingPreTaxTotal": {cost}, "billingCurrency": "EUR", "chargeType": "new"}}"#
            )
        };
        let a = pc_line_item(&item("1.25", "m1")).unwrap();
        let corrected = pc_line_item(&item("1.30", "m1")).unwrap();
        let other = pc_line_item(&item("1.25", "m2")).unwrap();
        assert_eq!(
            a.event_id, corrected.event_id,
            "a corrected amount is the same line item"
        );
        assert_ne!(a.event_id, other.event_id);
        assert!(a.event_id.starts_with("pc-usage:"));
        match &a.body {
            riskdesk_domain::monitoring::EventBody::Usage(u) => {
                assert_eq!(u.meter_category, "Storage")
            }
            other => panic!("{other:?}"),
        }
        assert!(pc_line_item("{").unwrap_err().contains("not JSON"));
        assert!(pc_line_item(r#"{"customerId": "c1", "usageDate": "2026-11-02T00:00:00Z", "billingCurrency": "EUR"}"#)
            .unwrap_err()
            .contains("billingPreTaxTotal"));
    }

    #[test]
    fn json_numbers_become_exact_decimals() {
        assert_eq!(json_decimal("30.7197334080551").unwrap(), "30.719733408055");
        assert_eq!(json_decimal("0.0000000000005").unwrap(), "0.000000000000");
        assert_eq!(json_decimal("0.0000000000015").unwrap(), "0.000000000002");
        assert_eq!(json_decimal("1.5e-5").unwrap(), "0.000015");
        assert_eq!(json_decimal("2E3").unwrap(), "2000");
        assert_eq!(json_decimal("-0.9999999999999").unwrap(), "-1.000000000000");
        assert_eq!(json_decimal("24.0").unwrap(), "24.0");
        assert!(json_decimal("abc").is_err());
        // Found by fuzzing (fuzz/regressions/partner_center_json): exponents near ±2^31
        // overflowed, allocated gigabytes or took seconds.
        assert_eq!(json_decimal("1e-2147483648").unwrap(), "0.000000000000");
        assert_eq!(json_decimal("5e-500000000").unwrap(), "0.000000000000");
        assert!(json_decimal("0e2147483647").is_err());
        assert!(json_decimal("1e500000000").is_err());
        assert_eq!(
            json_decimal("1e40").unwrap(),
            format!("1{}", "0".repeat(40))
        );
    }

    #[test]
    fn subscription_ids_come_from_resource_ids() {
        assert_eq!(
            azure_subscription("/SUBSCRIPTIONS/11111111-1111-1111-1111-111111111111/PROVIDERS/X")
                .as_deref(),
            Some("11111111-1111-1111-1111-111111111111")
        );
        assert_eq!(
            azure_subscription("/subscriptions/<subscription ID>/x"),
            None
        );
    }
}
