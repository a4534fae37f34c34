//! What comes from the provider: Partner Center webhook events (verified before this point),
//! Acceptable Use Policy notices (by email, no API), and service requests filed in its portal
//! and followed through its read/update API.

use jiff::Timestamp;
use riskdesk_connectors::pc_webhook::PartnerCenterEvent;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::response::notice::advance;
use riskdesk_domain::response::service_request::{self, CaseFacts};
use riskdesk_domain::response::{CaseKind, NoticeStatus};
use riskdesk_domain::{CloudInstance, CustomerId, TenantId};
use riskdesk_storage::audit::{self, AuditDraft};
use riskdesk_storage::provider::{self, NoticeRow, ServiceRequestRow};
use riskdesk_storage::time::to_micros;
use riskdesk_storage::{Db, alerts, cases, customers};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use uuid::Uuid;

use crate::kernel::error::AppError;
use crate::kernel::{Ctx, Uow};
use crate::provider::ProviderHub;
use crate::response::{CaseSource, open_or_attach};

/// What a webhook call did.
#[derive(Debug, serde::Serialize)]
pub struct WebhookOutcome {
    pub event: String,
    /// `alert` (an alert and its case), `resynced`, `recorded` (kept, nothing to do),
    /// `duplicate` (seen before), `unknown_customer`.
    pub handled: String,
    pub alert_id: Option<Uuid>,
    pub provider_status: Option<String>,
}

/// Handles one verified Partner Center event for a tenant. `subscription-updated` reads the
/// subscription back from the provider (the event is only a trigger) before the unit of work.
pub async fn handle_webhook(
    ctx: &Arc<Ctx>,
    hub: &ProviderHub,
    tenant: TenantId,
    ev: &PartnerCenterEvent,
    body: &[u8],
    now: Timestamp,
) -> Result<WebhookOutcome, AppError> {
    let db = &ctx.db;
    let name = ev.event_name.to_ascii_lowercase();
    let key = hex::encode(Sha256::digest(body));
    let actor = Actor::system("partner-center-webhook");
    let mut out = WebhookOutcome {
        event: ev.event_name.clone(),
        handled: "recorded".into(),
        alert_id: None,
        provider_status: None,
    };
    // Resolve the riskdesk customer (and subscription) the event is about.
    let mut tx = ctx.begin().await?;
    let sub = match &ev.subscription_id {
        Some(s) => provider::subscription_by_provider_id_tx(&mut tx, tenant, s).await?,
        None => None,
    };
    let customer = match (&sub, &ev.customer_id) {
        (Some(s), _) => Some(
            riskdesk_storage::subscriptions::get_with_instance_tx(
                &mut tx,
                tenant,
                riskdesk_domain::SubscriptionId(s.subscription_id),
            )
            .await?
            .sub
            .customer_id,
        ),
        (None, Some(c)) => provider::customer_by_provider_id_tx(&mut tx, tenant, c)
            .await?
            .map(|l| l.customer_id),
        _ => None,
    };
    drop(tx);
    // The provider's view of the subscription, asked outside any unit of work.
    let mut fetched = None;
    if name == "subscription-updated"
        && let (Some(s), Some(c), Some(pc_cust)) = (&sub, customer, &ev.customer_id)
    {
        let row = customers::get(db, tenant, CustomerId(c)).await?;
        if let Some(client) = CloudInstance::parse(&row.cloud_instance).and_then(|i| hub.client(i))
        {
            match client
                .get_subscription(pc_cust, &s.provider_subscription_id)
                .await
            {
                Ok((v, _)) => {
                    fetched = v
                        .get("status")
                        .map(riskdesk_connectors::partner_center::enum_name)
                }
                Err(e) if e.is_retryable() => {
                    // The provider retries its webhook; so will we.
                    return Err(AppError::BadGateway(format!(
                        "could not read the subscription back from Partner Center: {e}"
                    )));
                }
                Err(e) => tracing::warn!(error = %e, "subscription-updated: read-back refused"),
            }
        }
    }
    let mut tx = ctx.begin().await?;
    if !provider::record_event(
        &mut tx,
        tenant,
        &key,
        &ev.event_name,
        &String::from_utf8_lossy(body),
        to_micros(now),
    )
    .await?
    {
        out.handled = "duplicate".into();
        return Ok(out);
    }
    let evidence = serde_json::json!({"provider_event": ev});
    let alert = match (name.as_str(), customer) {
        (_, None)
            if matches!(
                name.as_str(),
                "azure-fraud-event-detected"
                    | "usagerecords-thresholdexceeded"
                    | "subscription-updated"
            ) =>
        {
            out.handled = "unknown_customer".into();
            None
        }
        ("azure-fraud-event-detected", Some(c)) => Some((
            c,
            "provider.fraud_event",
            "critical",
            "Partner Center detected possible fraud (azure-fraud-event-detected)".to_owned(),
        )),
        ("usagerecords-thresholdexceeded", Some(c)) => Some((
            c,
            "provider.budget_exceeded",
            "high",
            "Usage exceeded the spending budget set at Partner Center".to_owned(),
        )),
        ("subscription-updated", Some(c)) => {
            let sub = sub.as_ref().expect("customer came from it or the uri");
            out.handled = "resynced".into();
            out.provider_status = fetched.clone();
            let mut raise = None;
            if let Some(status) = &fetched {
                let local = riskdesk_storage::subscriptions::get_with_instance_tx(
                    &mut tx,
                    tenant,
                    riskdesk_domain::SubscriptionId(sub.subscription_id),
                )
                .await?;
                provider::record_subscription_sync(
                    &mut tx,
                    tenant,
                    sub.subscription_id,
                    status,
                    None,
                    to_micros(now),
                )
                .await?;
                let differs = match status.as_str() {
                    "active" => local.sub.status != "active",
                    "suspended" | "disabled" => {
                        !matches!(local.sub.status.as_str(), "suspended" | "disabled")
                    }
                    "deleted" | "expired" => local.sub.status != "cancelled",
                    _ => false,
                };
                if differs {
                    raise = Some((
                        c,
                        "provider.subscription_changed",
                        "high",
                        format!(
                            "Subscription is {status} at Partner Center but {} in riskdesk (changed outside riskdesk)",
                            local.sub.status
                        ),
                    ));
                }
            }
            raise
        }
        _ => None,
    };
    if let Some((customer, rule, severity, title)) = alert {
        let row = raise_provider_alert(
            &mut tx, tenant, &actor, customer, rule, severity, &title, &evidence, now,
        )
        .await?;
        out.alert_id = Some(row.id);
        if out.handled == "recorded" {
            out.handled = "alert".into();
        }
    }
    tx.commit().await?;
    Ok(out)
}

