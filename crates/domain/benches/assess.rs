//! In-process assessment speed (run by hand: `cargo bench -p riskdesk-domain --bench assess`).
//!
//! One assessment with every local signal: shipped lists, BIN table, FATF lists, the MaxMind
//! test City and Anonymous-IP databases, a card, a phone, velocity facts. Reports the median
//! and p99 of per-assessment time over batches, and a BIN look-up alone.

use std::hint::black_box;
use std::time::Instant;

use riskdesk_domain::onboarding::assess::{
    PaymentInstrument, RiskData, SignupFacts, SignupInput, VelocityKind, assess,
};
use riskdesk_domain::onboarding::geo::GeoDb;
use riskdesk_domain::onboarding::policy::Policy;
use riskdesk_domain::onboarding::shipped;
use riskdesk_domain::{CountryCode, DomainName, Email};

fn mmdb(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../data/maxmind-test/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn main() {
    let data = RiskData {
        email_lists: shipped::email_lists(),
        bins: shipped::bins().unwrap(),
        fatf: shipped::fatf().unwrap(),
        geo: GeoDb::new(
            Some(mmdb("GeoIP2-City-Test.mmdb")),
            Some(mmdb("GeoIP2-Anonymous-IP-Test.mmdb")),
        )
        .unwrap(),
    };
    let policy = Policy::default().compile().unwrap();
    let input = SignupInput {
        company_name: "Contoso Ltd".into(),
        company_domain: DomainName::parse("contoso.co.uk").unwrap(),
        company_country: CountryCode::parse("GB").unwrap(),
        email: Email::parse("founder@gmail.com").unwrap(),
        phone: Some("+33142685300".into()),
        ip: "214.0.1.1".parse().unwrap(),
        device_id: Some("dev-1".into()),
        payment: Some(PaymentInstrument::Card {
            bin: "100100".into(),
            last4: "0001".into(),
            country: None,
        }),
        as_of: "2026-11-01T12:00:00Z".parse().unwrap(),
    };
    let facts = SignupFacts {
        velocity: vec![
            (VelocityKind::Ip, "214.0.1.1".into(), 2),
            (VelocityKind::Card, "100100:0001".into(), 1),
        ],
        fraud_links: vec![],
        ..Default::default()
    };
    let a = assess(&input, &facts, &data, &policy);
    println!(
        "sample: decision {:?}, score {}, {} reasons",
        a.decision,
        a.score,
        a.reasons.len()
    );

    const BATCH: usize = 1_000;
    const BATCHES: usize = 200;
    let mut per_op = Vec::with_capacity(BATCHES);
    for _ in 0..BATCHES {
        let t = Instant::now();
        for _ in 0..BATCH {
            black_box(assess(black_box(&input), black_box(&facts), &data, &policy));
        }
        per_op.push(t.elapsed().as_nanos() as f64 / BATCH as f64);
    }
    per_op.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "assess (every local signal): median {:.2} µs, p99 {:.2} µs per assessment ({} × {} runs)",
        per_op[BATCHES / 2] / 1000.0,
        per_op[BATCHES * 99 / 100] / 1000.0,
        BATCHES,
        BATCH
    );

    let bins = ["10010012", "40781234", "55555555", "411111"];
    let mut per_lookup = Vec::new();
    for _ in 0..BATCHES {
        let t = Instant::now();
        for i in 0..BATCH * 10 {
            black_box(data.bins.lookup(black_box(bins[i % 4])));
        }
        per_lookup.push(t.elapsed().as_nanos() as f64 / (BATCH * 10) as f64);
    }
    per_lookup.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("BIN look-up: median {:.0} ns", per_lookup[BATCHES / 2]);
}
