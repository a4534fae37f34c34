//! Partner Center webhook callbacks (`riskdesk_connectors::pc_webhook::WebhookVerifier::verify`:
//! the `Authorization: Signature <base64>` / `x-ms-signature`, `X-MS-Certificate-Url` and
//! `X-MS-Signature-Algorithm` headers, the certificate chain, the RSA PKCS#1 v1.5 SHA-256
//! signature over the raw body, then the body's event), against the test CA and signing key
//! of `crates/connectors/tests/fixtures/pc-webhook`, the certificate published by the local
//! test server (`test_support::CertServer`, on 127.0.0.1) and cached after the first call.
//!
//! Input: the first byte is the mode (its value mod 4), the rest:
//! - 0: a body, signed with the test key: verifies, or is refused only as a bad body;
//! - 1: two bytes choosing one bit of the signature to flip, then a body: refused as a bad
//!   signature;
//! - 2: the same for one bit of the body after signing: refused as a bad signature;
//! - 3: headers (`name: value` lines), an empty line, the body; `{sig}` in a value is the
//!   body's real signature and `{url}` the test certificate's URL: whatever the headers,
//!   a callback is accepted only with the body's real signature, an allowed certificate URL
//!   and the rsa-sha256 algorithm.
//!
//! Invariants: as above, and no panic; an accepted event has a non-blank name.
#![no_main]

use std::collections::HashMap;
use std::sync::LazyLock;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use riskdesk_connectors::pc_webhook::test_support::{
    CertServer, LEAF_CERT, leaf_key_pem, settings, sign,
};
use riskdesk_connectors::pc_webhook::{PartnerCenterEvent, VerifyError, WebhookVerifier};

/// Within the test certificates' validity (2026-11-21 to 2046-11-16).
const NOW: i64 = 1_900_000_000;

struct World {
    rt: tokio::runtime::Runtime,
    server: CertServer,
    verifier: WebhookVerifier,
    key: String,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(CertServer::start());
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let verifier = WebhookVerifier::new(&settings(&server.base_url), http).unwrap();
    World {
        rt,
        server,
        verifier,
        key: leaf_key_pem(),
    }
});

const B64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

fn verify(
    headers: &HashMap<String, String>,
    body: &[u8],
) -> Result<PartnerCenterEvent, VerifyError> {
    let w = &*WORLD;
    w.rt.block_on(
        w.verifier
            .verify(&|name| headers.get(name).cloned(), body, NOW),
    )
}

fn standard(signature: &str) -> HashMap<String, String> {
    HashMap::from([
        ("authorization".to_owned(), format!("Signature {signature}")),
        (
            "x-ms-certificate-url".to_owned(),
            WORLD.server.url(LEAF_CERT),
        ),
        (
            "x-ms-signature-algorithm".to_owned(),
            "rsa-sha256".to_owned(),
        ),
    ])
}

fn accepted(r: &Result<PartnerCenterEvent, VerifyError>) {
    if let Ok(e) = r {
        assert!(!e.event_name.trim().is_empty(), "{e:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let w = &*WORLD;
    match mode % 4 {
        0 => {
            let r = verify(&standard(&sign(&w.key, rest)), rest);
            assert!(
                matches!(r, Ok(_) | Err(VerifyError::BadBody(_))),
                "a body signed with the key: {r:?}"
            );
            accepted(&r);
        }
        1 | 2 => {
            let [a, b, body @ ..] = rest else { return };
            let pos = usize::from(u16::from_le_bytes([*a, *b]));
            let signature = sign(&w.key, body);
            let (signature, body) = if mode % 4 == 1 {
                let mut raw = B64.decode(&signature).unwrap();
                let i = pos / 8 % raw.len();
                raw[i] ^= 1 << (pos % 8);
                (B64.encode(raw), body.to_vec())
            } else {
                let mut body = body.to_vec();
                match body.len() {
                    0 => body.push(b'{'),
                    n => body[pos / 8 % n] ^= 1 << (pos % 8),
                }
                (signature, body)
            };
            let r = verify(&standard(&signature), &body);
            assert_eq!(
                r,
                Err(VerifyError::BadSignature),
                "a changed {}",
                if mode % 4 == 1 { "signature" } else { "body" }
            );
        }
        _ => {
            let text = String::from_utf8_lossy(rest);
            let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
            let body = body.as_bytes();
            let real = sign(&w.key, body);
            let url = w.server.url(LEAF_CERT);
            let mut headers = HashMap::new();
            for line in head.lines() {
                if let Some((name, value)) = line.split_once(':') {
                    headers.insert(
                        name.trim().to_ascii_lowercase(),
                        value.replace("{sig}", &real).replace("{url}", &url),
                    );
                }
            }
            let r = verify(&headers, body);
            accepted(&r);
            if r.is_ok() {
                let real = B64.decode(&real).unwrap();
                let carried = ["authorization", "x-ms-signature"].iter().any(|h| {
                    headers.get(*h).is_some_and(|v| {
                        let v = v.trim();
                        let b64 = v
                            .split_once(char::is_whitespace)
                            .map_or(v, |(_, s)| s.trim());
                        B64.decode(b64).is_ok_and(|s| s == real)
                    })
                });
                assert!(
                    carried,
                    "accepted without the body's signature: {headers:?}"
                );
                let alg = headers.get("x-ms-signature-algorithm").map(|a| a.trim());
                assert!(
                    alg.is_some_and(|a| a.eq_ignore_ascii_case("rsa-sha256")),
                    "{headers:?}"
                );
                let cert = headers
                    .get("x-ms-certificate-url")
                    .map(|u| u.trim().to_ascii_lowercase());
                assert!(
                    cert.is_some_and(|u| u.starts_with(&w.server.base_url.to_ascii_lowercase())),
                    "{headers:?}"
                );
            }
        }
    }
});
