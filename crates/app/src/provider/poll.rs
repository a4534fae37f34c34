//! The Partner Center poller, for installations without webhooks (or to catch what a webhook
//! missed: Partner Center gives up after 10 attempts). Per configured cloud instance:
//! - fraud events (`GET /v1/fraudEvents?EventStatus=Active`, where the instance has the API)
//!   raise a critical `provider.fraud_event` alert for every tenant's linked subscription, once
//!   per event and status;
//! - audit records (where the instance has them), one UTC day per query from the last day read
//!   (re-read on each pass) within the 90-day window, become activity events of the linked
//!   customers, ingested like any other (deduplicated by record id, detectors and rules run).
//!
//! - usage line items (unbilled, and billed once an invoice appears) in the configured
//!   currencies, and, where `activity_log` is on, the Azure Activity Log of every linked Azure
//!   subscription: events of the linked customers, ingested like any other.
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
    /// Azure Activity Log events read (every linked subscription, every page this pass).
    pub activity_events: usize,
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
        if client.settings().activity_log {
            if profile.has_azure_plan {
                for (pc_customer, sub) in
                    provider::azure_subscriptions(db, instance.as_str()).await?
                {
                    if let Err(e) = activity_pull(
                        ctx,
                        &client,
                        detector,
                        instance,
                        &pc_customer,
                        &sub,
                        now,
                        &mut sum,
                    )
                    .await
                    {
                        metrics::counter!("riskdesk_provider_pull_errors_total", "instance" => instance.as_str(), "feed" => "activity_log")
                            .increment(1);
                        sum.errors
                            .push(format!("{}: activity log of {sub}: {e}", instance.as_str()));
                    }
                }
            } else {
                sum.errors.push(format!(
                    "{}: activity logs: unsupported on this instance (no Azure subscriptions)",
                    instance.as_str()
                ));
            }
        }
    }
    Ok(sum)
}

/// Where an Activity Log pull is (`activity:<subscription>`): the window `[from, to]` read last
/// (an hour at most) and, when a pass ran out of pages mid-window, the `nextLink` to go on
/// from.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct ActivityCursor {
    from: String,
    to: String,
    #[serde(default)]
    next: Option<String>,
}

/// How far back the first pull of a subscription reads (ARM keeps 90 days).
const ACTIVITY_FIRST_LOOKBACK_HOURS: i64 = 24;
/// Activity Log pages read per subscription in one pass at most.
const ACTIVITY_PAGES_PER_PASS: usize = 100;
/// Each window starts this long before the last one ended: ARM publishes an event minutes
/// after it happened (`submissionTimestamp` after `eventTimestamp`). Events read twice are
/// the same events (`eventDataId`): they add nothing.
const ACTIVITY_OVERLAP_MINUTES: i64 = 15;

