//! Customer records as the domain sees them, with the validated inputs that create and change them.

use serde::{Deserialize, Serialize};

use crate::CloudInstance;
use crate::values::{CountryCode, DomainName, Email, Locale, Phone, ValueError, bounded_text};

pub const NAME_MAX: usize = 200;
pub const EXTERNAL_ID_MAX: usize = 128;
pub const OFFER_MAX: usize = 200;
pub const NOTE_MAX: usize = 2000;
pub const QUANTITY_MAX: i64 = 1_000_000;

/// A validated new customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCustomer {
    pub name: String,
    pub domain: DomainName,
    pub country: CountryCode,
    pub email: Email,
    pub phone: Option<Phone>,
    pub locale: Locale,
    pub cloud_instance: CloudInstance,
    pub external_id: Option<String>,
}

/// A validated change to a customer; `None` leaves a field as it is. `phone: Some(None)` clears it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustomerPatch {
    pub name: Option<String>,
    pub domain: Option<DomainName>,
    pub country: Option<CountryCode>,
    pub email: Option<Email>,
    pub phone: Option<Option<Phone>>,
    pub locale: Option<Locale>,
    pub external_id: Option<Option<String>>,
}

impl CustomerPatch {
    pub fn is_empty(&self) -> bool {
        *self == CustomerPatch::default()
    }
}

pub fn parse_name(s: &str) -> Result<String, ValueError> {
    bounded_text("name", s, NAME_MAX)
}

pub fn parse_external_id(s: &str) -> Result<String, ValueError> {
    bounded_text("external_id", s, EXTERNAL_ID_MAX)
}

pub fn parse_offer(s: &str) -> Result<String, ValueError> {
    bounded_text("offer", s, OFFER_MAX)
}

pub fn parse_note(s: &str) -> Result<String, ValueError> {
    bounded_text("note", s, NOTE_MAX)
}

pub fn parse_quantity(q: i64) -> Result<i64, ValueError> {
    if !(1..=QUANTITY_MAX).contains(&q) {
        return Err(ValueError(format!(
            "quantity must be between 1 and {QUANTITY_MAX}"
        )));
    }
    Ok(q)
}
