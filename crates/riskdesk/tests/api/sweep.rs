//! A sweep generated from the OpenAPI document the server serves, so that a route added later
//! is covered without anyone listing it here:
//!
//! - every operation that needs a token answers 401 without one, whatever its body or query;
//! - every operation's `x-permission`: each role without it is answered 403 (with a valid
//!   empty body, or with garbage and an undeclared query string: authorization comes first),
//!   each role with it is not;
//! - every operation with an `{id}`: another tenant's admin, given the ids of a tenant's real
//!   objects, is answered 404 (as for an id that does not exist), and nothing of that tenant
//!   changed.

use std::collections::BTreeMap;

use riskdesk_domain::{Permission, Role};
use serde_json::{Value, json};

use crate::helpers::{Resp, TestApp, customer_body, spawn_app};

/// Fewer operations than this: the document is not the API's (guards against an empty doc).
const AT_LEAST: usize = 80;

#[derive(Debug)]
struct Op {
    method: reqwest::Method,
    /// The path template, e.g. `/v1/customers/{id}`.
    path: String,
    /// Needs a bearer token.
    secured: bool,
    /// The permission it names (`x-permission`).
    permission: Option<Permission>,
    has_body: bool,
    /// Bodies its schema says are valid: a sample, then the sample with each other value of
    /// each of its enum fields (one may be valid where the first is not, e.g. a card needs
    /// its digits, a bank transfer nothing). Empty: it takes no JSON body.
    samples: Vec<Value>,
    /// The required query parameters, each with a value its schema allows (`kind=suspend`).
    query: String,
}

impl Op {
    fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn has_id(&self) -> bool {
        self.path.contains("{id}")
    }

    /// The path with every parameter set to `id`.
    fn at(&self, id: &str) -> String {
        let mut out = String::new();
        let mut rest = self.path.as_str();
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').expect("a closed parameter") + open;
            out.push_str(&rest[..open]);
            out.push_str(id);
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        if !self.query.is_empty() {
            out.push('?');
            out.push_str(&self.query);
        }
        out
    }
}

/// Every operation of the document served at `/openapi.json`.
/// `name=value&…` for the operation's required query parameters: the first value of the
/// parameter's enum, else a word.
fn required_query(op: &Value) -> String {
    let mut out = Vec::new();
    for p in op["parameters"].as_array().into_iter().flatten() {
        if p["in"] == "query" && p["required"] == true {
            let v = p["schema"]["enum"][0].as_str().unwrap_or("x").to_owned();
            out.push(format!("{}={v}", p["name"].as_str().unwrap_or("")));
        }
    }
    out.join("&")
}

async fn operations(app: &TestApp) -> Vec<Op> {
    let r = app
        .send(app.client.get(format!("{}/openapi.json", app.base)))
        .await;
    assert_eq!(r.status, 200);
    let paths = r.body["paths"].as_object().expect("paths").clone();
    let mut ops = Vec::new();
    for (path, item) in &paths {
        for (method, op) in item.as_object().expect("a path item") {
            let method = match method.as_str() {
                "get" | "post" | "put" | "patch" | "delete" => {
                    reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap()
                }
                _ => continue,
            };
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let permission = op.get("x-permission").map(|p| {
                p.as_str()
                    .and_then(Permission::parse)
                    .unwrap_or_else(|| panic!("{method} {path}: unknown x-permission {p}"))
            });
            assert!(
                secured || permission.is_none(),
                "{method} {path}: x-permission without security"
            );
            ops.push(Op {
                method,
                path: path.clone(),
                secured,
                permission,
                has_body: op.get("requestBody").is_some(),
                samples: op["requestBody"]["content"]["application/json"]
                    .get("schema")
                    .map(|s| samples(&r.body, s))
                    .unwrap_or_default(),
                query: required_query(op),
            });
        }
    }
    assert!(
        ops.len() >= AT_LEAST,
        "the document lists {} operations (at least {AT_LEAST} expected)",
        ops.len()
    );
    ops
}

fn random_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Calls `op` at `path`: with an empty JSON object for a body if it takes one.
async fn call(app: &TestApp, token: &str, op: &Op, path: &str) -> Resp {
    call_with(app, token, op, path, &json!({})).await
}

/// Calls `op` at `path` with `body` if it takes one.
async fn call_with(app: &TestApp, token: &str, op: &Op, path: &str, body: &Value) -> Resp {
    let mut req = app
        .client
        .request(op.method.clone(), format!("{}{path}", app.base))
        .bearer_auth(token);
    if op.has_body {
        req = req.json(body);
    }
    app.send(req).await
}

