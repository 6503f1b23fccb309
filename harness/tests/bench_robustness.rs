//! The bench as a broker for real clients, and against hostile input: garbage, huge
//! remaining lengths, stalled handshakes and MQTT 5 are recorded and closed, never a
//! crash, and the bench keeps serving.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use certbench::bench::NetBench;
use certbench::bench::sessions::TlsOutcome;
use certbench::config::bench::BenchSpec;
use certbench::model::{CertVariant, ListenerName, TrustSource};

async fn bench(dir: &std::path::Path) -> NetBench {
    bench_with(dir, Duration::from_secs(10)).await
}

async fn bench_with(dir: &std::path::Path, handshake_timeout: Duration) -> NetBench {
    bench_for(dir, handshake_timeout, None).await
}

async fn bench_for(dir: &std::path::Path, handshake_timeout: Duration, device: Option<std::net::IpAddr>) -> NetBench {
    let spec = BenchSpec {
        attribution: certbench::model::Attribution { device },
        handshake_timeout,
        host: "localhost".into(),
        trust: TrustSource::BenchCa,
        bind: [127, 0, 0, 1].into(),
        plain_port: 0,
        tls_port: 0,
    };
    let mut b = NetBench::start(&spec, dir).await.expect("bench starts");
    b.configure(true, Some(CertVariant::Valid))
        .expect("configure")
        .expect("trusted CA present");
    b
}

