use jiff::Timestamp;
use riskdesk_domain::customer::{CustomerPatch, NewCustomer};
use riskdesk_domain::{CustomerId, TenantId};
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike};
use crate::time::to_micros;
use crate::{Db, Result, StorageError, Tx, conflict_on_unique};

/// A stored customer. Serialises as the audit snapshot of the customer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CustomerRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub external_id: Option<String>,
    pub name: String,
    pub domain: String,
    pub country: String,
    pub email: String,
    pub phone: Option<String>,
    pub locale: String,
    pub cloud_instance: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Credit terms from onboarding (absent for customers registered directly).
    pub credit_limit_minor: Option<i64>,
    pub credit_currency: Option<String>,
    pub prepayment_required: bool,
    /// `restricted` until the admin-access conditions are met, then `granted`.
    pub admin_access: String,
    /// `normal`, `review` (linked to fraud) or `fraudulent`.
    pub risk_status: String,
    pub signup_id: Option<Uuid>,
    /// When the customer passed MFA at sign-up or an analyst verified it.
    pub verified_at: Option<i64>,
    /// When the first payment was received (set by billing).
    pub first_payment_at: Option<i64>,
    pub admin_access_granted_at: Option<i64>,
    /// Set by the dunning ladder: new subscriptions are refused while it holds.
    pub purchases_blocked: bool,
}

impl FromRow for CustomerRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(CustomerRow {
            id: r.uuid("id")?,
            tenant_id: r.uuid("tenant_id")?,
            external_id: r.opt_text("external_id")?,
            name: r.text("name")?,
            domain: r.text("domain")?,
            country: r.text("country")?,
            email: r.text("email")?,
            phone: r.opt_text("phone")?,
            locale: r.text("locale")?,
            cloud_instance: r.text("cloud_instance")?,
            created_at: r.i64("created_at")?,
            updated_at: r.i64("updated_at")?,
            credit_limit_minor: r.opt_i64("credit_limit_minor")?,
            credit_currency: r.opt_text("credit_currency")?,
            prepayment_required: r.i64("prepayment_required")? != 0,
            admin_access: r.text("admin_access")?,
            risk_status: r.text("risk_status")?,
            signup_id: r.opt_uuid("signup_id")?,
            verified_at: r.opt_i64("verified_at")?,
            first_payment_at: r.opt_i64("first_payment_at")?,
            admin_access_granted_at: r.opt_i64("admin_access_granted_at")?,
            purchases_blocked: r.i64("purchases_blocked")? != 0,
        })
    }
}

const SELECT: &str = "SELECT id, tenant_id, external_id, name, domain, country, email, phone, locale, cloud_instance, \
                      created_at, updated_at, credit_limit_minor, credit_currency, prepayment_required, admin_access, \
                      risk_status, signup_id, verified_at, first_payment_at, admin_access_granted_at, purchases_blocked FROM customers";

fn external_id_taken(ext: &Option<String>) -> impl FnOnce() -> String + '_ {
    move || {
        format!(
            "external_id '{}' is already used by another customer of this tenant",
            ext.as_deref().unwrap_or("")
        )
    }
}

pub async fn insert(
    tx: &mut Tx,
    tenant: TenantId,
    c: &NewCustomer,
    now: Timestamp,
) -> Result<CustomerRow> {
    let row = new_row(CustomerId::new(), tenant, c, now);
    tx.execute(
        Q::new(
            "INSERT INTO customers (id, tenant_id, external_id, name, domain, country, email, phone, locale, cloud_instance, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(row.id)
        .bind(row.tenant_id)
        .bind(&row.external_id)
        .bind(&row.name)
        .bind(&row.domain)
        .bind(&row.country)
        .bind(&row.email)
        .bind(&row.phone)
        .bind(&row.locale)
        .bind(&row.cloud_instance)
        .bind(row.created_at)
        .bind(row.updated_at),
    )
    .await
    .map_err(|e| conflict_on_unique(e, external_id_taken(&row.external_id)))?;
    Ok(row)
}

/// Credit terms decided at onboarding.
pub struct OnboardingTerms<'a> {
    pub limit_minor: i64,
    pub currency: &'a str,
    pub prepayment_required: bool,
    pub signup: Uuid,
}

