//! The device's own MQTT broker: CONNECT with a user name and password (rumqttc).
//! CONNACK success is in; "bad user name or password" / "not authorized" is refused.
//! A connection can also be held open ([`Held`]) and asked, later, whether it still
//! carries messages: PWD-08's "the sessions the old password opened are dead".

use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport,
};

use super::target::{LoginAnswer, Target};

/// The client options for a login as `user` on the broker `t` (None: a CONNECT without
/// user name and password).
fn options(t: &Target, creds: Option<(&str, &str)>, role: &str) -> Result<MqttOptions, String> {
    let mut opts = MqttOptions::new(
        format!("certbench-{role}-{:04x}", rand::random::<u16>()),
        t.service.host.to_string(),
        t.port,
    );
    opts.set_keep_alive(Duration::from_secs(5));
    if let Some((user, password)) = creds {
        opts.set_credentials(user, password);
    }
    if t.service.tls {
        let cfg = super::target::insecure_tls()?;
        opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(cfg)));
    }
    Ok(opts)
}

pub async fn attempt(t: &Target, user: &str, password: &str) -> (LoginAnswer, String) {
    let opts = match options(t, Some((user, password)), "login") {
        Ok(o) => o,
        Err(e) => return (LoginAnswer::Unanswered(e.clone()), e),
    };
    let (_client, mut el) = AsyncClient::new(opts, 4);
    let code = match tokio::time::timeout(t.service.timeout, el.poll()).await {
        Err(_) => return (LoginAnswer::Unanswered("no CONNACK".into()), String::new()),
        Ok(Ok(Event::Incoming(Packet::ConnAck(ack)))) => ack.code,
        Ok(Err(ConnectionError::ConnectionRefused(code))) => code,
        Ok(Ok(other)) => {
            let d = format!("unexpected first packet {other:?}");
            return (LoginAnswer::Unanswered(d.clone()), d);
        }
        Ok(Err(e)) => {
            let d = e.to_string();
            return (LoginAnswer::Unanswered(d.clone()), d);
        }
    };
    let outcome = match code {
        ConnectReturnCode::Success => LoginAnswer::Accepted,
        ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized => LoginAnswer::Rejected,
        other => LoginAnswer::Unanswered(format!("CONNACK {other:?} decides nothing about the login")),
    };
    (outcome, format!("CONNACK {code:?}"))
}

/// One publish (QoS 1) on a fresh connection, logged in with `creds` or with none at all:
/// what the broker answered (`CONNACK ...`, then `PUBACK` or why not). Err: no answer.
pub async fn publish_once(
    t: &Target,
    creds: Option<(&str, &str)>,
    topic: &str,
    payload: &[u8],
) -> Result<String, String> {
    let opts = options(t, creds, "config")?;
    let (client, mut el) = AsyncClient::new(opts, 4);
    let deadline = tokio::time::Instant::now() + t.service.timeout;
    let mut said = String::new();
    loop {
        match tokio::time::timeout_at(deadline, el.poll()).await {
            Err(_) if said.is_empty() => return Err("no CONNACK".into()),
            Err(_) => return Ok(format!("{said}, no PUBACK")),
            Ok(Ok(Event::Incoming(Packet::ConnAck(ack)))) => {
                said = format!("CONNACK {:?}", ack.code);
                if ack.code != ConnectReturnCode::Success {
                    return Ok(said);
                }
                client
                    .publish(topic, QoS::AtLeastOnce, false, payload.to_vec())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => {
                let _ = client.disconnect().await;
                let _ = tokio::time::timeout(Duration::from_millis(200), el.poll()).await;
                return Ok(format!("{said}, PUBACK"));
            }
            Ok(Ok(_)) => {}
            Ok(Err(ConnectionError::ConnectionRefused(code))) => return Ok(format!("CONNACK {code:?}")),
            Ok(Err(e)) if said.is_empty() => return Err(e.to_string()),
            Ok(Err(e)) => return Ok(format!("{said}, then the connection ended ({e})")),
        }
    }
}

/// How many packets a held connection keeps unread.
const QUEUE: usize = 256;

/// What a held connection heard from the broker.
#[derive(Debug)]
enum Heard {
    ConnAck(ConnectReturnCode),
    SubAck(bool),
    PubAck,
    Message(Vec<u8>),
    /// The connection is over (why); nothing follows.
    Closed(String),
}

/// A connection to the device's broker, logged in and kept open: its event loop runs in
/// a task of its own (keep-alive included) and never reconnects — a connection the
/// device ends stays ended.
pub struct Held {
    client: AsyncClient,
    heard: tokio::sync::mpsc::Receiver<Heard>,
    task: tokio::task::JoinHandle<()>,
    /// The topic the connection subscribed to and publishes on.
    pub topic: String,
    /// The broker granted the subscription: a publish must come back as a message too.
    pub echoes: bool,
    /// Why the connection ended, once it has.
    pub closed: Option<String>,
}

/// What one publish on a held connection came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// The broker acknowledged the publish (PUBACK, QoS 1).
    pub acked: bool,
    /// The message came back on the connection's own subscription.
    pub echoed: bool,
    /// The connection ended instead (why).
    pub closed: Option<String>,
}

