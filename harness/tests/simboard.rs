//! The password-reset scenario against the simulated board: the good board passes, each
//! flaw fails with evidence naming its cause, and no secret reaches a result file.

mod common;

use common::*;
use rstest::rstest;

#[test]
fn good_board_passes_and_results_hold_no_secret() {
    let (code, cases, dir, out) = run_profile("devices/simboard.yaml", &[]);
    assert_eq!(code, Some(0), "{out}");
    let case = cases
        .iter()
        .find(|c| c.name.starts_with("password-reset-enforcement"))
        .expect("testcase");
    assert_eq!(case.status, "pass", "{case:?}");

    // the strong password the run set lives in the board's flash (state file)
    let state = std::fs::read_to_string(dir.path().join("work/simboard.state")).expect("board state");
    let new_password = state
        .lines()
        .find_map(|l| l.strip_prefix("password="))
        .expect("password was changed");
    assert!(new_password.len() >= 20);
    let checked = assert_no_secret(&dir.path().join("results"), &[new_password, "simboard-factory"]);
    assert!(
        checked >= 5,
        "expected junit, events, console logs; saw {checked} files"
    );
    let log = std::fs::read_to_string(
        dir.path()
            .join("results/scenarios/password-reset-enforcement/console.log"),
    )
    .expect("evidence");
    assert!(
        log.contains("<secret:strong_password>"),
        "the send of the new password is recorded by name"
    );
    assert!(
        log.contains("SimBoard ROM"),
        "boot output from before the first expect is kept"
    );
}

/// Each flaw turns exactly its own testcases red; the other password checks are still
/// decided on their own (a device without a forced change is tested through its `passwd`).
/// Keeping the factory password is its own finding: a board whose rules are sound but that
/// takes its (long, random) factory password back fails only that, not the weak-password
/// check.
#[rstest]
#[case::no_forced_change("devices/simboard-no-forced-change.yaml", &[("password-reset-enforcement", "gave a shell")])]
#[case::weak_passwords(
    "devices/simboard-weak-passwords.yaml",
    &[("password-strength", "offered \"123456\", the device accepted it"), ("password-factory-reuse", "reuses the factory password")]
)]
#[case::factory_password_reusable(
    "devices/simboard-factory-password-reusable.yaml",
    &[("password-factory-reuse", "reuses the factory password")]
)]
#[case::factory_password_kept(
    "devices/simboard-factory-password-kept.yaml",
    &[("password-change-effective", "factory password still works")]
)]
fn each_flaw_fails_with_its_cause(#[case] profile: &str, #[case] failing: &[(&str, &str)]) {
    let (code, cases, _dir, out) = run_profile(profile, &[]);
    assert_eq!(code, Some(1), "a device failure exits 1\n{out}");
    assert_eq!(cases.len(), PASSWORD_SCENARIOS.len(), "{out}");
    for (id, its_check) in PASSWORD_SCENARIOS {
        let case = cases
            .iter()
            .find(|c| c.name.starts_with(&format!("{id} ")))
            .expect("testcase");
        assert_eq!(case.classname, its_check, "{case:?}");
        let Some((_, why)) = failing.iter().find(|(f, _)| *f == id) else {
            assert_eq!(case.status, "pass", "{id} is decided on its own: {case:?}\n{out}");
            continue;
        };
        assert_eq!(case.status, "failure", "{case:?}");
        assert!(case.message.starts_with(&format!("{its_check}:")), "{case:?}");
        assert!(case.message.contains(why), "{case:?}");
        assert!(
            case.body.contains("console excerpt"),
            "evidence in the failure body: {case:?}"
        );
    }
}

/// ATK-02: a console that gives a shell without credentials fails with the transcript and
/// the answer to the harmless probe command; the good board's login prompt passes.
#[rstest]
#[case::good("devices/simboard.yaml", "pass", "asks for credentials")]
#[case::open_console(
    "devices/simboard-open-console.yaml",
    "failure",
    "offered a shell without any credentials"
)]
fn the_console_asks_for_credentials_before_any_command(#[case] profile: &str, #[case] want: &str, #[case] says: &str) {
    let (cases, code, dir, out) = run_only(profile, &["console-access"]);
    let c = &cases["console-access"];
    assert_eq!(c.status, want, "{c:?}\n{out}");
    assert_eq!(c.classname, "ATK-02");
    let events = std::fs::read_to_string(dir.path().join("results/events.jsonl")).expect("events");
    assert!(events.contains(says), "{says:?} not in the evidence\n{out}");
    if want == "failure" {
        assert_eq!(code, Some(1), "{out}");
        assert!(c.message.contains("it took the command `help`"), "{c:?}");
        assert!(
            c.message.contains("root@simboard"),
            "the transcript is the evidence: {c:?}"
        );
    } else {
        assert_eq!(code, Some(0), "{out}");
    }
}

/// Factory password = user name: the transcript keeps "admin" readable, the password is
/// still entered as `<secret:factory.password>`, and the report notes the guessable password.
#[test]
fn a_factory_password_equal_to_the_user_name_keeps_transcripts_readable() {
    let (code, cases, dir, out) = run_profile("fixtures/devices/simboard-password-is-user.yaml", &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(cases.iter().all(|c| c.status == "pass"), "{cases:?}");
    assert!(out.contains("the factory password equals the user name"), "{out}");
    let res = dir.path().join("results");
    let log = std::fs::read_to_string(res.join("scenarios/password-reset-enforcement/console.log")).expect("log");
    assert!(log.contains("Welcome, admin"), "the user name stays readable:\n{log}");
    assert!(
        log.contains("> <secret:factory.password><Enter>") || log.contains("<secret:factory.password><Enter>"),
        "{log}"
    );
    let html = std::fs::read_to_string(res.join("report.html")).expect("report");
    assert!(
        html.contains("5.1-2") && html.contains("equals the user name"),
        "report notes it"
    );
}

/// ATK-04: keys typed during boot; the open bootloader fails with its answer to a harmless
/// command; the good board boots on to its login prompt.
#[rstest]
#[case::good("devices/simboard.yaml", "pass", "the boot went on and asked for credentials")]
#[case::open_bootloader(
    "devices/simboard-open-bootloader.yaml",
    "failure",
    "gave a bootloader prompt without any credentials"
)]
fn breaking_into_the_boot_gives_no_command_line(#[case] profile: &str, #[case] want: &str, #[case] says: &str) {
    let (cases, code, dir, out) = run_only(profile, &["boot-break-in"]);
    let c = &cases["boot-break-in"];
    assert_eq!(c.status, want, "{c:?}\n{out}");
    assert_eq!(c.classname, "ATK-04");
    let events = std::fs::read_to_string(dir.path().join("results/events.jsonl")).expect("events");
    assert!(events.contains(says), "{says:?} not in the evidence\n{out}");
    if want == "failure" {
        assert_eq!(code, Some(1), "{out}");
        assert!(
            c.message.contains("SimBoot 2024.01"),
            "the bootloader's answer is the evidence: {c:?}"
        );
    }
}