/// Creates an approved sign-up's customer with its credit terms in one statement. Returns the
/// row as created and the row with its terms (the `customer.create` and
/// `customer.credit_terms` audit entries, as if the two had been separate writes).
pub async fn insert_onboarded(
    tx: &mut Tx,
    tenant: TenantId,
    id: CustomerId,
    c: &NewCustomer,
    terms: &OnboardingTerms<'_>,
    now: Timestamp,
) -> Result<(CustomerRow, CustomerRow)> {
    let created = new_row(id, tenant, c, now);
    let row = CustomerRow {
        credit_limit_minor: Some(terms.limit_minor),
        credit_currency: Some(terms.currency.to_owned()),
        prepayment_required: terms.prepayment_required,
        signup_id: Some(terms.signup),
        ..created.clone()
    };
    tx.execute(
        Q::new(
            "INSERT INTO customers (id, tenant_id, external_id, name, domain, country, email, phone, locale, cloud_instance, \
             created_at, updated_at, credit_limit_minor, credit_currency, prepayment_required, signup_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(row.id)
        .bind(row.tenant_id)
        .bind(&row.external_id)
        .bind(&row.name)
        .bind(&row.domain)
        .bind(&row.country)
        .bind(&row.email)
        .bind(&row.phone)
        .bind(&row.locale)
        .bind(&row.cloud_instance)
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(row.credit_limit_minor)
        .bind(&row.credit_currency)
        .bind(i64::from(row.prepayment_required))
        .bind(row.signup_id),
    )
    .await
    .map_err(|e| conflict_on_unique(e, external_id_taken(&row.external_id)))?;
    Ok((created, row))
}

fn new_row(id: CustomerId, tenant: TenantId, c: &NewCustomer, now: Timestamp) -> CustomerRow {
    let now = to_micros(now);
    CustomerRow {
        id: id.0,
        tenant_id: tenant.0,
        external_id: c.external_id.clone(),
        name: c.name.clone(),
        domain: c.domain.to_string(),
        country: c.country.to_string(),
        email: c.email.to_string(),
        phone: c.phone.as_ref().map(|p| p.to_string()),
        locale: c.locale.as_str().to_owned(),
        cloud_instance: c.cloud_instance.as_str().to_owned(),
        created_at: now,
        updated_at: now,
        credit_limit_minor: None,
        credit_currency: None,
        prepayment_required: false,
        admin_access: "restricted".into(),
        risk_status: "normal".into(),
        signup_id: None,
        verified_at: None,
        first_payment_at: None,
        admin_access_granted_at: None,
        purchases_blocked: false,
    }
}

fn by_id(tenant: TenantId, id: CustomerId) -> Q {
    Q::new(format!("{SELECT} WHERE tenant_id = $1 AND id = $2"))
        .bind(tenant.0)
        .bind(id.0)
}

/// Reads a customer of `tenant`; another tenant's customer is simply not found.
pub async fn get(db: &Db, tenant: TenantId, id: CustomerId) -> Result<CustomerRow> {
    db.fetch_optional(by_id(tenant, id))
        .await?
        .ok_or(StorageError::NotFound("customer"))
}

pub async fn get_tx(tx: &mut Tx, tenant: TenantId, id: CustomerId) -> Result<CustomerRow> {
    tx.fetch_optional(by_id(tenant, id))
        .await?
        .ok_or(StorageError::NotFound("customer"))
}

/// A row of [`with_wallet_q`]: the customer and one currency of its prepaid balance.
pub struct CustomerWalletRow(CustomerRow, Option<(String, i64)>);

impl FromRow for CustomerWalletRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        let wallet = match (r.opt_text("wallet_currency")?, r.opt_i64("wallet_minor")?) {
            (Some(c), Some(m)) => Some((c, m)),
            _ => None,
        };
        Ok(CustomerWalletRow(CustomerRow::from_row(r)?, wallet))
    }
}

