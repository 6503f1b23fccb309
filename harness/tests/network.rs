//! The network checks (COM-02, TLS-01..04) against the simulated board with each flaw, and
//! against Debian's mosquitto_pub as a device nobody here wrote. Only profiles differ.

mod common;

use std::collections::BTreeMap;

use common::*;

const NETWORK: &[&str] = &["plaintext-mqtt-rejection", "tls-certificates"];

/// The testcases they make: COM-02, then TLS-01..04 (one boot, one identity each) and their
/// shared positive control.
const CASES: &[&str] = &[
    "plaintext-mqtt-rejection",
    "tls-certificates.self_signed",
    "tls-certificates.wrong_host",
    "tls-certificates.expired",
    "tls-certificates.untrusted_ca",
    "tls-certificates.positive_control",
];

/// Runs the network scenarios against a profile; returns testcase status by scenario id.
fn verdicts(profile: &str, env: &[(&str, &str)]) -> (BTreeMap<String, Case>, tempfile::TempDir) {
    let mut run = Certbench::profile(profile).args(&["--skip-setup"]);
    for id in NETWORK {
        run = run.only(id);
    }
    for (k, v) in env {
        run = run.env(k, v);
    }
    let r = run.run();
    assert_eq!(r.cases.len(), CASES.len(), "{}", r.log);
    (r.by_id(), r.dir)
}

/// Expected status per testcase, in CASES order: p = pass, F = failure, E = error, S = skipped.
fn check(profile: &str, env: &[(&str, &str)], expected: &str) -> tempfile::TempDir {
    assert_eq!(expected.len(), CASES.len(), "one status per testcase");
    let (got, dir) = verdicts(profile, env);
    for (id, want) in CASES.iter().zip(expected.chars()) {
        let c = &got[*id];
        let status = match want {
            'p' => "pass",
            'F' => "failure",
            'E' => "error",
            'S' => "skipped",
            _ => unreachable!(),
        };
        assert_eq!(c.status, status, "{profile}: {id}: {c:?}");
        if want == 'F' {
            let check = match *id {
                "plaintext-mqtt-rejection" => "COM-02",
                "tls-certificates.self_signed" => "TLS-01",
                "tls-certificates.wrong_host" => "TLS-02",
                "tls-certificates.expired" => "TLS-03",
                _ => "TLS-04",
            };
            assert!(c.message.starts_with(check), "{profile}: {c:?}");
            assert!(
                c.message.contains("published 1 message"),
                "evidence names what the device did: {c:?}"
            );
        }
    }
    dir
}

#[test]
fn simulated_board_each_flaw_turns_exactly_its_checks_red() {
    // columns: COM-02, TLS-01 self-signed, TLS-02 wrong host, TLS-03 expired, TLS-04
    // untrusted CA, the TLS positive control
    let table = [
        ("devices/simboard.yaml", "pppppp"),
        // never tries TLS: the TLS checks do not apply (said so, with COM-02's FAIL to see)
        ("devices/simboard-plaintext-only.yaml", "FSSSSS"),
        // accepts the first identity and holds the session: each other identity gets its
        // own boot (the fallback), and fails there
        ("devices/simboard-no-cert-validation.yaml", "pFFFFp"),
        ("devices/simboard-no-hostname-validation.yaml", "ppFppp"),
        ("devices/simboard-plaintext-fallback.yaml", "Fppppp"),
    ];
    let handles: Vec<_> = table
        .into_iter()
        .map(|(p, e)| std::thread::spawn(move || check(p, &[], e)))
        .collect();
    for h in handles {
        let dir = h.join().expect("a profile's expectations failed");
        // the board's MQTT token (its password) never reaches a result file
        assert!(assert_no_secret(&dir.path().join("results"), &["simboard-device-token-7f3a"]) > 0);
    }
}

fn mosquitto_ready() -> bool {
    tools_ready(&["mosquitto_pub", "mosquitto"])
}

#[test]
fn mosquitto_pub_as_the_device() {
    if !mosquitto_ready() {
        return;
    }
    let token = [("PUB_DEVICE_TOKEN", "pub-secret-token-991")];
    let handles: Vec<_> = [
        ("fixtures/devices/mosquitto-pub-plain.yaml", "FSSSSS"),
        ("fixtures/devices/mosquitto-pub-insecure.yaml", "ppFppp"),
        ("fixtures/devices/mosquitto-pub-tls.yaml", "pppppp"),
    ]
    .into_iter()
    .map(|(p, e)| std::thread::spawn(move || check(p, &token, e)))
    .collect();
    for h in handles {
        let dir = h.join().expect("a profile's expectations failed");
        assert!(assert_no_secret(&dir.path().join("results"), &["pub-secret-token-991"]) > 0);
    }
}