/// Raises an alert for something the provider reported (a webhook or the poller): one
/// occurrence now, never folded, with the provider's event as its evidence. Its case follows
/// from the rule (`provider.fraud_event` → `provider_fraud`, …).
#[allow(clippy::too_many_arguments)]
pub async fn raise_provider_alert(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    customer: Uuid,
    rule: &str,
    severity: &str,
    title: &str,
    evidence: &serde_json::Value,
    now: Timestamp,
) -> Result<alerts::AlertRow, AppError> {
    crate::alerts::raise(
        tx,
        tenant,
        actor,
        alerts::NewAlert {
            customer_id: Some(customer),
            rule,
            severity,
            title,
            evidence_json: evidence.to_string(),
            at: to_micros(now),
            cooldown_micros: 0,
            occurrences: 1,
            last_at: to_micros(now),
        },
        now,
    )
    .await
}

/// A provider notice as recorded (from the API or an .eml file).
#[derive(Clone, Debug, Default)]
pub struct NoticeInput {
    pub customer: Option<Uuid>,
    pub message_id: Option<String>,
    pub received_at: Option<Timestamp>,
    pub sender: String,
    pub subject: String,
    pub body: String,
    pub provider_action: Option<String>,
    pub requested_action: Option<String>,
    pub deadline: Option<Timestamp>,
    pub severity: Option<String>,
}

