//! Typed identifiers. All are UUID v7: time-ordered, so B-tree keys stay append-mostly and
//! cursor pagination by id follows creation order.

use std::fmt;
use std::str::FromStr;

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A new time-ordered id.
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A tenant: one reseller's isolated book inside an installation.
    TenantId
);
id_type!(
    /// A customer of the partner.
    CustomerId
);
id_type!(
    /// A customer's subscription.
    SubscriptionId
);
id_type!(
    /// A staff API token (the id, never the secret).
    TokenId
);
