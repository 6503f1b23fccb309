//! The bench as a broker for real clients, and against hostile input: garbage, huge
//! remaining lengths, stalled handshakes and MQTT 5 are recorded and closed, never a
//! crash, and the bench keeps serving.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use certbench::bench::pki::{CertVariant, TrustSource};
use certbench::bench::sessions::{ListenerName, TlsOutcome};
use certbench::bench::{BenchSpec, NetBench};

async fn bench(dir: &std::path::Path) -> NetBench {
    bench_with(dir, Duration::from_secs(10)).await
}

async fn bench_with(dir: &std::path::Path, handshake_timeout: Duration) -> NetBench {
    let spec = BenchSpec {
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
    let sessions = b.log.snapshot();
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