/// Records a notice and opens (or joins) its customer's case with the notice SLA. Without a
/// customer given, ids of linked customers or subscriptions found in the text decide.
pub async fn record_notice(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    n: NoticeInput,
    now: Timestamp,
) -> Result<(NoticeRow, riskdesk_storage::cases::CaseRow), AppError> {
    let customer = match n.customer {
        Some(c) => {
            customers::get_tx(tx, tenant, CustomerId(c)).await?;
            Some(c)
        }
        None => find_customer_in_text(tx, tenant, &format!("{}\n{}", n.subject, n.body)).await?,
    };
    let at = to_micros(now);
    let mut row = NoticeRow {
        id: Uuid::now_v7(),
        customer_id: customer,
        case_id: None,
        message_id: n.message_id,
        received_at: n.received_at.map_or(at, to_micros),
        sender: n.sender,
        subject: n.subject,
        body: n.body,
        provider_action: n.provider_action,
        requested_action: n.requested_action,
        deadline_at: n.deadline.map(to_micros),
        status: NoticeStatus::Received.as_str().into(),
        response: None,
        created_at: at,
        updated_at: at,
    };
    // Medium by default: the notice SLA (24 h) then sets the deadline.
    let severity = n.severity.unwrap_or_else(|| "medium".into());
    let title = format!("Provider notice: {}", row.subject);
    // The case of a notice without a known customer stands on its own (an analyst links it).
    let (case, _) = open_or_attach(
        tx,
        tenant,
        actor,
        customer,
        None,
        CaseSource {
            kind: CaseKind::ProviderNotice,
            severity: &severity,
            title: &title,
            entry_kind: "notice",
            ref_id: Some(row.id),
            data: Some(
                serde_json::json!({"sender": row.sender, "provider_action": row.provider_action}),
            ),
        },
        now,
    )
    .await?;
    row.case_id = Some(case.id);
    provider::insert_notice(tx, tenant, &row).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "notice.receive", "notice", row.id).after(&serde_json::json!({
            "subject": row.subject, "sender": row.sender, "customer_id": row.customer_id, "case_id": row.case_id,
            "message_id": row.message_id,
        })),
    )
    .await?;
    Ok((row, case))
}

/// The first linked customer whose provider id (or one of whose subscriptions' ids) appears
/// in the text: AUP notices name the subscription or tenant concerned.
async fn find_customer_in_text(
    tx: &mut Uow,
    tenant: TenantId,
    text: &str,
) -> Result<Option<Uuid>, AppError> {
    for token in text.split(|c: char| !(c.is_ascii_hexdigit() || c == '-')) {
        if token.len() != 36 || Uuid::parse_str(token).is_err() {
            continue;
        }
        if let Some(l) = provider::subscription_by_provider_id_tx(tx, tenant, token).await? {
            let s = riskdesk_storage::subscriptions::get_with_instance_tx(
                tx,
                tenant,
                riskdesk_domain::SubscriptionId(l.subscription_id),
            )
            .await?;
            return Ok(Some(s.sub.customer_id));
        }
        if let Some(l) = provider::customer_by_provider_id_tx(tx, tenant, token).await? {
            return Ok(Some(l.customer_id));
        }
    }
    Ok(None)
}

/// Moves a notice forward (received → reviewed → acted → responded).
pub async fn advance_notice(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    id: Uuid,
    to: NoticeStatus,
    response: Option<String>,
    now: Timestamp,
) -> Result<NoticeRow, AppError> {
    let before = provider::notice_tx(tx, tenant, id).await?;
    let from = NoticeStatus::parse(&before.status)
        .ok_or_else(|| AppError::Internal(format!("notice status '{}'", before.status)))?;
    advance(from, to, response.is_some() || before.response.is_some())
        .map_err(AppError::Conflict)?;
    let mut after = before.clone();
    after.status = to.as_str().into();
    if response.is_some() {
        after.response = response;
    }
    after.updated_at = to_micros(now);
    provider::update_notice(tx, tenant, &after).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, &format!("notice.{}", to.as_str()), "notice", id)
            .before(&serde_json::json!({"status": before.status, "response": before.response}))
            .after(&serde_json::json!({"status": after.status, "response": after.response})),
    )
    .await?;
    if let Some(case) = after.case_id {
        crate::response::entry(
            tx,
            tenant,
            case,
            "notice",
            actor,
            Some(&format!("notice {}", to.as_str())),
            Some(id),
            after
                .response
                .as_ref()
                .filter(|_| to == NoticeStatus::Responded)
                .map(|r| serde_json::json!({"response": r})),
            now,
        )
        .await?;
    }
    Ok(after)
}

