//! `riskdesk user …`: staff accounts from the command line, and the demo sign-ins of
//! `serve --demo`.

use std::io::BufRead as _;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use rand::RngCore as _;
use riskdesk_app::accounts::staff::{self, ChangeUser, CreateUser};
use riskdesk_domain::audit::Actor;
use riskdesk_domain::{Clock, Locale, Role, TenantId};
use riskdesk_storage::Db;

use crate::config::Settings;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a staff account. The password is read from standard input with
    /// `--password-stdin`; otherwise one is generated and printed (its only line on stdout).
    Create {
        #[arg(long, default_value = "default")]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// admin, analyst, collections, auditor or support.
        #[arg(long)]
        role: String,
        /// The dashboard's language for this person: en, zh-CN, zh-TW, fr-FR or pt-BR.
        #[arg(long, default_value = "en")]
        locale: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List a tenant's staff accounts.
    List {
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Disable an account: its sessions end at once and it cannot sign in.
    Disable { email: String },
    /// Enable a disabled account again.
    Enable { email: String },
    /// Set a new password (from standard input with `--password-stdin`, else generated and
    /// printed); every session of the account ends.
    Password {
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Turn on the TOTP second factor: prints the otpauth URL to add to an authenticator app.
    /// `--off` removes it.
    Totp {
        email: String,
        #[arg(long)]
        off: bool,
    },
}

fn read_password(stdin: bool) -> anyhow::Result<(String, bool)> {
    if stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let p = line.trim_end_matches(['\r', '\n']).to_owned();
        Ok((p, false))
    } else {
        Ok((generate_password(), true))
    }
}

/// 18 random bytes as base64url: 24 characters, 144 bits.
pub fn generate_password() -> String {
    use base64::Engine as _;
    let mut b = [0u8; 18];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

async fn user_by_email(
    db: &Db,
    email: &str,
) -> anyhow::Result<riskdesk_storage::staff::StaffUserRow> {
    let e = staff::normalise_email(email).map_err(|e| anyhow::anyhow!("{e}"))?;
    riskdesk_storage::staff::user_by_email(db, &e)
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!("no staff account has the email {e} (see riskdesk user list)")
        })
}

async fn change(
    db: &Db,
    clock: &Arc<dyn Clock>,
    email: &str,
    c: &ChangeUser<'_>,
) -> anyhow::Result<riskdesk_storage::staff::StaffUserRow> {
    let u = user_by_email(db, email).await?;
    let mut tx = db.begin().await?;
    let after = staff::update_user(
        &mut tx,
        TenantId(u.tenant_id),
        &Actor::cli(),
        u.id,
        c,
        clock.now(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    tx.commit().await?;
    Ok(after)
}

pub async fn run(
    command: UserCommand,
    settings: &Settings,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<ExitCode> {
    let db = crate::open_db(settings).await?;
    riskdesk_app::accounts::ensure_default_tenant(&db, clock.now()).await?;
    match command {
        UserCommand::Create {
            tenant,
            email,
            name,
            role,
            locale,
            password_stdin,
        } => {
            let role = Role::parse(&role).ok_or_else(|| {
                anyhow::anyhow!(
                    "role '{role}' is not one of admin, analyst, collections, auditor, support"
                )
            })?;
            let locale =
                Locale::parse(&locale).map_err(|e| anyhow::anyhow!("--locale: {}", e.0))?;
            let tenant = riskdesk_app::accounts::tenant_by_slug(&db, &tenant).await?;
            let (password, generated) = read_password(password_stdin)?;
            let mut tx = db.begin().await?;
            let row = staff::create_user(
                &mut tx,
                tenant.tenant_id(),
                &Actor::cli(),
                &CreateUser {
                    email: &email,
                    name: &name,
                    role,
                    password: Some(&password),
                    locale,
                },
                clock.now(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            tx.commit().await?;
            eprintln!(
                "created staff account {} ({}, {}) in tenant '{}'",
                row.email, row.name, row.role, tenant.slug
            );
            if generated {
                eprintln!("its password (shown once):");
                println!("{password}");
            }
        }
        UserCommand::List { tenant } => {
            let tenant = riskdesk_app::accounts::tenant_by_slug(&db, &tenant).await?;
            for u in staff::users(&db, tenant.tenant_id())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                let state = if u.disabled_at.is_some() {
                    "disabled"
                } else {
                    "active"
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}{}",
                    u.id,
                    u.email,
                    u.name,
                    u.role,
                    state,
                    if u.totp_enabled { "\ttotp" } else { "" }
                );
            }
        }
        UserCommand::Disable { email } => {
            let u = change(
                &db,
                clock,
                &email,
                &ChangeUser {
                    disabled: Some(true),
                    ..Default::default()
                },
            )
            .await?;
            eprintln!("disabled {}; its sessions have ended", u.email);
        }
        UserCommand::Enable { email } => {
            let u = change(
                &db,
                clock,
                &email,
                &ChangeUser {
                    disabled: Some(false),
                    ..Default::default()
                },
            )
            .await?;
            eprintln!("enabled {}", u.email);
        }
        UserCommand::Password {
            email,
            password_stdin,
        } => {
            let (password, generated) = read_password(password_stdin)?;
            let u = change(
                &db,
                clock,
                &email,
                &ChangeUser {
                    password: Some(&password),
                    ..Default::default()
                },
            )
            .await?;
            eprintln!("new password set for {}; its sessions have ended", u.email);
            if generated {
                println!("{password}");
            }
        }
        UserCommand::Totp { email, off } => {
            if off {
                let u = change(
                    &db,
                    clock,
                    &email,
                    &ChangeUser {
                        totp_secret: Some(None),
                        ..Default::default()
                    },
                )
                .await?;
                eprintln!("second factor removed for {}", u.email);
            } else {
                let u = user_by_email(&db, &email).await?;
                let (secret, url) =
                    staff::new_totp(&u.email).map_err(|e| anyhow::anyhow!("{e}"))?;
                change(
                    &db,
                    clock,
                    &email,
                    &ChangeUser {
                        totp_secret: Some(Some(&secret)),
                        ..Default::default()
                    },
                )
                .await?;
                eprintln!(
                    "second factor on for {}: add this URL to an authenticator app (shown once)",
                    u.email
                );
                println!("{url}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The demo's staff: two analysts (so one can approve what the other proposes), collections
/// and an admin, created once with random passwords, printed when created.
pub async fn demo_users(
    db: &Db,
    tenant: TenantId,
    now: jiff::Timestamp,
) -> anyhow::Result<Vec<(String, String, &'static str)>> {
    let people = [
        (
            "analyst@demo.riskdesk.example",
            "Ana Analyst",
            Role::Analyst,
        ),
        (
            "checker@demo.riskdesk.example",
            "Chen Checker",
            Role::Analyst,
        ),
        (
            "collections@demo.riskdesk.example",
            "Colin Collections",
            Role::Collections,
        ),
        ("admin@demo.riskdesk.example", "Ada Admin", Role::Admin),
    ];
    let mut out = Vec::new();
    for (email, name, role) in people {
        if riskdesk_storage::staff::user_by_email(db, email)
            .await?
            .is_some()
        {
            continue;
        }
        let password = generate_password();
        let mut tx = db.begin().await?;
        staff::create_user(
            &mut tx,
            tenant,
            &Actor::cli(),
            &CreateUser {
                email,
                name,
                role,
                password: Some(&password),
                locale: Locale::En,
            },
            now,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        tx.commit().await?;
        out.push((email.to_owned(), password, role.as_str()));
    }
    Ok(out)
}
