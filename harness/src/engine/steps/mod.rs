//! The steps a scenario is made of, one family per file: each owns the execution of its step
//! kinds (their YAML form and validation live in `config::scenario`, which the engine
//! depends on, never the other way). `step` is the one dispatch: a new step kind is a variant
//! in `config::scenario::StepKind`, its parsing there, and a function in its family's file
//! registered below.

mod access;
mod canaries;
mod clear_logins;
mod config_auth;
mod consent;
mod console;
mod debug;
mod deletion;
mod destinations;
mod documents;
mod mqtt;
mod password_store;
mod power;
mod recipients;
mod remote;
mod secure_boot;
mod sessions;
mod tls;
mod tls_clients;
mod traffic;
mod unit_password;
mod update;
mod update_crypto;
mod vulns;

/// What every step family uses.
mod prelude {
    pub(super) use std::time::{Duration, Instant};

    pub(super) use crate::config::scenario::{
        ChangeOutcome, ConnectOutcome, LoginOutcome, Pattern, PowerAction, Reach, Ruling, SendBytes, TlsSetting,
        Untrusted,
    };
    pub(super) use crate::console::Wait;
    pub(super) use crate::model::ListenerName;
    pub(super) use crate::model::template::{Quote, Template};
    pub(super) use crate::power::Action;

    pub(super) use crate::engine::run::{Run, StepResult, Stop, console_lost, judge, no_bench, shown};
    pub(super) use crate::engine::state::AtPrompt;
}

use crate::config::scenario::StepKind;

use super::run::{Run, StepResult};

impl Run<'_> {
    /// Runs one step: each kind is a unit in its family's file under `steps/`.
    pub(super) async fn step(&mut self, kind: &StepKind) -> StepResult {
        // a fresh boot counts only for the step right after the one that made it
        let fresh = self.rig.state.take_fresh();
        match kind {
            StepKind::Power(a) => self.power_step(a, fresh).await,
            StepKind::Sleep(d) => self.sleep(d).await,
            StepKind::FactoryReset => self.factory_reset().await,
            StepKind::Send { bytes } => self.send(bytes),
            StepKind::Expect {
                pattern,
                within,
                on_timeout,
            } => self.expect(pattern, within, on_timeout).await,
            StepKind::ExpectNone {
                pattern,
                window,
                on_match,
            } => self.expect_none(pattern, window, on_match).await,
            StepKind::Login {
                user,
                password,
                expect,
                otherwise,
                within,
            } => self.login_step(user, password, expect, otherwise, within).await,
            StepKind::ChangePassword {
                new,
                expect,
                otherwise,
                within,
            } => self.change_password_step(new, expect, otherwise, within).await,
            StepKind::Logout { within } => self.logout(within).await,
            StepKind::Bench {
                plain,
                tls,
                without_trusted_ca,
            } => self.bench_phase(plain, tls, without_trusted_ca),
            StepKind::WaitSession {
                listener,
                reach,
                within,
                otherwise,
            } => self.wait_session(listener, reach, within, otherwise).await,
            StepKind::NoSession {
                listener,
                reach,
                window,
                on_match,
                require_attempts,
                until,
                identity,
            } => {
                self.no_session(listener, reach, window, on_match, require_attempts, until, identity)
                    .await
            }
            StepKind::MqttConnect {
                tls,
                expect,
                within,
                otherwise,
            } => self.mqtt_connect(tls, expect, within, otherwise).await,
            StepKind::Document { kind, check } => self.document(*kind, check),
            StepKind::Shell => self.ensure_shell().await,
            StepKind::OpenPasswordChange => self.open_password_change().await,
            StepKind::ConsoleAccess => self.console_access().await,
            StepKind::BootBreakIn => self.boot_break_in().await,
            StepKind::UpdateImage {
                image,
                expect,
                tls,
                until,
            } => self.update_image(image, *expect, *tls, *until).await,
            StepKind::UpdateCheck => self.update_check().await,
            StepKind::UpdatePowerLoss { cuts, seed } => self.power_loss(*cuts, *seed).await,
            StepKind::DebugLocked => self.debug_check(false).await,
            StepKind::DebugSecrets => self.debug_check(true).await,
            StepKind::RemoteLogin {
                password,
                expect,
                within,
                otherwise,
            } => self.remote_login(password, *expect, *within, otherwise).await,
            StepKind::CredentialSweep { state } => self.credential_sweep(*state).await,
            StepKind::SshAlgorithms => self.ssh_algorithms().await,
            StepKind::TlsConfig { within } => self.tls_config(*within).await,
            StepKind::RemoteConsole { service } => self.remote_console(service.as_deref()).await,
            StepKind::OpenSessions { console } => self.open_sessions(*console).await,
            StepKind::SessionsEnded => self.sessions_ended().await,
            StepKind::Traffic { observe } => self.traffic(*observe).await,
            StepKind::PortScan => self.port_scan().await,
            StepKind::Plant => self.plant().await,
            StepKind::PasswordStore => self.password_store().await,
            StepKind::UpdateCrypto => self.update_crypto().await,
            StepKind::Vulnerabilities(j) => self.vulnerabilities(*j).await,
            StepKind::SecureBoot => self.secure_boot().await,
            StepKind::Destinations { observe } => self.destinations(*observe).await,
            StepKind::Recipients { observe } => self.recipients(*observe).await,
            StepKind::Deletion => self.deletion().await,
            StepKind::CloudDeletion => self.cloud_deletion().await,
            StepKind::ServedPolicy => self.served_policy().await,
            StepKind::ServedSecurityTxt => self.served_security_txt().await,
            StepKind::UniquePassword => self.unique_password().await,
            StepKind::Consent { window } => self.consent(*window).await,
            StepKind::ConfigAuth => self.config_auth().await,
            StepKind::ClearLogins => self.clear_logins().await,
            StepKind::Canaries { observe } => self.canaries(*observe).await,
            StepKind::TlsClients { within } => self.tls_clients(*within).await,
            StepKind::BruteForce {
                attempts,
                max_rate,
                max_burst,
                unlock_within,
            } => self.brute_force(*attempts, *max_rate, *max_burst, *unlock_within).await,
        }
    }
}
