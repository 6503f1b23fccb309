//! The device's link (issue 12): devices made of Debian programs (curl, socat, inetutils
//! telnetd; fixtures/netdev/device.sh) run in the namespace certbench makes for them; the
//! capture is read back with Debian's tshark. Only the profile differs between devices.
//! Needs root (namespaces, AF_PACKET); without it the tests say so and stop.

mod common;

use common::*;
use std::process::Command;

const CHECKS: &[&str] = &["network-traffic", "open-ports"];

fn ready() -> bool {
    // SAFETY: geteuid has no preconditions
    if unsafe { libc::geteuid() } != 0 {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root");
        eprintln!("SKIPPED: network namespaces need root");
        return false;
    }
    tools_ready(&["ip", "curl", "socat", "openssl", "tshark"])
}

fn run(profile: &str) -> (std::collections::BTreeMap<String, Case>, tempfile::TempDir, String) {
    let (cases, code, dir, out) = run_only(profile, CHECKS);
    assert!(code.is_some(), "{out}");
    (cases, dir, out)
}

fn tshark(file: &std::path::Path, filter: &str) -> String {
    let o = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-Y", filter])
        .output()
        .expect("tshark");
    assert!(o.status.success(), "tshark: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn plain_http_telemetry_fails_com01_with_the_flow_named_and_its_packets_in_the_pcapng() {
    if !ready() {
        return;
    }
    let (c, dir, out) = run("fixtures/devices/netdev-http-telemetry.yaml");
    let t = &c["network-traffic"];
    assert_eq!(t.status, "failure", "{out}");
    assert!(
        t.message.contains("COM-01") && t.message.contains("HTTP in clear"),
        "{}",
        t.message
    );
    assert!(
        t.message.contains(":8080") && t.message.contains("POST /telemetry"),
        "{}",
        t.message
    );
    assert_eq!(c["open-ports"].status, "pass", "{out}");
    // the report shows where the device talked to, on the page itself
    let html = std::fs::read_to_string(dir.path().join("results/report.html")).expect("report");
    let shown = html
        .split("<summary>destinations.txt</summary><pre>")
        .nth(1)
        .expect("destinations on the page");
    assert!(shown.contains(":8080") && shown.contains("http"), "{shown}");
    // the packet the verdict names is that request in the capture, as Wireshark reads it
    let n: String = t
        .message
        .split("(packets #")
        .nth(1)
        .expect("packet numbers in the reason")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let pcap = dir.path().join("results/capture.pcapng");
    let hit = tshark(
        &pcap,
        &format!("frame.number == {n} && http.request.method == \"POST\""),
    );
    assert!(hit.contains("POST /telemetry"), "frame {n}: {hit:?}");
    // every destination is listed; the evidence is in the manifest like all evidence
    let dest = std::fs::read_to_string(dir.path().join("results/scenarios/network-traffic/destinations.txt"))
        .expect("destinations.txt");
    assert!(dest.contains("http") && dest.contains("plaintext"), "{dest}");
    let manifest = std::fs::read_to_string(dir.path().join("results/manifest.json")).expect("manifest");
    assert!(manifest.contains("capture.pcapng"), "{manifest}");
}

#[test]
fn https_telemetry_with_a_pinned_ca_passes_and_nothing_listens() {
    if !ready() {
        return;
    }
    let (c, dir, out) = run("fixtures/devices/netdev-https-telemetry.yaml");
    let t = &c["network-traffic"];
    assert_eq!(t.status, "pass", "{out}");
    assert_eq!(c["open-ports"].status, "pass", "{out}");
    let pcap = dir.path().join("results/capture.pcapng");
    let hello = tshark(&pcap, "tls.handshake.extensions_server_name == \"cloud.netdev.test\"");
    assert!(!hello.is_empty(), "tshark finds the device's ClientHello with its SNI");
    let dest = std::fs::read_to_string(dir.path().join("results/scenarios/network-traffic/destinations.txt"))
        .expect("destinations.txt");
    assert!(dest.contains("SNI cloud.netdev.test"), "{dest}");
    // the bench answered the connection (it has no identity the pinned client would take)
    let seen = std::fs::read_to_string(dir.path().join("results/scenarios/network-traffic/intercepted.jsonl"))
        .expect("intercepted.jsonl");
    assert!(
        seen.contains("\"host\":\"cloud.netdev.test\"") && seen.contains("\"kind\":\"tls\""),
        "{seen}"
    );
    // it found the cloud by name, through certbench's name server, and the flow carries it
    let dns = std::fs::read_to_string(dir.path().join("results/dns-queries.jsonl")).expect("dns-queries.jsonl");
    assert!(
        dns.contains("\"name\":\"cloud.netdev.test\"") && dns.contains("\"kind\":\"A\""),
        "{dns}"
    );
    assert!(dest.contains("cloud.netdev.test ("), "the destination is named: {dest}");
}

/// Clear text over UDP dressed as NTP (48 bytes whose first byte reads "v4 client", on
/// port 123) and as DTLS (a 3-byte record prefix) is judged as the text it is: COM-01
/// fails naming both, each with its excerpt. tshark reads the same datagrams as malformed.
#[test]
fn clear_text_dressed_as_ntp_or_dtls_fails_com01() {
    if !ready() {
        return;
    }
    let (c, dir, out) = run("fixtures/devices/netdev-udp-disguised.yaml");
    let t = &c["network-traffic"];
    assert_eq!(t.status, "failure", "{out}");
    assert!(t.message.contains("COM-01"), "{}", t.message);
    assert!(
        t.message
            .contains(":123: an unidentified protocol carrying readable text")
            && t.message.contains("c=telemetry&owner=alice@example.com"),
        "{}",
        t.message
    );
    assert!(
        t.message
            .contains(":4433: an unidentified protocol carrying readable text"),
        "{}",
        t.message
    );
    let pcap = dir.path().join("results/capture.pcapng");
    assert!(
        !tshark(&pcap, "udp.dstport == 123").is_empty(),
        "the datagrams are in the capture"
    );
}

/// The netdev device doing `mode` (fixtures/netdev/device.sh), judged by the 5-second
/// traffic scenario.
fn run_mode(mode: &str) -> (Case, tempfile::TempDir, String) {
    let r = Certbench::profile("fixtures/devices/netdev.yaml")
        .args(&["--set", &format!("netdev_mode={mode}")])
        .args(&["-s", "fixtures/scenarios/traffic-short.yaml"])
        .run();
    let c = r.cases.first().cloned().expect("one testcase");
    (c, r.dir, r.log)
}

/// The device's time requests are answered by the bench (issue 25): Debian's chrony in the
/// device's namespace asks a hard-coded time server (192.0.2.123) and one by name; both get
/// the bench's clock (chronyd -Q reports an offset of well under a second, so the device's
/// clock would be right), every query is in ntp-queries.jsonl, and NTP stays on COM-01's
/// allowlist (the run's only data is time and names: not decided, never a PASS).
#[test]
fn the_devices_time_requests_get_the_benchs_clock() {
    if !ready() || !deps_ready(&["/var/cache/certbench-deps/chronyd"]) {
        return;
    }
    let (c, dir, log) = run_mode("ntp-client");
    assert_eq!(c.status, "error", "{c:?}\n{log}");
    assert!(
        c.message.contains("address configuration, name resolution or time") && c.message.contains("ntp"),
        "{c:?}"
    );
    let chrony = std::fs::read_to_string(dir.path().join("work/netdev/ntp.log")).expect("ntp.log");
    let offsets: Vec<f64> = chrony
        .lines()
        .filter_map(|l| l.split("System clock wrong by ").nth(1))
        .filter_map(|r| r.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(offsets.len() >= 2, "both servers answered: {chrony}");
    assert!(offsets.iter().all(|o: &f64| o.abs() < 1.0), "{offsets:?}");
    let queries = std::fs::read_to_string(dir.path().join("results/scenarios/traffic-short/ntp-queries.jsonl"))
        .expect("ntp-queries.jsonl");
    assert!(
        queries.contains("\"answered\":true") && queries.contains("\"version\":4"),
        "{queries}"
    );
    assert!(
        log.contains("the device's time requests (NTP, to any address) are answered"),
        "{log}"
    );
}

/// The IP forwarding counter of this machine's network (`ForwDatagrams` of /proc/net/snmp).
fn forwarded() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").expect("/proc/net/snmp");
    let mut ip = snmp.lines().filter(|l| l.starts_with("Ip:"));
    let (names, values) = (ip.next().expect("names"), ip.next().expect("values"));
    let at = names
        .split_whitespace()
        .position(|n| n == "ForwDatagrams")
        .expect("ForwDatagrams");
    values
        .split_whitespace()
        .nth(at)
        .and_then(|v| v.parse().ok())
        .expect("a count")
}

/// Issue 25: the bench answers every flow, so what the device would send is seen. Debian's
/// curl polling a name no profile declares on port 8080, posting a token to a hard-coded
/// address outside the bench (TEST-NET-1), uploading over FTP (the bench greets first, as
/// an FTP server does, and the client then sends its USER and PASS), and logger sending
/// syslog over UDP: each is answered or recorded, and COM-01 fails naming it. Nothing is
/// forwarded: this machine's forwarding counter does not move, and the connection to the
/// outside address is the bench's (intercepted.jsonl).
#[rstest::rstest]
#[case::poll_by_name("http-poll-by-name", &["HTTP in clear", "api.example.test", ":8080", "GET /v1/manifest?device=nd-1"])]
#[case::direct_ip("direct-ip", &["HTTP in clear", "192.0.2.10:80", "POST /telemetry"])]
#[case::ftp("ftp-upload", &["FTP in clear", "192.0.2.10:21", "USER ndev"])]
#[case::syslog("syslog-udp", &["SYSLOG in clear", ":514", "\"<13>1 "])]
fn every_flow_is_answered_so_clear_text_anywhere_fails_com01(#[case] mode: &str, #[case] named: &[&str]) {
    if !ready() || !tools_ready(&["nft", "logger"]) {
        return;
    }
    let before = forwarded();
    let (c, dir, out) = run_mode(mode);
    assert_eq!(c.status, "failure", "{c:?}\n{out}");
    assert!(c.message.starts_with("COM-01: application data in clear"), "{c:?}");
    for n in named {
        assert!(c.message.contains(n), "{n}: {}", c.message);
    }
    assert_eq!(forwarded(), before, "nothing the device sent was forwarded");
    let seen = std::fs::read_to_string(dir.path().join("results/scenarios/traffic-short/intercepted.jsonl"))
        .expect("intercepted.jsonl");
    match mode {
        "direct-ip" => {
            assert!(
                seen.contains("\"to\":\"192.0.2.10:80\"") && seen.contains("HTTP 200 with an empty JSON object"),
                "{seen}"
            );
            // the destinations list says what the bench answered there
            let dest = std::fs::read_to_string(dir.path().join("results/scenarios/traffic-short/destinations.txt"))
                .expect("destinations.txt");
            let row = dest
                .lines()
                .skip_while(|l| !l.starts_with("# What the bench answered"))
                .find(|l| l.starts_with("192.0.2.10:80 "))
                .unwrap_or_else(|| panic!("{dest}"));
            assert!(
                row.contains(" http ") && row.ends_with("HTTP 200 with an empty JSON object"),
                "{row}"
            );
        }
        "ftp-upload" => assert!(
            seen.contains("\"to\":\"192.0.2.10:21\"") && seen.contains("greeted as port 21"),
            "{seen}"
        ),
        _ => {}
    }
}

/// The maker's declared answer for a known path (`network.http_answers`) is what the bench
/// gives (issue 25): curl polling its cloud's manifest gets the declared manifest and goes
/// on to download the image it names — a flow the bench then sees too. The same device
/// without the declaration gets the empty 200 and never asks for an image.
#[test]
fn a_declared_answer_for_a_known_path_lets_the_device_go_on() {
    if !ready() || !tools_ready(&["nft"]) {
        return;
    }
    let seen = |dir: &tempfile::TempDir| {
        std::fs::read_to_string(dir.path().join("results/scenarios/traffic-short/intercepted.jsonl"))
            .expect("intercepted.jsonl")
    };
    let r = Certbench::profile("fixtures/devices/netdev-manifest-fetch.yaml")
        .args(&["-s", "fixtures/scenarios/traffic-short.yaml"])
        .run();
    let c = r.cases.first().expect("one testcase");
    assert_eq!(c.status, "failure", "{c:?}\n{}", r.log);
    let with = seen(&r.dir);
    assert!(
        with.contains("HTTP 200 declared for /v1/manifest (84 bytes, network.http_answers)"),
        "{with}"
    );
    assert!(with.contains("GET /fw/netdev-2.0.1.bin"), "the device went on: {with}");
    assert!(with.contains("\"host\":\"files.example.test:8080\""), "{with}");
    // the negative control: undeclared, the manifest is an empty object and nothing follows
    let (c, dir, out) = run_mode("manifest-fetch");
    assert_eq!(c.status, "failure", "{c:?}\n{out}");
    let without = seen(&dir);
    assert!(without.contains("GET /v1/manifest?device=nd-1"), "{without}");
    assert!(
        !without.contains("declared for") && !without.contains("netdev-2.0.1.bin"),
        "{without}"
    );
}

/// A connection the device opens and then keeps silent on (socat waiting for input) beside
/// HTTPS telemetry: what it would carry is not seen, so COM-01 is not decided — never a PASS.
#[test]
fn a_connection_the_device_keeps_silent_on_is_not_observed_and_not_a_pass() {
    if !ready() || !tools_ready(&["nft"]) {
        return;
    }
    let (c, _dir, out) = run_mode("silent-tcp");
    assert_eq!(c.status, "error", "{c:?}\n{out}");
    assert!(
        c.message.contains("were not observed") && c.message.contains(":6000"),
        "{}",
        c.message
    );
}

/// TLS-01..04 for every TLS client (issue 25): the bench is the man in the middle of the
/// device's HTTPS telemetry, rotating identities per destination. The simulated board's
/// client (rustls, checking the CA it was provisioned with) takes the valid certificate and
/// refuses the four others and the TLS 1.0 offer: PASS; with https-client-no-verify it takes
/// them all: FAIL, naming the destination; with https-client-tls10 it refuses every bad
/// certificate but, after a failed handshake, goes on with the TLS 1.0 offer on its old stack
/// (a hello offering only TLS 1.0 always meets that offer): TLS-05 FAIL, TLS-01..04 parts PASS. Debian's curl trusting the bench's CA
/// (`{{netns.ca_cert}}`): PASS (it checks the host name after the handshake and closes
/// without a byte: a refusal); with -k it takes anything: FAIL; OpenSSL's s_client with
/// Debian's defaults goes on with the TLS 1.0 offer: TLS-05 FAIL; curl pinning its own
/// cloud's CA refuses even the valid certificate, so its refusals prove nothing: ERROR.
#[rstest::rstest]
#[case::good_board(
    "devices/simboard.yaml",
    None,
    "pass",
    "telemetry.simboard.test: the valid certificate was accepted"
)]
#[case::board_no_verify(
    "devices/simboard-https-client-no-verify.yaml",
    None,
    "failure",
    "TLS-01: a man in the middle is accepted — telemetry.simboard.test: the client completed a handshake with a self-signed certificate (TLS-01;"
)]
#[case::board_tls10_fallback(
    "devices/simboard-https-client-tls10.yaml",
    None,
    "failure",
    "TLS-05: a man in the middle is accepted — telemetry.simboard.test: the client completed a handshake with only TLS 1.0 with RSA key exchange and CBC suites (TLS-05;"
)]
#[case::curl_insecure(
    "fixtures/devices/netdev.yaml",
    Some("https-insecure"),
    "failure",
    "cloud.netdev.test: the client completed a handshake with"
)]
#[case::curl_verified(
    "fixtures/devices/netdev.yaml",
    Some("https-verified"),
    "pass",
    "cloud.netdev.test: the valid certificate was accepted, every other refused"
)]
#[case::openssl_defaults(
    "fixtures/devices/netdev.yaml",
    Some("openssl-defaults"),
    "failure",
    "TLS-05: a man in the middle is accepted — cloud.netdev.test: the client completed a handshake with only TLS 1.0 with RSA key exchange and CBC suites (TLS-05;"
)]
#[case::curl_tls10(
    "fixtures/devices/netdev.yaml",
    Some("curl-tls10"),
    "failure",
    "TLS-05: a man in the middle is accepted — cloud.netdev.test: the client completed a handshake with only TLS 1.0 with RSA key exchange and CBC suites (TLS-05;"
)]
#[case::curl_pinned(
    "fixtures/devices/netdev.yaml",
    Some("https-telemetry"),
    "error",
    "cloud.netdev.test: the client refused even the valid certificate from the bench CA"
)]
fn every_tls_client_meets_a_man_in_the_middle_per_destination(
    #[case] profile: &str,
    #[case] mode: Option<&str>,
    #[case] want: &str,
    #[case] says: &str,
) {
    if !ready() || !tools_ready(&["nft"]) {
        return;
    }
    let mut run = Certbench::profile(profile).args(&["--skip-setup"]).only("tls-clients");
    if let Some(m) = mode {
        run = run.args(&["--set", &format!("netdev_mode={m}")]);
    }
    let r = run.run();
    let c = r.cases.first().expect("one testcase");
    assert_eq!(c.status, want, "{c:?}\n{}", r.log);
    // each destination and identity is a testcase of its own, after the scenario's; the
    // worst of them is the scenario's verdict
    let parts: Vec<&Case> = r.cases.iter().filter(|p| p.name.starts_with("tls-clients.")).collect();
    assert!(parts.len() >= 6, "a part per identity: {:?}\n{}", r.cases, r.log);
    let dest = says
        .rsplit("— ")
        .next()
        .and_then(|d| d.split(':').next())
        .unwrap_or_default();
    for id in ["valid", "self_signed", "old_tls"] {
        let name = format!("tls-clients.{id}@{dest} ");
        assert!(parts.iter().any(|p| p.name.starts_with(&name)), "{name}: {parts:?}");
    }
    let worst = ["failure", "error", "pass"]
        .into_iter()
        .find(|w| parts.iter().any(|p| p.status == *w))
        .unwrap_or("none");
    assert_eq!(worst, want, "{parts:?}");
    if let Some(check) = says.split_once("— ").and_then(|_| says.split(':').next()) {
        assert!(
            parts.iter().any(|p| p.status == "failure" && p.classname == check),
            "a FAIL part in {check}'s class: {parts:?}"
        );
    }
    if profile.ends_with("tls10.yaml") {
        for id in ["self_signed", "wrong_host", "expired", "untrusted_ca"] {
            let name = format!("tls-clients.{id}@{dest} ");
            assert!(
                parts.iter().any(|p| p.name.starts_with(&name) && p.status == "pass"),
                "{name} refused: {parts:?}"
            );
        }
    }
    let j = std::fs::read_to_string(r.dir.path().join("results/scenarios/tls-clients/tls-clients.json"))
        .expect("tls-clients.json");
    // a pass has no message: its verdict per destination is in the evidence
    let said = if want == "pass" { &j } else { &c.message };
    assert!(said.contains(says), "{says}: {said}");
    // every offer: the five identities and old TLS (a client offering only TLS 1.0 can
    // meet only the old offer: its certificate parts are ERROR, never offered)
    if mode == Some("curl-tls10") {
        assert!(!j.contains("\"identity\": \"valid\""), "{j}");
        assert!(
            parts
                .iter()
                .any(|p| p.name.starts_with("tls-clients.self_signed@") && p.status == "error"),
            "{parts:?}"
        );
        return;
    }
    // every offer: the five identities and old TLS
    for id in [
        "valid",
        "self_signed",
        "wrong_host",
        "expired",
        "untrusted_ca",
        "old_tls",
    ] {
        assert!(j.contains(&format!("\"identity\": \"{id}\"")), "{id} was offered: {j}");
    }
}