/// Reads an RFC 5322 message (.eml) into a notice: subject, sender, date, Message-ID and the
/// plain-text body (HTML converted when that is all there is).
pub fn notice_from_eml(bytes: &[u8]) -> Result<NoticeInput, String> {
    let m = mail_parser::MessageParser::default()
        .parse(bytes)
        .ok_or("not an email message (RFC 5322)")?;
    let subject = m
        .subject()
        .map(str::to_owned)
        .ok_or("the message has no Subject")?;
    let sender = m
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_owned)
        .unwrap_or_default();
    let body = m
        .body_text(0)
        .map(|b| b.into_owned())
        .or_else(|| m.body_html(0).map(|b| b.into_owned()))
        .unwrap_or_default();
    let received_at = m
        .date()
        .and_then(|d| d.to_rfc3339().parse::<Timestamp>().ok());
    Ok(NoticeInput {
        message_id: m.message_id().map(str::to_owned),
        received_at,
        sender,
        subject,
        body,
        ..Default::default()
    })
}

/// Prepares a service request from a case: the text staff paste into the provider's portal.
pub async fn prepare_service_request(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    case_id: Uuid,
    now: Timestamp,
) -> Result<ServiceRequestRow, AppError> {
    let case = cases::get_tx(tx, tenant, case_id).await?;
    let (name, link, sub_ids) = match case.customer_id {
        Some(c) => {
            let row = customers::get_tx(tx, tenant, CustomerId(c)).await?;
            let link = provider::customer_link_tx(tx, tenant, c).await?;
            let mut ids = Vec::new();
            for s in riskdesk_storage::subscriptions::of_customers_tx(tx, tenant, &[c]).await? {
                if let Some(l) = provider::subscription_link_tx(tx, tenant, s.id).await? {
                    ids.push(l.provider_subscription_id);
                }
            }
            (row.name, link.map(|l| l.provider_customer_id), ids)
        }
        None => ("(unknown customer)".to_owned(), None, Vec::new()),
    };
    let entries = cases::entries_tx(tx, tenant, case_id).await?;
    let evidence: Vec<String> = entries
        .iter()
        .filter(|e| matches!(e.kind.as_str(), "alert" | "notice" | "action" | "proposal"))
        .filter_map(|e| {
            e.text
                .as_ref()
                .map(|t| format!("{} {}: {t}", crate::kernel::time::rfc3339(e.at), e.kind))
        })
        .collect();
    let draft = service_request::draft(&CaseFacts {
        case_id: &case.id.to_string(),
        severity: &case.severity,
        customer_name: &name,
        provider_customer_id: link.as_deref(),
        provider_subscription_ids: &sub_ids,
        summary: &case.title,
        evidence: &evidence,
    });
    let at = to_micros(now);
    let row = ServiceRequestRow {
        id: Uuid::now_v7(),
        case_id,
        customer_id: case.customer_id,
        title: draft.title,
        severity: draft.severity,
        description: draft.description,
        ticket_id: None,
        status: "draft".into(),
        notes_json: "[]".into(),
        created_at: at,
        updated_at: at,
        synced_at: None,
    };
    provider::insert_service_request(tx, tenant, &row).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "service_request.prepare", "service_request", row.id).after(&row),
    )
    .await?;
    crate::response::entry(
        tx,
        tenant,
        case_id,
        "service_request",
        actor,
        Some("service request prepared for the provider's portal"),
        Some(row.id),
        None,
        now,
    )
    .await?;
    Ok(row)
}

/// Records the ticket id the provider's portal gave the request once filed.
pub async fn record_ticket(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    id: Uuid,
    ticket: &str,
    now: Timestamp,
) -> Result<ServiceRequestRow, AppError> {
    let before = provider::service_request_tx(tx, tenant, id).await?;
    let mut after = before.clone();
    after.ticket_id = Some(ticket.to_owned());
    if after.status == "draft" {
        after.status = "filed".into();
    }
    after.updated_at = to_micros(now);
    provider::update_service_request(tx, tenant, &after).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "service_request.file", "service_request", id)
            .before(&before)
            .after(&after),
    )
    .await?;
    crate::response::entry(
        tx,
        tenant,
        before.case_id,
        "service_request",
        actor,
        Some(&format!("service request filed as ticket {ticket}")),
        Some(id),
        None,
        now,
    )
    .await?;
    Ok(after)
}

