//! Secrets kept at rest (the Partner Center refresh tokens of the Secure Application Model):
//! AES-256-GCM (ring) under a key from configuration, never from the database.
//!
//! Keys are `id:hex` pairs (a short id, 64 hex digits), comma-separated, the first the current
//! one: `provider_token_keys = "k2:…,k1:…"` (or `RISKDESK_PROVIDER_TOKEN_KEYS`). A sealed value
//! is `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`, its associated data the name of what
//! it belongs to (an instance), so a value copied to another row does not open. Rotation: put
//! the new key first and keep the old one after it; values sealed under the old key still
//! open, `riskdesk provider rekey` seals them again under the new one, and then the old key can
//! go.

use std::collections::HashMap;

use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

pub struct TokenCipher {
    current: String,
    keys: HashMap<String, LessSafeKey>,
    rng: SystemRandom,
}

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCipher")
            .field("current", &self.current)
            .field("keys", &self.keys.len())
            .finish()
    }
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl TokenCipher {
    /// Parses `id:hex,id:hex…` (the first is current).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut keys = HashMap::new();
        let mut current = None;
        for (i, part) in spec
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .enumerate()
        {
            let (id, hex_key) = part
                .split_once(':')
                .ok_or_else(|| format!("key {}: expected id:hex (64 hex digits)", i + 1))?;
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!(
                    "key {}: the id must be letters, digits, - or _",
                    i + 1
                ));
            }
            let bytes = hex::decode(hex_key)
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| format!("key {id}: expected 64 hex digits (32 bytes)"))?;
            let key =
                UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| format!("key {id}: unusable"))?;
            if keys.insert(id.to_owned(), LessSafeKey::new(key)).is_some() {
                return Err(format!("key id {id} appears twice"));
            }
            current.get_or_insert_with(|| id.to_owned());
        }
        let current = current.ok_or("no key given")?;
        Ok(Self {
            current,
            keys,
            rng: SystemRandom::new(),
        })
    }

    /// A new random key, as `id:hex` (for `riskdesk provider keygen`).
    pub fn generate(id: &str) -> String {
        let mut k = [0u8; 32];
        SystemRandom::new()
            .fill(&mut k)
            .expect("the system's random source");
        format!("{id}:{}", hex::encode(k))
    }

    pub fn current_key(&self) -> &str {
        &self.current
    }

    /// Seals `plain` for `owner` under the current key.
    pub fn seal(&self, owner: &str, plain: &str) -> String {
        let key = &self.keys[&self.current];
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .expect("the system's random source");
        let mut buf = plain.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(owner.as_bytes()),
            &mut buf,
        )
        .expect("AES-GCM seals any length riskdesk stores");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        format!("v1.{}.{}", self.current, B64.encode(out))
    }

    /// The key id a sealed value was sealed under.
    pub fn key_of(sealed: &str) -> Option<&str> {
        let mut it = sealed.splitn(3, '.');
        (it.next()? == "v1").then_some(())?;
        it.next()
    }

    /// Opens what [`seal`](Self::seal) sealed for the same `owner`.
    pub fn open(&self, owner: &str, sealed: &str) -> Result<String, String> {
        let mut it = sealed.splitn(3, '.');
        let (Some("v1"), Some(id), Some(body)) = (it.next(), it.next(), it.next()) else {
            return Err("not a sealed value".into());
        };
        let key = self
            .keys
            .get(id)
            .ok_or_else(|| format!("sealed under key {id}, which is not configured"))?;
        let raw = B64
            .decode(body)
            .map_err(|_| "a sealed value is damaged".to_owned())?;
        if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err("a sealed value is damaged".into());
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "bad nonce".to_owned())?;
        let mut buf = ct.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(owner.as_bytes()), &mut buf)
            .map_err(|_| format!("a sealed value does not open under key {id} for {owner}"))?;
        String::from_utf8(plain.to_vec()).map_err(|_| "a sealed value is not text".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_owner_and_survive_a_key_rotation() {
        let k1 = TokenCipher::generate("k1");
        let old = TokenCipher::parse(&k1).unwrap();
        let sealed = old.seal("global", "rt-secret");
        assert!(!sealed.contains("rt-secret"));
        assert_ne!(
            sealed,
            old.seal("global", "rt-secret"),
            "a fresh nonce each time"
        );
        assert_eq!(old.open("global", &sealed).unwrap(), "rt-secret");
        assert!(
            old.open("us_government", &sealed).is_err(),
            "bound to its owner"
        );
        // Rotation: a new key first, the old one kept to open what it sealed.
        let both = TokenCipher::parse(&format!("{},{k1}", TokenCipher::generate("k2"))).unwrap();
        assert_eq!(both.current_key(), "k2");
        assert_eq!(both.open("global", &sealed).unwrap(), "rt-secret");
        let resealed = both.seal("global", "rt-secret");
        assert_eq!(TokenCipher::key_of(&resealed), Some("k2"));
        assert!(
            old.open("global", &resealed)
                .unwrap_err()
                .contains("not configured")
        );
        // Tampering is detected.
        let mut bad = sealed.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == 'A' { 'B' } else { 'A' });
        assert!(old.open("global", &bad).is_err());
    }

    #[test]
    fn bad_key_specs_are_refused_with_the_reason() {
        assert!(TokenCipher::parse("").unwrap_err().contains("no key"));
        assert!(TokenCipher::parse("k1").unwrap_err().contains("id:hex"));
        assert!(
            TokenCipher::parse("k1:abcd")
                .unwrap_err()
                .contains("64 hex")
        );
        let k = TokenCipher::generate("k1");
        assert!(
            TokenCipher::parse(&format!("{k},{k}"))
                .unwrap_err()
                .contains("twice")
        );
    }
}