#[test]
fn a_device_that_sends_nothing_is_an_error_not_a_pass() {
    if !ready() {
        return;
    }
    let (c, _dir, out) = run("fixtures/devices/netdev-quiet.yaml");
    let t = &c["network-traffic"];
    assert_eq!(t.status, "error", "{out}");
    assert!(t.message.contains("sent no application data"), "{}", t.message);
    assert_eq!(c["open-ports"].status, "pass", "{out}");
}

#[test]
fn an_undeclared_telnetd_fails_atk01_and_its_clear_text_fails_com01() {
    if !ready() || !std::path::Path::new("/var/cache/certbench-deps/telnetd").exists() {
        assert!(std::env::var_os("CI").is_none(), ".ci/run extracts telnetd");
        return;
    }
    let (c, _dir, out) = run("fixtures/devices/netdev-telnet-listening.yaml");
    let p = &c["open-ports"];
    assert_eq!(p.status, "failure", "{out}");
    assert!(
        p.message.contains("ATK-01") && p.message.contains("23/tcp (telnet"),
        "{}",
        p.message
    );
    let t = &c["network-traffic"];
    assert_eq!(t.status, "failure", "{out}");
    assert!(
        t.message.contains("TELNET in clear") && t.message.contains("device:23"),
        "{}",
        t.message
    );
    // the HTTPS telemetry next to it is not blamed
    assert!(!t.message.contains("8443"), "{}", t.message);
}

