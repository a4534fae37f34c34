//! Sign-up assessment and review as units of work: velocity counted and fraud links looked up
//! inside the same transaction that stores the assessment, so concurrent bursts are counted
//! exactly; approval creates the customer with its credit terms.

pub mod batch;
pub mod mfa;
pub mod request;
pub mod risk;
pub mod velocity;

use jiff::Timestamp;
use riskdesk_connectors::verification::{
    Verification, VerificationClient, VerifyCompany, VerifyContact, VerifyRequest,
};
use riskdesk_domain::audit::Actor;
use riskdesk_domain::customer::NewCustomer;
use riskdesk_domain::onboarding::assess::VerificationFacts;
use riskdesk_domain::onboarding::assess::{
    PaymentInstrument, SignupFacts, SignupInput, VelocityKind, assess, velocity_keys,
};
use riskdesk_domain::onboarding::{Assessment, Decision};
use riskdesk_domain::{CloudInstance, CustomerId, Locale, Phone, TenantId};
use riskdesk_storage::Db;
use riskdesk_storage::audit::{self, AuditDraft};
use riskdesk_storage::customers::{self, CustomerRow};
use riskdesk_storage::signups::{self, SignupRow};
use riskdesk_storage::time::to_micros;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::kernel::error::AppError;
use crate::kernel::{Event, Uow};
use crate::onboarding::risk::RiskEngine;
use crate::onboarding::velocity::{Recorded, VelocityBook};

/// What is kept besides the risk inputs, to create the customer on approval.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CustomerDetails {
    pub company_name: String,
    pub address: Option<String>,
    pub contact_name: Option<String>,
    pub locale: Locale,
    pub cloud_instance: CloudInstance,
}

