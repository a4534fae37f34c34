//! The Partner Center poller, for installations without webhooks (or to catch what a webhook
//! missed: Partner Center gives up after 10 attempts). Per configured cloud instance:
//! - fraud events (`GET /v1/fraudEvents?EventStatus=Active`, where the instance has the API)
//!   raise a critical `provider.fraud_event` alert for every tenant's linked subscription, once
//!   per event and status;
//! - audit records (where the instance has them), one UTC day per query from the last day read
//!   (re-read on each pass) within the 90-day window, become activity events of the linked
//!   customers, ingested like any other (deduplicated by record id, detectors and rules run).
//!
//! Network calls happen before each unit of work; a feed that fails is logged and retried on
//! the next pass.

use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::Date;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::monitoring::CustomerRef;
use riskdesk_domain::{CloudInstance, TenantId};
use riskdesk_storage::provider;
use riskdesk_storage::time::to_micros;
use uuid::Uuid;

use crate::kernel::Ctx;
use crate::kernel::error::AppError;
use crate::monitoring::detect::Detector;
use crate::provider::ProviderHub;

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PollSummary {
    /// Usage line items read (unbilled, every page this pass).
    pub line_items: usize,
    pub fraud_events: usize,
    pub alerts: usize,
    pub audit_records: usize,
    pub events_accepted: u64,
    /// Records or events about no linked customer (kept nowhere).
    pub unlinked: usize,
    pub errors: Vec<String>,
}

/// The oldest day Partner Center serves audit records for, seen from `today`.
fn oldest_audit_day(today: Date) -> Date {
    today
        .checked_sub(jiff::Span::new().days(89))
        .unwrap_or(today)
}

pub async fn pass(
    ctx: &Arc<Ctx>,
    hub: &ProviderHub,
    detector: &Arc<Detector>,
    now: Timestamp,
) -> Result<PollSummary, AppError> {
    let db = &ctx.db;
    let mut sum = PollSummary::default();
    for (instance, client) in hub.all() {
        let profile = instance.profile();
        // Fraud events: global only (the reference lists no other instance).
        if instance == CloudInstance::Global {
            match client.fraud_events("Active").await {
                Ok(list) => {
                    for ev in list {
                        sum.fraud_events += 1;
                        fraud_event(ctx, &ev, now, &mut sum).await?;
                    }
                    pulled(instance, "fraud_events", now);
                }
                Err(e) => {
                    metrics::counter!("riskdesk_provider_pull_errors_total", "instance" => instance.as_str(), "feed" => "fraud_events")
                        .increment(1);
                    sum.errors
                        .push(format!("{}: fraud events: {e}", instance.as_str()))
                }
            }
        }
        if profile.has_audit_records {
            let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
            let start = provider::cursor(db, instance.as_str(), "audit_day")
                .await?
                .and_then(|d| d.parse::<Date>().ok())
                .unwrap_or(today)
                .max(oldest_audit_day(today));
            let mut day = start;
            while day <= today {
                let next = day.tomorrow().unwrap_or(day);
                match client
                    .audit_records(&day.to_string(), &next.to_string())
                    .await
                {
                    Ok(records) => {
                        sum.audit_records += records.len();
                        audit_records(ctx, detector, &records, now, &mut sum).await?;
                        let mut tx = ctx.begin().await?;
                        // The last day is read again next time (it is still filling).
                        provider::set_cursor(
                            &mut tx,
                            instance.as_str(),
                            "audit_day",
                            &day.to_string(),
                            to_micros(now),
                        )
                        .await?;
                        tx.commit().await?;
                        pulled(instance, "audit_records", now);
                    }
                    Err(e) => {
                        metrics::counter!("riskdesk_provider_pull_errors_total", "instance" => instance.as_str(), "feed" => "audit_records")
                            .increment(1);
                        sum.errors
                            .push(format!("{}: audit records {day}: {e}", instance.as_str()));
                        break;
                    }
                }
                day = next;
            }
        }
        let currencies = client.settings().usage_currencies.clone();
        if !currencies.is_empty() {
            if profile.has_azure_plan {
                if let Err(e) =
                    billed_pull(ctx, &client, detector, instance, &currencies, now, &mut sum).await
                {
                    metrics::counter!("riskdesk_provider_pull_errors_total", "instance" => instance.as_str(), "feed" => "billed")
                        .increment(1);
                    sum.errors
                        .push(format!("{}: billed line items: {e}", instance.as_str()));
                }
                for ccy in currencies {
                    if let Err(e) =
                        usage_pull(ctx, &client, detector, instance, &ccy, now, &mut sum).await
                    {
                        metrics::counter!("riskdesk_provider_pull_errors_total", "instance" => instance.as_str(), "feed" => "usage")
                            .increment(1);
                        sum.errors.push(format!(
                            "{}: usage line items {ccy}: {e}",
                            instance.as_str()
                        ));
                    }
                }
            } else {
                sum.errors.push(format!(
                    "{}: usage line items: unsupported on this instance (no Azure plan, no usage API)",
                    instance.as_str()
                ));
            }
        }
    }
    Ok(sum)
}