/// AUT-01 (5.1-3): the board's password store read at its shell; the good board's yescrypt
/// passes, MD5-crypt fails naming the account and the scheme (no hash in any result).
#[rstest]
#[case::good("devices/simboard.yaml", "pass", "admin (yescrypt)")]
#[case::md5("devices/simboard-md5-password-store.yaml", "failure", "admin (MD5-crypt)")]
fn the_password_store_is_judged_by_its_scheme(#[case] profile: &str, #[case] want: &str, #[case] says: &str) {
    let (cases, code, dir, out) = run_only(profile, &["password-storage"]);
    let c = &cases["password-storage"];
    assert_eq!(c.status, want, "{c:?}\n{out}");
    assert_eq!(c.classname, "AUT-01");
    let events = std::fs::read_to_string(dir.path().join("results/events.jsonl")).expect("events");
    assert!(events.contains(says), "{says:?} not in the evidence\n{out}");
    assert!(!events.contains("$1$") && !events.contains("$y$"), "no hash is shown");
    assert_eq!(code, Some(if want == "pass" { 0 } else { 1 }), "{out}");
}

/// CFG-01 (5.5-5): the board's web API sets its update server; the good board takes it only
/// from the owner's session (the control changes it, no login and forged cookies do not);
/// the config-without-auth board takes it from anyone — FAIL naming the request.
#[rstest]
#[case::good("devices/simboard.yaml", "pass")]
#[case::no_auth("devices/simboard-config-without-auth.yaml", "failure")]
#[case::saved_then_401("devices/simboard-config-saved-before-auth.yaml", "failure")]
fn configuration_over_the_network_needs_the_owners_login(#[case] profile: &str, #[case] want: &str) {
    let (cases, code, dir, out) = run_only(profile, &["config-needs-auth"]);
    let c = &cases["config-needs-auth"];
    assert_eq!(c.status, want, "{c:?}\n{out}");
    assert_eq!(c.classname, "CFG-01");
    let attempts = std::fs::read_to_string(dir.path().join("results/scenarios/config-needs-auth/config-auth.json"))
        .expect("evidence");
    let a: serde_json::Value = serde_json::from_str(&attempts).expect("json");
    let by: Vec<(String, bool)> = a
        .as_array()
        .expect("attempts")
        .iter()
        .map(|x| {
            (
                x["by"].as_str().unwrap_or("").to_string(),
                x["changed"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let flawed = want == "failure";
    assert_eq!(
        by,
        [
            ("nobody".to_string(), flawed),
            ("wrong_credentials".to_string(), flawed),
            ("owner".to_string(), true)
        ],
        "{attempts}"
    );
    if flawed {
        assert!(
            c.message.starts_with("CFG-01")
                && c.message
                    .contains("POST /api/config without credentials set update_server"),
            "{c:?}"
        );
        // a board that answers 401 but saved the value is judged on what it did
        if profile.contains("saved-before-auth") {
            assert!(c.message.contains("answered 401"), "{c:?}");
        }
        assert_eq!(code, Some(1));
    } else {
        assert!(
            attempts.contains("401"),
            "the refusals in the device's words: {attempts}"
        );
        assert_eq!(code, Some(0), "{out}");
    }
}

/// AUT-01 / 5.5-7: the good board's logins are all inside TLS; the board with a telnet left
/// listening in clear (found by the port scan) reads a throwaway password sent in clear.
#[rstest]
#[case::good("devices/simboard.yaml", "pass", "the form on /login posts over HTTPS")]
#[case::telnet(
    "devices/simboard-telnet-listening.yaml",
    "failure",
    "telnet-23 (found by the port scan)"
)]
#[case::web_over_http("devices/simboard-password-over-http.yaml", "failure", "web (http_form on ")]
fn passwords_are_taken_only_over_encryption(#[case] profile: &str, #[case] want: &str, #[case] says: &str) {
    let (cases, _code, dir, out) = run_only(profile, &["open-ports", "credentials-in-clear"]);
    let c = &cases["credentials-in-clear"];
    assert_eq!(c.status, want, "{c:?}\n{out}");
    assert_eq!(c.classname, "AUT-01");
    let events = std::fs::read_to_string(dir.path().join("results/events.jsonl")).expect("events");
    assert!(events.contains(says), "{says:?} not in the evidence\n{out}");
}

/// CFG-01 cannot be decided without its controls: a declared request the board does not
/// serve (the owner's request changes nothing either: the refusals prove nothing) and a
/// read-back command whose answer never matches are ERROR, never PASS.
#[rstest]
#[case::owner_cannot_change_it("path: /api/config,", "path: /api/settings,", "positive control failed")]
#[case::read_back_never_matches(
    "read: { console: \"config get update_server\", pattern: 'update_server=(?P<value>\\S+)' }",
    "read: { console: \"config get update_server\", pattern: 'server is (?P<value>\\S+)' }",
    "the setting cannot be read back"
)]
fn configuration_check_without_its_controls_is_an_error(#[case] from: &str, #[case] to: &str, #[case] says: &str) {
    let (_d, c, code, out) = board_edited("devices/simboard.yaml", &[(from, to)], "config-needs-auth", false);
    assert_eq!(c.status, "error", "{c:?}\n{out}");
    assert!(c.message.contains(says), "{c:?}");
    assert_eq!(code, Some(3), "{out}");
}

/// CFG-01 over MQTT: the board's own broker takes the owner's update server on
/// `config/update_server`. The good broker refuses a CONNECT without credentials and one
/// with a wrong password (CONNACK 5), so only the owner's publish changes it: PASS. The
/// broker-anonymous flaw takes the anonymous CONNECT and its publish: FAIL naming it.
#[rstest]
#[case::good("", "pass")]
#[case::anonymous(" --flaw broker-anonymous", "failure")]
fn configuration_over_the_boards_own_broker_needs_the_owners_login(#[case] flaw: &str, #[case] want: &str) {
    let with_flaw = format!("--install-ms 1500{flaw}");
    let (dir, c, code, out) = board_edited(
        "devices/simboard.yaml",
        &[
            (
                "--web-port {{port.web}}",
                "--web-port {{port.web}} --broker-port {{port.broker}}",
            ),
            (
                "\nservices:\n",
                "\nservices:\n  - name: broker\n    kind: mqtt\n    port: \"{{port.broker}}\"\n    tls: true\n",
            ),
            (
                "\nconfig_interfaces:\n",
                "\nconfig_interfaces:\n  - name: update_server_mqtt\n    service: broker\n    request: { topic: config/update_server, body: \"{{value}}\" }\n    read: { console: \"config get update_server\", pattern: 'update_server=(?P<value>\\S+)' }\n",
            ),
            ("--install-ms 1500", &with_flaw),
        ],
        "config-needs-auth",
        false,
    );
    assert_eq!(c.status, want, "{c:?}\n{out}");
    let attempts = std::fs::read_to_string(dir.path().join("results/scenarios/config-needs-auth/config-auth.json"))
        .expect("evidence");
    // the broker's own words for each attempt, the owner's publish taken
    assert!(
        attempts.contains("CONNACK NotAuthorized") && attempts.contains("CONNACK Success, PUBACK"),
        "{attempts}"
    );
    if want == "failure" {
        assert_eq!(code, Some(1));
        assert!(
            c.message.starts_with("CFG-01")
                && c.message.contains("broker (mqtt over TLS on")
                && c.message
                    .contains("PUBLISH config/update_server without credentials set update_server_mqtt")
                && c.message.contains("CONNACK Success, PUBACK"),
            "{c:?}"
        );
        assert!(
            !c.message.contains("with wrong credentials"),
            "a wrong password is still refused: {c:?}"
        );
    }
}