/// The stored outcome (also the body of the assessment response, minus status fields).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredOutcome {
    pub decision: String,
    pub score: u32,
    pub reasons: Vec<StoredReason>,
    pub credit_limit: String,
    pub currency: String,
    pub prepayment_required: bool,
    pub mfa_required: bool,
    pub skipped: Vec<StoredSkip>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredReason {
    pub code: String,
    pub message: String,
    pub points: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredSkip {
    pub signal: String,
    pub why: String,
}

impl From<&Assessment> for StoredOutcome {
    fn from(a: &Assessment) -> Self {
        StoredOutcome {
            decision: a.decision.as_str().to_owned(),
            score: a.score,
            reasons: a
                .reasons
                .iter()
                .map(|r| StoredReason {
                    code: r.code.to_owned(),
                    message: r.message.clone(),
                    points: r.points,
                })
                .collect(),
            credit_limit: a.credit_limit.to_decimal_string(),
            currency: a.credit_limit.currency.code().to_owned(),
            prepayment_required: a.prepayment_required,
            mfa_required: a.mfa_required,
            skipped: a
                .skipped
                .iter()
                .map(|s| StoredSkip {
                    signal: s.signal.to_owned(),
                    why: s.why.to_owned(),
                })
                .collect(),
        }
    }
}

/// The identifiers a sign-up is linked by (kind, value).
fn identifiers(input: &SignupInput) -> Vec<(String, String)> {
    let mut ids = vec![
        (
            "email".to_owned(),
            input.email.to_string().to_ascii_lowercase(),
        ),
        ("ip".to_owned(), input.ip.to_string()),
    ];
    if let Some(p) = &input.phone {
        ids.push(("phone".into(), p.clone()));
    }
    if let Some(d) = &input.device_id {
        ids.push(("device".into(), d.clone()));
    }
    if let Some(PaymentInstrument::Card { bin, last4, .. }) = &input.payment {
        ids.push(("card".into(), format!("{bin}:{last4}")));
    }
    ids
}

/// The block-list entries in force on the assessment date that the sign-up matches.
async fn blocked_identifiers(
    db: &Db,
    tenant: TenantId,
    input: &SignupInput,
) -> Result<Vec<String>, AppError> {
    use riskdesk_domain::response::blocklist::{self, BlockKind, Identifiers};
    let email = input.email.to_string().to_ascii_lowercase();
    let ids = Identifiers {
        domains: vec![
            email.rsplit('@').next().unwrap_or_default().to_owned(),
            input.company_domain.to_string().to_ascii_lowercase(),
        ],
        email: Some(email),
        phone: input.phone.clone(),
        ip: Some(input.ip),
        card_prefix: match &input.payment {
            Some(PaymentInstrument::Card { bin, .. }) => Some(bin.clone()),
            _ => None,
        },
        device: input.device_id.clone(),
    };
    let exact: Vec<(String, String)> = ids
        .exact_keys()
        .into_iter()
        .map(|(k, v)| (k.as_str().to_owned(), v))
        .collect();
    let found =
        riskdesk_storage::blocklist::candidates(db, tenant, &exact, to_micros(input.as_of)).await?;
    let entries: Vec<(BlockKind, String)> = found
        .into_iter()
        .filter_map(|(k, v)| BlockKind::parse(&k).map(|k| (k, v)))
        .collect();
    Ok(blocklist::matches(&entries, &ids))
}

#[derive(Serialize, Deserialize)]
struct StoredInput {
    request: serde_json::Value,
    details: CustomerDetails,
}

/// Asks the verification provider (if one is configured) about a sign-up. Called before the
/// unit of work starts, so no database lock is held across the network call.
pub async fn verify(
    client: Option<&VerificationClient>,
    id: Uuid,
    input: &SignupInput,
    details: &CustomerDetails,
) -> VerificationFacts {
    let Some(client) = client else {
        return VerificationFacts::NotConfigured;
    };
    let req = VerifyRequest {
        reference: id.to_string(),
        company: VerifyCompany {
            name: details.company_name.clone(),
            domain: input.company_domain.to_string(),
            country: input.company_country.to_string(),
        },
        contact: VerifyContact {
            email: input.email.to_string(),
            phone: input.phone.clone(),
            name: details.contact_name.clone(),
        },
    };
    match client.verify(&req).await {
        Verification::Answered {
            identity_verified,
            credit_score,
            ..
        } => VerificationFacts::Answered {
            identity_verified,
            credit_score,
        },
        Verification::Unavailable { why } => {
            tracing::warn!(signup = %id, %why, "verification unavailable; the sign-up is held for review");
            VerificationFacts::Unavailable
        }
    }
}

/// What is known about a sign-up before its unit of work starts: read outside SQLite's single
/// writer, so assessments do not queue behind each other for it.
pub struct Prepared {
    /// The velocity rules that apply: (kind, value, window seconds, limit).
    velocity: Vec<(VelocityKind, String, u64, u32)>,
    /// This sign-up's records in the velocity book: kept once the unit of work commits.
    pub recorded: Option<Recorded>,
    /// No `as_of` was given: velocity windows have no upper end (see `VelocityBook`).
    live: bool,
    ids: Vec<(String, String)>,
    fraud_links: Vec<String>,
    blocked: Vec<String>,
    /// Decided before the unit of work when every fact is known (velocity counted in memory);
    /// `None`: velocity is counted, and the sign-up decided, in the unit of work.
    decided: Option<Assessment>,
}

/// Reads what the assessment needs besides velocity counted in SQL: block-list matches and
/// fraud links (committed state, from a reader), and, with a velocity book, the velocity
/// counts (this sign-up recorded in the same step).
pub async fn prepare(
    db: &Db,
    book: Option<&VelocityBook>,
    tenant: TenantId,
    engine: &RiskEngine,
    input: &SignupInput,
    live: bool,
    verification: &VerificationFacts,
) -> Result<Prepared, AppError> {
    // Velocity: one key per configured rule that applies to this sign-up.
    let keys = velocity_keys(input, &engine.data.email_lists);
    let velocity: Vec<_> = engine
        .policy
        .velocity
        .iter()
        .filter_map(|(kind, window, max)| {
            keys.iter()
                .find(|(k, _)| k == kind)
                .map(|(k, v)| (*k, v.clone(), *window, *max))
        })
        .collect();
    let (counts, recorded) = match book {
        Some(book) => {
            let rules: Vec<(VelocityKind, String, u64)> = velocity
                .iter()
                .map(|(k, v, w, _)| (*k, v.clone(), *w))
                .collect();
            let c = book
                .count_and_record(db, tenant, input.as_of, live, &rules)
                .await?;
            (c.counts, c.recorded)
        }
        None => (None, None),
    };
    let ids = identifiers(input);
    let blocked = blocked_identifiers(db, tenant, input).await?;
    let fraud_links = signups::fraud_links(db, tenant, &ids).await?;
    // Every fact known: decide now, outside SQLite's single writer (the assessment's phone
    // parsing alone was 7 % of the writer's time).
    let decided = counts.map(|counts| {
        let facts = facts(
            &velocity,
            counts,
            fraud_links.clone(),
            verification.clone(),
            blocked.clone(),
        );
        assess(input, &facts, &engine.data, &engine.policy)
    });
    Ok(Prepared {
        velocity,
        live,
        recorded,
        ids,
        fraud_links,
        blocked,
        decided,
    })
}

fn facts(
    velocity: &[(VelocityKind, String, u64, u32)],
    counts: Vec<u32>,
    fraud_links: Vec<String>,
    verification: VerificationFacts,
    blocked: Vec<String>,
) -> SignupFacts {
    SignupFacts {
        velocity: velocity
            .iter()
            .zip(counts)
            .map(|((k, v, _, _), n)| (*k, v.clone(), n))
            .collect(),
        fraud_links,
        verification,
        blocked,
    }
}

/// Velocity counted inside the unit of work (PostgreSQL, or a window older than the in-memory
/// book holds): advisory locks per value on PostgreSQL, then insert and count.
async fn counted_in_tx(
    tx: &mut Uow,
    tenant: TenantId,
    id: Uuid,
    input: &SignupInput,
    prepared: &Prepared,
    pairs: &[(String, String)],
) -> Result<Vec<u32>, AppError> {
    signups::lock_velocity_keys(tx, tenant, pairs).await?;
    // Counting stops just past the limit: that is all the decision needs.
    let rows: Vec<(String, String, u64, u32)> = prepared
        .velocity
        .iter()
        .map(|(k, v, w, max)| (k.as_str().to_owned(), v.clone(), *w, max.saturating_add(1)))
        .collect();
    Ok(signups::count_velocity_until(tx, tenant, id, input.as_of, !prepared.live, &rows).await?)
}

#[allow(clippy::too_many_arguments)]
pub async fn assess_signup(
    tx: &mut Uow,
    id: Uuid,
    verification: VerificationFacts,
    tenant: TenantId,
    actor: &Actor,
    engine: &RiskEngine,
    input: &SignupInput,
    details: &CustomerDetails,
    request: serde_json::Value,
    prepared: &mut Prepared,
    now: Timestamp,
) -> Result<(SignupRow, Assessment), AppError> {
    let pairs: Vec<(String, String)> = prepared
        .velocity
        .iter()
        .map(|(k, v, _, _)| (k.as_str().to_owned(), v.clone()))
        .collect();
    let assessment = if let Some(assessment) = prepared.decided.take() {
        signups::record_velocity(tx, tenant, id, input.as_of, &pairs).await?;
        assessment
    } else {
        let counts = counted_in_tx(tx, tenant, id, input, prepared, &pairs).await?;
        let facts = facts(
            &prepared.velocity,
            counts,
            std::mem::take(&mut prepared.fraud_links),
            verification,
            std::mem::take(&mut prepared.blocked),
        );
        assess(input, &facts, &engine.data, &engine.policy)
    };
    let outcome = StoredOutcome::from(&assessment);
    let status = match assessment.decision {
        Decision::Approve => "approved",
        Decision::Review => "pending_review",
        Decision::Reject => "rejected",
    };
    let stored_input = StoredInput {
        request,
        details: details.clone(),
    };
    let customer_id = (assessment.decision == Decision::Approve).then(CustomerId::new);
    let row = SignupRow {
        id,
        tenant_id: tenant.0,
        created_at: to_micros(now),
        as_of: to_micros(input.as_of),
        decision: assessment.decision.as_str().to_owned(),
        score: i64::from(assessment.score),
        status: status.to_owned(),
        input_json: serde_json::to_string(&stored_input)
            .map_err(|e| AppError::Internal(e.to_string()))?,
        outcome_json: serde_json::to_string(&outcome)
            .map_err(|e| AppError::Internal(e.to_string()))?,
        customer_id: customer_id.map(|c| c.0),
        reviewed_at: None,
        review_note: None,
    };
    let mut drafts = vec![AuditDraft::new(actor, "signup.assess", "signup", id).after(&outcome)];
    let mut owners = vec![("signup", id)];
    // An approval stores the customer with its terms first (the sign-up row refers to it).
    if let Some(cid) = customer_id {
        let (created, with_terms) =
            insert_customer(tx, tenant, cid, input, details, &outcome, id, now).await?;
        drafts.extend(customer_drafts(actor, &created, &with_terms));
        owners.push(("customer", cid.0));
    }
    signups::insert(tx, &row).await?;
    signups::add_identifiers_of(tx, tenant, &owners, &prepared.ids).await?;
    audit::append_many(tx, tenant, now, drafts).await?;
    if assessment.decision == Decision::Review {
        // Response opens the review case: `wiring`.
        tx.emit(Event::SignupHeldForReview {
            tenant,
            at: now,
            actor,
            signup: id,
            company_name: &details.company_name,
            score: assessment.score,
        })
        .await?;
    }
    // Monitoring runs the tenant's `signup` rules on it: `wiring`.
    tx.emit(Event::SignupAssessed {
        tenant,
        at: now,
        signup: &row,
        cloud_instance: details.cloud_instance.as_str(),
        input,
        assessment: &assessment,
    })
    .await?;
    Ok((row, assessment))
}

fn new_customer(input: &SignupInput, details: &CustomerDetails) -> NewCustomer {
    NewCustomer {
        name: details.company_name.clone(),
        domain: input.company_domain.clone(),
        country: input.company_country,
        email: input.email.clone(),
        // An invalid number was a risk signal; the customer record keeps only a valid one.
        phone: input.phone.as_deref().and_then(|p| Phone::parse(p).ok()),
        locale: details.locale,
        cloud_instance: details.cloud_instance,
        external_id: None,
    }
}

fn terms_of(outcome: &StoredOutcome) -> Result<(i64, String), AppError> {
    let currency = riskdesk_domain::money::Currency::parse(&outcome.currency)
        .map_err(|e| AppError::Internal(e.0))?;
    let limit = riskdesk_domain::money::Money::parse(&outcome.credit_limit, currency)
        .map_err(|e| AppError::Internal(e.0))?;
    Ok((limit.minor, currency.code().to_owned()))
}

/// An approved sign-up's customer, created with its terms in one write. Returns the row as
/// created and with its terms.
#[allow(clippy::too_many_arguments)]
async fn insert_customer(
    tx: &mut Uow,
    tenant: TenantId,
    id: CustomerId,
    input: &SignupInput,
    details: &CustomerDetails,
    outcome: &StoredOutcome,
    signup: Uuid,
    now: Timestamp,
) -> Result<(CustomerRow, CustomerRow), AppError> {
    let (limit_minor, currency) = terms_of(outcome)?;
    let terms = customers::OnboardingTerms {
        limit_minor,
        currency: &currency,
        prepayment_required: outcome.prepayment_required,
        signup,
    };
    Ok(
        customers::insert_onboarded(tx, tenant, id, &new_customer(input, details), &terms, now)
            .await?,
    )
}

/// An analyst-approved sign-up's customer: created with its terms, audited, its identifiers
/// recorded (the same writes as an approval at assessment time).
#[allow(clippy::too_many_arguments)]
async fn create_customer_from(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    input: &SignupInput,
    details: &CustomerDetails,
    outcome: &StoredOutcome,
    signup: Uuid,
    now: Timestamp,
) -> Result<CustomerRow, AppError> {
    let cid = CustomerId::new();
    let (created, with_terms) =
        insert_customer(tx, tenant, cid, input, details, outcome, signup, now).await?;
    audit::append_many(
        tx,
        tenant,
        now,
        customer_drafts(actor, &created, &with_terms),
    )
    .await?;
    signups::add_identifiers(tx, tenant, "customer", cid.0, &identifiers(input)).await?;
    Ok(with_terms)
}

/// The audit entries of a customer created from a sign-up: its creation, then its terms.
fn customer_drafts<'a>(
    actor: &'a Actor,
    created: &CustomerRow,
    with_terms: &CustomerRow,
) -> Vec<AuditDraft<'a>> {
    vec![
        AuditDraft::new(actor, "customer.create", "customer", created.id).after(created),
        AuditDraft::new(actor, "customer.credit_terms", "customer", created.id)
            .before(created)
            .after(with_terms),
    ]
}