/// The billed usage line items of every invoice (in a configured currency) not read to its
/// end yet, page by page from its cursor (`billed:<invoice id>`: a page, then `complete`).
/// A line item billed after it was pulled unbilled has the same identity: it adds nothing.
async fn billed_pull(
    ctx: &Arc<Ctx>,
    client: &riskdesk_connectors::partner_center::PartnerCenterClient,
    detector: &Arc<Detector>,
    instance: CloudInstance,
    currencies: &[String],
    now: Timestamp,
    sum: &mut PollSummary,
) -> Result<(), AppError> {
    use riskdesk_connectors::partner_center::NextPage;
    let invoices = client
        .invoices()
        .await
        .map_err(|e| AppError::BadGateway(e.to_string()))?;
    let mut pages = 0;
    for inv in invoices {
        let (Some(id), Some(ccy)) = (inv["id"].as_str(), inv["currencyCode"].as_str()) else {
            continue;
        };
        if !currencies.iter().any(|c| c.eq_ignore_ascii_case(ccy)) {
            continue;
        }
        let feed = format!("billed:{id}");
        let cursor = provider::cursor(&ctx.db, instance.as_str(), &feed).await?;
        if cursor.as_deref() == Some("complete") {
            continue;
        }
        let mut next: Option<NextPage> = cursor
            .filter(|v| !v.is_empty())
            .and_then(|v| serde_json::from_str(&v).ok());
        loop {
            if pages >= USAGE_PAGES_PER_PASS {
                return Ok(());
            }
            pages += 1;
            let page = client
                .billed_usage_page(id, ccy, client.settings().usage_page_size, next.as_ref())
                .await
                .map_err(|e| AppError::BadGateway(e.to_string()))?;
            let what = format!("{}: a billed line item of {id}", instance.as_str());
            ingest_line_items(ctx, detector, &page.items, &what, now, sum).await?;
            next = page.next;
            let value = match &next {
                Some(n) => serde_json::to_string(n).unwrap_or_default(),
                None => "complete".to_owned(),
            };
            let mut tx = ctx.begin().await?;
            provider::set_cursor(&mut tx, instance.as_str(), &feed, &value, to_micros(now)).await?;
            tx.commit().await?;
            pulled(instance, "billed", now);
            if next.is_none() {
                break;
            }
        }
    }
    Ok(())
}

/// When a feed last moved, for Prometheus (`time() - riskdesk_provider_pull_last_success_seconds`
/// is its lag).
fn pulled(instance: CloudInstance, feed: &'static str, now: Timestamp) {
    metrics::gauge!("riskdesk_provider_pull_last_success_seconds", "instance" => instance.as_str(), "feed" => feed)
        .set(now.as_second() as f64);
}

/// Pages read per currency in one pass at most (the rest waits for the next pass, from the
/// stored cursor).
const USAGE_PAGES_PER_PASS: usize = 100;

/// The unbilled usage line items of the current period in `ccy`, page by page from the stored
/// cursor: each page's items are ingested (one event per line item identity: a page read again
/// after a crash adds nothing), then the cursor moves to the next page; after the last page it
/// is cleared, so the next pass reads the period again from its first page (new items land
/// about a day late, anywhere in the list).
async fn usage_pull(
    ctx: &Arc<Ctx>,
    client: &riskdesk_connectors::partner_center::PartnerCenterClient,
    detector: &Arc<Detector>,
    instance: CloudInstance,
    ccy: &str,
    now: Timestamp,
    sum: &mut PollSummary,
) -> Result<(), AppError> {
    use riskdesk_connectors::partner_center::NextPage;
    let feed = format!("usage:{}:current", ccy.to_ascii_uppercase());
    let mut next: Option<NextPage> = provider::cursor(&ctx.db, instance.as_str(), &feed)
        .await?
        .filter(|v| !v.is_empty())
        .and_then(|v| serde_json::from_str(&v).ok());
    for _ in 0..USAGE_PAGES_PER_PASS {
        let page = client
            .unbilled_usage_page(
                ccy,
                "current",
                client.settings().usage_page_size,
                next.as_ref(),
            )
            .await
            .map_err(|e| AppError::BadGateway(e.to_string()))?;
        let what = format!("{}: a usage line item", instance.as_str());
        ingest_line_items(ctx, detector, &page.items, &what, now, sum).await?;
        next = page.next;
        let mut tx = ctx.begin().await?;
        let value = match &next {
            Some(n) => serde_json::to_string(n).unwrap_or_default(),
            None => String::new(),
        };
        provider::set_cursor(&mut tx, instance.as_str(), &feed, &value, to_micros(now)).await?;
        if next.is_none() {
            provider::set_cursor(
                &mut tx,
                instance.as_str(),
                &format!("{feed}:complete"),
                &now.to_string(),
                to_micros(now),
            )
            .await?;
        }
        tx.commit().await?;
        metrics::counter!("riskdesk_provider_line_items_total", "instance" => instance.as_str())
            .increment(page.items.len() as u64);
        pulled(instance, "usage", now);
        if next.is_none() {
            break;
        }
    }
    Ok(())
}