#[test]
fn a_namespace_left_by_a_killed_run_is_removed_with_its_device_by_the_next_run() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(bin())
        .current_dir(repo())
        .args([
            "run",
            "-d",
            "fixtures/devices/netdev-https-telemetry.yaml",
            "--only",
            "network-traffic",
            "--out",
        ])
        .arg(dir.path().join("r1"))
        .arg("--workdir")
        .arg(dir.path().join("w1"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let name = format!("certbench-{}-0", child.id());
    let listed = || {
        String::from_utf8_lossy(&Command::new("ip").args(["netns", "list"]).output().expect("ip").stdout)
            .lines()
            .any(|l| l.split_whitespace().next() == Some(name.as_str()))
    };
    let device_pids = || {
        String::from_utf8_lossy(
            &Command::new("ip")
                .args(["netns", "pids", &name])
                .output()
                .expect("ip")
                .stdout,
        )
        .split_whitespace()
        .count()
    };
    let t0 = std::time::Instant::now();
    while !(listed() && device_pids() > 0) && t0.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        listed() && device_pids() > 0,
        "the run made {name} and started the device in it"
    );
    child.kill().expect("SIGKILL certbench");
    let _ = child.wait();
    assert!(listed(), "a SIGKILLed run cannot clean up: {name} is left");
    // the next run (any device with a namespace) finds it and removes it with its processes
    let (c, _, _d, out) = run_only("fixtures/devices/netdev-quiet.yaml", &["open-ports"]);
    assert_eq!(c["open-ports"].status, "pass", "{out}");
    assert!(!listed(), "{name} was removed");
    let host_if = format!("cb{}h0", child.id());
    let link = Command::new("ip")
        .args(["link", "show", &host_if])
        .output()
        .expect("ip");
    assert!(
        !link.status.success(),
        "{host_if} (the bench's end of its link) was removed"
    );
    // whatever of the killed run's device outlived it: end it (our own child's group)
    let _ = Command::new("fixtures/netdev/device.sh")
        .current_dir(repo())
        .arg("power-off")
        .arg(dir.path().join("w1/netdev"))
        .status();
}