/// An analyst's decision on a sign-up held for review.
pub async fn review_signup(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    id: Uuid,
    approve: bool,
    note: Option<&str>,
    now: Timestamp,
) -> Result<SignupRow, AppError> {
    let before = signups::get_tx(tx, tenant, id).await?;
    if before.status != "pending_review" {
        return Err(AppError::Conflict(format!(
            "sign-up {id} is '{}', not awaiting review",
            before.status
        )));
    }
    let after = if approve {
        let stored: StoredInput = serde_json::from_str(&before.input_json)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let outcome: StoredOutcome = serde_json::from_str(&before.outcome_json)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let input = crate::onboarding::request::parse_request(stored.request.clone(), now)?.0;
        let c = create_customer_from(
            tx,
            tenant,
            actor,
            &input,
            &stored.details,
            &outcome,
            id,
            now,
        )
        .await?;
        signups::set_reviewed(tx, &before, "approved", Some(c.id), note, now).await?
    } else {
        signups::set_reviewed(tx, &before, "rejected", None, note, now).await?
    };
    let mut draft = AuditDraft::new(actor, "signup.review", "signup", id)
        .before(&status_of(&before))
        .after(&status_of(&after))
        .note(note);
    draft = draft.reason(if approve { "approve" } else { "reject" });
    audit::append(tx, tenant, now, draft).await?;
    // Response closes the review case: `wiring`.
    tx.emit(Event::SignupReviewed {
        tenant,
        at: now,
        actor,
        signup: id,
        customer: after.customer_id,
        approved: approve,
    })
    .await?;
    Ok(after)
}