/// AUT-01's password store needs its own control: a command that shows no store (here one
/// the board refuses) is ERROR naming what it said, never PASS on an empty read.
#[test]
fn a_password_store_that_cannot_be_read_is_an_error() {
    let (_d, c, code, out) = board_edited(
        "devices/simboard.yaml",
        &[(
            "  password_command: passwd      # changes",
            "  password_store_command: cat /etc/gshadow\n  password_command: passwd      # changes",
        )],
        "password-storage",
        false,
    );
    assert_eq!(c.status, "error", "{c:?}\n{out}");
    assert!(
        c.message.contains("`cat /etc/gshadow` showed no entry for") && c.message.contains("0 entries read"),
        "{c:?}"
    );
    assert_eq!(code, Some(3), "{out}");
}

/// AUT-01's "no decision" is an ERROR, never a PASS: a declared FTP login on a port where
/// nothing ever answers (connection refused for the whole 30 s boot window) leaves whether
/// it reads passwords in clear undecided.
#[test]
fn a_clear_login_service_that_never_answers_is_undecided() {
    let (_d, c, code, out) = board_edited(
        "devices/simboard.yaml",
        &[(
            "\nservices:\n",
            "\nservices:\n  - name: ftp\n    kind: ftp\n    port: \"{{port.ftp}}\"\n",
        )],
        "credentials-in-clear",
        false,
    );
    assert_eq!(c.status, "error", "{c:?}\n{out}");
    assert!(
        c.message.starts_with("no decision on a login in clear") && c.message.contains("ftp (ftp on"),
        "{c:?}"
    );
    assert_eq!(code, Some(3), "{out}");
}

/// UPD-11 on the simulated board: its images' Ed25519 trailer verified with the maker's
/// declared key is PASS; a declared key that does not verify the image is ERROR (the
/// declaration is wrong, nothing was shown); without the key the scheme is the maker's word
/// only: REVIEW, never PASS.
#[rstest]
#[case::verified(None, "pass", "the trailing signature verified with the declared public key")]
#[case::wrong_key(
    Some("public_key: ffb545886e3e6b27b84da3edd7e2a9c5c0e895b77d0670ddbea8379932b9d6f6 }"),
    "error",
    "the declared public key does not verify"
)]
#[case::declared_only(Some("}"), "skipped", "as the maker declares; not readable from the image")]
fn the_update_signature_is_shown_not_taken_on_trust(#[case] key: Option<&str>, #[case] want: &str, #[case] says: &str) {
    let from = "public_key: 2cb2e714ad28beb328c8dd9157d811bedad370206d8f3d4afea44f0b7da10ccc }";
    let edits: Vec<(&str, &str)> = key.map(|k| (from, k)).into_iter().collect();
    // the images are made by the profile's setup: it runs
    let (dir, c, _code, out) = board_edited("devices/simboard.yaml", &edits, "update-signature", true);
    assert_eq!(c.status, want, "{c:?}\n{out}");
    let events = std::fs::read_to_string(dir.path().join("results/events.jsonl")).expect("events");
    assert!(events.contains(says), "{events}");
}

/// PRV-05 on the device: the good board serves the reviewed policy byte for byte (PASS);
/// the serves-old-policy board serves one without a deletion clause (FAIL naming it).
#[rstest]
#[case::good("devices/simboard.yaml", "pass")]
#[case::old_policy("devices/simboard-serves-old-policy.yaml", "failure")]
fn the_policy_the_device_serves_is_the_reviewed_one(#[case] profile: &str, #[case] want: &str) {
    let (cases, code, dir, out) = run_only(profile, &["privacy-policy-on-device"]);
    let c = &cases["privacy-policy-on-device"];
    assert_eq!(c.status, want, "{c:?}\n{out}");
    if want == "failure" {
        assert!(
            c.message
                .starts_with("PRV-05: the privacy policy the device serves (/privacy on web (http_form over TLS")
                && c.message.contains("lacks: how to delete data and the account"),
            "{c:?}"
        );
        assert_eq!(code, Some(1));
    } else {
        let events = std::fs::read_to_string(dir.path().join("results/events.jsonl")).expect("events");
        assert!(
            events.contains("the device serves the reviewed privacy policy at /privacy"),
            "{events}"
        );
        assert_eq!(code, Some(0));
    }
}

/// PRV-02, PRV-03: the board's usage analytics (declared `consent: true`) run only while
/// the owner consents. With consent every board contacts the analytics host (the positive
/// control); the telemetry-before-consent board contacts it before consent (PRV-02), the
/// telemetry-after-withdrawal board after withdrawal (PRV-03).
#[rstest]
#[case::good("devices/simboard.yaml", "pass", "")]
#[case::before_consent(
    "devices/simboard-telemetry-before-consent.yaml",
    "failure",
    "PRV-02 (6-2): before the user gave consent the device contacted analytics.simboard.test"
)]
#[case::after_withdrawal(
    "devices/simboard-telemetry-after-withdrawal.yaml",
    "failure",
    "PRV-03 (6-3): after the user withdrew consent (`consent off`) the device still contacted analytics.simboard.test"
)]
fn consent_based_destinations_follow_the_users_consent(#[case] profile: &str, #[case] want: &str, #[case] says: &str) {
    let (cases, code, dir, out) = run_only(profile, &["consent-phases"]);
    let c = &cases["consent-phases"];
    assert_eq!(c.status, want, "{c:?}\n{out}");
    let phases: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("results/scenarios/consent-phases/consent-phases.json"))
            .expect("consent-phases.json"),
    )
    .expect("json");
    // the volumes as a chart in the report: a person sees the phases at a glance
    let svg = std::fs::read_to_string(dir.path().join("results/scenarios/consent-phases/consent-phases.svg"))
        .expect("consent-phases.svg");
    assert!(svg.contains("analytics.simboard.test, with consent:"), "{svg}");
    let html = std::fs::read_to_string(dir.path().join("results/report.html")).expect("report");
    assert!(html.contains("consent-phases.svg"), "the report shows the chart");
    let analytics = |phase: usize| phases["phases"][phase]["destinations"]["analytics.simboard.test"].clone();
    // the positive control, on every board: with consent the analytics flow is seen
    assert!(analytics(1)["flows"].as_u64().unwrap_or(0) > 0, "{phases:#}");
    assert!(analytics(1)["bytes"].as_u64().unwrap_or(0) > 0, "{phases:#}");
    if want == "failure" {
        assert!(c.message.starts_with(says), "{c:?}");
        assert_eq!(code, Some(1));
    } else {
        assert_eq!(analytics(0)["flows"], 0, "{phases:#}");
        assert_eq!(analytics(2)["flows"], 0, "{phases:#}");
        assert_eq!(code, Some(0));
    }
}