/// A lab run of eight boards killed with SIGKILL and left unreaped (a zombie, as under a
/// container's PID 1 that reaps nothing) leaves eight namespaces, links, interception tables
/// and boards; the next run removes every one of them.
#[test]
fn a_killed_many_board_run_left_a_zombie_is_cleaned_by_the_next_run() {
    if !ready() || !tools_ready(&["nft"]) {
        return;
    }
    const BOARDS: usize = 8;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lab = format!("lock_dir: {}\nboards:\n", dir.path().join("locks").display());
    for i in 1..=BOARDS {
        lab.push_str(&format!(
            "  - {{ name: kill9b{i}, profile: {} }}\n",
            repo().join("devices/simboard-slow-boot.yaml").display()
        ));
    }
    std::fs::write(dir.path().join("lab.yaml"), lab).expect("lab");
    let mut child = Command::new(bin())
        .current_dir(repo())
        .args([
            "run",
            "--skip-setup",
            "-s",
            "scenarios/password-reset-enforcement.yaml",
            "--inventory",
        ])
        .arg(dir.path().join("lab.yaml"))
        .arg("--out")
        .arg(dir.path().join("r1"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let text = |cmd: &[&str]| {
        String::from_utf8_lossy(&Command::new(cmd[0]).args(&cmd[1..]).output().expect("run").stdout).into_owned()
    };
    let namespaces = || {
        text(&["ip", "netns", "list"])
            .lines()
            .filter(|l| l.starts_with(&format!("certbench-{pid}-")))
            .count()
    };
    let links = || text(&["ip", "-o", "link"]).matches(&format!(": cb{pid}h")).count();
    let tables = || {
        text(&["nft", "list", "tables", "ip"])
            .matches(&format!("table ip certbench-{pid}-"))
            .count()
    };
    // the boards' command lines name their work folders, `…-kill9b<N>/simboard.tty`
    let boards = || text(&["pgrep", "-f", "kill9b[0-9]+/simboard[.]tty"]).lines().count();
    let t0 = std::time::Instant::now();
    let all_up = || (namespaces(), links(), tables(), boards()) == (BOARDS, BOARDS, BOARDS, BOARDS);
    while !all_up() && t0.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        (namespaces(), links(), tables(), boards()),
        (BOARDS, BOARDS, BOARDS, BOARDS),
        "every board is up on its link"
    );
    // SAFETY: SIGKILL to the child this test spawned; not reaped until the end (a zombie)
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let t0 = std::time::Instant::now();
    let zombie = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, t)| t.trim_start().starts_with('Z')))
    };
    while !zombie() && t0.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(zombie(), "the killed run is a zombie until reaped");
    // (a SIGKILLed run cleans nothing; not asserted here, because another test's run that
    // starts now is a "next run" too and may already be removing what it left)
    // the next run (any device with a namespace) removes all of it, boards included
    let (c, _, _d, out) = run_only("fixtures/devices/netdev-quiet.yaml", &["open-ports"]);
    assert_eq!(c["open-ports"].status, "pass", "{out}");
    assert_eq!((namespaces(), links(), tables(), boards()), (0, 0, 0, 0), "all removed");
    let _ = child.wait();
}

/// The simulated board in its namespace: the good board (telnet and web inside TLS, updates
/// over HTTPS, MQTT over TLS) passes; each network flaw turns its checks red, named.
#[rstest::rstest]
#[case::good("devices/simboard.yaml", "pass", "", "pass", "")]
#[case::plaintext_telemetry("devices/simboard-plaintext-telemetry.yaml", "failure", "HTTP in clear", "pass", "")]
// flows to ports and names the profile never declares: answered by the bench, so seen (issue 25)
// (the sinkhole gives every name one address: the flow's peer lists every name asked for it)
#[case::plain_http_poll(
    "devices/simboard-plain-http-poll.yaml",
    "failure",
    "updates.simboard.test",
    "pass",
    ""
)]
#[case::telemetry_http_80("devices/simboard-telemetry-http-80.yaml", "failure", "POST /v1/ingest", "pass", "")]
#[case::telnet_listening(
    "devices/simboard-telnet-listening.yaml",
    "failure",
    "TELNET in clear",
    "failure",
    "23/tcp (telnet"
)]
// the monitor's banner is readable text: clear text whatever protocol it is (issue 24)
#[case::debug_port(
    "devices/simboard-debug-port.yaml",
    "failure",
    "device:4444: an unidentified protocol carrying readable text",
    "failure",
    "4444/tcp"
)]
fn the_simulated_boards_network_flaws_are_named(
    #[case] profile: &str,
    #[case] traffic: &str,
    #[case] traffic_says: &str,
    #[case] ports: &str,
    #[case] ports_says: &str,
) {
    if !ready() {
        return;
    }
    let (c, _dir, out) = run(profile);
    let t = &c["network-traffic"];
    if traffic.is_empty() {
        // an unidentified banner in clear goes to a reviewer, it is not a pass by default
        assert_ne!(t.status, "failure", "{out}");
    } else {
        assert_eq!(t.status, traffic, "{profile}: {t:?}\n{out}");
    }
    assert!(t.message.contains(traffic_says), "{t:?}");
    if traffic == "failure" {
        assert!(t.message.starts_with("COM-01"), "{t:?}");
    }
    match profile {
        "devices/simboard-plain-http-poll.yaml" => assert!(
            t.message.contains(":8080: HTTP in clear") && t.message.contains("GET /manifest.json?model=SB-1"),
            "{t:?}"
        ),
        "devices/simboard-telemetry-http-80.yaml" => assert!(
            t.message.contains("telemetry.simboard.test") && t.message.contains(":80: HTTP in clear"),
            "{t:?}"
        ),
        _ => {}
    }
    let p = &c["open-ports"];
    assert_eq!(p.status, ports, "{profile}: {p:?}\n{out}");
    assert!(p.message.contains(ports_says), "{p:?}");
}

