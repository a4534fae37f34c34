//! Test harness: every test gets its own database (a temp SQLite file, or a fresh PostgreSQL
//! schema when RISKDESK_TEST_BACKEND=postgres) and its own server on a random port, and talks
//! HTTP to it as a client would.

use std::sync::Arc;

use riskdesk_app::SystemClock;
use riskdesk_app::accounts as service;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::{Role, TenantSlug};
use riskdesk_http::{Application, ServerOptions};
use riskdesk_storage::{Db, DbOptions};
use serde_json::{Value, json};

pub struct TestApp {
    pub base: String,
    pub db: Db,
    /// What `--database-url` the CLI needs to reach this test's database.
    pub cli_database_url: String,
    pub admin: String,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub fn backend_is_postgres() -> bool {
    matches!(
        std::env::var("RISKDESK_TEST_BACKEND").as_deref(),
        Ok("postgres")
    )
}

fn pg_url() -> String {
    std::env::var("RISKDESK_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(ServerOptions::default()).await
}

pub async fn spawn_app_with(server_opts: ServerOptions) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, opts, cli_url) = if backend_is_postgres() {
        // A missing PostgreSQL fails the suite (never a silent skip).
        let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
        let url = pg_url();
        let sep = if url.contains('?') { '&' } else { '?' };
        let cli = format!("{url}{sep}options=-c%20search_path%3D{schema}");
        (
            url,
            DbOptions {
                pg_schema: Some(schema),
                pg_max_connections: 8,
                ..DbOptions::default()
            },
            cli,
        )
    } else {
        let path = dir
            .path()
            .join("riskdesk.db")
            .to_string_lossy()
            .into_owned();
        (
            path.clone(),
            DbOptions {
                sqlite_full_sync: false,
                ..DbOptions::default()
            },
            path,
        )
    };
    let db = Db::connect(&url, &opts)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test database {url}: {e}"));
    db.migrate().await.expect("migrations");
    let (_, admin) = service::ensure_default_tenant(&db, jiff::Timestamp::now())
        .await
        .expect("default tenant")
        .expect("new tenant");
    let app = Application::build(
        "127.0.0.1:0",
        db.clone(),
        Arc::new(SystemClock),
        &server_opts,
    )
    .await
    .expect("bind");
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        base,
        db,
        cli_database_url: cli_url,
        admin,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

impl TestApp {
    /// Another server over the same database with nothing in memory (what a restarted process
    /// sees); returns its base URL.
    pub async fn restarted(&self) -> String {
        let app = Application::build(
            "127.0.0.1:0",
            self.db.clone(),
            Arc::new(SystemClock),
            &ServerOptions::default(),
        )
        .await
        .expect("bind");
        let base = format!("http://{}", app.local_addr());
        tokio::spawn(app.run_until(std::future::pending()));
        base
    }
}

/// A decoded response: status, headers and JSON body (Null when the body is not JSON).
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts the response is a problem document with this status; returns it.
    #[track_caller]
    pub fn problem(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.content_type(), "application/problem+json");
        assert_eq!(self.body["status"], status);
        assert!(
            self.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "problem without detail: {}",
            self.body
        );
        &self.body
    }

    pub fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or("")
    }

    /// The field names a validation problem lists.
    pub fn fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl TestApp {
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, token: &str, path: &str) -> Resp {
        self.send(
            self.client
                .get(format!("{}{path}", self.base))
                .bearer_auth(token),
        )
        .await
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> Resp {
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .bearer_auth(token)
                .json(body),
        )
        .await
    }

    pub async fn post_with_key(&self, token: &str, path: &str, key: &str, body: &Value) -> Resp {
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(body),
        )
        .await
    }

    pub async fn put(&self, token: &str, path: &str, body: &Value) -> Resp {
        self.send(
            self.client
                .put(format!("{}{path}", self.base))
                .bearer_auth(token)
                .json(body),
        )
        .await
    }

    pub async fn patch(&self, token: &str, path: &str, body: &Value) -> Resp {
        self.send(
            self.client
                .patch(format!("{}{path}", self.base))
                .bearer_auth(token)
                .json(body),
        )
        .await
    }

    /// A token of `role` in tenant `slug` (created if needed), made as the CLI makes them.
    pub async fn token(&self, slug: &str, role: Role) -> String {
        let now = jiff::Timestamp::now();
        let mut tx = self.db.begin().await.unwrap();
        let tenant = match riskdesk_storage::tenants::by_slug_tx(&mut tx, slug)
            .await
            .unwrap()
        {
            Some(t) => t,
            None => service::create_tenant(
                &mut tx,
                &Actor::cli(),
                &TenantSlug::parse(slug).unwrap(),
                slug,
                now,
            )
            .await
            .unwrap(),
        };
        let (_, secret) = service::create_token(
            &mut tx,
            tenant.tenant_id(),
            &Actor::cli(),
            &format!("{}-test", role.as_str()),
            role,
            now,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        secret
    }

    pub async fn create_customer(&self, token: &str, body: Value) -> Value {
        let r = self.post(token, "/v1/customers", &body).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body
    }

    pub async fn create_subscription(&self, token: &str, customer_id: &str) -> Value {
        let r = self
            .post(
                token,
                &format!("/v1/customers/{customer_id}/subscriptions"),
                &json!({"offer": "Azure plan", "quantity": 3}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body
    }

    pub async fn act(&self, token: &str, sub_id: &str, action: &str, reason: &str) -> Resp {
        self.post(
            token,
            &format!("/v1/subscriptions/{sub_id}/actions"),
            &json!({"action": action, "reason": reason, "note": "test"}),
        )
        .await
    }

    /// Runs the real `riskdesk` binary against this test's database.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.cli_command(args).output().expect("run riskdesk")
    }

    /// The real `riskdesk` binary with `args` against this test's database, to start.
    pub fn cli_command(&self, args: &[&str]) -> std::process::Command {
        self.cli_command_with(args, &self._dir.path().join("absent.toml"))
    }

    /// As [`cli_command`](Self::cli_command), with the settings of `config`.
    pub fn cli_command_with(
        &self,
        args: &[&str],
        config: &std::path::Path,
    ) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_riskdesk"));
        c.args(args)
            .arg("--database-url")
            .arg(&self.cli_database_url)
            .arg("--config")
            .arg(config)
            .env_remove("RISKDESK_BIND")
            .env_remove("RISKDESK_DATABASE_URL")
            .env("RISKDESK_LOG", "warn");
        c
    }

    /// Executes raw SQL on this test's database (to play an attacker with database access).
    pub async fn raw_sql(&self, sql: &str) {
        self.db.execute_raw(sql).await.expect("raw sql");
    }
}

pub fn customer_body(name: &str) -> Value {
    json!({
        "name": name,
        "domain": "contoso.com",
        "country": "FR",
        "email": "billing@contoso.com",
        "phone": "+33142685300",
        "locale": "fr-FR",
        "cloud_instance": "global",
    })
}