/// The Partner Center client for a service request's customer, or why there is none.
async fn sr_client(
    db: &Db,
    hub: &ProviderHub,
    tenant: TenantId,
    sr: &ServiceRequestRow,
) -> Result<std::sync::Arc<riskdesk_connectors::partner_center::PartnerCenterClient>, AppError> {
    let instance = match sr.customer_id {
        Some(c) => CloudInstance::parse(
            &customers::get(db, tenant, CustomerId(c))
                .await?
                .cloud_instance,
        )
        .unwrap_or(CloudInstance::Global),
        None => CloudInstance::Global,
    };
    if !instance.profile().has_service_requests_api {
        return Err(AppError::Conflict(format!(
            "{} has no service-request API: support goes through the cloud operator; record its status by hand",
            instance.profile().display_name
        )));
    }
    hub.client(instance).ok_or_else(|| {
        AppError::Conflict(format!(
            "Partner Center is not configured for {} ([partner_center.{}])",
            instance.profile().display_name,
            instance.as_str()
        ))
    })
}

/// Reads the request's status and notes from the provider. A change to `attention_needed`
/// notifies staff.
pub async fn sync_service_request(
    ctx: &Arc<Ctx>,
    hub: &ProviderHub,
    tenant: TenantId,
    id: Uuid,
    now: Timestamp,
) -> Result<ServiceRequestRow, AppError> {
    let db = &ctx.db;
    let sr = provider::service_request(db, tenant, id).await?;
    let ticket = sr.ticket_id.clone().ok_or_else(|| {
        AppError::Conflict(
            "the request has no ticket id yet: file it in the portal, then record the ticket"
                .into(),
        )
    })?;
    let client = sr_client(db, hub, tenant, &sr).await?;
    let v = client
        .get_service_request(&ticket)
        .await
        .map_err(|e| AppError::BadGateway(e.to_string()))?;
    let status = service_request::status_name(&v["status"]);
    let notes = v.get("notes").cloned().unwrap_or(serde_json::json!([]));
    let mut tx = ctx.begin().await?;
    let before = provider::service_request_tx(&mut tx, tenant, id).await?;
    let mut after = before.clone();
    after.status = status.clone();
    after.notes_json = notes.to_string();
    after.synced_at = Some(to_micros(now));
    after.updated_at = to_micros(now);
    provider::update_service_request(&mut tx, tenant, &after).await?;
    if before.status != after.status {
        let actor = Actor::system("partner-center");
        audit::append(
            &mut tx,
            tenant,
            now,
            AuditDraft::new(&actor, "service_request.sync", "service_request", id)
                .before(&before)
                .after(&after),
        )
        .await?;
        crate::response::entry(
            &mut tx,
            tenant,
            after.case_id,
            "service_request",
            &actor,
            Some(&format!("ticket {ticket} is now {status}")),
            Some(id),
            None,
            now,
        )
        .await?;
        if status == "attention_needed" {
            crate::response::notify_staff(
                &mut tx,
                tenant,
                after.customer_id,
                "service_request.attention_needed",
                &format!("sr:{id}:{}", to_micros(now)),
                &format!("Service request {ticket} needs your attention"),
                serde_json::json!({"service_request_id": id, "ticket_id": ticket, "case_id": after.case_id}),
                true,
                now,
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(after)
}

/// Adds a note to the provider's ticket, then records it here.
pub async fn add_service_request_note(
    ctx: &Arc<Ctx>,
    hub: &ProviderHub,
    tenant: TenantId,
    actor: &Actor,
    id: Uuid,
    text: &str,
    request_id: &str,
    now: Timestamp,
) -> Result<ServiceRequestRow, AppError> {
    let db = &ctx.db;
    let sr = provider::service_request(db, tenant, id).await?;
    let ticket = sr
        .ticket_id
        .clone()
        .ok_or_else(|| AppError::Conflict("the request has no ticket id yet".into()))?;
    let client = sr_client(db, hub, tenant, &sr).await?;
    let v = client
        .add_service_request_note(&ticket, text, request_id)
        .await
        .map_err(|e| match e {
            riskdesk_connectors::partner_center::PcError::Rejected { .. } => {
                AppError::Conflict(e.to_string())
            }
            _ => AppError::BadGateway(e.to_string()),
        })?;
    let mut tx = ctx.begin().await?;
    let before = provider::service_request_tx(&mut tx, tenant, id).await?;
    let mut after = before.clone();
    if let Some(notes) = v.get("notes") {
        after.notes_json = notes.to_string();
    }
    after.updated_at = to_micros(now);
    provider::update_service_request(&mut tx, tenant, &after).await?;
    audit::append(
        &mut tx,
        tenant,
        now,
        AuditDraft::new(actor, "service_request.note", "service_request", id).note(Some(text)),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}
