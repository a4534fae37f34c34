//! The tamper-evident audit chain. Each tenant's entries form hash chains, one per *lane*: an
//! entry's hash covers its own content (its lane included) and the previous entry's hash in
//! its lane, so altering, removing or reordering any stored row breaks verification at that
//! row. Lanes let concurrent writers of one tenant append without waiting on one another (a
//! transaction appends to one lane only); SQLite, with its single writer, uses lane 0 alone.
//! Entries of lane 0 hash exactly as before lanes existed.

use sha2::{Digest, Sha256};

/// The hash an empty chain starts from.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who made a change: a staff token (name and role), the CLI, or the system itself.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Actor {
    /// `token`, `cli` or `system`.
    pub kind: String,
    pub name: String,
    pub role: String,
}

impl Actor {
    pub fn token(name: &str, role: crate::Role) -> Self {
        Self {
            kind: "token".into(),
            name: name.into(),
            role: role.as_str().into(),
        }
    }
    pub fn cli() -> Self {
        Self {
            kind: "cli".into(),
            name: "riskdesk-cli".into(),
            role: "admin".into(),
        }
    }
    pub fn system(name: &str) -> Self {
        Self {
            kind: "system".into(),
            name: name.into(),
            role: "system".into(),
        }
    }
}

/// What one audit entry says, exactly as stored (JSON snapshots are kept as their text so the
/// hash is over the same bytes on every backend).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditContent {
    pub tenant_id: uuid::Uuid,
    /// The tenant's chain this entry belongs to (0 on SQLite; 0–31 on PostgreSQL).
    pub lane: i32,
    /// Position in the lane's chain, from 1, without gaps.
    pub seq: i64,
    /// Microseconds since the Unix epoch (UTC).
    pub at_micros: i64,
    pub actor: Actor,
    /// e.g. `customer.create`, `subscription.suspend`.
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub reason: Option<String>,
    pub note: Option<String>,
}

/// The hash of an entry given its predecessor's. Fields are length-prefixed so no two
/// different entries serialise to the same bytes.
pub fn entry_hash(content: &AuditContent, prev_hash: &str) -> String {
    let mut h = Sha256::new();
    let mut field = |tag: &str, v: Option<&str>| {
        h.update(tag.as_bytes());
        match v {
            None => h.update(b"~"),
            Some(v) => {
                h.update((v.len() as u64).to_be_bytes());
                h.update(v.as_bytes());
            }
        }
    };
    field("v1", Some(prev_hash));
    field("tenant", Some(&content.tenant_id.to_string()));
    if content.lane != 0 {
        field("lane", Some(&content.lane.to_string()));
    }
    field("seq", Some(&content.seq.to_string()));
    field("at", Some(&content.at_micros.to_string()));
    field("actor.kind", Some(&content.actor.kind));
    field("actor.name", Some(&content.actor.name));
    field("actor.role", Some(&content.actor.role));
    field("action", Some(&content.action));
    field("entity_type", Some(&content.entity_type));
    field("entity_id", Some(&content.entity_id));
    field("before", content.before.as_deref());
    field("after", content.after.as_deref());
    field("reason", content.reason.as_deref());
    field("note", content.note.as_deref());
    hex::encode(h.finalize())
}

/// A stored entry as read back for verification.
#[derive(Clone, Debug)]
pub struct StoredEntry {
    pub content: AuditContent,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain of tenant {tenant_id}{} broken at seq {seq}: {why}", lane_label(*.lane))]
pub struct ChainBreak {
    pub tenant_id: uuid::Uuid,
    pub lane: i32,
    pub seq: i64,
    pub why: String,
}

fn lane_label(lane: i32) -> String {
    if lane == 0 {
        String::new()
    } else {
        format!(" (lane {lane})")
    }
}

/// Incremental verifier for one lane of a tenant's chain; feed its entries in `seq` order.
pub struct ChainVerifier {
    tenant_id: uuid::Uuid,
    lane: i32,
    expected_seq: i64,
    prev_hash: String,
}

impl ChainVerifier {
    pub fn new(tenant_id: uuid::Uuid, lane: i32) -> Self {
        Self {
            tenant_id,
            lane,
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
        }
    }

    pub fn feed(&mut self, e: &StoredEntry) -> Result<(), ChainBreak> {
        let brk = |seq: i64, why: String| ChainBreak {
            tenant_id: self.tenant_id,
            lane: self.lane,
            seq,
            why,
        };
        if e.content.lane != self.lane {
            return Err(brk(
                e.content.seq,
                format!("entry belongs to lane {}", e.content.lane),
            ));
        }
        if e.content.seq != self.expected_seq {
            return Err(brk(
                self.expected_seq,
                format!(
                    "entry {} is missing (next stored entry is {})",
                    self.expected_seq, e.content.seq
                ),
            ));
        }
        if e.prev_hash != self.prev_hash {
            return Err(brk(
                e.content.seq,
                "prev_hash does not match the previous entry's hash".into(),
            ));
        }
        let recomputed = entry_hash(&e.content, &e.prev_hash);
        if recomputed != e.hash {
            return Err(brk(
                e.content.seq,
                "content does not match its hash (the row was altered)".into(),
            ));
        }
        self.expected_seq += 1;
        self.prev_hash = e.hash.clone();
        Ok(())
    }