#[test]
fn a_missing_trusted_ca_gives_not_applicable_not_pass_and_com02_needs_none() {
    let (got, _dir) = verdicts("fixtures/devices/simboard-no-trusted-ca.yaml", &[]);
    for id in &CASES[1..] {
        assert_eq!(got[*id].status, "skipped", "{id}: {:?}", got[*id]);
        assert!(got[*id].message.starts_with("NOT APPLICABLE: "), "{:?}", got[*id]);
        assert!(got[*id].message.contains("trusts no CA"), "{:?}", got[*id]);
    }
    // COM-02 is decided from the TLS-blocked phase (the device tried TLS, spoke nothing in
    // clear); the testcase says the later phases could not run
    let com02 = &got["plaintext-mqtt-rejection"];
    assert_eq!(com02.status, "pass", "{com02:?}");
}

/// A maker declaring the channel plaintext: TLS checks NOT APPLICABLE with the maker's
/// reason; COM-02 still runs and FAILs the device that speaks in clear.
#[test]
fn a_declared_plaintext_channel_makes_tls_checks_not_applicable_and_com02_fail() {
    let dir = check("fixtures/devices/simboard-declared-plaintext.yaml", &[], "FSSSSS");
    let junit = std::fs::read_to_string(dir.path().join("results/junit.xml")).expect("junit");
    assert_eq!(
        junit
            .matches("the maker declares that the MQTT channel does not use TLS: telemetry is sent over plain MQTT")
            .count(),
        5,
        "{junit}"
    );
}

/// Undeclared, a device that never tries TLS while it speaks plaintext: the TLS checks say
/// the device does not use TLS (not ERROR), pointing at COM-02.
#[test]
fn a_device_that_never_tries_tls_gets_not_applicable_pointing_at_com02() {
    let (got, _dir) = verdicts("devices/simboard-plaintext-only.yaml", &[]);
    for id in &CASES[1..] {
        assert!(
            got[*id].message.contains("does not use TLS") && got[*id].message.contains("COM-02"),
            "{id}: {:?}",
            got[*id]
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[test]
fn mosquitto_broker_as_a_device_hosting_a_broker() {
    if !mosquitto_ready() {
        return;
    }
    for (mode, want) in [("tls-only", "pass"), ("plain-and-tls", "failure")] {
        let (plain, tls) = (free_port(), free_port());
        let profile = format!("fixtures/devices/mosquitto-broker-{mode}.yaml");
        let r = Certbench::profile(&profile)
            .args(&["--skip-setup"])
            .only("plaintext-mqtt-broker")
            .args(&["--set", &format!("broker_plain_port={plain}")])
            .args(&["--set", &format!("broker_tls_port={tls}")])
            .run();
        let cases = r.cases;
        assert_eq!(cases[0].status, want, "{mode}: {cases:?}\n{}", r.log);
        if want == "failure" {
            assert!(
                cases[0].message.starts_with("COM-02:") && cases[0].message.contains("in clear"),
                "{cases:?}"
            );
        }
    }
}

/// Other peers on the bench network (fixtures/peers/crowd.sh: 70 connections from 127.0.0.1,
/// idle or real MQTT clients from Debian's mosquitto) cannot change COM-02: with the board's
/// address declared, their CONNECTs neither fail a good board nor can they crowd a
/// plaintext-fallback board out of its FAIL; without it, a crowd that takes the shared
/// connection slots makes the check ERROR, never PASS (when a slot is free after all, the
/// board is caught in clear: FAIL, also never PASS).
#[rstest::rstest]
#[case::good_board_amid_mqtt_clients("simboard-crowded-bench.yaml", "", "connect", "pass", "")]
#[case::flawed_board_amid_mqtt_clients(
    "simboard-crowded-bench.yaml",
    "plaintext-fallback",
    "connect",
    "failure",
    "from 127.0.0.2"
)]
#[case::flawed_board_amid_idle_slot_holders(
    "simboard-crowded-bench.yaml",
    "plaintext-fallback",
    "idle",
    "failure",
    "from 127.0.0.2"
)]
#[case::unattributed_crowd_holding_the_slots(
    "simboard-crowded-bench-unattributed.yaml",
    "plaintext-fallback",
    "idle",
    "error",
    "refused"
)]
fn other_peers_on_the_bench_cannot_change_com02(
    #[case] profile: &str,
    #[case] flaw: &str,
    #[case] crowd: &str,
    #[case] want: &str,
    #[case] says: &str,
) {
    if !mosquitto_ready() {
        return;
    }
    let profile = format!("fixtures/devices/{profile}");
    let (flaw, crowd) = (format!("flaw={flaw}"), format!("crowd={crowd}"));
    let (cases, _, dir, out) = run_only_with(
        &profile,
        &["plaintext-mqtt-rejection"],
        &["--skip-setup", "--set", &flaw, "--set", &crowd],
    );
    let c = &cases["plaintext-mqtt-rejection"];
    if profile.contains("unattributed") && c.status == "failure" {
        // the crowd did not hold every shared slot when the board connected, so the flawed
        // board got one and was caught in clear: still never a PASS, which this case guards.
        // (It happened in 7 of 17 runs, the previous stop's binary included, until
        // fixtures/peers/crowd.sh stopped closing one of its own sockets: since then only
        // ERROR has been seen.)
        assert!(c.message.contains("COM-02") && c.message.contains("in clear"), "{c:?}");
    } else {
        assert_eq!(c.status, want, "{c:?}\n{out}");
        assert!(c.message.contains(says), "{c:?}");
    }
    if want == "pass" {
        let report = std::fs::read_to_string(dir.path().join("results/report.json")).expect("report");
        assert!(
            report.contains("only connections from the device's address 127.0.0.2 were counted"),
            "the evidence says whose connections counted"
        );
    }
    // the crowd was there, and is in the evidence as what it was
    let sessions = std::fs::read_to_string(
        dir.path()
            .join("results/scenarios/plaintext-mqtt-rejection/bench-sessions.jsonl"),
    )
    .expect("sessions evidence");
    let other = if profile.contains("unattributed") {
        "\"origin\":\"unattributed\""
    } else {
        "\"origin\":\"other_peer\""
    };
    assert!(sessions.matches(other).count() >= 64, "the crowd is recorded: {other}");
}

