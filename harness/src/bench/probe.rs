//! A client of the device's own MQTT broker (rumqttc): does it talk MQTT in clear, and
//! does it accept a TLS client that trusts the device's CA?

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions, Packet, TlsConfiguration, Transport};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// What a connection attempt to the device's broker showed.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// The broker answered CONNECT with CONNACK success.
    Accepted,
    /// The broker spoke MQTT but refused the CONNECT (it still listened in clear).
    Answered(String),
    /// No MQTT conversation happened: TCP refused, TLS failed, connection closed.
    Refused(String),
}

impl Probe {
    pub fn describe(&self, target: &str) -> String {
        match self {
            Probe::Accepted => format!("{target} accepted an MQTT CONNECT (CONNACK success)"),
            Probe::Answered(c) => format!("{target} answered in MQTT: {c}"),
            Probe::Refused(why) => format!("{target}: no MQTT conversation ({why})"),
        }
    }
}

fn tls_config(ca_pem: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = crate::util::read_named_file(std::path::Path::new(ca_pem), crate::util::limits::TEXT)
        .map_err(|e| format!("device CA: {e}"))?;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots
            .add(cert.map_err(|e| format!("device CA {ca_pem}: {e}"))?)
            .map_err(|e| e.to_string())?;
    }
    let cfg = rustls::ClientConfig::builder_with_provider(super::base::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// One CONNECT attempt. Errors are harness problems (a CA file that cannot be read).
pub async fn connect(host: &str, port: u16, ca_pem: Option<&str>, timeout: Duration) -> Result<Probe, String> {
    let mut opts = MqttOptions::new(format!("certbench-probe-{:04x}", rand::random::<u16>()), host, port);
    opts.set_keep_alive(Duration::from_secs(5));
    if let Some(ca) = ca_pem {
        opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls_config(ca)?)));
    }
    let (_client, mut el) = AsyncClient::new(opts, 4);
    let r = tokio::time::timeout(timeout, el.poll()).await;
    Ok(match r {
        Err(_) => Probe::Refused(format!("no answer within {timeout:?}")),
        Ok(Ok(Event::Incoming(Packet::ConnAck(ack)))) => {
            if ack.code == rumqttc::ConnectReturnCode::Success {
                Probe::Accepted
            } else {
                Probe::Answered(format!("CONNACK {:?}", ack.code))
            }
        }
        Ok(Ok(other)) => Probe::Answered(format!("unexpected first event {other:?}")),
        Ok(Err(ConnectionError::ConnectionRefused(code))) => Probe::Answered(format!("CONNACK {code:?}")),
        Ok(Err(ConnectionError::Io(e))) => Probe::Refused(format!("{e}")),
        Ok(Err(e)) => Probe::Refused(format!("{e}")),
    })
}