fn resolve<'a>(doc: &'a Value, mut s: &'a Value) -> &'a Value {
    while let Some(r) = s["$ref"].as_str() {
        s = doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("unresolved {r}"));
    }
    s
}

/// A sample body of `schema`, then variants of it: each other value of each enum property.
fn samples(doc: &Value, schema: &Value) -> Vec<Value> {
    let first = sample(doc, schema, "body", 0);
    let mut out = vec![first.clone()];
    let props = resolve(doc, schema)["properties"].as_object().cloned();
    for (name, p) in props.into_iter().flatten() {
        let values = resolve(doc, &p)["enum"].as_array().cloned();
        for v in values.into_iter().flatten().filter(|v| !v.is_null()) {
            let mut b = first.clone();
            b[&name] = v;
            if !out.contains(&b) {
                out.push(b);
            }
        }
    }
    out
}

/// A value `schema` (of the document `doc`) accepts, as far as it says: its example, its
/// first enum value, its format; for an object, its required properties. A string the schema
/// says nothing more of is guessed from the field's name.
fn sample(doc: &Value, schema: &Value, name: &str, depth: usize) -> Value {
    let s = resolve(doc, schema);
    if depth > 8 {
        return Value::Null;
    }
    if let Some(e) = s.get("example") {
        return e.clone();
    }
    if let Some(e) = s["examples"].as_array().and_then(|e| e.first()) {
        return e.clone();
    }
    if let Some(e) = s["enum"]
        .as_array()
        .and_then(|e| e.iter().find(|v| !v.is_null()))
    {
        return e.clone();
    }
    if let Some(c) = s.get("const") {
        return c.clone();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alt) = s[key]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["type"] != "null"))
        {
            return sample(doc, alt, name, depth + 1);
        }
    }
    if let Some(all) = s["allOf"].as_array() {
        let mut out = serde_json::Map::new();
        for part in all {
            if let Value::Object(o) = sample(doc, part, name, depth + 1) {
                out.extend(o);
            }
        }
        return Value::Object(out);
    }
    let ty = match &s["type"] {
        Value::String(t) => t.as_str(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if s.get("properties").is_some() => "object",
        _ => "null",
    };
    match ty {
        "object" => {
            let mut out = serde_json::Map::new();
            for p in s["required"].as_array().into_iter().flatten() {
                let p = p.as_str().unwrap();
                out.insert(p.to_owned(), sample(doc, &s["properties"][p], p, depth + 1));
            }
            Value::Object(out)
        }
        "array" => {
            let n = s["minItems"].as_u64().unwrap_or(1).max(1) as usize;
            Value::Array(vec![sample(doc, &s["items"], name, depth + 1); n])
        }
        "integer" | "number" => json!(s["minimum"].as_i64().unwrap_or(0).max(1)),
        "boolean" => json!(false),
        "string" => Value::String(sample_string(s, name)),
        _ => Value::Null,
    }
}

fn sample_string(s: &Value, name: &str) -> String {
    match s["format"].as_str() {
        Some("uuid") => return random_id(),
        Some("date") => return "2026-11-15".into(),
        Some("date-time") => return jiff::Timestamp::now().to_string(),
        Some("email") => return "sweep@example.com".into(),
        Some("uri" | "url") => return "http://127.0.0.1:9/sweep".into(),
        Some("ipv4" | "ip") => return "203.0.113.9".into(),
        _ => {}
    }
    let pattern = s["pattern"].as_str().unwrap_or("");
    if pattern.contains("[0-9]{1,15}") {
        return "10".into();
    }
    if pattern.contains("[A-Za-z0-9-]{0,61}") {
        return "sweep.example".into();
    }
    match name {
        "currency" => "EUR",
        "country" => "FR",
        "code" => "123456",
        "condition" => "true",
        "from" => "2026-11-01",
        "to" => "2026-11-30",
        n if n.contains("amount") || n == "limit" || n == "total" => "10",
        _ => "sweep",
    }
    .into()
}

/// Calls `op` with everything wrong but the token: an undeclared query parameter, a body that
/// is not JSON, says so, and is over the size limit (64 KiB).
async fn call_with_garbage(app: &TestApp, token: Option<&str>, op: &Op, path: &str) -> Resp {
    let mut req = app
        .client
        .request(op.method.clone(), format!("{}{path}?zzz=1", app.base))
        .header("content-type", "text/plain")
        .body(format!("{{not json{}", "x".repeat(70 * 1024)));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    app.send(req).await
}

