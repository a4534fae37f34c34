//! The demo book (`riskdesk serve --demo`): a few dozen realistic customers over the four cloud
//! instances, subscriptions in every state, and the audit history that got them there. Built
//! through the same service functions as the API, so it is audited like real work.

use jiff::Timestamp;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::customer::NewCustomer;
use riskdesk_domain::lifecycle::allowed_reasons;
use riskdesk_domain::{
    CloudInstance, CountryCode, CustomerId, DomainName, Email, LifecycleAction, Locale, Phone,
    Reason, SubscriptionId, TenantId,
};
use std::sync::Arc;

use crate::billing::SubscriptionInput;
use crate::kernel::Ctx;
use crate::kernel::error::AppError;

struct Company {
    name: &'static str,
    domain: &'static str,
    country: &'static str,
    phone: &'static str,
    locale: Locale,
    instance: CloudInstance,
}

const fn c(
    name: &'static str,
    domain: &'static str,
    country: &'static str,
    phone: &'static str,
    locale: Locale,
    instance: CloudInstance,
) -> Company {
    Company {
        name,
        domain,
        country,
        phone,
        locale,
        instance,
    }
}

use CloudInstance::{China21vianet as CN, Germany as DE, Global as GL, UsGovernment as US};
use Locale::{En, FrFr, PtBr, ZhCn, ZhTw};

const BOOK: &[Company] = &[
    c("Contoso Ltd", "contoso.com", "GB", "+442071838750", En, GL),
    c("Fabrikam Inc", "fabrikam.com", "US", "+14255550100", En, GL),
    c(
        "Northwind Traders",
        "northwindtraders.com",
        "US",
        "+12065550123",
        En,
        GL,
    ),
    c(
        "Tailspin Toys",
        "tailspintoys.com",
        "CA",
        "+16135550142",
        En,
        GL,
    ),
    c(
        "Boulangerie Lumière",
        "boulangerie-lumiere.fr",
        "FR",
        "+33142685300",
        FrFr,
        GL,
    ),
    c(
        "Atelier Martin SARL",
        "ateliermartin.fr",
        "FR",
        "+33478123456",
        FrFr,
        GL,
    ),
    c(
        "Construtora Horizonte",
        "horizonte.com.br",
        "BR",
        "+551130405060",
        PtBr,
        GL,
    ),
    c(
        "Padaria Sol Nascente",
        "solnascente.com.br",
        "BR",
        "+552125550199",
        PtBr,
        GL,
    ),
    c(
        "Taipei Precision Co",
        "tpprecision.com.tw",
        "TW",
        "+886223456789",
        ZhTw,
        GL,
    ),
    c(
        "Alpine Ski House",
        "alpineskihouse.com",
        "CH",
        "+41445551234",
        En,
        GL,
    ),
    c(
        "Wide World Importers",
        "wideworldimporters.com",
        "AU",
        "+61295551234",
        En,
        GL,
    ),
    c(
        "Datum Corporation",
        "adatum.com",
        "SG",
        "+6565551234",
        En,
        GL,
    ),
    c(
        "City of Redmond IT",
        "redmond-it.us",
        "US",
        "+14255550111",
        En,
        US,
    ),
    c(
        "State Parks Authority",
        "stateparks-authority.us",
        "US",
        "+15125550144",
        En,
        US,
    ),
    c(
        "County Health Services",
        "countyhealth-services.us",
        "US",
        "+13035550188",
        En,
        US,
    ),
    c(
        "Federal Grants Office",
        "fedgrants-office.us",
        "US",
        "+12025550199",
        En,
        US,
    ),
    c(
        "Transit District IT",
        "transit-district.us",
        "US",
        "+16175550177",
        En,
        US,
    ),
    c(
        "Municipal Water Board",
        "waterboard-city.us",
        "US",
        "+17135550166",
        En,
        US,
    ),
    c(
        "Müller Maschinenbau GmbH",
        "mueller-maschinenbau.de",
        "DE",
        "+4989123456",
        En,
        DE,
    ),
    c(
        "Schmidt Logistik AG",
        "schmidt-logistik.de",
        "DE",
        "+4940987654",
        En,
        DE,
    ),
    c(
        "Bäckerei Hoffmann",
        "baeckerei-hoffmann.de",
        "DE",
        "+49301234567",
        En,
        DE,
    ),
    c(
        "Rheinland Energie KG",
        "rheinland-energie.de",
        "DE",
        "+49221555123",
        En,
        DE,
    ),
    c(
        "Wiener Software OG",
        "wiener-software.at",
        "AT",
        "+4315551234",
        En,
        DE,
    ),
    c(
        "Klein Architekten",
        "klein-architekten.de",
        "DE",
        "+49711555432",
        En,
        DE,
    ),
    c(
        "上海云启科技有限公司",
        "yunqi-tech.cn",
        "CN",
        "+862155551234",
        ZhCn,
        CN,
    ),
    c(
        "北京华信数据有限公司",
        "huaxin-data.cn",
        "CN",
        "+861055551234",
        ZhCn,
        CN,
    ),
    c(
        "深圳创新电子有限公司",
        "cx-electronics.cn",
        "CN",
        "+8675555512345",
        ZhCn,
        CN,
    ),
    c(
        "杭州西湖软件有限公司",
        "xihu-soft.cn",
        "CN",
        "+8657155512345",
        ZhCn,
        CN,
    ),
    c(
        "广州珠江物流有限公司",
        "zhujiang-logistics.cn",
        "CN",
        "+862055551234",
        ZhCn,
        CN,
    ),
    c(
        "成都天府游戏工作室",
        "tianfu-games.cn",
        "CN",
        "+862855551234",
        ZhCn,
        CN,
    ),
    c(
        "Sunrise Crypto Labs",
        "sunrise-cryptolabs.io",
        "PA",
        "+5072555123",
        En,
        GL,
    ),
    c(
        "QuickCloud Resell",
        "quickcloud-resell.net",
        "NG",
        "+2348031234567",
        En,
        GL,
    ),
];