async fn fraud_event(
    ctx: &Arc<Ctx>,
    ev: &serde_json::Value,
    now: Timestamp,
    sum: &mut PollSummary,
) -> Result<(), AppError> {
    let db = &ctx.db;
    let Some(sub) = ev["subscriptionId"].as_str() else {
        sum.unlinked += 1;
        return Ok(());
    };
    let event_id = ev["eventId"].as_str().unwrap_or(sub);
    let status = ev["eventStatus"].as_str().unwrap_or("Active");
    let links = provider::subscriptions_by_provider_id_any_tenant(db, sub).await?;
    if links.is_empty() {
        sum.unlinked += 1;
    }
    for (tenant, _, customer) in links {
        let tenant = TenantId(tenant);
        let mut tx = ctx.begin().await?;
        let body = ev.to_string();
        if !provider::record_event(
            &mut tx,
            tenant,
            &format!("fraud-event:{event_id}:{status}"),
            "fraud-event",
            &body,
            to_micros(now),
        )
        .await?
        {
            continue;
        }
        let kind = ev["eventType"].as_str().unwrap_or("fraud event");
        crate::provider::events::raise_provider_alert(
            &mut tx,
            tenant,
            &Actor::system("partner-center-poller"),
            customer,
            "provider.fraud_event",
            "critical",
            &format!("Partner Center fraud event: {kind}"),
            &serde_json::json!({"provider_fraud_event": ev}),
            now,
        )
        .await?;
        tx.commit().await?;
        sum.alerts += 1;
    }
    Ok(())
}

async fn audit_records(
    ctx: &Arc<Ctx>,
    detector: &Arc<Detector>,
    records: &[serde_json::Value],
    now: Timestamp,
    sum: &mut PollSummary,
) -> Result<(), AppError> {
    let mut events = Vec::with_capacity(records.len());
    for r in records {
        match crate::monitoring::formats::pc_audit_record(r) {
            Ok(e) => events.push(e),
            Err(_) => sum.unlinked += 1,
        }
    }
    ingest_linked(ctx, detector, events, now, sum).await
}

/// A page of line items (raw texts) as usage events of the customers linked to them; a line
/// item that cannot be read is reported (`what`: which feed) and skipped.
async fn ingest_line_items(
    ctx: &Arc<Ctx>,
    detector: &Arc<Detector>,
    items: &[String],
    what: &str,
    now: Timestamp,
    sum: &mut PollSummary,
) -> Result<(), AppError> {
    sum.line_items += items.len();
    let mut events = Vec::with_capacity(items.len());
    for raw in items {
        match crate::monitoring::formats::pc_line_item(raw) {
            Ok(e) => events.push(e),
            Err(e) => sum.errors.push(format!("{what}: {e}")),
        }
    }
    ingest_linked(ctx, detector, events, now, sum).await
}

/// Ingests events whose customer is a Partner Center customer id (`CustomerRef::External`)
/// into every tenant that links that customer, as that tenant's customer.
async fn ingest_linked(
    ctx: &Arc<Ctx>,
    detector: &Arc<Detector>,
    events: Vec<riskdesk_domain::monitoring::Event>,
    now: Timestamp,
    sum: &mut PollSummary,
) -> Result<(), AppError> {
    let db = &ctx.db;
    // Group the converted events by tenant through the customers' provider links.
    let mut by_tenant: std::collections::BTreeMap<
        Uuid,
        Vec<Result<riskdesk_domain::monitoring::Event, String>>,
    > = Default::default();
    let mut links: std::collections::HashMap<String, Vec<(Uuid, Uuid)>> = Default::default();
    for event in events {
        let CustomerRef::External(pc_customer) = &event.customer else {
            continue;
        };
        if !links.contains_key(pc_customer) {
            let found = provider::customers_by_provider_id_any_tenant(db, pc_customer).await?;
            links.insert(pc_customer.clone(), found);
        }
        let targets = &links[pc_customer];
        if targets.is_empty() {
            sum.unlinked += 1;
        }
        for (tenant, customer) in targets {
            let mut e = event.clone();
            e.customer = CustomerRef::Id(*customer);
            by_tenant.entry(*tenant).or_default().push(Ok(e));
        }
    }
    for (tenant, events) in by_tenant {
        for chunk in events.chunks(2_000) {
            let mut tx = ctx.begin().await?;
            let s = crate::monitoring::ingest(
                &mut tx,
                TenantId(tenant),
                detector,
                chunk.to_vec(),
                now,
                now,
            )
            .await?;
            tx.commit().await?;
            sum.events_accepted += s.accepted;
        }
    }
    Ok(())
}
