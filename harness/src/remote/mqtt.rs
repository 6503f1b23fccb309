//! The device's own MQTT broker: CONNECT with a user name and password (rumqttc).
//! CONNACK success is in; "bad user name or password" / "not authorized" is refused.

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, TlsConfiguration, Transport,
};

use super::{Outcome, Target};

pub async fn attempt(t: &Target, user: &str, password: &str) -> (Outcome, String) {
    let mut opts = MqttOptions::new(
        format!("certbench-login-{:04x}", rand::random::<u16>()),
        t.service.host.to_string(),
        t.port,
    );
    opts.set_keep_alive(std::time::Duration::from_secs(5));
    opts.set_credentials(user, password);
    if t.service.tls {
        match super::insecure_tls() {
            Ok(cfg) => opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(cfg))),
            Err(e) => return (Outcome::Unanswered(e.clone()), e),
        };
    }
    let (_client, mut el) = AsyncClient::new(opts, 4);
    let code = match tokio::time::timeout(t.service.timeout, el.poll()).await {
        Err(_) => return (Outcome::Unanswered("no CONNACK".into()), String::new()),
        Ok(Ok(Event::Incoming(Packet::ConnAck(ack)))) => ack.code,
        Ok(Err(ConnectionError::ConnectionRefused(code))) => code,
        Ok(Ok(other)) => {
            let d = format!("unexpected first packet {other:?}");
            return (Outcome::Unanswered(d.clone()), d);
        }
        Ok(Err(e)) => {
            let d = e.to_string();
            return (Outcome::Unanswered(d.clone()), d);
        }
    };
    let outcome = match code {
        ConnectReturnCode::Success => Outcome::Accepted,
        ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized => Outcome::Rejected,
        other => Outcome::Unanswered(format!("CONNACK {other:?} decides nothing about the login")),
    };
    (outcome, format!("CONNACK {code:?}"))
}