    /// Checks the chain ends where the tenant's recorded head says it does, which catches
    /// entries removed from the end. Returns the number of entries verified.
    pub fn finish(self, head_seq: i64, head_hash: &str) -> Result<i64, ChainBreak> {
        let count = self.expected_seq - 1;
        if count != head_seq || self.prev_hash != head_hash {
            return Err(ChainBreak {
                tenant_id: self.tenant_id,
                lane: self.lane,
                seq: count + 1,
                why: format!(
                    "chain ends at entry {count} but the tenant's head records entry {head_seq}: entries were removed"
                ),
            });
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<StoredEntry> {
        let tenant_id = uuid::Uuid::nil();
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let content = AuditContent {
                    tenant_id,
                    lane: 0,
                    seq,
                    at_micros: 1_700_000_000_000_000 + seq,
                    actor: Actor::cli(),
                    action: "subscription.suspend".into(),
                    entity_type: "subscription".into(),
                    entity_id: format!("sub-{seq}"),
                    before: Some("{\"status\":\"active\"}".into()),
                    after: Some("{\"status\":\"suspended\"}".into()),
                    reason: Some("investigation".into()),
                    note: None,
                };
                let hash = entry_hash(&content, &prev);
                let e = StoredEntry {
                    content,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                e
            })
            .collect()
    }

    fn verify(entries: &[StoredEntry], head_seq: i64, head_hash: &str) -> Result<i64, ChainBreak> {
        let mut v = ChainVerifier::new(uuid::Uuid::nil(), 0);
        for e in entries {
            v.feed(e)?;
        }
        v.finish(head_seq, head_hash)
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(5);
        assert_eq!(verify(&c, 5, &c[4].hash), Ok(5));
        assert_eq!(verify(&[], 0, GENESIS_HASH), Ok(0));
    }

    #[test]
    fn altered_content_is_found() {
        let mut c = chain(5);
        c[2].content.note = Some("edited".into());
        let head = c[4].hash.clone();
        assert_eq!(verify(&c, 5, &head).unwrap_err().seq, 3);
    }

    #[test]
    fn removed_middle_and_tail_are_found() {
        let mut c = chain(5);
        let head = c[4].hash.clone();
        c.remove(1);
        assert_eq!(verify(&c, 5, &head).unwrap_err().seq, 2);
        let c = chain(5);
        let err = verify(&c[..4], 5, &c[4].hash).unwrap_err();
        assert_eq!(err.seq, 5);
    }

    #[test]
    fn rehashed_forgery_breaks_the_link() {
        // An attacker who edits a row and recomputes its hash still breaks the next link.
        let mut c = chain(3);
        c[1].content.reason = Some("fraud".into());
        c[1].hash = entry_hash(&c[1].content, &c[1].prev_hash);
        let head = c[2].hash.clone();
        assert_eq!(verify(&c, 3, &head).unwrap_err().seq, 3);
    }

    #[test]
    fn an_entry_cannot_move_between_lanes() {
        // Lane 0 hashes as before lanes existed; any other lane is part of the hash, so an
        // entry copied into another lane (with its hash) fails there.
        let c = &chain(1)[0];
        let mut moved = c.clone();
        moved.content.lane = 3;
        assert_ne!(entry_hash(&moved.content, &c.prev_hash), c.hash);
        let mut v = ChainVerifier::new(uuid::Uuid::nil(), 3);
        let err = v.feed(&moved).unwrap_err();
        assert_eq!((err.lane, err.seq), (3, 1));
        assert!(err.to_string().contains("(lane 3)"), "{err}");
        let mut v = ChainVerifier::new(uuid::Uuid::nil(), 0);
        assert!(v.feed(&moved).unwrap_err().why.contains("lane 3"));
    }

    #[test]
    fn field_boundaries_matter() {
        let c = &chain(1)[0];
        let mut moved = c.content.clone();
        moved.before = None;
        moved.after = Some(format!(
            "{}{}",
            c.content.before.clone().unwrap(),
            c.content.after.clone().unwrap()
        ));
        assert_ne!(entry_hash(&moved, GENESIS_HASH), c.hash);
    }
}

/// Signed checkpoints of the audit chains' heads. A checkpoint states, under an Ed25519 key
/// kept out of the database (configuration), that a tenant's chain had entry `seq` with hash
/// `hash` at time `at`. Kept outside the database (an auditor's copy), checkpoints show later
/// that history was not rewritten — even by someone with write access to the database, who
/// could recompute a consistent chain but not sign for it.
pub mod checkpoint {
    use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
    use serde::{Deserialize, Serialize};
    use sha2::{Digest, Sha256};

    /// One signed statement about one tenant's chain head.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Checkpoint {
        pub tenant_id: uuid::Uuid,
        /// The lane of the tenant's chain (absent in checkpoints made before lanes: 0).
        #[serde(default)]
        pub lane: i32,
        pub seq: i64,
        /// The hash of entry `seq` (hex).
        pub hash: String,
        /// When it was signed (RFC 3339, UTC).
        pub at: String,
        /// The first 16 hex digits of SHA-256 of the public key.
        pub key_id: String,
        /// Ed25519 over [`message`] (hex).
        pub signature: String,
    }