/// Without root the device gets no namespace and runs in this machine's network: the link
/// checks are ERROR saying why — never a verdict on the device, never skipped silently.
#[test]
fn without_root_the_link_checks_are_errors_saying_why() {
    if !ready() || !tools_ready(&["setpriv"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // the unprivileged run writes only here (results, work folder, board locks)
    std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("chmod");
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin())
        .current_dir(repo())
        .env("TMPDIR", d)
        .env("HOME", d)
        .args(["run", "--skip-setup", "-d", "fixtures/devices/netdev-quiet.yaml"])
        .args(["--only", "network-traffic", "--only", "open-ports", "--out"])
        .arg(d.join("results"))
        .arg("--workdir")
        .arg(d.join("work"))
        .output()
        .expect("run certbench as nobody");
    let log = text(&o);
    assert_eq!(o.status.code(), Some(3), "{log}");
    let cases = junit(&d.join("results/junit.xml"));
    assert_eq!(cases.len(), 2, "{log}");
    for c in &cases {
        assert_eq!(c.status, "error", "{c:?}\n{log}");
        assert!(
            c.message.contains("a network namespace needs root") && c.message.contains("uid 65534"),
            "{c:?}"
        );
    }
    let _ = Command::new("fixtures/netdev/device.sh")
        .current_dir(repo())
        .arg("power-off")
        .arg(d.join("work/netdev"))
        .status();
}

/// A veth pair the test owns: the lab interface on this side, the board's end in a
/// namespace of its own (its MAC set); removed when dropped.
struct LabLink {
    ns: String,
    lab_if: String,
}

impl LabLink {
    fn new(bench_cidr: &str, mac: &str) -> LabLink {
        // unique per test of this process too (tests run side by side)
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let n = std::process::id() % 100_000;
        let l = LabLink {
            ns: format!("cbtest-dhcp-{n}-{k}"),
            lab_if: format!("cbl{n}x{k}"),
        };
        let ip = |args: &[&str]| {
            let o = Command::new("ip").args(args).output().expect("ip");
            assert!(
                o.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        let _ = Command::new("ip").args(["netns", "del", &l.ns]).output();
        ip(&["netns", "add", &l.ns]);
        ip(&[
            "link", "add", &l.lab_if, "type", "veth", "peer", "name", "board0", "netns", &l.ns,
        ]);
        ip(&["-n", &l.ns, "link", "set", "board0", "address", mac]);
        ip(&["-n", &l.ns, "link", "set", "board0", "up"]);
        ip(&["-n", &l.ns, "link", "set", "lo", "up"]);
        ip(&["addr", "add", bench_cidr, "dev", &l.lab_if]);
        ip(&["link", "set", &l.lab_if, "up"]);
        l
    }
}

impl Drop for LabLink {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.lab_if]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// A real board on a lab interface is answered like an emulated one (issue 25): its plain
/// HTTP poll to a hard-coded cloud address goes through its router (the bench, from its
/// DHCP lease), is redirected on the lab interface to the bench's listener, answered, and
/// judged: COM-01 fails with the flow, and intercepted.jsonl names where it was going.
/// Nothing reaches the address: the bench forwards nothing.
#[test]
fn a_board_on_a_lab_interface_is_answered_and_its_clear_text_judged() {
    if !ready() || !tools_ready(&["busybox", "nft"]) {
        return;
    }
    let mac = "02:cb:00:00:00:03";
    let link = LabLink::new("198.19.252.1/30", mac);
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = dir.path().join("lab.yaml");
    std::fs::write(
        &lab,
        format!(
            "bench:\n  capture_interface: {}\n  device_address: 198.19.252.2\n  device_mac: \"{mac}\"\n  dhcp: true\n",
            link.lab_if
        ),
    )
    .expect("lab");
    let r = Certbench::profile("fixtures/devices/dhcp-board-http.yaml")
        .args(&["--lab", lab.to_str().expect("utf8")])
        .args(&["--set", &format!("board_netns={}", link.ns), "--set", "board_if=board0"])
        .args(&[
            "--set",
            "board_names=cloud.board.test",
            "--set",
            "board_http=203.0.113.9:8080/poll",
        ])
        .args(&["-s", "fixtures/scenarios/traffic-short.yaml"])
        .run();
    let c = r.cases.first().expect("one testcase");
    assert_eq!(
        (c.status.as_str(), c.classname.as_str()),
        ("failure", "COM-01"),
        "{c:?}\n{}",
        r.log
    );
    assert!(c.message.contains("203.0.113.9") && c.message.contains("http"), "{c:?}");
    let seen = std::fs::read_to_string(r.results().join("scenarios/traffic-short/intercepted.jsonl"))
        .expect("intercepted.jsonl");
    assert!(
        seen.contains("203.0.113.9:8080") && seen.contains("GET /poll"),
        "{seen}"
    );
    // the board got the bench's answer (as from its cloud)
    let got = std::fs::read_to_string(r.dir.path().join("work/board/http")).unwrap_or_default();
    assert!(got.contains("{}"), "{got}");
    assert!(r.log.contains(&format!("redirected on {}", link.lab_if)), "{}", r.log);
}

/// A real board's path (lab `bench.capture_interface` + `bench.dhcp`): busybox's DHCP
/// client on the board's end of a veth pair gets the board's declared address from certbench
/// with the bench as router and name server, resolves a name there, and the capture on the
/// lab interface judges its flows (DHCP and DNS: COM-01's allowlist; with nothing else sent,
/// COM-01 is not decided). Names the
/// bench does not play go to the lab's resolver (Debian's dnsmasq, `bench.dns_upstream`)
/// and its answers reach the board. Every DHCP message is in dhcp.jsonl, every lookup in
/// dns-queries.jsonl; a second MAC on the link gets no lease.
#[test]
fn a_board_on_a_lab_interface_gets_its_address_and_name_server_from_the_bench() {
    if !ready() || !tools_ready(&["busybox", "dnsmasq"]) {
        return;
    }
    let mac = "02:cb:00:00:00:02";
    let link = LabLink::new("198.19.253.1/30", mac);
    let dir = tempfile::tempdir().expect("tempdir");
    // the lab's resolver: Debian's dnsmasq knowing one lab name, on a loopback port
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port();
    let mut resolver = Command::new("dnsmasq")
        .args(["--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces"])
        .args(["--listen-address=127.0.0.1", "--interface=lo", "--user=root"])
        .arg(format!("--port={port}"))
        .arg(format!("--pid-file={}", dir.path().join("dnsmasq.pid").display()))
        .arg("--address=/real.lab.test/203.0.113.7")
        .spawn()
        .expect("dnsmasq");
    let lab = dir.path().join("lab.yaml");
    std::fs::write(
        &lab,
        format!(
            "bench:\n  capture_interface: {}\n  device_address: 198.19.253.2\n  device_mac: \"{mac}\"\n  dhcp: true\n  dns_upstream: 127.0.0.1:{port}\n",
            link.lab_if
        ),
    )
    .expect("lab");
    let r = Certbench::profile("fixtures/devices/dhcp-board.yaml")
        .args(&["--lab", lab.to_str().expect("utf8")])
        .args(&["--set", &format!("board_netns={}", link.ns), "--set", "board_if=board0"])
        .args(&["--set", "board_names=telemetry.board.test,real.lab.test"])
        .args(&["-s", "fixtures/scenarios/traffic-short.yaml"])
        .run();
    let _ = resolver.kill();
    let _ = resolver.wait();
    let c = r.cases.first().expect("one testcase");
    // the board only configured its address and looked names up: COM-01's allowlist, and
    // no communication of its own to judge — not decided, never a PASS (issue 25)
    assert_eq!(c.status, "error", "{c:?}\n{}", r.log);
    assert!(
        c.message
            .contains("only application data this run was address configuration, name resolution or time (")
            && c.message.contains("dns"),
        "{c:?}"
    );
    let lease = std::fs::read_to_string(r.dir.path().join("work/board/lease")).expect("the board's lease");
    for want in ["ip=198.19.253.2", "mask=30", "router=198.19.253.1", "dns=198.19.253.1"] {
        assert!(lease.contains(want), "{want}: {lease}");
    }
    let dhcp = std::fs::read_to_string(r.results().join("dhcp.jsonl")).expect("dhcp.jsonl");
    for want in [
        "\"kind\":\"DISCOVER\"",
        "\"answer\":\"OFFER 198.19.253.2\"",
        "\"answer\":\"ACK 198.19.253.2\"",
        "\"hostname\":\"certbench-board\"",
    ] {
        assert!(dhcp.contains(want), "{want}: {dhcp}");
    }
    // names the bench does not play are asked at the lab's resolver, its answer relayed
    let dns = std::fs::read_to_string(r.results().join("dns-queries.jsonl")).expect("dns-queries.jsonl");
    assert!(
        dns.contains("\"name\":\"real.lab.test\",\"kind\":\"A\",\"answer\":\"upstream: 203.0.113.7\""),
        "{dns}"
    );
    assert!(
        dns.contains("\"name\":\"telemetry.board.test\",\"kind\":\"A\",\"answer\":\"upstream: refused\""),
        "{dns}"
    );
    let lookup = std::fs::read_to_string(r.dir.path().join("work/board/lookup")).expect("the board's lookups");
    assert!(
        lookup.contains("203.0.113.7"),
        "the board got the lab's answer: {lookup}"
    );
    // the capture on the lab interface holds the exchange, as Wireshark reads it
    let pcap = r.results().join("capture.pcapng");
    let seen = tshark(&pcap, "dhcp");
    assert!(seen.contains("DHCP Discover") && seen.contains("DHCP ACK"), "{seen}");
    // the testcase says which frames of the run's capture are its own
    let range: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(r.results().join("scenarios/traffic-short/capture-range.json")).expect("range"),
    )
    .expect("json");
    let filter = range["wireshark_filter"].as_str().expect("filter").to_string();
    let frames = tshark(&pcap, &filter);
    assert_eq!(
        frames.lines().count() as u64,
        range["packets_seen"].as_u64().expect("count"),
        "{range}\n{frames}"
    );
    assert!(
        tshark(&pcap, &format!("({filter}) && dhcp")).contains("DHCP Discover"),
        "{range}"
    );

    // another host on the link: no answer, recorded as ignored
    let other = Command::new("ip")
        .args([
            "netns",
            "exec",
            &link.ns,
            "ip",
            "link",
            "set",
            "board0",
            "address",
            "02:cb:00:00:00:99",
        ])
        .output()
        .expect("ip");
    assert!(other.status.success());
    let r = Certbench::profile("fixtures/devices/dhcp-board.yaml")
        .args(&["--lab", lab.to_str().expect("utf8")])
        .args(&["--set", &format!("board_netns={}", link.ns), "--set", "board_if=board0"])
        .args(&["--set", "board_names=telemetry.board.test"])
        .args(&["-s", "fixtures/scenarios/traffic-short.yaml"])
        .run();
    assert!(
        !r.dir.path().join("work/board/lease").exists(),
        "a foreign MAC got a lease"
    );
    let dhcp = std::fs::read_to_string(r.results().join("dhcp.jsonl")).expect("dhcp.jsonl");
    assert!(dhcp.contains("ignored: not the device's MAC"), "{dhcp}");
    assert!(!dhcp.contains("OFFER"), "{dhcp}");
    let c = r.cases.first().expect("one testcase");
    assert_eq!(c.status, "error", "a board that never talked is not a pass: {c:?}");
}

/// The port scan hands the login services it finds to the remote password checks: the
/// board's undeclared clear-text telnet on port 23 fails ATK-01, and the default-credential
/// sweep and the factory-password check try it as well (its accounts refuse every default,
/// so they pass, with its attempts in the evidence). The scan runs first for that.
#[test]
fn login_services_found_by_the_port_scan_are_tried_by_the_password_checks() {
    if !ready() {
        return;
    }
    let r = Certbench::profile("devices/simboard-telnet-listening.yaml")
        .args(&["--skip-setup"])
        .only("default-credentials")
        .only("remote-factory-credentials")
        .only("open-ports")
        .run();
    let order: Vec<&str> = r.cases.iter().map(|c| c.name.split(' ').next().unwrap_or("")).collect();
    assert_eq!(order[0], "open-ports", "the scan runs first: {order:?}");
    let cases = r.by_id();
    assert_eq!(cases["open-ports"].status, "failure", "{}", r.log);
    assert!(
        cases["open-ports"].message.contains("23/tcp (telnet"),
        "{:?}",
        cases["open-ports"]
    );
    for id in ["default-credentials", "remote-factory-credentials"] {
        assert_eq!(cases[id].status, "pass", "{id}: {:?}\n{}", cases[id], r.log);
        let attempts = std::fs::read_to_string(r.results().join(format!("scenarios/{id}/remote-attempts.jsonl")))
            .expect("attempts");
        assert!(
            attempts.contains("\"service\":\"telnet-23 (found by the port scan)\""),
            "{id}: {attempts}"
        );
    }
}

/// ATK-01 once the device is set up (the owner's password set on the console): the good
/// board still has only its declared ports; the board with telnet left listening fails,
/// naming port 23 and its banner.
#[rstest::rstest]
#[case::good("devices/simboard.yaml", "pass")]
#[case::telnet_listening("devices/simboard-telnet-listening.yaml", "failure")]
fn open_ports_after_setup(#[case] profile: &str, #[case] want: &str) {
    if !ready() {
        return;
    }
    let r = Certbench::profile(profile)
        .args(&["--skip-setup", "-v"])
        .only("open-ports-after-setup")
        .run();
    let c = r.cases.first().expect("one testcase");
    assert_eq!(c.status, want, "{c:?}\n{}", r.log);
    assert!(r.log.contains("change_password  Ok"), "set up first: {}", r.log);
    if want == "failure" {
        assert!(
            c.message.starts_with("ATK-01:") && c.message.contains("23/tcp (telnet"),
            "{c:?}"
        );
    }
}

/// Every file under `dir`.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out
}

/// COM-04 and PWD-10 (issue 28): the simulated board is given an e-mail address and a Wi-Fi
/// PSK at its shell. The good board sends the e-mail only inside TLS (its MQTT telemetry):
/// PASS beside the positive control. A board posting the e-mail base64-encoded in a clear
/// HTTP diagnostics record fails COM-04; one putting the PSK hex-encoded in a DNS name fails
/// PWD-10 — each finding named by value name, flow, encoding and frames, never the value,
/// and each invisible to COM-01 (the HTTP uploader is declared exempt, DNS is allowlisted).
#[rstest::rstest]
#[case::good("devices/simboard.yaml", "pass", "pass", "")]
#[case::email_in_http(
    "devices/simboard-telemetry-leaks-email.yaml",
    "pass",
    "failure",
    "owner_email (personal) sent by the device to"
)]
#[case::psk_in_dns(
    "devices/simboard-psk-in-dns.yaml",
    "failure",
    "pass",
    "wifi_psk (security) sent by the device to"
)]
fn planted_values_seen_in_clear_fail_their_check_and_only_it(
    #[case] profile: &str,
    #[case] passwords: &str,
    #[case] personal: &str,
    #[case] says: &str,
) {
    if !ready() {
        return;
    }
    let (c, code, dir, out) = run_only(profile, &["canaries-on-the-wire", "network-traffic"]);
    assert!(code.is_some(), "{out}");
    assert_eq!(c["canaries-on-the-wire.control"].status, "pass", "{out}");
    assert_eq!(c["canaries-on-the-wire.passwords"].status, passwords, "{out}");
    assert_eq!(c["canaries-on-the-wire.personal-data"].status, personal, "{out}");
    assert_eq!(c["network-traffic"].status, "pass", "COM-01 cannot see these: {out}");
    let t = &c["canaries-on-the-wire"];
    if says.is_empty() {
        assert_eq!(t.status, "pass", "{out}");
        return;
    }
    assert_eq!(t.status, "failure", "{out}");
    assert!(t.message.contains(says), "{}", t.message);
    if profile.contains("psk") {
        assert!(
            t.message.starts_with("PWD-10") && t.message.contains(":53 over udp") && t.message.contains("hex encoding"),
            "{}",
            t.message
        );
    } else {
        assert!(
            t.message.starts_with("COM-04") && t.message.contains("over tcp") && t.message.contains("base64 encoding"),
            "{}",
            t.message
        );
    }
    // the values themselves (from the board's flash) appear in no result, the capture included
    let state = files_under(&dir.path().join("work"))
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "simboard.state"))
        .expect("the board's flash");
    let values: Vec<String> = std::fs::read_to_string(state)
        .expect("state")
        .lines()
        .filter_map(|l| {
            l.strip_prefix("data.")
                .and_then(|kv| kv.split_once('='))
                .map(|(_, v)| v.to_string())
        })
        .collect();
    assert_eq!(values.len(), 3, "every planted value");
    for f in files_under(&dir.path().join("results")) {
        let bytes = std::fs::read(&f).expect("read");
        for v in &values {
            let hex: String = v.bytes().map(|b| format!("{b:02x}")).collect();
            for form in [v.clone(), hex] {
                assert!(
                    !bytes
                        .windows(form.len())
                        .any(|w| w.eq_ignore_ascii_case(form.as_bytes())),
                    "{} holds a planted value",
                    f.display()
                );
            }
        }
    }
}