/// DEL-01, DEL-02: the user's factory reset (typed at the shell) erases what the owner set.
/// Every board shows the planted values in /data first (the positive control); the good
/// board's reset erases them and says so; the reset-keeps-token board's leaves the account
/// token on flash: FAIL DEL-01 naming the value and the file; the no-deletion-notice board
/// erases everything but says nothing: FAIL DEL-02.
#[rstest]
#[case::good("devices/simboard.yaml", "pass", "")]
#[case::keeps_token(
    "devices/simboard-reset-keeps-token.yaml",
    "failure",
    "DEL-01: after the user's factory reset (`factory-reset`) the owner's data is still on the device: account_token (security) still in /data/settings (searched in /data)"
)]
#[case::no_notice(
    "devices/simboard-no-deletion-notice.yaml",
    "failure",
    "DEL-02: the device did not confirm the deletion: no line matching \"Factory reset done: your data has been erased\""
)]
fn the_users_factory_reset_erases_the_owners_data(#[case] profile: &str, #[case] want: &str, #[case] says: &str) {
    let (cases, code, dir, out) = run_only(profile, &["reset-deletes-data"]);
    let c = &cases["reset-deletes-data"];
    assert_eq!(c.status, want, "{c:?}\n{out}");
    let evidence = std::fs::read_to_string(dir.path().join("results/scenarios/reset-deletes-data/deletion.txt"))
        .expect("deletion.txt");
    assert!(
        evidence.contains(
            "before the reset: owner_email: /data/settings; wifi_psk: /data/settings; account_token: /data/settings"
        ),
        "{evidence}"
    );
    if want == "failure" {
        assert!(c.message.starts_with(says), "{c:?}");
        assert_eq!(code, Some(1));
    } else {
        assert!(evidence.contains("confirmation seen"), "{evidence}");
        assert!(evidence.contains("none found"), "{evidence}");
        assert_eq!(code, Some(0));
    }
}

/// DEL-03 (5.11-2): the reset also deletes the owner's cloud account. Both boards publish
/// telemetry to the bench's broker before the reset (the positive control); the good board
/// then asks for the deletion on account/<id>/delete; the cloud-account-kept board never
/// does: FAIL naming what it published instead. Declared nothing: not applicable.
#[rstest]
#[case::good("devices/simboard.yaml", "pass")]
#[case::kept("devices/simboard-cloud-account-kept.yaml", "failure")]
fn the_users_factory_reset_deletes_the_cloud_account(#[case] profile: &str, #[case] want: &str) {
    let (cases, code, dir, out) = run_only(profile, &["reset-deletes-cloud-account"]);
    let c = &cases["reset-deletes-cloud-account"];
    assert_eq!(c.status, want, "{c:?}\n{out}");
    assert_eq!(c.classname, "DEL-03");
    if want == "failure" {
        assert!(
            c.message.starts_with(
                "DEL-03: within 30s of the user's factory reset (`factory-reset`) the device sent its cloud no request to delete the owner's account (no PUBLISH on \"account/+/delete\")"
            ),
            "{c:?}"
        );
        assert!(
            c.message.contains("(before it: session #") && c.message.contains("on the TLS MQTT listener"),
            "names the positive control: {c:?}"
        );
        assert_eq!(code, Some(1));
    } else {
        let events = std::fs::read_to_string(dir.path().join("results/events.jsonl")).expect("events");
        assert!(
            events.contains("the device asked its cloud to delete the account on \\\"account/+/delete\\\": session #"),
            "{events}"
        );
        assert_eq!(code, Some(0));
    }
}

/// DEL-03 without its positive control is undecided: a board that never talks to the
/// bench's broker (its cloud client not started) cannot show a kept account by its
/// silence: ERROR. A maker that declares no cloud deletion: not applicable, with the reason.
#[test]
fn cloud_deletion_without_its_control_is_undecided_and_undeclared_is_not_applicable() {
    let (_r, c, _, out) = board_edited(
        "devices/simboard.yaml",
        &[("--mqtt-host {{mqtt.host}} ", "")],
        "reset-deletes-cloud-account",
        false,
    );
    assert_eq!(c.status, "error", "{c:?}\n{out}");
    assert!(
        c.message
            .starts_with("not decided: the device published nothing to the bench's broker within 30s before the reset"),
        "{c:?}"
    );
    let (_r, c, _, out) = board_edited(
        "devices/simboard.yaml",
        &[("    cloud: { mqtt_topic: 'account/+/delete', within: 30s }\n", "")],
        "reset-deletes-cloud-account",
        false,
    );
    assert_eq!(c.status, "skipped", "{c:?}\n{out}");
    assert!(c.message.contains("privacy.deletion.cloud"), "{c:?}");
}

/// PRV-04 (6-4): the good board's telemetry names its owner to its cloud broker, which
/// the profile declares receives owner_email: PASS, with that receipt as the positive
/// control. The telemetry-overshares board also sends the Wi-Fi passphrase there: FAIL.
/// The same good board with the receipt undeclared: FAIL naming owner_email. A board whose
/// cloud client never runs sends nothing readable: undecided.
#[rstest]
#[case::good("devices/simboard.yaml", &[], "pass", "personal data reached only its declared recipients: owner_email to broker.simboard.test")]
#[case::overshares(
    "devices/simboard-telemetry-overshares.yaml",
    &[],
    "failure",
    "PRV-04 (6-4): personal data went where the maker does not say it goes: wifi_psk reached broker.simboard.test, declared, but not to receive it, in "
)]
#[case::undeclared(
    "devices/simboard.yaml",
    &[(", receives: [owner_email] }", " }")],
    "failure",
    "PRV-04 (6-4): personal data went where the maker does not say it goes: owner_email reached broker.simboard.test, declared, but not to receive it"
)]
#[case::nothing_readable(
    "devices/simboard.yaml",
    &[("--mqtt-host {{mqtt.host}} ", "")],
    "error",
    "not decided: nothing the device sent within 15s of the planting was readable by the bench"
)]
fn personal_data_reaches_only_its_declared_recipients(
    #[case] profile: &str,
    #[case] edits: &[(&str, &str)],
    #[case] want: &str,
    #[case] says: &str,
) {
    let (dir, c, r, out) = board_edited(profile, edits, "personal-data-recipients", false);
    assert_eq!(c.status, want, "{c:?}\n{out}");
    assert_eq!(c.classname, "PRV-04");
    let events = std::fs::read_to_string(dir.path().join("results/events.jsonl")).expect("events");
    if want == "pass" {
        assert!(events.contains(says), "{events}");
        assert_eq!(r, Some(0));
    } else {
        assert!(c.message.starts_with(says), "{c:?}");
    }
    // names and counts only: the planted values never reach the evidence
    let evidence = std::fs::read_to_string(
        dir.path()
            .join("results/scenarios/personal-data-recipients/recipients.json"),
    )
    .expect("recipients.json");
    assert!(!evidence.contains('@'), "{evidence}");
}

