//! Provider notices (Acceptable Use Policy enforcement arrives by email): tracked from
//! `received` to `responded`, forward only.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeStatus {
    Received,
    Reviewed,
    Acted,
    Responded,
}

impl NoticeStatus {
    pub const ALL: [NoticeStatus; 4] = [
        NoticeStatus::Received,
        NoticeStatus::Reviewed,
        NoticeStatus::Acted,
        NoticeStatus::Responded,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeStatus::Received => "received",
            NoticeStatus::Reviewed => "reviewed",
            NoticeStatus::Acted => "acted",
            NoticeStatus::Responded => "responded",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A notice moves forward only (steps may be skipped: a notice that needs no action is
/// reviewed, then responded); `responded` needs the response that was sent.
pub fn advance(
    from: NoticeStatus,
    to: NoticeStatus,
    has_response: bool,
) -> Result<NoticeStatus, String> {
    if to <= from {
        return Err(format!(
            "a notice that is {} cannot become {} (notices move forward: received, reviewed, acted, responded)",
            from.as_str(),
            to.as_str()
        ));
    }
    if to == NoticeStatus::Responded && !has_response {
        return Err("responded needs the response sent to the provider (field `response`)".into());
    }
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use NoticeStatus::*;

    #[test]
    fn forward_only() {
        assert_eq!(advance(Received, Reviewed, false), Ok(Reviewed));
        assert_eq!(advance(Reviewed, Responded, true), Ok(Responded));
        assert!(advance(Acted, Reviewed, false).is_err());
        assert!(advance(Acted, Acted, false).is_err());
        assert!(advance(Acted, Responded, false).is_err());
    }
}