/// Planting as the owner's app would, not at the console: the owner's e-mail set through
/// the board's web API (`POST /api/config` in the owner's login session). The good board
/// keeps it inside TLS: PASS; the board that also posts it in a clear diagnostics record:
/// COM-04 FAIL — the same verdicts as when it was typed at the shell.
#[rstest::rstest]
#[case::good("devices/simboard.yaml", "pass")]
#[case::email_in_http("devices/simboard-telemetry-leaks-email.yaml", "failure")]
fn a_value_planted_through_the_web_api_is_searched_like_one_typed(#[case] profile: &str, #[case] personal: &str) {
    if !ready() {
        return;
    }
    let (dir, c, code, out) = board_edited(
        profile,
        &[(
            r#"set: { console: "set owner_email {{value}}", accepted: "ok: owner_email set" }"#,
            r#"set: { service: web, request: { path: /api/config, body: "owner_email={{value}}" } }"#,
        )],
        "canaries-on-the-wire",
        false,
    );
    assert!(code.is_some(), "{out}");
    let events = std::fs::read_to_string(dir.path().join("results/events.jsonl")).expect("events");
    assert!(
        events.contains("owner_email (personal, through web (http_form over TLS on"),
        "planted through the web API: {events}"
    );
    assert_eq!(
        c.status,
        if personal == "pass" { "pass" } else { "failure" },
        "{c:?}\n{out}"
    );
    if personal == "failure" {
        assert!(
            c.message.starts_with("COM-04") && c.message.contains("owner_email (personal) sent by the device to"),
            "{c:?}"
        );
    }
}