const OFFERS: &[&str] = &[
    "Azure plan",
    "Microsoft 365 Business Premium",
    "Microsoft 365 E3",
    "Dynamics 365 Sales",
    "Exchange Online (Plan 1)",
];

/// What happens to one demo subscription: a path through the lifecycle.
const STORIES: &[&[(LifecycleAction, Reason, &str)]] = &[
    &[],
    &[(
        LifecycleAction::Suspend,
        Reason::Investigation,
        "GPU spend jumped 40x overnight; suspended while we check with the customer",
    )],
    &[(
        LifecycleAction::DisableAccess,
        Reason::NonPayment,
        "Invoice 30 days overdue; access blocked per collections policy",
    )],
    &[
        (
            LifecycleAction::Suspend,
            Reason::Investigation,
            "Sign-ins from an unexpected country",
        ),
        (
            LifecycleAction::Reactivate,
            Reason::Resolved,
            "Customer confirmed travelling staff; MFA enforced",
        ),
    ],
    &[
        (
            LifecycleAction::DisableAccess,
            Reason::NonPayment,
            "Two invoices unpaid",
        ),
        (
            LifecycleAction::Reactivate,
            Reason::Resolved,
            "Paid in full by bank transfer",
        ),
    ],
    &[(
        LifecycleAction::Cancel,
        Reason::CustomerRequest,
        "Customer moved to another provider",
    )],
    &[
        (
            LifecycleAction::Suspend,
            Reason::AupViolation,
            "Provider notice: outbound spam from this subscription",
        ),
        (
            LifecycleAction::Cancel,
            Reason::Fraud,
            "Stolen card confirmed by the issuer",
        ),
    ],
];