#[tokio::test]
async fn every_operation_needs_its_permission_before_its_body() {
    let app = spawn_app().await;
    let ops = operations(&app).await;
    let mut tokens = Vec::new();
    for role in Role::ALL {
        tokens.push((role, app.token("sweep-roles", role).await));
    }
    let (mut swept, mut probes, mut forbidden, mut unauthorized) = (0, 0, 0, 0);
    for op in &ops {
        if !op.secured {
            continue;
        }
        swept += 1;
        let path = op.at(&random_id());
        // No token, a bad token: 401 whatever the body and the query.
        for token in [None, Some("rdk_not-a-token")] {
            let r = call_with_garbage(&app, token, op, &path).await;
            probes += 1;
            assert_eq!(
                r.status,
                401,
                "{} without a valid token: {}",
                op.name(),
                r.body
            );
            r.problem(401);
            unauthorized += 1;
        }
        let Some(needed) = op.permission else {
            // Any valid token will do (`GET /v1/me`): no role is refused.
            for (role, token) in &tokens {
                let r = call(&app, token, op, &path).await;
                probes += 1;
                assert_ne!(r.status, 403, "{} as {role:?}: {}", op.name(), r.body);
            }
            continue;
        };
        for (role, token) in &tokens {
            let r = call(&app, token, op, &path).await;
            probes += 1;
            if role.allows(needed) {
                assert!(
                    r.status != 403 && r.status != 401,
                    "{} as {role:?} (which has {needed:?}): {} {}",
                    op.name(),
                    r.status,
                    r.body
                );
                continue;
            }
            assert_eq!(
                r.status,
                403,
                "{} as {role:?} (without {needed:?}): {}",
                op.name(),
                r.body
            );
            r.problem(403);
            assert_eq!(
                r.detail(),
                format!("role '{}' may not do this", role.as_str()),
                "{}",
                op.name()
            );
            // Garbage for a body and an undeclared query: still 403, not 400/415/422.
            let r = call_with_garbage(&app, Some(token), op, &path).await;
            probes += 1;
            assert_eq!(
                r.status,
                403,
                "{} as {role:?} with a bad body and query: {}",
                op.name(),
                r.body
            );
            r.problem(403);
            forbidden += 2;
        }
    }
    eprintln!(
        "role sweep: {} operations in the document, {swept} needing a token swept, {probes} probes, \
         {forbidden} answered 403, {unauthorized} answered 401",
        ops.len()
    );
}