impl Exchange {
    /// The broker took the message from this connection: the session works.
    pub fn carried(&self) -> bool {
        self.acked || self.echoed
    }

    pub fn describe(&self) -> String {
        match (&self.closed, self.acked, self.echoed) {
            (_, true, true) => "PUBACK, and the message came back on the connection's subscription".into(),
            (_, true, false) => "PUBACK (the broker took the message)".into(),
            (_, false, true) => "the message came back on the connection's subscription".into(),
            (Some(why), ..) => format!("the connection ended ({why})"),
            (None, false, false) => "no PUBACK, no message, the connection still open".into(),
        }
    }
}

impl Held {
    /// Logs in as `user` and subscribes to a topic of the run's own; Err: no connection.
    pub async fn open(t: &Target, user: &str, password: &str, within: Duration) -> Result<Held, String> {
        let opts = options(t, Some((user, password)), "session")?;
        let (client, mut el) = AsyncClient::new(opts, 8);
        // bounded: a device that floods the connection fills the queue and its packets are
        // dropped (a probe's answer among them: not decided), never the run's memory
        let (tx, heard) = tokio::sync::mpsc::channel(QUEUE);
        let topic = format!("certbench/session/{:016x}", rand::random::<u64>());
        let ours = topic.clone();
        let task = tokio::spawn(async move {
            loop {
                let h = match el.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(a))) => Heard::ConnAck(a.code),
                    Ok(Event::Incoming(Packet::SubAck(s))) => Heard::SubAck(
                        s.return_codes
                            .iter()
                            .all(|c| !matches!(c, rumqttc::SubscribeReasonCode::Failure)),
                    ),
                    Ok(Event::Incoming(Packet::PubAck(_))) => Heard::PubAck,
                    Ok(Event::Incoming(Packet::Publish(p))) if p.topic == ours => Heard::Message(p.payload.to_vec()),
                    Ok(Event::Incoming(Packet::Disconnect)) => Heard::Closed("the broker sent DISCONNECT".into()),
                    Ok(_) => continue,
                    Err(ConnectionError::ConnectionRefused(code)) => Heard::Closed(format!("CONNACK {code:?}")),
                    Err(e) => Heard::Closed(e.to_string()),
                };
                if matches!(h, Heard::Closed(_)) {
                    // polling again would reconnect: an ended connection stays ended
                    let _ = tx.send(h).await;
                    return;
                }
                if let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) = tx.try_send(h) {
                    return;
                }
            }
        });
        let mut held = Held {
            client,
            heard,
            task,
            topic,
            echoes: false,
            closed: None,
        };
        let deadline = tokio::time::Instant::now() + within;
        match held.next(deadline).await {
            Some(Heard::ConnAck(ConnectReturnCode::Success)) => {}
            Some(Heard::ConnAck(code)) => return Err(format!("CONNACK {code:?}")),
            Some(Heard::Closed(why)) => return Err(why),
            Some(other) => return Err(format!("unexpected first packet {other:?}")),
            None => return Err(format!("no CONNACK within {within:?}")),
        }
        held.client
            .subscribe(held.topic.clone(), QoS::AtLeastOnce)
            .await
            .map_err(|e| e.to_string())?;
        loop {
            match held.next(deadline).await {
                Some(Heard::SubAck(granted)) => {
                    held.echoes = granted;
                    break;
                }
                Some(Heard::Closed(why)) => {
                    return Err(format!("the broker ended the connection at SUBSCRIBE ({why})"));
                }
                Some(_) => continue,
                None => return Err(format!("no SUBACK within {within:?}")),
            }
        }
        Ok(held)
    }

    /// The next thing heard before `deadline`; None: nothing (or the connection already
    /// ended and that was said).
    async fn next(&mut self, deadline: tokio::time::Instant) -> Option<Heard> {
        if self.closed.is_some() {
            return None;
        }
        let h = tokio::time::timeout_at(deadline, self.heard.recv())
            .await
            .ok()
            .flatten();
        if let Some(Heard::Closed(why)) = &h {
            self.closed = Some(why.clone());
        }
        h
    }

    /// Whether the device has already ended the connection (without being asked).
    pub fn ended(&mut self) -> Option<String> {
        while let Ok(h) = self.heard.try_recv() {
            if let Heard::Closed(why) = h {
                self.closed = Some(why);
            }
        }
        self.closed.clone()
    }

    /// Publishes a fresh message (QoS 1) on the connection's topic and reads, for up to
    /// `within`, what the broker did with it. (What was heard before the publish is read and
    /// set aside first: only what follows it answers it.)
    pub async fn exchange(&mut self, within: Duration) -> Exchange {
        let mut x = Exchange {
            acked: false,
            echoed: false,
            closed: self.ended(),
        };
        if x.closed.is_some() {
            return x;
        }
        let tag = format!("certbench-probe-{:016x}", rand::random::<u64>());
        if let Err(e) = self
            .client
            .publish(self.topic.clone(), QoS::AtLeastOnce, false, tag.clone().into_bytes())
            .await
        {
            x.closed = Some(format!("the connection took no more messages: {e}"));
            return x;
        }
        let deadline = tokio::time::Instant::now() + within;
        while !(x.acked && (x.echoed || !self.echoes)) {
            match self.next(deadline).await {
                Some(Heard::PubAck) => x.acked = true,
                Some(Heard::Message(m)) if m == tag.as_bytes() => x.echoed = true,
                Some(Heard::Closed(why)) => {
                    x.closed = Some(why);
                    break;
                }
                Some(_) => continue,
                None => break,
            }
        }
        x
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("topic", &self.topic)
            .field("echoes", &self.echoes)
            .field("closed", &self.closed)
            .finish()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the broker says it is (`$SYS/broker/version`, as mosquitto publishes it), where it
/// lets this client subscribe — anonymously, else with `creds`. Err: it did not say.
pub async fn sys_version(t: &Target, creds: Option<(&str, &str)>, within: Duration) -> Result<String, String> {
    let mut attempts = vec![None];
    if creds.is_some() {
        attempts.push(creds);
    }
    let mut last = Err("the broker did not say its version".to_string());
    for c in attempts {
        let opts = options(t, c, "sys")?;
        let (client, mut el) = AsyncClient::new(opts, 4);
        let deadline = tokio::time::Instant::now() + within;
        let got = loop {
            match tokio::time::timeout_at(deadline, el.poll()).await {
                Err(_) => break Err("no $SYS/broker/version within the time".to_string()),
                Ok(Ok(Event::Incoming(Packet::ConnAck(ack)))) => {
                    if ack.code != ConnectReturnCode::Success {
                        break Err(format!("CONNACK {:?}", ack.code));
                    }
                    if let Err(e) = client.subscribe("$SYS/broker/version", QoS::AtMostOnce).await {
                        break Err(e.to_string());
                    }
                }
                Ok(Ok(Event::Incoming(Packet::Publish(p)))) if p.topic == "$SYS/broker/version" => {
                    break Ok(String::from_utf8_lossy(&p.payload).chars().take(200).collect());
                }
                Ok(Ok(_)) => {}
                Ok(Err(ConnectionError::ConnectionRefused(code))) => break Err(format!("CONNACK {code:?}")),
                Ok(Err(e)) => break Err(e.to_string()),
            }
        };
        let _ = client.disconnect().await;
        if got.is_ok() {
            return got;
        }
        last = got;
    }
    last
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::services::{Service, ServiceKind};

    fn target(port: u16) -> Target {
        let host = "127.0.0.1".parse().unwrap();
        Target::new(
            Service::bare("broker".into(), ServiceKind::Mqtt, host, port, Duration::from_secs(5)),
            port,
        )
    }

    /// Debian's mosquitto with a password file, on a loopback port of its own.
    struct Broker {
        child: std::process::Child,
        dir: tempfile::TempDir,
        port: u16,
    }

    impl Broker {
        fn start(acl: Option<&str>) -> Option<Broker> {
            if std::process::Command::new("mosquitto_passwd")
                .arg("-h")
                .output()
                .is_err()
            {
                eprintln!("mosquitto is not installed: skipped (.ci/run installs it)");
                return None;
            }
            let dir = tempfile::tempdir().unwrap();
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let b = Broker::passwd(&dir, "Old-Pass-4411");
            assert!(b, "mosquitto_passwd");
            let mut conf = format!(
                "user root\nlistener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
                dir.path().join("passwd").display()
            );
            if let Some(acl) = acl {
                std::fs::write(dir.path().join("acl"), acl).unwrap();
                conf.push_str(&format!("acl_file {}\n", dir.path().join("acl").display()));
            }
            std::fs::write(dir.path().join("m.conf"), conf).unwrap();
            let broker = Broker {
                child: std::process::Command::new("mosquitto")
                    .arg("-c")
                    .arg(dir.path().join("m.conf"))
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap(),
                dir,
                port,
            };
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(broker);
                }
                std::thread::sleep(Duration::from_millis(30));
            }
            panic!("mosquitto did not listen on {port}");
        }

        fn passwd(dir: &tempfile::TempDir, password: &str) -> bool {
            std::process::Command::new("mosquitto_passwd")
                .args(["-b", "-c"])
                .arg(dir.path().join("passwd"))
                .args(["owner", password])
                .status()
                .is_ok_and(|s| s.success())
        }

        /// The owner's password changes in the file; `reload`: the broker is told (SIGHUP).
        fn change(&self, reload: bool) {
            assert!(Broker::passwd(&self.dir, "New-Pass-9127"));
            if reload {
                let pid = self.child.id().to_string();
                assert!(
                    std::process::Command::new("kill")
                        .args(["-HUP", &pid])
                        .status()
                        .unwrap()
                        .success()
                );
            }
        }
    }

    impl Drop for Broker {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// A held connection, judged against software nobody here wrote: it carries a message
    /// before the change; a broker told of the change (mosquitto re-checks every connection
    /// on reload) drops it, and the exchange says so; a broker that was not told still
    /// carries the old password's connection.
    #[tokio::test]
    async fn a_held_connection_tells_a_dropped_session_from_a_surviving_one() {
        for reload in [true, false] {
            let Some(b) = Broker::start(None) else { return };
            let t = target(b.port);
            let mut h = Held::open(&t, "owner", "Old-Pass-4411", Duration::from_secs(5))
                .await
                .unwrap();
            assert!(h.echoes, "the subscription was granted");
            let before = h.exchange(Duration::from_secs(3)).await;
            assert_eq!((before.acked, before.echoed, before.closed.clone()), (true, true, None));
            b.change(reload);
            tokio::time::sleep(Duration::from_millis(300)).await;
            let after = h.exchange(Duration::from_secs(3)).await;
            if reload {
                assert!(!after.carried(), "{after:?}");
                assert!(after.closed.is_some(), "{after:?}");
                assert!(after.describe().starts_with("the connection ended"), "{after:?}");
            } else {
                assert!(after.carried(), "{after:?}");
                assert_eq!(
                    after.describe(),
                    "PUBACK, and the message came back on the connection's subscription"
                );
            }
            // a connection that ended is never reconnected by polling
            if reload {
                let again = h.exchange(Duration::from_millis(500)).await;
                assert!(again.closed.is_some() && !again.carried());
            }
        }
    }

    /// A broker that refuses the subscription (an ACL): PUBACK alone tells a working
    /// connection; a wrong password is no connection at all.
    #[tokio::test]
    async fn a_refused_subscription_leaves_the_puback_and_a_wrong_password_opens_nothing() {
        let Some(b) = Broker::start(Some("user owner\ntopic write certbench/#\n")) else {
            return;
        };
        let t = target(b.port);
        let mut h = Held::open(&t, "owner", "Old-Pass-4411", Duration::from_secs(5))
            .await
            .unwrap();
        let x = h.exchange(Duration::from_secs(3)).await;
        assert!(x.acked && !x.echoed, "{x:?} (echoes: {})", h.echoes);
        let e = Held::open(&t, "owner", "wrong", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(e.contains("NotAuthorized") || e.contains("BadUserNamePassword"), "{e}");
    }

    /// A hostile broker: it takes the login, grants the subscription, then floods the
    /// connection with messages on its topic and acknowledges nothing. The queue stays
    /// bounded, and an exchange drowned in the flood is neither carried nor ended (the
    /// caller's "not decided").
    #[tokio::test]
    async fn a_flooding_broker_neither_grows_the_queue_nor_answers_for_the_connection() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = s.read(&mut buf).await; // CONNECT
            s.write_all(&[0x20, 2, 0, 0]).await.unwrap();
            let n = s.read(&mut buf).await.unwrap(); // SUBSCRIBE: 0x82 len pkid(2) topic-len(2) topic qos
            let (pkid, tlen) = ([buf[2], buf[3]], u16::from_be_bytes([buf[4], buf[5]]) as usize);
            let topic = buf[6..6 + tlen].to_vec();
            assert!(n >= 6 + tlen);
            s.write_all(&[0x90, 3, pkid[0], pkid[1], 1]).await.unwrap();
            let mut flood = Vec::new();
            for i in 0..20_000u32 {
                let payload = format!("junk {i}");
                flood.push(0x30);
                flood.push((2 + topic.len() + payload.len()) as u8);
                flood.extend_from_slice(&(topic.len() as u16).to_be_bytes());
                flood.extend_from_slice(&topic);
                flood.extend_from_slice(payload.as_bytes());
            }
            let _ = s.write_all(&flood).await;
            // and then nothing, the connection held open
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        let t = target(port);
        let mut h = Held::open(&t, "owner", "pw", Duration::from_secs(5)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(h.heard.len() <= QUEUE);
        let x = h.exchange(Duration::from_secs(1)).await;
        assert_eq!((x.carried(), x.closed.is_some()), (false, false), "{x:?}");
    }
}