/// DEL-01/DEL-02 cannot pass on what they did not see: a search that finds nothing before
/// the reset is undecided (ERROR); a reset without the declared confirmation fails DEL-02;
/// no declared way to erase the data fails DEL-01.
#[test]
fn deletion_without_its_control_is_undecided_and_without_confirmation_fails() {
    let (_r, c, _, out) = board_edited(
        "devices/simboard.yaml",
        &[("data_paths: [/data]", "data_paths: [/var/lib/simboard]")],
        "reset-deletes-data",
        false,
    );
    assert_eq!(c.status, "error", "{c:?}\n{out}");
    assert!(
        c.message
            .contains("owner_email, wifi_psk, account_token not found in /var/lib/simboard before the reset either"),
        "{c:?}"
    );
    let (_r, c, _, out) = board_edited(
        "devices/simboard.yaml",
        &[(
            "confirmed: 'Factory reset done: your data has been erased'",
            "confirmed: 'All data deleted'",
        )],
        "reset-deletes-data",
        false,
    );
    assert_eq!(c.status, "failure", "{c:?}\n{out}");
    assert!(
        c.message.starts_with("DEL-02: the device did not confirm the deletion"),
        "{c:?}"
    );
    let (_r, c, _, out) = board_edited(
        "devices/simboard.yaml",
        &[(
            "  deletion:\n    console: factory-reset\n    confirmed: 'Factory reset done: your data has been erased'\n    data_paths: [/data]\n    # the reset also deletes the owner's cloud account: the board asks its broker (DEL-03)\n    cloud: { mqtt_topic: 'account/+/delete', within: 30s }\n",
            "",
        )],
        "reset-deletes-data",
        false,
    );
    assert_eq!(c.status, "failure", "{c:?}\n{out}");
    assert!(
        c.message
            .starts_with("DEL-01: the maker declares no way for a user to erase their data"),
        "{c:?}"
    );
}

/// PWD-06: after a factory reset only setup works. The good board forgets the owner's
/// password (refused on the console and on telnet and web; the factory login demands a new
/// password again); the reset-keeps-password board still takes it: FAIL naming the console.
#[rstest]
#[case::good("devices/simboard.yaml", "pass")]
#[case::keeps_password("devices/simboard-reset-keeps-password.yaml", "failure")]
fn a_factory_reset_forgets_the_owners_password(#[case] profile: &str, #[case] want: &str) {
    let (cases, code, dir, out) = run_only(profile, &["reset-forgets-password"]);
    let c = &cases["reset-forgets-password"];
    assert_eq!(c.status, want, "{c:?}\n{out}");
    assert_eq!(c.classname, "PWD-06");
    let events = std::fs::read_to_string(dir.path().join("results/events.jsonl")).expect("events");
    // the positive control: the owner's password worked before the reset
    assert!(
        events.contains("login as \\\"admin\\\": the device gave a shell"),
        "{events}"
    );
    if want == "failure" {
        assert!(
            c.message
                .starts_with("PWD-06: after a factory reset the owner's old password still logs in on the console"),
            "{c:?}"
        );
        assert_eq!(code, Some(1));
    } else {
        assert!(events.contains("the device demanded a new password"), "{events}");
        assert_eq!(code, Some(0));
    }
}

/// The vulnerability-management scenarios (VUL-01, VUL-02, VUL-03), in that order.
const VULN_SCENARIOS: [&str; 3] = [
    "vulnerabilities-known",
    "vulnerabilities-time-to-fix",
    "sbom-describes-device",
];

/// VUL-01..03 on the simulated board with the demonstration lab's data: the good board
/// PASS (its image, its shell and its SBOM agree; the data names its components, none
/// affected); vulnerable-component (the running firmware reports OpenSSL 1.0.1f) FAILs
/// VUL-01 on Heartbleed in the KEV catalogue, VUL-02 on its age, VUL-03 on the SBOM saying
/// 3.0.15; sbom-drift (BusyBox 1.36.0 on the device, 1.36.1 in the SBOM) FAILs VUL-03 only.
#[rstest]
#[case::good("devices/simboard.yaml", ["pass", "pass", "pass"], "")]
#[case::vulnerable("devices/simboard-vulnerable-component.yaml", ["failure", "failure", "failure"], "openssl 1.0.1f (the device: the answer to `components` at the shell)")]
#[case::drift("devices/simboard-sbom-drift.yaml", ["pass", "pass", "failure"], "busybox 1.36.0 (the device: the answer to `components` at the shell) is listed in the SBOM as version 1.36.1")]
fn vulnerability_management_is_judged_on_what_the_device_ships(
    #[case] profile: &str,
    #[case] want: [&str; 3],
    #[case] says: &str,
) {
    let (cases, _code, _dir, out) = run_only_with(
        profile,
        &VULN_SCENARIOS,
        &["--lab", "devices/labs/simboard.yaml", "--unit", "sb-0001"],
    );
    for (id, w) in VULN_SCENARIOS.iter().zip(want) {
        let c = &cases[*id];
        assert_eq!(c.status, w, "{id}: {c:?}\n{out}");
        if w == "failure" {
            assert!(c.message.contains(says), "{id}: {c:?}");
        }
    }
    if profile.ends_with("vulnerable-component.yaml") {
        let c = &cases["vulnerabilities-known"];
        assert!(
            c.message
                .contains("CVE-2014-0160 / DSA-2896-1, in the KEV catalogue (known exploited)")
                && c.message.contains("fixed in 1.0.1g"),
            "{c:?}"
        );
    }
}

