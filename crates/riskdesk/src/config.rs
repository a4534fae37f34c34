//! Settings: defaults, then `riskdesk.toml`, then `RISKDESK_…` environment variables, then
//! command-line flags (the later wins).

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use riskdesk_storage::DbOptions;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `ADDR:PORT` to listen on.
    pub bind: String,
    /// SQLite file path / `sqlite:` URL, or `postgres://…`.
    pub database_url: String,
    /// `full` (default: an acknowledged write survives power loss) or `normal` (survives a
    /// process crash; faster).
    pub sqlite_synchronous: String,
    /// Log filter, e.g. `info` or `riskdesk=debug,info`.
    pub log: String,
    /// Seconds an authenticated token is remembered; a token revoked from another process
    /// stops working within this time. 0 checks the database on every request.
    pub auth_cache_seconds: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            database_url: "riskdesk.db".into(),
            sqlite_synchronous: "full".into(),
            log: "info".into(),
            auth_cache_seconds: 1,
        }
    }
}

impl Settings {
    pub fn load(
        file: &std::path::Path,
        bind: Option<String>,
        database_url: Option<String>,
    ) -> anyhow::Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(file))
            .merge(Env::prefixed("RISKDESK_").only(&[
                "bind",
                "database_url",
                "sqlite_synchronous",
                "log",
                "auth_cache_seconds",
            ]));
        if let Some(b) = bind {
            fig = fig.merge(("bind", b));
        }
        if let Some(d) = database_url {
            fig = fig.merge(("database_url", d));
        }
        let s: Settings = fig.extract()?;
        if !matches!(s.sqlite_synchronous.as_str(), "full" | "normal") {
            anyhow::bail!(
                "sqlite_synchronous must be 'full' or 'normal', not '{}'",
                s.sqlite_synchronous
            );
        }
        Ok(s)
    }

    pub fn server_options(&self) -> riskdesk_server::ServerOptions {
        riskdesk_server::ServerOptions {
            auth_cache_ttl: std::time::Duration::from_secs(self.auth_cache_seconds),
        }
    }

    pub fn db_options(&self) -> DbOptions {
        DbOptions {
            sqlite_full_sync: self.sqlite_synchronous == "full",
            ..DbOptions::default()
        }
    }
}