/// A customer and its prepaid balance per currency (every wallet entry, whatever its time) in
/// one statement: no row when the tenant has no such customer.
pub fn with_wallet_q(tenant: TenantId, id: CustomerId) -> Q {
    Q::new(format!(
        "SELECT c.*, w.currency AS wallet_currency, w.minor AS wallet_minor \
         FROM ({SELECT} WHERE tenant_id = $1 AND id = $2) c LEFT JOIN \
         (SELECT currency, CAST(SUM(amount_minor) AS BIGINT) AS minor FROM wallet_entries \
          WHERE tenant_id = $1 AND customer_id = $2 GROUP BY currency) w ON 1 = 1 \
         ORDER BY w.currency"
    ))
    .bind(tenant.0)
    .bind(id.0)
}

/// The customer and its balances out of [`with_wallet_q`]'s rows.
pub fn fold_wallet(rows: Vec<CustomerWalletRow>) -> Result<(CustomerRow, Vec<(String, i64)>)> {
    let mut rows = rows.into_iter();
    let CustomerWalletRow(customer, first) =
        rows.next().ok_or(StorageError::NotFound("customer"))?;
    let wallet = first.into_iter().chain(rows.filter_map(|r| r.1)).collect();
    Ok((customer, wallet))
}

/// Filters for listing; `None` means "any".
#[derive(Clone, Debug, Default)]
pub struct CustomerFilter {
    pub country: Option<String>,
    pub cloud_instance: Option<String>,
    pub external_id: Option<String>,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
}

