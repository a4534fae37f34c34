//! What every page's layout needs: the translator, the person, what their role may do (buttons
//! they cannot use are not offered; the server checks anyway), the asset URLs and the "as of"
//! instant.

use riskdesk_domain::Permission;

use crate::UiState;
use crate::assets::Urls;
use crate::i18n::T;
use crate::session::Staff;

/// What the person's role allows, for templates.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    pub work_cases: bool,
    pub comment: bool,
    pub approve: bool,
    pub billing: bool,
    pub write_customers: bool,
    pub manage_staff: bool,
    pub manage_integrations: bool,
    pub read_audit: bool,
}

impl Caps {
    pub fn of(s: &Staff) -> Self {
        Caps {
            work_cases: s.can(Permission::WorkCases),
            comment: s.can(Permission::CommentOnCases),
            approve: s.can(Permission::ApproveActions),
            billing: s.can(Permission::WriteBilling),
            write_customers: s.can(Permission::WriteCustomers),
            manage_staff: s.can(Permission::ManageStaff),
            manage_integrations: s.can(Permission::ManageIntegrations),
            read_audit: s.can(Permission::ReadAudit),
        }
    }
}

#[derive(Clone)]
pub struct Layout {
    pub t: T,
    pub name: String,
    pub email: String,
    pub role: String,
    pub caps: Caps,
    pub urls: Urls,
    /// Which navigation entry is current (`cases`, `approvals`, …).
    pub section: &'static str,
    /// The page's "as of" instant when it is not now (RFC 3339), kept across navigation.
    pub as_of: Option<String>,
    /// A fresh one-time key for the forms on this page (double submits apply once).
    pub form_key: String,
    /// The instant the page is computed at (µs).
    pub now: i64,
    /// The page's path, and its query without `as_of`: the header's "as of" form keeps them.
    pub here_path: String,
    pub here_query: Vec<(String, String)>,
    /// Whether this page reads `as_of` (the header shows the control only there).
    pub as_of_ok: bool,
}

impl Layout {
    pub fn new(s: &UiState, staff: &Staff, section: &'static str) -> Self {
        Layout {
            t: staff.t(),
            name: staff.s.user.name.clone(),
            email: staff.s.user.email.clone(),
            role: staff.role.as_str().to_owned(),
            caps: Caps::of(staff),
            urls: Urls::of(&s.assets),
            section,
            as_of: None,
            form_key: uuid::Uuid::now_v7().to_string(),
            now: riskdesk_storage::time::to_micros(s.app.clock.now()),
            here_path: staff.here.split('?').next().unwrap_or("/ui/").to_owned(),
            here_query: staff
                .here
                .split_once('?')
                .map(|(_, q)| {
                    form_urlencoded::parse(q.as_bytes())
                        .filter(|(k, _)| k != "as_of" && k != "cursor")
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect()
                })
                .unwrap_or_default(),
            as_of_ok: false,
        }
    }

    pub fn with_as_of(mut self, as_of: Option<String>, at: i64) -> Self {
        self.as_of = as_of;
        self.now = at;
        self.as_of_ok = true;
        self
    }

    /// The person's audit identity, as actions record their proposer.
    pub fn email_actor(&self) -> String {
        format!("user:{}", self.email)
    }

    /// `aria-current` for a navigation entry.
    pub fn current(&self, section: &str) -> &'static str {
        if self.section == section {
            "page"
        } else {
            "false"
        }
    }
}