/// What decides nothing: no lab data (VUL-01/02 ERROR, not tested), data older than the
/// lab's max_age (ERROR, never PASS on stale data), no SBOM (VUL-03 FAIL under the default
/// policy, ERROR where the lab makes it optional).
#[test]
fn missing_or_stale_vulnerability_data_and_a_missing_sbom_decide_nothing_or_fail() {
    let (cases, _code, _dir, out) = run_only("devices/simboard.yaml", &VULN_SCENARIOS[..2]);
    for id in &VULN_SCENARIOS[..2] {
        let c = &cases[*id];
        assert_eq!(c.status, "error", "{c:?}\n{out}");
        assert!(c.message.contains("the lab supplied no vulnerability data"), "{c:?}");
    }
    // a lab whose KEV catalogue is a year old, in its own folder with its data
    let lab = tempfile::tempdir().expect("tempdir");
    let src = repo().join("devices/labs");
    let data = lab.path().join("simboard-vulndata");
    std::fs::create_dir_all(data.join("osv")).expect("mkdir");
    for f in [
        "osv/DSA-2896-1.json",
        "nvdcve-2.0-sample.json",
        "known_exploited_vulnerabilities.json",
    ] {
        let text = std::fs::read_to_string(src.join("simboard-vulndata").join(f)).expect("data");
        let text = text.replace("\"dateReleased\": \"2026-12-07", "\"dateReleased\": \"2025-12-01");
        std::fs::write(data.join(f), text).expect("write");
    }
    // the lab's units come along (their label passwords beside the lab file); one unit runs
    std::fs::create_dir_all(lab.path().join("simboard-units")).expect("mkdir");
    for e in std::fs::read_dir(src.join("simboard-units")).expect("units").flatten() {
        std::fs::copy(e.path(), lab.path().join("simboard-units").join(e.file_name())).expect("copy");
    }
    let yaml = std::fs::read_to_string(src.join("simboard.yaml")).expect("lab");
    let stale = lab.path().join("stale.yaml");
    std::fs::write(&stale, yaml.replace("max_age_days: 36500", "max_age_days: 7")).expect("write");
    let (cases, _code, _dir, out) = run_only_with(
        "devices/simboard.yaml",
        &VULN_SCENARIOS[..1],
        &["--lab", stale.to_str().expect("utf8"), "--unit", "sb-0001"],
    );
    let c = &cases["vulnerabilities-known"];
    assert_eq!(c.status, "error", "{c:?}\n{out}");
    assert!(
        c.message
            .contains("(as current as 2025-12-01; the lab allows 7 days): stale data decides nothing"),
        "{c:?}"
    );
    // no SBOM: an edited copy of the profile leaves simboard-docs/ (and so the SBOM) out
    let (_d, c, _code, out) = board_edited("devices/simboard.yaml", &[], "sbom-describes-device", true);
    assert_eq!(c.status, "failure", "{c:?}\n{out}");
    assert!(c.message.contains("VUL-03: the maker supplies no SBOM"), "{c:?}");
}

/// The maker's VEX (OpenVEX) saying a finding does not apply turns it into REVIEW showing
/// the justification — never a silent PASS, never gone from the result.
#[test]
fn a_vex_not_affected_statement_makes_the_finding_a_review() {
    let (dir, p) = edited_profile(
        "devices/simboard-vulnerable-component.yaml",
        &[(
            "  components_command: components",
            "  components_command: components\n  vex: vex.json\n  build_date: 2026-11-20",
        )],
    );
    std::fs::write(
        dir.path().join("vex.json"),
        r#"{"@context":"https://openvex.dev/ns/v0.2.0","@id":"https://example.test/vex/1","author":"SimBoard","timestamp":"2026-11-20T00:00:00Z","version":1,
           "statements":[{"vulnerability":{"name":"CVE-2014-0160"},"products":[{"@id":"pkg:generic/openssl@1.0.1f"}],
           "status":"not_affected","justification":"vulnerable_code_not_in_execute_path","impact_statement":"heartbeat support compiled out"}]}"#,
    )
    .expect("vex");
    let (cases, code, _d, out) = run_only_with(
        p.to_str().expect("utf8"),
        &["vulnerabilities-known"],
        &["--lab", "devices/labs/simboard.yaml", "--unit", "sb-0001"],
    );
    let c = &cases["vulnerabilities-known"];
    assert_eq!((c.status.as_str(), code), ("skipped", Some(0)), "{c:?}\n{out}");
    assert!(
        c.message.contains(
            "CVE-2014-0160 / DSA-2896-1, in the KEV catalogue (known exploited), published 2014-04-07, fixed in 1.0.1g"
        ) && c.message.contains(
            "the maker's VEX says not affected: vulnerable_code_not_in_execute_path (heartbeat support compiled out)"
        ),
        "{c:?}"
    );
}

/// DOC-01 on the device: the good board's web service serves a valid security.txt over
/// HTTPS (PASS); expired-security-txt serves one whose Expires has passed (FAIL naming it).
#[rstest]
#[case::good("devices/simboard.yaml", "pass", "the device serves a valid security.txt over HTTPS")]
#[case::expired(
    "devices/simboard-expired-security-txt.yaml",
    "failure",
    "Expires 2024-01-01T00:00:00Z is in the past"
)]
fn the_device_serves_its_security_txt(#[case] profile: &str, #[case] want: &str, #[case] says: &str) {
    let (cases, _code, dir, out) = run_only_with(profile, &["security-txt-on-device"], &["--skip-setup"]);
    let c = &cases["security-txt-on-device"];
    assert_eq!(c.status, want, "{c:?}\n{out}");
    let events = std::fs::read_to_string(dir.path().join("results/events.jsonl")).expect("events");
    assert!(events.contains(says), "{events}");
}

/// UPD-12 (5.3-1): the good board runs only what its update image carries (PASS);
/// component-not-updateable also runs a U-Boot no update carries (FAIL naming it); the same
/// board whose maker declares U-Boot not updateable, with the reason, PASSes showing it.
#[test]
fn every_component_the_device_runs_is_carried_by_its_update() {
    let (cases, _c, _d, out) = run_only("devices/simboard.yaml", &["components-updateable"]);
    assert_eq!(cases["components-updateable"].status, "pass", "{out}");
    let (cases, _c, _d, out) = run_only(
        "devices/simboard-component-not-updateable.yaml",
        &["components-updateable"],
    );
    let c = &cases["components-updateable"];
    assert_eq!(c.status, "failure", "{c:?}\n{out}");
    assert!(
        c.message.contains("UPD-12: the device runs software no update carries")
            && c.message
                .contains("u-boot 2023.01 (the device: the answer to `components` at the shell)"),
        "{c:?}"
    );
    let (_d, c, _code, out) = board_edited(
        "devices/simboard-component-not-updateable.yaml",
        &[(
            "  components_command: components",
            "  components_command: components\n  not_updateable:\n    - { component: u-boot, reason: \"the boot loader is in mask ROM\" }",
        )],
        "components-updateable",
        true,
    );
    assert_eq!(c.status, "pass", "{c:?}\n{out}");
}

/// No PASS from silence: a web service that refuses every connection (nothing listens on the
/// declared port) leaves DOC-01 on the device undecided — ERROR after the boot window, never
/// PASS.
#[test]
fn a_web_service_that_refuses_leaves_security_txt_undecided() {
    let (_d, c, code, out) = board_edited(
        "devices/simboard.yaml",
        &[(
            "    port: \"{{port.web}}\"\n    tls: true",
            "    port: \"{{port.nothing_listens}}\"\n    tls: true",
        )],
        "security-txt-on-device",
        false,
    );
    assert_eq!((c.status.as_str(), code), ("error", Some(3)), "{c:?}\n{out}");
    assert!(
        c.message.contains("/.well-known/security.txt on web") && c.message.contains("was not read"),
        "{c:?}"
    );
}

/// The label password the simulated factory gives the unit with `serial` (`simboard label`).
fn label(serial: &str) -> String {
    let sim = bin().parent().expect("target folder").join("simboard");
    let o = std::process::Command::new(sim)
        .args(["label", "--serial", serial])
        .output()
        .expect("simboard label");
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8(o.stdout).expect("utf8").trim().to_string()
}