/// Loads the demo book into `tenant` unless it already has customers. Returns how many
/// customers were created.
pub async fn load(ctx: &Arc<Ctx>, tenant: TenantId, now: Timestamp) -> Result<usize, AppError> {
    let db = &ctx.db;
    if riskdesk_storage::customers::count(db, tenant).await? > 0 {
        return Ok(0);
    }
    let actor = Actor::system("demo-loader");
    let mut tx = ctx.begin().await?;
    for (i, co) in BOOK.iter().enumerate() {
        let new = NewCustomer {
            name: co.name.to_owned(),
            domain: DomainName::parse(co.domain).map_err(|e| AppError::Internal(e.0))?,
            country: CountryCode::parse(co.country).map_err(|e| AppError::Internal(e.0))?,
            email: Email::parse(&format!("billing@{}", co.domain))
                .map_err(|e| AppError::Internal(e.0))?,
            phone: Some(
                Phone::parse(co.phone)
                    .map_err(|e| AppError::Internal(format!("{}: {}", co.phone, e.0)))?,
            ),
            locale: co.locale,
            cloud_instance: co.instance,
            external_id: Some(format!("pc-{:08x}-demo", 0x5eed_0000u32 + i as u32)),
        };
        let customer = crate::accounts::create_customer(&mut tx, tenant, &actor, &new, now).await?;
        for j in 0..(1 + i % 3) {
            let input = SubscriptionInput {
                offer: OFFERS[(i + j) % OFFERS.len()].to_owned(),
                external_id: None,
                quantity: 1 + ((i * 7 + j * 3) % 50) as i64,
                first_period: None,
            };
            let sub = crate::billing::create_subscription(
                &mut tx,
                tenant,
                &actor,
                CustomerId(customer.id),
                input,
                now,
            )
            .await?;
            for (action, reason, note) in STORIES[(i + j * 3) % STORIES.len()] {
                let r = crate::accounts::act_on_subscription(
                    &mut tx,
                    tenant,
                    &actor,
                    SubscriptionId(sub.id),
                    *action,
                    *reason,
                    Some(note),
                    now,
                )
                .await;
                match r {
                    Ok(_) => {}
                    // 21Vianet customers cannot be cancelled: the demo blocks access instead (or
                    // suspends, for a customer's own request).
                    Err(AppError::Conflict(_)) if *action == LifecycleAction::Cancel => {
                        let fallback =
                            if allowed_reasons(LifecycleAction::DisableAccess).contains(reason) {
                                LifecycleAction::DisableAccess
                            } else {
                                LifecycleAction::Suspend
                            };
                        crate::accounts::act_on_subscription(
                            &mut tx,
                            tenant,
                            &actor,
                            SubscriptionId(sub.id),
                            fallback,
                            *reason,
                            Some(note),
                            now,
                        )
                        .await
                        .or_else(|e| {
                            if matches!(e, AppError::Conflict(_)) {
                                Ok(sub.clone())
                            } else {
                                Err(e)
                            }
                        })?;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    tx.commit().await?;
    load_receivables(ctx, tenant, now).await?;
    load_cases(ctx, tenant, now).await?;
    Ok(BOOK.len())
}

/// A few cases in the queue: the provider's fraud detection on one customer, an Acceptable
/// Use Policy notice about another — raised through the same paths as real ones.
async fn load_cases(ctx: &Arc<Ctx>, tenant: TenantId, now: Timestamp) -> Result<(), AppError> {
    let db = &ctx.db;
    let actor = Actor::system("demo-loader");
    let customers =
        riskdesk_storage::customers::list(db, tenant, &Default::default(), None, 3).await?;
    let mut tx = ctx.begin().await?;
    if let Some(c) = customers.first() {
        crate::provider::events::raise_provider_alert(
            &mut tx,
            tenant,
            &actor,
            c.id,
            "provider.fraud_event",
            "critical",
            "Partner Center fraud event: NetworkConnectionsToCryptoMiningPools",
            &serde_json::json!({"provider_fraud_event": {"eventType": "NetworkConnectionsToCryptoMiningPools",
                "hitCount": 14, "resourceName": "vm-gpu-01", "eventStatus": "Active"}}),
            now,
        )
        .await?;
    }
    if let Some(c) = customers.get(1) {
        crate::provider::events::record_notice(
            &mut tx,
            tenant,
            &actor,
            crate::provider::events::NoticeInput {
                customer: Some(c.id),
                message_id: Some("<demo-aup-1@microsoft.example>".into()),
                sender: "no-reply@microsoft.com".into(),
                subject: "Acceptable Use Policy violation: outbound spam".into(),
                body: "We detected outbound spam from one of your customer's subscriptions. Please investigate and respond within 24 hours.".into(),
                provider_action: Some("throttled outbound port 25".into()),
                requested_action: Some("confirm remediation".into()),
                ..Default::default()
            },
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Two invoices per demo customer (one issued 75 days ago, due 45 days ago; one current), the
/// old one paid, unpaid or half paid, and a few prepaid balances: the aging report, exposure and
/// the dunning ladder (which the server runs for today at start) have something to show.
async fn load_receivables(
    ctx: &Arc<Ctx>,
    tenant: TenantId,
    now: Timestamp,
) -> Result<(), AppError> {
    let db = &ctx.db;
    use riskdesk_domain::billing::Day;
    use riskdesk_domain::money::{Currency, Money};
    let actor = Actor::system("demo-loader");
    let eur = Currency::parse("EUR").map_err(|e| AppError::Internal(e.0))?;
    let policy = riskdesk_domain::billing::dunning::Policy::default();
    let today = Day::of(now);
    let customers =
        riskdesk_storage::customers::list(db, tenant, &Default::default(), None, 500).await?;
    let mut tx = ctx.begin().await?;
    for (i, c) in customers.iter().enumerate() {
        let amount = Money {
            minor: 10_000 + (i as i64 * 3_750) % 250_000,
            currency: eur,
        };
        for (k, (issued, due)) in [(-75, -45), (-10, 20)].into_iter().enumerate() {
            let inv = crate::billing::create_invoice(
                &mut tx,
                tenant,
                &actor,
                crate::billing::NewInvoice {
                    customer: CustomerId(c.id),
                    number: format!("DEMO-{i:02}-{}", k + 1),
                    issue: today.plus(issued),
                    due: today.plus(due),
                    currency: eur,
                    lines: vec![("Azure plan usage".to_owned(), amount)],
                    total: amount,
                    subscriptions: vec![],
                },
                now,
            )
            .await?;
            let paid = match (k, i % 4) {
                (0, 0) | (0, 3) => amount.minor,
                (0, 2) => amount.minor / 2,
                _ => 0,
            };
            if paid > 0 {
                crate::billing::record_payment(
                    &mut tx,
                    tenant,
                    &actor,
                    &policy,
                    crate::billing::NewPayment {
                        customer: CustomerId(c.id),
                        amount: Money {
                            minor: paid,
                            currency: eur,
                        },
                        received_at: today.plus(due - 2).start(),
                        reference: Some(format!("demo transfer {i}")),
                        invoice: Some(inv.id),
                        top_up: false,
                    },
                    now,
                )
                .await?;
            }
        }
        if i % 8 == 5 {
            crate::billing::record_payment(
                &mut tx,
                tenant,
                &actor,
                &policy,
                crate::billing::NewPayment {
                    customer: CustomerId(c.id),
                    amount: Money {
                        minor: 50_000,
                        currency: eur,
                    },
                    received_at: today.plus(-5).start(),
                    reference: Some("demo prepayment".into()),
                    invoice: None,
                    top_up: true,
                },
                now,
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