    /// The bytes signed: a fixed, line-based statement (no JSON canonicalisation needed).
    /// Lane 0 signs the statement of before lanes (v1), so older checkpoints still verify.
    pub fn message(tenant: uuid::Uuid, lane: i32, seq: i64, hash: &str, at: &str) -> Vec<u8> {
        if lane == 0 {
            format!("riskdesk audit checkpoint v1\n{tenant}\n{seq}\n{hash}\n{at}\n").into_bytes()
        } else {
            format!("riskdesk audit checkpoint v2\n{tenant}\n{lane}\n{seq}\n{hash}\n{at}\n")
                .into_bytes()
        }
    }

    /// A signing key from its 32-byte seed (hex).
    pub fn key_from_seed(hex_seed: &str) -> Result<Ed25519KeyPair, String> {
        let seed = hex::decode(hex_seed.trim())
            .map_err(|_| "the audit signing key must be 64 hex digits (a 32-byte seed)")?;
        Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|_| "the audit signing key must be 64 hex digits (a 32-byte seed)".to_owned())
    }

    /// A new seed (hex) from 32 random bytes.
    pub fn new_seed(random: [u8; 32]) -> String {
        hex::encode(random)
    }

    pub fn public_key_hex(key: &Ed25519KeyPair) -> String {
        hex::encode(key.public_key().as_ref())
    }

    pub fn key_id(public_key: &[u8]) -> String {
        hex::encode(&Sha256::digest(public_key)[..8])
    }

    pub fn sign(
        key: &Ed25519KeyPair,
        tenant: uuid::Uuid,
        lane: i32,
        seq: i64,
        hash: &str,
        at: &str,
    ) -> Checkpoint {
        let sig = key.sign(&message(tenant, lane, seq, hash, at));
        Checkpoint {
            tenant_id: tenant,
            lane,
            seq,
            hash: hash.to_owned(),
            at: at.to_owned(),
            key_id: key_id(key.public_key().as_ref()),
            signature: hex::encode(sig.as_ref()),
        }
    }

    /// Whether `c` was signed by the holder of `public_key_hex`'s private key.
    pub fn verify(public_key_hex: &str, c: &Checkpoint) -> Result<(), String> {
        let pk = hex::decode(public_key_hex.trim())
            .map_err(|_| "the public key must be hex".to_owned())?;
        let sig = hex::decode(&c.signature).map_err(|_| "the signature is not hex".to_owned())?;
        UnparsedPublicKey::new(&ED25519, &pk)
            .verify(&message(c.tenant_id, c.lane, c.seq, &c.hash, &c.at), &sig)
            .map_err(|_| "the signature does not verify with this public key".to_owned())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_checkpoint_verifies_with_its_key_only_and_only_as_signed() {
            let key = key_from_seed(&new_seed([7; 32])).unwrap();
            let other = key_from_seed(&new_seed([8; 32])).unwrap();
            let t = uuid::Uuid::from_u128(1);
            let c = sign(&key, t, 0, 42, "ab", "2026-12-02T00:00:00Z");
            assert_eq!(verify(&public_key_hex(&key), &c), Ok(()));
            assert!(verify(&public_key_hex(&other), &c).is_err());
            for changed in [
                Checkpoint {
                    seq: 41,
                    ..c.clone()
                },
                Checkpoint {
                    hash: "ac".into(),
                    ..c.clone()
                },
                Checkpoint {
                    at: "2026-12-03T00:00:00Z".into(),
                    ..c.clone()
                },
                Checkpoint {
                    tenant_id: uuid::Uuid::from_u128(2),
                    ..c.clone()
                },
                Checkpoint {
                    lane: 1,
                    ..c.clone()
                },
            ] {
                assert!(
                    verify(&public_key_hex(&key), &changed).is_err(),
                    "{changed:?}"
                );
            }
            assert!(key_from_seed("12").is_err());
        }

        #[test]
        fn lane_checkpoints_sign_their_lane_and_older_ones_read_as_lane_0() {
            let key = key_from_seed(&new_seed([7; 32])).unwrap();
            let t = uuid::Uuid::from_u128(1);
            let c = sign(&key, t, 5, 42, "ab", "2026-12-02T00:00:00Z");
            assert_eq!(verify(&public_key_hex(&key), &c), Ok(()));
            let moved = Checkpoint {
                lane: 6,
                ..c.clone()
            };
            assert!(verify(&public_key_hex(&key), &moved).is_err());
            let old = sign(&key, t, 0, 42, "ab", "2026-12-02T00:00:00Z");
            let mut json = serde_json::to_value(&old).unwrap();
            json.as_object_mut().unwrap().remove("lane");
            let read: Checkpoint = serde_json::from_value(json).unwrap();
            assert_eq!(read, old);
            assert_eq!(verify(&public_key_hex(&key), &read), Ok(()));
        }
    }
}