/// PRV-01 (6-5): every destination the device contacts is declared. The good board looks
/// up only its declared telemetry host: PASS. The undeclared-tracker board also reports to
/// an analytics host over HTTPS (COM-01 cannot object: it is encrypted): FAIL naming it. A
/// device that contacts nothing at all (Debian programs in quiet mode) is ERROR.
#[rstest::rstest]
#[case::good("devices/simboard.yaml", "pass", "telemetry.simboard.test (telemetry)")]
#[case::tracker(
    "devices/simboard-undeclared-tracker.yaml",
    "failure",
    "metrics.adtrack.test (looked up at +"
)]
fn every_destination_the_device_contacts_is_declared(#[case] profile: &str, #[case] want: &str, #[case] says: &str) {
    if !ready() {
        return;
    }
    let (c, code, dir, out) = run_only(profile, &["privacy-destinations"]);
    let t = &c["privacy-destinations"];
    assert_eq!(t.status, want, "{t:?}\n{out}");
    assert_eq!(t.classname, "PRV-01");
    let events = std::fs::read_to_string(dir.path().join("results/events.jsonl")).expect("events");
    assert!(events.contains(says), "{says}: {events}");
    if want == "failure" {
        assert!(
            t.message
                .starts_with("PRV-01 (6-5): the device contacted 1 destination(s)"),
            "{t:?}"
        );
        assert_eq!(code, Some(1));
    }
}

#[test]
fn a_device_that_contacts_nothing_is_not_passed_on_its_silence() {
    if !ready() {
        return;
    }
    let (_d, c, code, out) = board_edited(
        "fixtures/devices/netdev-quiet.yaml",
        &[(
            "network:\n  namespace: true\n",
            "network:\n  namespace: true\nprivacy:\n  destinations:\n    - { host: telemetry.example.test, purpose: telemetry }\n",
        )],
        "privacy-destinations",
        true,
    );
    assert_eq!(c.status, "error", "{c:?}\n{out}");
    assert!(c.message.contains("cannot be judged from silence"), "{c:?}");
    assert_eq!(code, Some(3));
}

/// A device that says nothing after its data is planted gives the search nothing to judge:
/// the good board reporting once an hour (telemetry and update checks sent at boot, before
/// planting, then nothing) leaves both value checks ERROR, never PASS, beside a positive
/// control that passed — the search could see, the device did not talk.
#[test]
fn a_device_silent_after_planting_is_not_passed_on_its_silence() {
    if !ready() {
        return;
    }
    let (c, code, _dir, out) = run_only("devices/simboard-hourly.yaml", &["canaries-on-the-wire"]);
    assert!(code.is_some(), "{out}");
    assert_eq!(c["canaries-on-the-wire.control"].status, "pass", "{out}");
    for part in ["passwords", "personal-data"] {
        let p = &c[&format!("canaries-on-the-wire.{part}")];
        assert_eq!(p.status, "error", "{part}: {out}");
        assert!(
            p.message
                .contains("sent no application data after the values were planted"),
            "{}",
            p.message
        );
    }
    let t = &c["canaries-on-the-wire"];
    assert_eq!(t.status, "error", "{out}");
    assert!(t.message.contains("silence shows nothing"), "{}", t.message);
}