/// TLS-01..04 share one boot: the bench presents the identities in turn, and once each had
/// its attempts, every further connection gets the self-signed one, whose window runs in full.
/// A device that turns certificate checks off after five failures therefore cannot pass
/// requirement 1: whichever identity its sixth attempt meets sees it complete the handshake.
#[test]
fn a_device_that_stops_validating_after_failures_is_caught_in_the_rotation() {
    let (cases, _, dir, out) = run_only_with(
        "devices/simboard-validation-off-after-failures.yaml",
        &["tls-certificates"],
        &["--skip-setup"],
    );
    let failed: Vec<_> = CASES[1..5]
        .iter()
        .filter(|id| cases[**id].status == "failure")
        .collect();
    assert!(!failed.is_empty(), "an identity saw the fallback: {cases:?}\n{out}");
    for id in &failed {
        let c = &cases[**id];
        assert!(
            c.message.starts_with("TLS-0") && c.message.contains("TLS handshake completed"),
            "{c:?}"
        );
    }
    assert!(out.contains("1. FAIL"), "requirement 1 fails: {out}");
    let report = std::fs::read_to_string(dir.path().join("results/report.json")).expect("report");
    // every connection of the rotation says which identity it was presented
    let sessions = std::fs::read_to_string(
        dir.path()
            .join("results/scenarios/tls-certificates.self_signed/bench-sessions.jsonl"),
    )
    .expect("sessions evidence");
    assert!(sessions.contains("\"identity\":\"self_signed\""), "{sessions}");
    assert!(
        report.contains(
            "power cycle skipped: tls-certificates.self_signed powered the device on under this identity rotation"
        ),
        "the other identities reuse the first one's boot"
    );
}

/// TLS-05 against OpenSSL's s_client as the device's TLS client (fixtures/tlsdev): with TLS
/// 1.0/1.1 switched off it refuses the bench's TLS 1.0 ServerHello (PASS); with Debian's
/// defaults it goes on to its key exchange (FAIL, saying so). The simulated board's rustls
/// client refuses at the ServerHello in the main job.
#[rstest::rstest]
#[case::hardened("hardened", "pass", "")]
#[case::debian_defaults("defaults", "failure", "the client answered the certificate with its key exchange")]
fn an_old_tls_server_against_openssl_clients(#[case] mode: &str, #[case] want: &str, #[case] says: &str) {
    if !tools_ready(&["openssl"]) {
        return;
    }
    let r = Certbench::profile("fixtures/devices/openssl-mqtt-client.yaml")
        .args(&["--skip-setup", "--set", &format!("tls_mode={mode}")])
        .only("tls-old-version")
        .run();
    let c = r.cases.first().expect("one testcase");
    assert_eq!(c.status, want, "{c:?}\n{}", r.log);
    assert!(c.message.contains(says), "{c:?}");
    let sessions =
        std::fs::read_to_string(r.results().join("scenarios/tls-old-version/bench-sessions.jsonl")).expect("sessions");
    if want == "pass" {
        assert!(
            sessions.contains("alert protocol_version at the TLS 1.0 ServerHello"),
            "{sessions}"
        );
    }
}

/// TLS-05 on the simulated board: its client (rustls) refuses the bench's TLS 1.0
/// ServerHello; with the tls-version-fallback flaw it tries again with an old TLS 1.0 stack,
/// which goes on to its key exchange: FAIL, naming the session.
#[rstest::rstest]
#[case::good("devices/simboard.yaml", "pass")]
#[case::version_fallback("devices/simboard-tls-version-fallback.yaml", "failure")]
fn tls_05_on_the_simulated_board(#[case] profile: &str, #[case] want: &str) {
    let r = Certbench::profile(profile)
        .args(&["--skip-setup"])
        .only("tls-old-version")
        .run();
    let c = r.cases.first().expect("one testcase");
    assert_eq!(c.status, want, "{c:?}\n{}", r.log);
    if want == "failure" {
        assert!(
            c.message.starts_with("TLS-05: the device went on with TLS 1.0")
                && c.message
                    .contains("the client answered the certificate with its key exchange"),
            "{c:?}"
        );
    }
}