/// A lab file in `dir` listing `units` (YAML flow mappings, one per unit).
fn units_lab(dir: &std::path::Path, units: &[String]) -> String {
    let p = dir.join("units-lab.yaml");
    let body: String = units.iter().map(|u| format!("  - {u}\n")).collect();
    std::fs::write(&p, format!("units:\n{body}")).expect("lab");
    p.to_str().expect("utf8").to_string()
}

/// The testcases named for each unit: (scenario id, unit name) → status.
fn by_unit(cases: &[Case]) -> std::collections::BTreeMap<(String, String), String> {
    cases
        .iter()
        .map(|c| {
            let id = c.name.split(' ').next().unwrap_or_default().to_string();
            let unit = c
                .name
                .rsplit_once("SB-1 ")
                .map(|(_, u)| {
                    u.split(' ')
                        .next()
                        .unwrap_or_default()
                        .trim_end_matches(']')
                        .to_string()
                })
                .unwrap_or_default();
            ((id, unit), c.status.clone())
        })
        .collect()
}

/// A model's suite over its three units (the simulated board's lab): each scenario ran on
/// exactly one unit, the unit checks (the port scan, PWD-05) on every unit; one JUnit,
/// report and manifest for the model, every testcase naming its unit; and the verdicts are
/// those of a run on one unit (`--unit sb-0002`).
#[test]
fn a_models_suite_over_its_units_decides_as_one_unit_does() {
    if unsafe { libc::geteuid() } != 0 {
        return; // the units share one address without their namespaces (root)
    }
    let only = [
        "password-reset-enforcement",
        "password-strength",
        "open-ports",
        "password-unique-per-unit",
    ];
    let lab = ["--lab", "devices/labs/simboard.yaml"];
    let mut run = Certbench::profile("devices/simboard.yaml").args(&lab);
    for id in only {
        run = run.only(id);
    }
    let model = run.run();
    assert_eq!(model.code, Some(0), "{}", model.log);
    let cases = by_unit(&model.cases);
    for id in only {
        let on: Vec<&String> = cases.keys().filter(|(i, _)| i == id).map(|(_, u)| u).collect();
        let every = matches!(id, "open-ports" | "password-unique-per-unit");
        assert_eq!(on.len(), if every { 3 } else { 1 }, "{id} ran on {on:?}\n{}", model.log);
        assert!(on.iter().all(|u| u.starts_with("sb-000")), "{on:?}");
    }
    assert!(cases.values().all(|s| s == "pass"), "{cases:?}");
    // each unit's evidence under its own folder; the model's manifest covers all
    for u in ["sb-0001", "sb-0002", "sb-0003"] {
        assert!(model.results().join("units").join(u).join("junit.xml").exists(), "{u}");
    }
    let v = certbench(&["verify", model.results().to_str().expect("utf8"), "--allow-unsigned"]);
    assert!(v.status.success() && text(&v).contains("intact"), "{}", text(&v));
    let page = std::fs::read_to_string(model.results().join("report.html")).expect("report");
    assert!(
        page.contains("on unit <strong>sb-0002 (serial SB-0002)"),
        "the report names the unit"
    );
    // the same scenarios on one unit decide the same
    let mut one = Certbench::profile("devices/simboard.yaml")
        .args(&lab)
        .args(&["--unit", "sb-0002"]);
    for id in only {
        one = one.only(id);
    }
    let one = one.run();
    assert_eq!(one.code, Some(0), "{}", one.log);
    for (id, c) in one.by_id() {
        assert_eq!(c.status, "pass", "{id} on one unit: {c:?}");
    }
    assert_eq!(one.by_id().len(), only.len());
}

/// One flawed unit of three (a telnet left listening on sb-b): the model FAILs, and the
/// failing testcase names that unit; the others pass the same check.
#[test]
fn one_flawed_unit_fails_the_model_and_its_testcase_names_it() {
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let (dir, profile) = edited_profile(
        "devices/simboard.yaml",
        &[("--install-ms 1500", "--install-ms 1500 --flaw {{flaw}}")],
    );
    let lab = units_lab(
        dir.path(),
        &[
            "{ name: sb-a, vars: { flaw: none } }".into(),
            "{ name: sb-b, vars: { flaw: telnet-listening } }".into(),
            "{ name: sb-c, vars: { flaw: none } }".into(),
        ],
    );
    let r = Certbench::profile(&profile)
        .args(&["--lab", &lab, "--skip-setup"])
        .only("open-ports")
        .run();
    assert_eq!(r.code, Some(1), "{}", r.log);
    let cases = by_unit(&r.cases);
    assert_eq!(cases[&("open-ports".into(), "sb-b".into())], "failure", "{cases:?}");
    assert_eq!(cases[&("open-ports".into(), "sb-a".into())], "pass", "{cases:?}");
    assert_eq!(cases[&("open-ports".into(), "sb-c".into())], "pass", "{cases:?}");
    let failing = r.cases.iter().find(|c| c.status == "failure").expect("a failure");
    assert!(
        failing.name.contains("sb-b") && failing.message.contains("23"),
        "{failing:?}"
    );
}

