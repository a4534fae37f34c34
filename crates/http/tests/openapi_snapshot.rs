//! The OpenAPI document is a contract: any change to it shows up as a diff of
//! `openapi.snapshot.json`. After an intended change, regenerate the snapshot with
//! `RISKDESK_UPDATE_SNAPSHOT=1 cargo test -p riskdesk-http --test openapi_snapshot` and review
//! the diff like code.

#[test]
fn the_openapi_document_matches_its_snapshot() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.snapshot.json");
    let doc = riskdesk_http::openapi_json();
    if std::env::var_os("RISKDESK_UPDATE_SNAPSHOT").is_some() {
        std::fs::write(&path, &doc).expect("write the snapshot");
        return;
    }
    let want = std::fs::read_to_string(&path).expect("openapi.snapshot.json is committed");
    if doc != want {
        let first = doc
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(doc.lines().count().min(want.lines().count()));
        panic!(
            "GET /openapi.json differs from openapi.snapshot.json from line {} on:\n  now:      {:?}\n  snapshot: {:?}\n\
             (if the change is intended, regenerate with RISKDESK_UPDATE_SNAPSHOT=1)",
            first + 1,
            doc.lines().nth(first),
            want.lines().nth(first)
        );
    }
}