/// The canary search (issue 28) on traffic real programs made, captured on loopback by
/// Debian's dumpcap: curl posting a form in clear (percent-encoded), curl posting a gzip'd
/// body with chunked transfer encoding, mosquitto_pub publishing to Debian's mosquitto in
/// clear, a value written in two TCP segments, and curl posting over HTTPS to openssl's
/// s_server. Everything sent in clear is found, with frames tshark reads back; the HTTPS
/// one is not (ciphertext).
#[test]
fn the_canary_search_finds_what_real_programs_send_in_clear_and_not_what_they_encrypt() {
    if !ready() || !tools_ready(&["dumpcap", "mosquitto", "mosquitto_pub", "gzip"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port()
    };
    let (http, https, mqtt) = (free(), free(), free());
    let values = [
        ("v_form", "personal", "form.k2j4h6g8@example.test"),
        ("v_gzip", "personal", "gzip.p9o8i7u6@example.test"),
        ("v_mqtt", "security", "MqttPsk5Tq8Zr3Wn"),
        ("v_split", "security", "SplitPsk7Yb2Xc4V"),
        ("v_tls", "personal", "tls.z1x2c3v4@example.test"),
    ];
    let file = d.join("values");
    std::fs::write(
        &file,
        values
            .iter()
            .map(|(n, c, v)| format!("{n}:{c}={v}\n"))
            .collect::<String>(),
    )
    .expect("values");
    let sh = |script: &str| {
        let o = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(d)
            .output()
            .expect("sh");
        assert!(o.status.success(), "{script}: {}", String::from_utf8_lossy(&o.stderr));
    };
    std::fs::write(
        d.join("srv.sh"),
        "timeout 1 cat >/dev/null\nprintf 'HTTP/1.1 204 No Content\\r\\n\\r\\n'\n",
    )
    .expect("server script");
    sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost -keyout k.pem -out c.pem 2>/dev/null",
    );
    let spawn = |args: &[&str]| {
        Command::new(args[0])
            .args(&args[1..])
            .current_dir(d)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect(args[0])
    };
    let mut servers = vec![
        spawn(&[
            "socat",
            &format!("TCP-LISTEN:{http},bind=127.0.0.1,reuseaddr,fork"),
            "EXEC:sh srv.sh",
        ]),
        spawn(&[
            "openssl",
            "s_server",
            "-accept",
            &format!("127.0.0.1:{https}"),
            "-cert",
            "c.pem",
            "-key",
            "k.pem",
            "-www",
            "-quiet",
        ]),
        spawn(&["mosquitto", "-p", &mqtt.to_string()]),
    ];
    let pcap = d.join("real.pcapng");
    let mut cap = Command::new("dumpcap")
        .args(["-q", "-i", "lo", "-f"])
        .arg(format!("tcp port {http} or tcp port {https} or tcp port {mqtt}"))
        .arg("-w")
        .arg(&pcap)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("dumpcap");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    sh(&format!(
        "curl -s -m 3 -o /dev/null --data-urlencode 'mail=form.k2j4h6g8@example.test' http://127.0.0.1:{http}/t"
    ));
    sh(&format!(
        "printf '{{\"mail\":\"gzip.p9o8i7u6@example.test\",\"pad\":\"%0200d\"}}' 0 | gzip > b.gz && curl -s -m 3 -o /dev/null -H 'Content-Encoding: gzip' -H 'Transfer-Encoding: chunked' --data-binary @b.gz http://127.0.0.1:{http}/z"
    ));
    sh(&format!(
        "mosquitto_pub -h 127.0.0.1 -p {mqtt} -t home/wifi -m MqttPsk5Tq8Zr3Wn"
    ));
    sh(&format!(
        "{{ printf 'psk=SplitPsk7'; sleep 0.3; printf 'Yb2Xc4V\\n'; sleep 0.3; }} | socat -u - TCP:127.0.0.1:{http}"
    ));
    sh(&format!(
        "curl -s -k -m 3 -o /dev/null --data 'mail=tls.z1x2c3v4@example.test' https://127.0.0.1:{https}/ || true"
    ));
    std::thread::sleep(std::time::Duration::from_millis(800));
    // SAFETY: a signal to our own child
    unsafe { libc::kill(cap.id() as i32, libc::SIGINT) };
    let _ = cap.wait();
    for s in &mut servers {
        let _ = s.kill();
        let _ = s.wait();
    }
    let o = Command::new(bin())
        .arg("canaries")
        .arg(&pcap)
        .arg("--values")
        .arg(&file)
        .output()
        .expect("certbench canaries");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "found: exit 1\n{out}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .map(str::to_string)
    };
    let form = line("v_form").expect(&out);
    assert!(form.contains("percent encoding"), "{form}");
    let gz = line("v_gzip").expect(&out);
    assert!(gz.contains("http body"), "found only once decoded: {gz}");
    assert!(line("v_mqtt").expect(&out).contains("tcp stream"), "{out}");
    let split = line("v_split").expect(&out);
    assert!(line("v_tls").is_none(), "ciphertext is not searched: {out}");
    // the frames named exist, and the split value spans two of them
    let frames = |l: &str| -> Vec<String> {
        let inner = l
            .split("frame.number in {")
            .nth(1)
            .and_then(|r| r.split('}').next())
            .unwrap_or("");
        inner
            .split(", ")
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    };
    assert_eq!(frames(&split).len(), 2, "{split}");
    for l in [&form, &gz, &split] {
        let f = frames(l);
        let shown = tshark(&pcap, &format!("frame.number in {{{}}}", f.join(", ")));
        assert_eq!(shown.lines().count(), f.len(), "tshark reads the frames {f:?}: {shown}");
    }
    // the HTTPS post did carry its value, encrypted
    let app = tshark(&pcap, &format!("tls.app_data && tcp.srcport != {https}"));
    assert!(!app.trim().is_empty(), "curl sent application data inside TLS");
    assert!(
        !out.contains("MqttPsk5Tq8Zr3Wn") && !out.contains("k2j4h6g8"),
        "values are never printed"
    );
}

/// Issue 29 on a device made of Debian programs (fixtures/privdev/device.sh: dash on a
/// serial line, curl's telemetry loop gated by a consent file, a factory-reset script):
/// the good build passes consent, deletion and recipients; curl sending the statistics
/// whatever the owner chose fails PRV-02/PRV-03 naming the host; a reset script that
/// forgets the device's search index fails DEL-01 naming the file, and so does a telemetry
/// loop that keeps sending the erased account token; the statistics host not declared to
/// receive the owner's e-mail fails PRV-04.
#[test]
fn privacy_checks_on_debian_programs_find_the_forgotten_file_and_the_ungated_curl() {
    if !ready() {
        return;
    }
    let profile = "fixtures/devices/privdev.yaml";
    let run = |mode: &str, profile: &str, only: &[&str]| {
        let mut r = Certbench::profile(profile).args(&["--set", &format!("privdev_mode={mode}")]);
        for id in only {
            r = r.only(id);
        }
        let r = r.run();
        (r.by_id(), r.log)
    };
    let (cases, out) = run(
        "good",
        profile,
        &["consent-phases", "reset-deletes-data", "personal-data-recipients"],
    );
    for id in ["consent-phases", "reset-deletes-data", "personal-data-recipients"] {
        assert_eq!(cases[id].status, "pass", "{id}: {:?}\n{out}", cases[id]);
    }
    let (cases, out) = run("stats-always", profile, &["consent-phases"]);
    let c = &cases["consent-phases"];
    assert_eq!(c.status, "failure", "{c:?}\n{out}");
    assert!(
        c.message
            .starts_with("PRV-02 (6-2): before the user gave consent the device contacted stats.privdev.test"),
        "{c:?}"
    );
    assert!(
        c.message.contains("PRV-03 (6-3): after the user withdrew consent"),
        "{c:?}"
    );
    let (cases, out) = run("reset-forgets-cache", profile, &["reset-deletes-data"]);
    let c = &cases["reset-deletes-data"];
    assert_eq!(c.status, "failure", "{c:?}\n{out}");
    assert!(
        c.message.contains("owner_email (personal) still in /mnt/cache/index")
            && c.message.contains("wifi_psk (security) still in /mnt/cache/index"),
        "{c:?}"
    );
    // the token erased from the flash, still in the telemetry loop's memory: sent again
    let (cases, out) = run("resends-token", profile, &["reset-deletes-data"]);
    let c = &cases["reset-deletes-data"];
    assert_eq!(c.status, "failure", "{c:?}\n{out}");
    assert!(
        c.message
            .contains("account_token (security) still sent by the device after the reset, to cloud.privdev.test in ")
            && c.message.contains("POST /v1/state HTTP/1.1"),
        "{c:?}"
    );
    assert!(
        !c.message.contains("still in /mnt/"),
        "the flash itself was erased: {c:?}"
    );
    let (_copy, edited) = edited_profile(
        profile,
        &[(", consent: true, receives: [owner_email] }", ", consent: true }")],
    );
    let (cases, out) = run("good", edited.to_str().expect("utf8"), &["personal-data-recipients"]);
    let c = &cases["personal-data-recipients"];
    assert_eq!(c.status, "failure", "{c:?}\n{out}");
    assert!(
        c.message.starts_with(
            "PRV-04 (6-4): personal data went where the maker does not say it goes: owner_email reached stats.privdev.test, declared, but not to receive it"
        ) && c.message.contains("POST /v1/usage HTTP/1.1"),
        "{c:?}"
    );
}