/// PWD-05 on each unit: same-password-all-units (every label says the same; another unit's
/// label opens this one) and password-from-mac (the label is the last six hex digits of the
/// MAC the unit's frames carry) FAIL naming why; a label that is not the unit's password
/// leaves that unit ERROR (its own label refused: the refusals mean nothing) while the
/// other unit still decides; one unit alone is NOT APPLICABLE (uniqueness not tested).
#[rstest]
#[case::same_password("devices/simboard-same-password-all-units.yaml", &[
    "{ name: u1, serial: SB-0101, factory_password: { value: simboard-factory } }",
    "{ name: u2, serial: SB-0102, factory_password: { value: simboard-factory } }",
], &[("u1", "failure"), ("u2", "failure")], "label password opens this unit (both labels carry the same password)")]
#[case::from_mac("devices/simboard-password-from-mac.yaml", &[
    "{ name: u1, serial: SB-0201, mac: '02:53:42:ab:cd:01', factory_password: { value: ABCD01 } }",
    "{ name: u2, serial: SB-0202, mac: '02:53:42:ab:cd:02', factory_password: { value: ABCD02 } }",
], &[("u1", "failure"), ("u2", "failure")], "it is the last 6 hex digits of MAC 02:53:42:ab:cd:0")]
#[case::wrong_label("devices/simboard.yaml", &[
    "{ name: u1, serial: SB-0301, factory_password: { value: not-the-label-of-u1 } }",
    "{ name: u2, serial: SB-0302, factory_password: { value: LABEL-SB-0302 } }",
], &[("u1", "error"), ("u2", "pass")], "this unit's own label password was refused")]
#[case::one_unit("devices/simboard.yaml", &[
    "{ name: u1, serial: SB-0401, factory_password: { value: LABEL-SB-0401 } }",
], &[("u1", "skipped")], "one unit of the model only")]
fn each_units_factory_password_is_its_own(
    #[case] profile: &str,
    #[case] units: &[&str],
    #[case] want: &[(&str, &str)],
    #[case] says: &str,
) {
    if unsafe { libc::geteuid() } != 0 {
        return; // the MACs are seen in the capture of each unit's own link
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let units: Vec<String> = units
        .iter()
        .map(|u| {
            // the good board's label passwords come from the simulated factory
            let serial = u
                .split("serial: ")
                .nth(1)
                .and_then(|s| s.split(',').next())
                .unwrap_or_default();
            u.replace(&format!("LABEL-{serial}"), &label(serial))
        })
        .collect();
    let lab = units_lab(dir.path(), &units);
    let r = Certbench::profile(profile)
        .args(&["--lab", &lab, "--skip-setup"])
        .only("password-unique-per-unit")
        .in_dir(dir)
        .run();
    let cases = by_unit(&r.cases);
    for (unit, status) in want {
        assert_eq!(
            cases
                .get(&("password-unique-per-unit".to_string(), unit.to_string()))
                .map(String::as_str),
            Some(*status),
            "{unit}: {cases:?}\n{}",
            r.log
        );
    }
    let decided = r.cases.iter().find(|c| c.status != "pass").expect("a case not passing");
    assert!(decided.message.contains(says), "{decided:?}");
    if decided.status == "failure" {
        assert_eq!(decided.classname, "PWD-05", "{decided:?}");
    }
    // no label password reaches a result file
    let secrets: Vec<String> = units
        .iter()
        .filter_map(|u| {
            u.split("value: ")
                .nth(1)
                .map(|v| v.trim_end_matches([' ', '}']).to_string())
        })
        .filter(|v| v.len() > 8)
        .collect();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_secret(&r.results(), &secrets);
}

/// The regression gate on two real runs: the good board, then the same board with a telnet
/// left listening. good → flawed: open-ports a regression (exit 1), the telnet port in the
/// surface, a failing JUnit testcase; accepted with `--allow`: exit 0, the reason recorded;
/// flawed → good: fixed (exit 0); a run folder changed since its manifest: refused (exit 2).
#[test]
fn the_regression_gate_names_what_got_worse() {
    if unsafe { libc::geteuid() } != 0 {
        return; // the port scan needs the board's namespace
    }
    let good = Certbench::profile("devices/simboard.yaml")
        .args(&["--skip-setup"])
        .only("open-ports")
        .run();
    let flawed = Certbench::profile("devices/simboard-telnet-listening.yaml")
        .args(&["--skip-setup"])
        .only("open-ports")
        .run();
    assert_eq!(
        (good.code, flawed.code),
        (Some(0), Some(1)),
        "{}\n{}",
        good.log,
        flawed.log
    );
    let (g, f) = (good.results(), flawed.results());
    let (g, f) = (g.to_str().expect("utf8"), f.to_str().expect("utf8"));
    let out = tempfile::tempdir().expect("tempdir");
    let md = out.path().join("diff.md");
    let xml = out.path().join("diff.xml");
    let o = certbench(&[
        "diff",
        g,
        f,
        "--allow-unsigned",
        "--markdown",
        md.to_str().expect("utf8"),
        "--junit",
        xml.to_str().expect("utf8"),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("REGRESSION  open-ports") && t.contains("PASS → FAIL"), "{t}");
    assert!(t.contains("open ports:") && t.contains("+ tcp/23 (telnet)"), "{t}");
    let md = std::fs::read_to_string(&md).expect("markdown");
    assert!(md.contains("| `open-ports` | PASS | FAIL | **regression** |"), "{md}");
    validate_junit_xsd(&xml);
    let cases = junit(&xml);
    assert!(
        cases
            .iter()
            .any(|c| c.name == "diff.open-ports" && c.status == "failure"),
        "{cases:?}"
    );
    // accepted, with its reason: by the scenario's check id
    let o = certbench(&[
        "diff",
        g,
        f,
        "--allow-unsigned",
        "--allow",
        "ATK-01=telnet kept for the lab's rework, ticket 42",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("allowed: telnet kept for the lab's rework, ticket 42"),
        "{}",
        text(&o)
    );
    let o = certbench(&["diff", g, f, "--allow-unsigned", "--allow", "ATK-01"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an acceptance without its reason: {}",
        text(&o)
    );
    // the other way: fixed
    let o = certbench(&["diff", f, g, "--allow-unsigned"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("FIXED"), "{}", text(&o));
    // a folder changed since its run is not compared
    std::fs::write(flawed.results().join("junit.xml"), "<testsuites/>").expect("tamper");
    let o = certbench(&["diff", g, f, "--allow-unsigned"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("changed junit.xml"), "{}", text(&o));
}

/// SIGTERM in the middle of a run over three units: every unit's run stops, powers its board
/// off and marks what it did not finish; the model's JUnit still holds every planned
/// testcase (ERROR, interrupted or not run), its manifest verifies, exit 3, and no namespace
/// or board of the run is left behind.
#[test]
fn a_signal_stops_every_unit_and_leaves_the_models_results_whole() {
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let res = dir.path().join("results");
    let mut child = std::process::Command::new(bin())
        .current_dir(repo())
        .args(["run", "--skip-setup", "--lab", "devices/labs/simboard.yaml"])
        // its own lock folder: the other tests running units of the same lab at the same
        // time hold those units' locks (a lab's lock is per unit), and would make it wait
        .env("TMPDIR", dir.path())
        .args([
            "--only",
            "brute-force-protection",
            "--only",
            "default-credentials",
            "--only",
            "open-ports",
        ])
        .args(["--workdir"])
        .arg(dir.path().join("work"))
        .arg("--out")
        .arg(&res)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // wait until every unit's board is up (its serial line exists)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !["sb-0001", "sb-0002", "sb-0003"]
        .iter()
        .all(|u| dir.path().join("work").join(u).join("simboard.tty").exists())
    {
        assert!(std::time::Instant::now() < deadline, "the units never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_secs(3));
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(3));
    let cases = junit(&res.join("junit.xml"));
    // open-ports on each unit, the other two once each
    assert_eq!(cases.len(), 5, "{cases:?}");
    assert!(
        cases.iter().all(|c| c.status == "pass"
            || (c.status == "error"
                && (c.message.contains("interrupted by SIGTERM") || c.message.contains("not run")))),
        "{cases:?}"
    );
    assert!(
        cases.iter().any(|c| c.status == "error"),
        "the signal came before the end: {cases:?}"
    );
    let v = certbench(&["verify", res.to_str().expect("utf8"), "--allow-unsigned"]);
    assert!(v.status.success(), "{}", text(&v));
    let ns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip");
    let pid = format!("certbench-{}-", child.id());
    assert!(
        !String::from_utf8_lossy(&ns.stdout).contains(&pid),
        "a namespace of the run is left"
    );
    for u in ["sb-0001", "sb-0002", "sb-0003"] {
        let pidfile = dir.path().join("work").join(u).join("simboard.pid");
        if let Ok(p) = std::fs::read_to_string(&pidfile) {
            let alive = unsafe { libc::kill(p.trim().parse().unwrap_or(0), 0) } == 0;
            assert!(!alive || p.trim().is_empty(), "{u}'s board is still powered");
        }
    }
}