/// The ids of real objects of every kind the API makes, in the tenant `app.admin` is of.
async fn objects(app: &TestApp) -> BTreeMap<&'static str, String> {
    let admin = &app.admin;
    let mut ids = BTreeMap::new();
    let id = |r: &Resp, what: &str, at: &str| -> String {
        assert!(
            r.status == 200 || r.status == 201,
            "creating {what}: {} {}",
            r.status,
            r.body
        );
        let v = at
            .split('.')
            .fold(&r.body, |v, k| match k.parse::<usize>() {
                Ok(i) => &v[i],
                Err(_) => &v[k],
            })
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no {at} in {}", r.body));
        v.to_owned()
    };

    let c = app.create_customer(admin, customer_body("Contoso")).await;
    let cid = c["id"].as_str().unwrap().to_owned();
    ids.insert("customer", cid.clone());
    let s = app.create_subscription(admin, &cid).await;
    let sid = s["id"].as_str().unwrap().to_owned();
    ids.insert("subscription", sid.clone());

    let r = app
        .post(
            admin,
            "/v1/invoices",
            &json!({"customer_id": cid, "number": "SWEEP-1", "issue_date": "2026-11-01",
                    "due_date": "2026-12-01", "currency": "EUR",
                    "lines": [{"description": "Azure plan usage", "amount": "100.00"}],
                    "total": "100.00"}),
        )
        .await;
    ids.insert("invoice", id(&r, "an invoice", "id"));
    let r = app
        .post(
            admin,
            "/v1/payments",
            &json!({"customer_id": cid, "amount": "10.00", "currency": "EUR",
                    "received_at": "2026-11-02T10:00:00Z"}),
        )
        .await;
    ids.insert("payment", id(&r, "a payment", "id"));
    let r = app
        .post(
            admin,
            &format!("/v1/customers/{cid}/payment-instruments"),
            &json!({"type": "bank_transfer"}),
        )
        .await;
    if r.status == 201 {
        ids.insert("payment instrument", id(&r, "an instrument", "id"));
    }

    // The provider's fraud notification: an alert, and the case it opens.
    let r = app
        .post(
            admin,
            "/v1/events",
            &json!([{"type": "activity", "event_id": "sweep-fraud", "customer_id": cid,
                     "time": jiff::Timestamp::now().to_string(),
                     "operation": "provider_fraud_notification", "actor": "partner-center",
                     "status": "succeeded", "properties": {}}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .get(admin, &format!("/v1/alerts?customer_id={cid}"))
        .await;
    ids.insert("alert", id(&r, "an alert", "items.0.id"));
    let r = app
        .get(admin, &format!("/v1/cases?customer_id={cid}"))
        .await;
    let case = id(&r, "a case", "items.0.id");
    ids.insert("case", case.clone());
    // Proposed, not carried out: it waits for someone else's approval.
    let r = app
        .post(
            admin,
            &format!("/v1/cases/{case}/actions"),
            &json!({"kind": "suspend", "subscription_id": sid, "require_approval": true}),
        )
        .await;
    ids.insert("action", id(&r, "an action", "id"));
    let r = app
        .post(
            admin,
            &format!("/v1/cases/{case}/service-requests"),
            &json!({}),
        )
        .await;
    ids.insert("service request", id(&r, "a service request", "id"));

    let r = app
        .post(
            admin,
            "/v1/rules",
            &json!({"name": "sweep", "scope": "usage", "condition": "true", "severity": "low"}),
        )
        .await;
    ids.insert("rule", id(&r, "a rule", "id"));
    let r = app
        .post(
            admin,
            "/v1/blocklist",
            &json!({"kind": "domain", "value": "sweep-ring.example", "reason": "sweep"}),
        )
        .await;
    ids.insert("blocklist entry", id(&r, "a blocklist entry", "id"));
    let r = app
        .post(
            admin,
            "/v1/provider/notices",
            &json!({"customer_id": cid, "message_id": "<sweep@microsoft.com>",
                    "sender": "no-reply@microsoft.com", "subject": "AUP violation",
                    "body": "Respond within 24 hours."}),
        )
        .await;
    ids.insert("provider notice", id(&r, "a notice", "notice.id"));
    let r = app
        .post(
            admin,
            "/v1/webhook-endpoints",
            &json!({"url": "http://127.0.0.1:9/hooks"}),
        )
        .await;
    ids.insert("webhook endpoint", id(&r, "a webhook endpoint", "id"));
    let r = app
        .post(
            admin,
            "/v1/signups/assess",
            &json!({"company": {"name": "Fabrikam Ltd", "domain": "fabrikam.co.uk", "country": "GB",
                                "address": "1 High St, London"},
                    "contact": {"email": "ops@fabrikam.co.uk", "phone": "+442071838750", "name": "Ada"},
                    "ip": "203.0.113.9", "device_id": "dev-sweep",
                    "payment_instrument": {"type": "bank_transfer"},
                    "cloud_instance": "global", "locale": "en"}),
        )
        .await;
    ids.insert("signup", id(&r, "a signup", "assessment_id"));
    if let Some(c) = r.body["customer_id"].as_str() {
        ids.insert("signup's customer", c.to_owned());
    }
    // An outbox message (a customer email or a webhook delivery), if any was queued.
    let r = app.get(admin, "/v1/outbox").await;
    if let Some(m) = r.body["items"][0]["id"].as_str() {
        ids.insert("outbox message", m.to_owned());
    }
    ids
}

/// What the tenant of `token` looks like: its audit log, and every `GET` with an `{id}` of
/// the document at each of `ids`.
async fn snapshot(
    app: &TestApp,
    token: &str,
    ops: &[Op],
    ids: &BTreeMap<&'static str, String>,
) -> BTreeMap<String, (u16, Value)> {
    let mut out = BTreeMap::new();
    let mut audit = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/audit?limit=500&cursor={c}"),
            None => "/v1/audit?limit=500".to_owned(),
        };
        let r = app.get(token, &path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        audit.extend(r.body["items"].as_array().unwrap().iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    out.insert("audit".to_owned(), (200, Value::Array(audit)));
    for op in ops
        .iter()
        .filter(|o| o.method == reqwest::Method::GET && o.has_id())
    {
        for id in ids.values() {
            let path = op.at(id);
            let mut r = app.get(token, &path).await;
            // The instant a read is made as of is not the tenant's state.
            if let Some(o) = r.body.as_object_mut() {
                o.remove("as_of");
            }
            out.insert(path, (r.status, r.body));
        }
    }
    out
}

#[tokio::test]
async fn another_tenants_ids_are_not_found_and_nothing_changes() {
    let app = spawn_app().await;
    let ops = operations(&app).await;
    let ids = objects(&app).await;
    let other = app.token("sweep-other", Role::Admin).await;
    // Let whatever the objects set off (the outbox, the provider worker) settle.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let before = snapshot(&app, &app.admin, &ops, &ids).await;

    let (mut swept, mut probes, mut not_found, mut body_first) = (0, 0, 0, 0);
    // Operations that judge the body before the id, probed with a body their schema accepts.
    let mut sampled = 0;
    let mut body_first_ops = Vec::new();
    for op in ops.iter().filter(|o| o.has_id() && o.secured) {
        swept += 1;
        // What an id that does not exist gets (another tenant's must get the same), with the
        // first body that gets that far: then the id is what is judged.
        let unknown_id = random_id();
        let unknown = op.at(&unknown_id);
        let mut body = json!({});
        let mut nowhere = call_with(&app, &other, op, &unknown, &body).await;
        for b in &op.samples {
            if nowhere.status == 404 {
                break;
            }
            let r = call_with(&app, &other, op, &unknown, b).await;
            if r.status == 404 || b == &op.samples[0] {
                (body, nowhere) = (b.clone(), r);
            }
        }
        if body != json!({}) {
            sampled += 1;
        }
        if nowhere.status != 404 {
            eprintln!(
                "{} with {body} for an unknown id: {} {}",
                op.name(),
                nowhere.status,
                nowhere.body
            );
        }
        for (kind, id) in &ids {
            let r = call_with(&app, &other, op, &op.at(id), &body).await;
            probes += 1;
            match r.status {
                404 => {
                    r.problem(404);
                    // Word for word what an unknown id gets: nothing says it exists elsewhere
                    // (nor that the id was found and something else of the request was not).
                    if nowhere.status == 404 {
                        assert_eq!(
                            r.detail().replace(id.as_str(), "{id}"),
                            nowhere.detail().replace(&unknown_id, "{id}"),
                            "{} with another tenant's {kind}",
                            op.name()
                        );
                    }
                    not_found += 1;
                }
                // The body is judged before the id is looked up: acceptable only if it names
                // body fields, never the id, exactly as for an id that does not exist.
                422 if op.has_body => {
                    r.problem(422);
                    let fields = r.fields();
                    assert!(
                        !fields.is_empty() && !fields.iter().any(|f| f == "id"),
                        "{} with another tenant's {kind}: {}",
                        op.name(),
                        r.body
                    );
                    assert_eq!(
                        (nowhere.status, nowhere.fields()),
                        (422, fields),
                        "{} answers another tenant's {kind} unlike an unknown id",
                        op.name()
                    );
                    body_first += 1;
                    if !body_first_ops.contains(&op.name()) {
                        body_first_ops.push(op.name());
                    }
                }
                _ => panic!(
                    "{} with another tenant's {kind} {id}: {} {}",
                    op.name(),
                    r.status,
                    r.body
                ),
            }
        }
    }

    let after = snapshot(&app, &app.admin, &ops, &ids).await;
    assert_eq!(before.len(), after.len());
    let mut changed = Vec::new();
    for (path, was) in &before {
        if after.get(path) != Some(was) {
            changed.push(format!(
                "{path}: was {} {}, now {:?}",
                was.0,
                was.1,
                after.get(path)
            ));
        }
    }
    assert!(
        changed.is_empty(),
        "another tenant's calls changed:\n{}",
        changed.join("\n")
    );
    let audit = before["audit"].1.as_array().map_or(0, Vec::len);
    eprintln!(
        "tenant sweep: {swept} operations with an id swept, {} kinds of object, {probes} probes, \
         {not_found} answered 404 ({sampled} operations with a body made from its schema, as `{{}}` \
         was refused before the id), {body_first} answered 422 on the body before the id ({}); \
         {} reads and {audit} audit entries unchanged",
        ids.len(),
        body_first_ops.join(", "),
        before.len() - 1
    );
}