fn send(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_is_recorded_and_closed_and_the_bench_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = bench(dir.path()).await;
    let (plain, tls) = (b.plain.addr.port(), b.tls.addr.port());
    tokio::task::spawn_blocking(move || {
        send(plain, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"); // not MQTT
        send(plain, &[0x10, 0xff, 0xff, 0xff, 0x7f]); // CONNECT claiming 256 MiB
        send(plain, &[0x10, 0xff, 0xff, 0xff, 0xff, 0xff]); // malformed remaining length
        send(plain, &[0x10, 10, 0, 4, b'M', b'Q', b'T', b'T', 5, 0, 0, 60]); // MQTT 5
        send(tls, b"\x16\x03\x01\x00\x05hello-not-tls-at-all"); // TLS junk
        for i in 0..200u32 {
            send(plain, &i.to_be_bytes()); // a burst of garbage
        }
    })
    .await
    .expect("junk sent");
    // a stalled handshake: connect to the TLS port and say nothing (recorded at the deadline)
    let _stalled = TcpStream::connect(("127.0.0.1", tls)).expect("connect");

    // the bench still works as a broker afterwards
    let reply = tokio::task::spawn_blocking(move || {
        let mut connect = vec![0x10, 16, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 4];
        connect.extend_from_slice(b"test");
        let mut s = TcpStream::connect(("127.0.0.1", plain)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        s.write_all(&connect).expect("write");
        let mut ack = [0u8; 4];
        s.read_exact(&mut ack).expect("CONNACK");
        ack
    })
    .await
    .expect("client");
    assert_eq!(reply, [0x20, 2, 0, 0], "CONNACK accepted");

    let sessions = b.log.snapshot();
    let errors: Vec<_> = sessions.iter().filter_map(|s| s.protocol_error.clone()).collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("first packet was not CONNECT") || e.contains("Invalid")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("limit") || e.contains("Malformed")),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("level 5")), "{errors:?}");
    assert!(
        sessions
            .iter()
            .any(|s| s.listener == ListenerName::MqttTls && matches!(s.tls, Some(TlsOutcome::Failed(_)))),
        "TLS junk recorded as a failed handshake"
    );
    assert!(
        sessions.len() >= 206,
        "every connection is recorded: {}",
        sessions.len()
    );
    assert!(
        sessions
            .iter()
            .filter(|s| s.listener == ListenerName::MqttPlain)
            .all(|s| s.closed.is_some() || s.connect.is_some()),
        "every junk connection was closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_is_a_broker_for_mosquitto_sub_and_pub_in_clear_and_over_tls() {
    if !common::tools_ready(&["mosquitto_sub"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let b = bench(dir.path()).await;
    let ca = b.vars()["bench.ca_cert"].clone();
    for (port, tls) in [(b.plain.addr.port(), false), (b.tls.addr.port(), true)] {
        let tls_args: Vec<String> = if tls {
            vec!["--cafile".into(), ca.clone()]
        } else {
            vec![]
        };
        let sub = tokio::process::Command::new("mosquitto_sub")
            .args([
                "-h",
                "localhost",
                "-p",
                &port.to_string(),
                "-t",
                "bench/#",
                "-C",
                "1",
                "-W",
                "10",
            ])
            .args(&tls_args)
            .output();
        let publisher = async {
            // publish until the subscriber is there (QoS 1 exercises PUBACK)
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let _ = tokio::process::Command::new("mosquitto_pub")
                    .args([
                        "-h",
                        "localhost",
                        "-p",
                        &port.to_string(),
                        "-t",
                        "bench/x",
                        "-m",
                        "hello-bench",
                        "-q",
                        "1",
                    ])
                    .args(&tls_args)
                    .output()
                    .await;
            }
        };
        let out = tokio::select! {
            o = sub => o.expect("mosquitto_sub"),
            _ = publisher => panic!("mosquitto_sub never received"),
        };
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "hello-bench",
            "tls={tls}: {out:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tls_handshake_is_recorded_and_closed_at_the_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = bench_with(dir.path(), Duration::from_millis(300)).await;
    let tls = b.tls.addr.port();
    let closed = tokio::task::spawn_blocking(move || {
        // connect and say nothing, like a client that hangs before its ClientHello
        let mut s = TcpStream::connect(("127.0.0.1", tls)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut buf = [0u8; 16];
        matches!(s.read(&mut buf), Ok(0) | Err(_))
    })
    .await
    .expect("client");
    assert!(closed, "the bench closed the stalled connection");
    // the connection closes as the handshake is given up; the record follows at once
    let sessions = b
        .log
        .wait_until(std::time::Instant::now() + Duration::from_secs(5), |all| {
            all.iter().any(|s| s.closed.is_some()).then(|| all.to_vec())
        })
        .await
        .unwrap_or_else(|all| all);
    let s = sessions
        .iter()
        .find(|s| s.listener == ListenerName::MqttTls)
        .expect("session recorded");
    assert_eq!(s.tls, Some(TlsOutcome::Stalled), "{s:?}");
    assert!(
        s.closed
            .as_deref()
            .is_some_and(|c| c.contains("not finished within 300ms")),
        "{s:?}"
    );
}

/// Connects from `src` (a loopback alias: another "host" on the bench network).
async fn connect_from(src: [u8; 4], to: std::net::SocketAddr) -> tokio::net::TcpStream {
    let s = tokio::net::TcpSocket::new_v4().expect("socket");
    s.bind((src, 0).into()).expect("bind source");
    s.connect(to).await.expect("connect")
}

/// An MQTT 3.1.1 packet as bytes, from rumqttc's encoder (the one the bench decodes with).
fn encode(p: rumqttc::mqttbytes::v4::Packet) -> Vec<u8> {
    let mut b = bytes::BytesMut::new();
    p.write(&mut b, 1 << 20).expect("encodes");
    b.to_vec()
}

fn mqtt_connect(client: &str) -> Vec<u8> {
    encode(rumqttc::mqttbytes::v4::Packet::Connect(
        rumqttc::mqttbytes::v4::Connect::new(client),
    ))
}

fn mqtt_publish(topic: &str, payload: &[u8]) -> Vec<u8> {
    use rumqttc::mqttbytes::{QoS, v4};
    encode(v4::Packet::Publish(v4::Publish::new(
        topic,
        QoS::AtMostOnce,
        payload.to_vec(),
    )))
}

fn mqtt_subscribe(filter: &str) -> Vec<u8> {
    use rumqttc::mqttbytes::{QoS, v4};
    let mut sub = v4::Subscribe::new(filter, QoS::AtMostOnce);
    sub.pkid = 1;
    encode(v4::Packet::Subscribe(sub))
}

async fn read_some(s: &mut tokio::net::TcpStream, n: usize) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; n];
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf)).await;
    buf
}

