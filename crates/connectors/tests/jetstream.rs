//! The event stream against a real nats-server with JetStream (set RISKDESK_TEST_NATS_URL,
//! e.g. nats://127.0.0.1:4222; CI sets it, and a server that is not there fails the suite).
//! Each test uses a stream and subjects unique to it, and deletes the stream.

use std::time::Duration;

use riskdesk_connectors::jetstream::{EventStream, Outgoing, StreamSettings, fnv1a32};

fn nats_url() -> Option<String> {
    std::env::var("RISKDESK_TEST_NATS_URL").ok()
}

async fn stream(partitions: u32, max_bytes: i64) -> Option<EventStream> {
    let url = nats_url()?;
    let run = uuid::Uuid::now_v7().simple().to_string();
    let s = EventStream::connect(StreamSettings {
        url,
        stream: format!("RDT_{run}"),
        subject_prefix: format!("rdt{run}"),
        partitions,
        replicas: 1,
        max_bytes,
        ack_wait: Duration::from_secs(30),
    })
    .await
    .expect("RISKDESK_TEST_NATS_URL is set: the server must be reachable");
    Some(s)
}

fn msg(p: u32, id: &str, body: &str) -> Outgoing {
    Outgoing {
        partition: p,
        msg_id: id.into(),
        reply_to: None,
        payload: body.as_bytes().to_vec(),
    }
}

#[test]
fn fnv1a_is_the_servers_partition_hash() {
    // Reference values of 32-bit FNV-1a.
    assert_eq!(fnv1a32(b""), 0x811c9dc5);
    assert_eq!(fnv1a32(b"a"), 0xe40c292c);
    assert_eq!(fnv1a32(b"foobar"), 0xbf9cf968);
}

#[tokio::test]
async fn publish_dedupe_fetch_ack_and_take_over_from_the_oldest_unacknowledged() {
    let Some(s) = stream(4, 1 << 20).await else {
        eprintln!("RISKDESK_TEST_NATS_URL not set: skipped");
        return;
    };
    let acks = s
        .publish(vec![
            msg(1, "a", "one"),
            msg(1, "b", "two"),
            msg(2, "c", "three"),
        ])
        .await
        .unwrap();
    assert_eq!(acks.len(), 3);
    assert!(acks.iter().all(|a| !a.duplicate));
    // The same id inside the window is not stored again.
    let again = s.publish(vec![msg(1, "a", "one")]).await.unwrap();
    assert!(again[0].duplicate);
    assert_eq!(again[0].sequence, acks[0].sequence);
    assert_eq!(s.backlog().await.unwrap(), 3);

    // Partition 1 has its two messages, in order; partition 2 is not its business.
    let p1 = s.take_partition(1).await.unwrap();
    let got = p1.fetch(10, Duration::from_millis(300)).await.unwrap();
    let bodies: Vec<&[u8]> = got.iter().map(|d| d.payload.as_ref()).collect();
    assert_eq!(bodies, vec![&b"one"[..], &b"two"[..]]);
    assert!(got[0].sequence < got[1].sequence);
    assert_eq!(got[0].delivered, 1);
    // The first is acknowledged, the second is left as a dying owner would leave it.
    got[0].ack().await.unwrap();
    drop(got);
    drop(p1);

    // A new owner recreates the consumer and is given the unacknowledged one at once (not
    // after ack_wait), and nothing acknowledged comes back.
    let p1 = s.take_partition(1).await.unwrap();
    let got = p1.fetch(10, Duration::from_millis(300)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload.as_ref(), b"two");
    got[0].ack().await.unwrap();
    assert_eq!(
        s.backlog().await.unwrap(),
        1,
        "acknowledged messages leave the work queue"
    );

    let p2 = s.take_partition(2).await.unwrap();
    let got = p2.fetch(10, Duration::from_millis(300)).await.unwrap();
    assert_eq!(got.len(), 1);
    got[0].ack().await.unwrap();
    assert_eq!(s.backlog().await.unwrap(), 0);
    s.delete().await.unwrap();
}

#[tokio::test]
async fn a_full_stream_refuses_the_publish_and_keeps_what_it_has() {
    let Some(s) = stream(1, 4096).await else {
        eprintln!("RISKDESK_TEST_NATS_URL not set: skipped");
        return;
    };
    let body = "x".repeat(1000);
    let mut refused = None;
    for i in 0..20 {
        if let Err(e) = s.publish(vec![msg(0, &format!("m{i}"), &body)]).await {
            refused = Some((i, e));
            break;
        }
    }
    let (i, e) = refused.expect("4 KiB cannot hold 20 KB");
    assert!(i >= 2, "the first messages fit: refused at {i}");
    assert!(e.to_string().contains("refused"), "{e}");
    // Nothing was dropped to make room.
    assert_eq!(s.backlog().await.unwrap(), i as u64);
    s.delete().await.unwrap();
}

#[tokio::test]
async fn replies_reach_the_inbox_subscribed_before_the_publish() {
    let Some(s) = stream(1, 1 << 20).await else {
        eprintln!("RISKDESK_TEST_NATS_URL not set: skipped");
        return;
    };
    let inbox = s.new_inbox();
    let mut replies = s.subscribe(inbox.clone()).await.unwrap();
    s.publish(vec![Outgoing {
        reply_to: Some(inbox.clone()),
        ..msg(0, "r", "ask")
    }])
    .await
    .unwrap();
    let p = s.take_partition(0).await.unwrap();
    let got = p.fetch(1, Duration::from_millis(300)).await.unwrap();
    assert_eq!(got[0].reply_to.as_deref(), Some(inbox.as_str()));
    s.reply(inbox, b"done".to_vec()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    assert_eq!(
        replies.next_before(deadline).await.as_deref(),
        Some(&b"done"[..])
    );
    got[0].ack().await.unwrap();
    s.delete().await.unwrap();
}