fn status_of(r: &SignupRow) -> serde_json::Value {
    serde_json::json!({"status": r.status, "customer_id": r.customer_id})
}

/// Marks a customer fraudulent; flags every other customer that shares an identifier with it
/// for review. Returns the linked customers and what they share.
pub async fn mark_fraudulent(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    id: CustomerId,
    note: Option<&str>,
    now: Timestamp,
) -> Result<(CustomerRow, Vec<(Uuid, String)>), AppError> {
    let current = customers::get_tx(tx, tenant, id).await?;
    // Customers registered directly have not recorded identifiers yet: record them now.
    let mut ids = vec![("email".to_owned(), current.email.to_ascii_lowercase())];
    if let Some(p) = &current.phone {
        ids.push(("phone".into(), p.clone()));
    }
    signups::add_identifiers(tx, tenant, "customer", id.0, &ids).await?;
    let (before, after) = customers::set_risk_status(tx, tenant, id, "fraudulent", now).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "customer.mark_fraudulent", "customer", id)
            .before(&before)
            .after(&after)
            .reason("fraud")
            .note(note),
    )
    .await?;
    if let Some(s) = current.signup_id {
        signups::mark_fraudulent(tx, tenant, s, now).await?;
    }
    let linked = signups::mark_fraudulent(tx, tenant, id.0, now).await?;
    let mut seen = std::collections::BTreeSet::new();
    for (other, shared) in &linked {
        if !seen.insert(*other) {
            continue;
        }
        let c = customers::get_tx(tx, tenant, CustomerId(*other)).await?;
        if c.risk_status == "normal" {
            let (b, a) =
                customers::set_risk_status(tx, tenant, CustomerId(*other), "review", now).await?;
            let why = format!("shares {shared} with customer {id}, marked fraudulent");
            audit::append(
                tx,
                tenant,
                now,
                AuditDraft::new(actor, "customer.flag_for_review", "customer", other)
                    .before(&b)
                    .after(&a)
                    .reason("fraud")
                    .note(Some(&why)),
            )
            .await?;
        }
    }
    Ok((after, linked))
}
