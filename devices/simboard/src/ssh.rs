//! The board's SSH service (`--ssh-port`): password logins against the same account as its
//! other services, then a minimal shell. Its host key is the firmware's (every unit the
//! same: a simulator's key, committed on purpose). With the weak-ssh flaw its key exchange
//! still offers diffie-hellman-group1-sha1 (a 1024-bit group with SHA-1) and
//! diffie-hellman-group14-sha1, as old firmware does.

use std::net::IpAddr;
use std::sync::Arc;

use russh::server::{Auth, Msg, Session};
use russh::{Channel, ChannelId};

/// Whether these credentials log in (the board's account rules, lockout included).
pub type Check = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;
/// What the shell prints before its first prompt (the remote-factory-nag flaw's reminder).
pub type Banner = Arc<dyn Fn() -> &'static str + Send + Sync>;
/// Whether a session opened while the password was this must end now.
pub type Over = Arc<dyn Fn(&Option<String>) -> bool + Send + Sync>;
/// The password in force now.
pub type Now = Arc<dyn Fn() -> Option<String> + Send + Sync>;

const HOST_KEY: &str = include_str!("firmware/ssh-host-ed25519");

struct Conn {
    check: Check,
    banner: Banner,
    over: Over,
    now: Now,
    /// The password in force when this connection logged in.
    opened_with: Option<String>,
}

impl russh::server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        Ok(if (self.check)(user, password) {
            self.opened_with = (self.now)();
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        let text = format!("Welcome to SimBoard\r\n{}$ ", (self.banner)());
        session.data(channel, text.into_bytes())?;
        Ok(())
    }

    async fn data(&mut self, channel: ChannelId, data: &[u8], session: &mut Session) -> Result<(), Self::Error> {
        if data.contains(&b'\r') || data.contains(&b'\n') {
            if (self.over)(&self.opened_with) {
                session.data(
                    channel,
                    &b"\r\nThe password was changed: this session has ended.\r\n"[..],
                )?;
                session.eof(channel)?;
                session.close(channel)?;
                return Ok(());
            }
            session.data(channel, &b"\r\nsh: not found\r\n$ "[..])?;
        }
        Ok(())
    }
}

/// Serves SSH on `address:port` in a thread of its own (the board is otherwise threads).
pub fn serve(address: IpAddr, port: u16, check: Check, banner: Banner, over: Over, now: Now, weak: bool) {
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("ssh: no runtime: {e}");
                return;
            }
        };
        rt.block_on(async move {
            let key = match russh::keys::decode_secret_key(HOST_KEY, None) {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("ssh: host key: {e}");
                    return;
                }
            };
            let mut config = russh::server::Config {
                keys: vec![key],
                auth_rejection_time: std::time::Duration::from_millis(100),
                ..Default::default()
            };
            if weak {
                let mut kex: Vec<russh::kex::Name> = russh::Preferred::DEFAULT.kex.to_vec();
                kex.insert(0, russh::kex::DH_G14_SHA1);
                kex.insert(0, russh::kex::DH_G1_SHA1);
                config.preferred.kex = std::borrow::Cow::Owned(kex);
            }
            let config = Arc::new(config);
            let listener = match tokio::net::TcpListener::bind((address, port)).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("ssh: cannot listen on {address}:{port}: {e}");
                    return;
                }
            };
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (config, check, banner) = (config.clone(), check.clone(), banner.clone());
                let (over, now) = (over.clone(), now.clone());
                tokio::spawn(async move {
                    let conn = Conn {
                        check,
                        banner,
                        over,
                        now,
                        opened_with: None,
                    };
                    if let Ok(s) = russh::server::run_stream(config, tcp, conn).await {
                        let _ = s.await;
                    }
                });
            }
        });
    });
}