/// One page in id (creation) order, starting after `after`. Returns up to `limit` rows.
pub async fn list(
    db: &Db,
    tenant: TenantId,
    f: &CustomerFilter,
    after: Option<CustomerId>,
    limit: u32,
) -> Result<Vec<CustomerRow>> {
    // One static text for both backends: an absent filter binds NULL and matches everything.
    let pattern = f.name_contains.as_ref().map(|s| {
        let escaped = s
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let q = Q::new(format!(
        "{SELECT} WHERE tenant_id = $1 \
         AND ($2 IS NULL OR country = $2) \
         AND ($3 IS NULL OR cloud_instance = $3) \
         AND ($4 IS NULL OR external_id = $4) \
         AND ($5 IS NULL OR LOWER(name) LIKE $5 ESCAPE '\\') \
         AND ($6 IS NULL OR id > $6) \
         ORDER BY id LIMIT $7"
    ))
    .bind(tenant.0)
    .bind(&f.country)
    .bind(&f.cloud_instance)
    .bind(&f.external_id)
    .bind(pattern)
    .bind(after.map(|a| a.0))
    .bind(i64::from(limit));
    db.fetch_all(q).await
}

/// Reads a customer, applies `mutate`, and — if anything changed — stamps `updated_at` and
/// writes every mutable column in one statement. Returns (before, after); every change to a
/// customer goes through here, so there is one UPDATE to keep in step with the table.
/// Sets `purchases_blocked` on many customers at once (the dunning run's blocks and lifts:
/// one statement per 1,000 customers instead of a read and a write each).
pub async fn set_purchases_blocked_many(
    tx: &mut Tx,
    tenant: TenantId,
    changes: &[(uuid::Uuid, bool)],
    now: Timestamp,
) -> Result<()> {
    if tx.backend() == crate::Backend::Postgres && !changes.is_empty() {
        // Joined by id through `unnest` (a VALUES list was hash-joined against the table).
        tx.execute(
            Q::new(
                "UPDATE customers SET purchases_blocked = v.b, updated_at = $2 \
                 FROM unnest($3::uuid[], $4::int8[]) AS v(id, b) \
                 WHERE customers.tenant_id = $1 AND customers.id = v.id",
            )
            .bind(tenant.0)
            .bind(to_micros(now))
            .bind(changes.iter().map(|c| c.0).collect::<Vec<uuid::Uuid>>())
            .bind(
                changes
                    .iter()
                    .map(|c| Some(i64::from(c.1)))
                    .collect::<Vec<Option<i64>>>(),
            ),
        )
        .await?;
        return Ok(());
    }
    for chunk in changes.chunks(1000) {
        let values = (0..chunk.len())
            .map(|i| format!("(${}, ${})", 3 + 2 * i, 4 + 2 * i))
            .collect::<Vec<_>>()
            .join(", ");
        let mut q = Q::new(format!(
            "UPDATE customers SET purchases_blocked = v.column2, updated_at = $2 FROM (VALUES {values}) AS v \
             WHERE customers.tenant_id = $1 AND customers.id = v.column1"
        ))
        .bind(tenant.0)
        .bind(to_micros(now));
        for (id, blocked) in chunk {
            q = q.bind(*id).bind(i64::from(*blocked));
        }
        tx.execute(q).await?;
    }
    Ok(())
}

pub async fn change(
    tx: &mut Tx,
    tenant: TenantId,
    id: CustomerId,
    now: Timestamp,
    mutate: impl FnOnce(&mut CustomerRow),
) -> Result<(CustomerRow, CustomerRow)> {
    let before = get_tx(tx, tenant, id).await?;
    let mut after = before.clone();
    mutate(&mut after);
    if after == before {
        return Ok((before, after));
    }
    after.updated_at = to_micros(now);
    tx.execute(
        Q::new(
            "UPDATE customers SET external_id = $3, name = $4, domain = $5, country = $6, email = $7, phone = $8, locale = $9, \
             updated_at = $10, credit_limit_minor = $11, credit_currency = $12, prepayment_required = $13, admin_access = $14, \
             risk_status = $15, signup_id = $16, verified_at = $17, first_payment_at = $18, admin_access_granted_at = $19, \
             purchases_blocked = $20 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(id.0)
        .bind(&after.external_id)
        .bind(&after.name)
        .bind(&after.domain)
        .bind(&after.country)
        .bind(&after.email)
        .bind(&after.phone)
        .bind(&after.locale)
        .bind(after.updated_at)
        .bind(after.credit_limit_minor)
        .bind(&after.credit_currency)
        .bind(i64::from(after.prepayment_required))
        .bind(&after.admin_access)
        .bind(&after.risk_status)
        .bind(after.signup_id)
        .bind(after.verified_at)
        .bind(after.first_payment_at)
        .bind(after.admin_access_granted_at)
        .bind(i64::from(after.purchases_blocked)),
    )
    .await
    .map_err(|e| conflict_on_unique(e, external_id_taken(&after.external_id)))?;
    Ok((before, after))
}

/// Applies a patch; returns (before, after). A patch that changes nothing writes nothing.
pub async fn update(
    tx: &mut Tx,
    tenant: TenantId,
    id: CustomerId,
    patch: &CustomerPatch,
    now: Timestamp,
) -> Result<(CustomerRow, CustomerRow)> {
    change(tx, tenant, id, now, |c| {
        if let Some(v) = &patch.name {
            c.name = v.clone();
        }
        if let Some(v) = &patch.domain {
            c.domain = v.to_string();
        }
        if let Some(v) = &patch.country {
            c.country = v.to_string();
        }
        if let Some(v) = &patch.email {
            c.email = v.to_string();
        }
        if let Some(v) = &patch.phone {
            c.phone = v.as_ref().map(|p| p.to_string());
        }
        if let Some(v) = &patch.locale {
            c.locale = v.as_str().to_owned();
        }
        if let Some(v) = &patch.external_id {
            c.external_id = v.clone();
        }
    })
    .await
}

pub async fn count(db: &Db, tenant: TenantId) -> Result<i64> {
    let n: Option<i64> = db
        .fetch_optional(
            Q::new("SELECT COUNT(*) AS n FROM customers WHERE tenant_id = $1").bind(tenant.0),
        )
        .await?;
    Ok(n.unwrap_or(0))
}

/// Sets the credit terms decided at onboarding; returns (before, after).
#[allow(clippy::too_many_arguments)]
pub async fn set_terms(
    tx: &mut Tx,
    tenant: TenantId,
    id: CustomerId,
    limit_minor: i64,
    currency: &str,
    prepayment_required: bool,
    signup: Option<Uuid>,
    now: Timestamp,
) -> Result<(CustomerRow, CustomerRow)> {
    change(tx, tenant, id, now, |c| {
        c.credit_limit_minor = Some(limit_minor);
        c.credit_currency = Some(currency.to_owned());
        c.prepayment_required = prepayment_required;
        c.signup_id = signup.or(c.signup_id);
    })
    .await
}

/// Sets `risk_status` (`normal`, `review`, `fraudulent`); returns (before, after).
pub async fn set_risk_status(
    tx: &mut Tx,
    tenant: TenantId,
    id: CustomerId,
    status: &str,
    now: Timestamp,
) -> Result<(CustomerRow, CustomerRow)> {
    change(tx, tenant, id, now, |c| c.risk_status = status.to_owned()).await
}

/// Records that the customer is verified (MFA passed or an analyst verified it).
pub async fn set_verified(
    tx: &mut Tx,
    tenant: TenantId,
    id: CustomerId,
    now: Timestamp,
) -> Result<(CustomerRow, CustomerRow)> {
    change(tx, tenant, id, now, |c| {
        c.verified_at = c.verified_at.or(Some(to_micros(now)))
    })
    .await
}

/// Grants full admin access; returns (before, after).
pub async fn grant_admin_access(
    tx: &mut Tx,
    tenant: TenantId,
    id: CustomerId,
    now: Timestamp,
) -> Result<(CustomerRow, CustomerRow)> {
    change(tx, tenant, id, now, |c| {
        c.admin_access = "granted".into();
        c.admin_access_granted_at = Some(to_micros(now));
    })
    .await
}

/// Several customers by id, inside a unit of work (missing ids are simply absent).
pub async fn get_many_tx(tx: &mut Tx, tenant: TenantId, ids: &[Uuid]) -> Result<Vec<CustomerRow>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let (cond, args) = crate::query::any_uuid(tx.backend(), "id", 2, ids);
    let mut q = Q::new(format!(
        "{SELECT} WHERE tenant_id = $1 AND {cond} ORDER BY id",
    ))
    .bind(tenant.0);
    q.args.extend(args);
    tx.fetch_all(q).await
}

/// Several customers by id (missing ids are simply absent).
pub async fn get_many(db: &Db, tenant: TenantId, ids: &[Uuid]) -> Result<Vec<CustomerRow>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let (cond, args) = crate::query::any_uuid(db.backend(), "id", 2, ids);
    let mut q = Q::new(format!(
        "{SELECT} WHERE tenant_id = $1 AND {cond} ORDER BY id",
    ))
    .bind(tenant.0);
    q.args.extend(args);
    db.fetch_all(q).await
}

/// Customers whose name, external id, domain or email contains `text` (case-insensitive), or
/// whose id is `text`: the dashboard's search. Newest first.
pub async fn search(db: &Db, tenant: TenantId, text: &str, limit: u32) -> Result<Vec<CustomerRow>> {
    let escaped = text
        .trim()
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let pattern = format!("%{escaped}%");
    let id = text.trim().parse::<Uuid>().ok();
    db.fetch_all(
        Q::new(format!(
            "{SELECT} WHERE tenant_id = $1 AND (id = $2 OR LOWER(name) LIKE $3 ESCAPE '\\' \
             OR LOWER(COALESCE(external_id, '')) LIKE $3 ESCAPE '\\' OR LOWER(domain) LIKE $3 ESCAPE '\\' \
             OR LOWER(email) LIKE $3 ESCAPE '\\') ORDER BY id DESC LIMIT $4"
        ))
        .bind(tenant.0)
        .bind(id)
        .bind(pattern)
        .bind(i64::from(limit)),
    )
    .await
}