/// A peer publishing thousands of distinct 30 KB topics cannot grow the record without
/// bound: 64 names of at most 256 bytes are kept, the rest only counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_topics_are_recorded_bounded() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let b = bench(dir.path()).await;
    let mut s = connect_from([127, 0, 0, 1], b.plain.addr).await;
    s.write_all(&mqtt_connect("topics")).await.expect("connect");
    assert_eq!(read_some(&mut s, 4).await, [0x20, 2, 0, 0]);
    let long = "t".repeat(30_000);
    for i in 0..2000 {
        s.write_all(&mqtt_publish(&format!("{long}/{i}"), b"x"))
            .await
            .expect("publish");
    }
    s.write_all(&[0xe0, 0]).await.expect("disconnect");
    let log = b.log.clone();
    let done = log
        .wait_until(std::time::Instant::now() + Duration::from_secs(20), |all| {
            all.iter()
                .find(|x| x.closed.is_some() && x.publish_count() == 2000)
                .cloned()
        })
        .await
        .expect("the session ends with every PUBLISH counted");
    assert_eq!(done.published.len(), certbench::bench::sessions::TOPICS_MAX);
    assert_eq!(done.published_other_topics, 2000 - 64);
    assert!(done.published.keys().all(|k| k.len() < 300), "names are cut");
}

/// With the device's address declared, other peers are recorded as such and never counted,
/// their records are capped (the rest counted as dropped), they get no subscription and
/// cannot publish to the device; the device's own session still counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_peers_are_recorded_capped_and_never_counted() {
    use certbench::bench::peers::OTHER_RECORDS_MAX;
    use certbench::model::Origin;
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let b = bench_for(dir.path(), Duration::from_secs(10), Some([127, 0, 0, 2].into())).await;
    let addr = b.plain.addr;
    // a peer that subscribes to everything
    let mut spy = connect_from([127, 0, 0, 1], addr).await;
    spy.write_all(&mqtt_connect("spy")).await.expect("connect");
    assert_eq!(read_some(&mut spy, 4).await, [0x20, 2, 0, 0]);
    spy.write_all(&mqtt_subscribe("#")).await.expect("subscribe");
    assert_eq!(read_some(&mut spy, 5).await, [0x90, 3, 0, 1, 0x80], "SUBACK refuses it");
    assert_eq!(b.publish("cmd/device", b"reboot"), 0, "nobody to deliver to");
    for i in 0..OTHER_RECORDS_MAX + 100 {
        let mut s = connect_from([127, 0, 0, 1], addr).await;
        let _ = s.write_all(&mqtt_connect(&format!("peer{i}"))).await;
    }
    // the device, from its address
    let mut dev = connect_from([127, 0, 0, 2], addr).await;
    dev.write_all(&mqtt_connect("device")).await.expect("connect");
    assert_eq!(read_some(&mut dev, 4).await, [0x20, 2, 0, 0]);
    dev.write_all(&mqtt_subscribe("cmd/#")).await.expect("subscribe");
    assert_eq!(read_some(&mut dev, 5).await, [0x90, 3, 0, 1, 0]);
    assert_eq!(
        b.publish("cmd/device", b"hello"),
        1,
        "the device gets the bench's message"
    );
    let counted = b.log.snapshot();
    assert_eq!(counted.len(), 1, "only the device's session counts: {counted:?}");
    assert_eq!(counted[0].origin, Origin::Device);
    let all = b.log.all();
    assert_eq!(all.len(), OTHER_RECORDS_MAX + 1);
    assert!(all.iter().filter(|s| s.origin == Origin::OtherPeer).count() == OTHER_RECORDS_MAX);
    assert!(b.log.dropped().1 >= 99, "the rest counted: {:?}", b.log.dropped());
    assert_eq!(b.log.dropped().0, 0);
}

/// A subscriber that never reads holds at most its outbox (1 MiB) plus the socket buffers,
/// however much the bench has to deliver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_is_bounded() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let b = bench(dir.path()).await;
    let mut s = connect_from([127, 0, 0, 1], b.plain.addr).await;
    s.write_all(&mqtt_connect("sleeper")).await.expect("connect");
    assert_eq!(read_some(&mut s, 4).await, [0x20, 2, 0, 0]);
    s.write_all(&mqtt_subscribe("#")).await.expect("subscribe");
    assert_eq!(read_some(&mut s, 5).await, [0x90, 3, 0, 1, 0]);
    let payload = vec![b'p'; 64 << 10];
    let mut delivered = 0;
    for i in 0..1000 {
        delivered += b.publish("bulk", &payload);
        if i % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // 64 MB offered; what is held is the outbox plus what the kernel buffers
    assert!(
        delivered < 400,
        "delivered {delivered} x 64 KiB to a peer that never reads"
    );
    assert!(delivered > 0);
}