/// The Azure Activity Log of one subscription, with a customer-tenant token, an hour's window
/// at a time (the first pull reads the last day): a window's events are ingested oldest first
/// (as the linked customers' activity: detectors and rules run), then the cursor moves; after
/// a crash the window is read again (its events add nothing the second time). A refusal
/// (the partner's delegated access is gone) raises a high alert for every tenant linking the
/// customer, once, and is shown until a pull succeeds again.
#[allow(clippy::too_many_arguments)]
async fn activity_pull(
    ctx: &Arc<Ctx>,
    client: &riskdesk_connectors::partner_center::PartnerCenterClient,
    detector: &Arc<Detector>,
    instance: CloudInstance,
    pc_customer: &str,
    sub: &str,
    now: Timestamp,
    sum: &mut PollSummary,
) -> Result<(), AppError> {
    use jiff::SignedDuration;
    use riskdesk_connectors::partner_center::PcError;
    let feed = format!("activity:{sub}");
    let stored: Option<ActivityCursor> = provider::cursor(&ctx.db, instance.as_str(), &feed)
        .await?
        .and_then(|v| serde_json::from_str(&v).ok());
    let parse = |s: &str| s.parse::<Timestamp>().ok();
    // The window to read: the one a crash cut short, else the hour after the last one read
    // (from a little before its end), else the first day's first hour.
    let (mut from, mut to, mut next) = match &stored {
        Some(c) if c.next.is_some() => (
            parse(&c.from).unwrap_or(now),
            parse(&c.to).unwrap_or(now),
            c.next.clone(),
        ),
        Some(c) => {
            let end = parse(&c.to).unwrap_or(now).min(now);
            (
                end.checked_sub(SignedDuration::from_mins(ACTIVITY_OVERLAP_MINUTES))
                    .unwrap_or(end),
                end,
                None,
            )
        }
        None => {
            let start = now
                .checked_sub(SignedDuration::from_hours(ACTIVITY_FIRST_LOOKBACK_HOURS))
                .unwrap_or(now);
            (start, start, None)
        }
    };
    if next.is_none() {
        to = to
            .checked_add(SignedDuration::from_hours(1))
            .unwrap_or(now)
            .min(now);
    }
    let mut pages = 0;
    loop {
        // Every page of the window, then its events oldest first: ARM lists newest first, and
        // a rule over a customer's history ("a quota increase, then ten VMs") must see them in
        // the order they happened.
        let mut window = Vec::new();
        loop {
            pages += 1;
            let page = match client
                .activity_log_page(
                    pc_customer,
                    sub,
                    &from.to_string(),
                    &to.to_string(),
                    next.as_deref(),
                )
                .await
            {
                Ok(p) => p,
                Err(PcError::NoAccess(why)) => {
                    return access_lost(ctx, instance, pc_customer, sub, &why, now, sum).await;
                }
                Err(e) => return Err(AppError::BadGateway(e.to_string())),
            };
            window.extend(page.events);
            next = page.next;
            if next.is_none() || pages >= ACTIVITY_PAGES_PER_PASS {
                break;
            }
        }
        sum.activity_events += window.len();
        window.sort_by(|a, b| {
            a["eventTimestamp"]
                .as_str()
                .and_then(parse)
                .cmp(&b["eventTimestamp"].as_str().and_then(parse))
        });
        let mut events = Vec::with_capacity(window.len());
        for v in &window {
            match crate::monitoring::formats::arm_activity_event(v, pc_customer) {
                Ok(e) => events.push(e),
                Err(e) => sum.errors.push(format!(
                    "{}: an activity log event of {sub}: {e}",
                    instance.as_str()
                )),
            }
        }
        ingest_linked(ctx, detector, events, now, sum).await?;
        let cur = ActivityCursor {
            from: from.to_string(),
            to: to.to_string(),
            next: next.clone(),
        };
        let mut tx = ctx.begin().await?;
        provider::set_cursor(
            &mut tx,
            instance.as_str(),
            &feed,
            &serde_json::to_string(&cur).unwrap_or_default(),
            to_micros(now),
        )
        .await?;
        let access = format!("activity_access:{sub}");
        if provider::cursor_tx(&mut tx, instance.as_str(), &access)
            .await?
            .is_some_and(|v| v != "ok")
        {
            provider::set_cursor(&mut tx, instance.as_str(), &access, "ok", to_micros(now)).await?;
        }
        tx.commit().await?;
        pulled(instance, "activity_log", now);
        if next.is_some() || to >= now || pages >= ACTIVITY_PAGES_PER_PASS {
            // Out of pages for this pass (the cursor says where to go on), or caught up.
            return Ok(());
        }
        from = to
            .checked_sub(SignedDuration::from_mins(ACTIVITY_OVERLAP_MINUTES))
            .unwrap_or(to);
        to = to
            .checked_add(SignedDuration::from_hours(1))
            .unwrap_or(now)
            .min(now);
    }
}

/// The partner can no longer read a customer's subscription: recorded once (until access
/// comes back), with a high `provider.subscription_access_lost` alert for every tenant's
/// customer linked to it.
async fn access_lost(
    ctx: &Arc<Ctx>,
    instance: CloudInstance,
    pc_customer: &str,
    sub: &str,
    why: &str,
    now: Timestamp,
    sum: &mut PollSummary,
) -> Result<(), AppError> {
    let access = format!("activity_access:{sub}");
    let targets = provider::customers_by_provider_id_any_tenant(&ctx.db, pc_customer).await?;
    let mut tx = ctx.begin().await?;
    let before = provider::cursor_tx(&mut tx, instance.as_str(), &access).await?;
    if before.as_deref().is_some_and(|v| v.starts_with("lost")) {
        return Ok(());
    }
    provider::set_cursor(
        &mut tx,
        instance.as_str(),
        &access,
        &format!("lost: {why}"),
        to_micros(now),
    )
    .await?;
    for (tenant, customer) in targets {
        crate::provider::events::raise_provider_alert(
            &mut tx,
            TenantId(tenant),
            &Actor::system("partner-center-poller"),
            customer,
            "provider.subscription_access_lost",
            "high",
            &format!("Delegated access lost to the customer's Azure subscription {sub}"),
            &serde_json::json!({"azure_subscription_id": sub, "reason": why}),
            now,
        )
        .await?;
        sum.alerts += 1;
    }
    tx.commit().await?;
    sum.errors.push(format!(
        "{}: activity log of {sub}: access lost: {why}",
        instance.as_str()
    ));
    Ok(())
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
