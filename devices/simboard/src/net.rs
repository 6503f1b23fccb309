//! Outgoing TCP connections of the board, from the address it was given (`--source-address`),
//! as a board with its own address on the bench network would make them.

use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::FromRawFd;
use std::sync::OnceLock;

static SOURCE: OnceLock<IpAddr> = OnceLock::new();

/// Sets the address every later connection is made from.
pub fn set_source(ip: IpAddr) {
    let _ = SOURCE.set(ip);
}

/// Connects to `to` (host:port), from the board's address when one was given.
pub fn connect(to: &str) -> Result<TcpStream, String> {
    let addr = to
        .to_socket_addrs()
        .map_err(|e| format!("connect {to}: {e}"))?
        .next()
        .ok_or_else(|| format!("connect {to}: no address"))?;
    connect_addr(addr).map_err(|e| format!("connect {to}: {e}"))
}

pub fn connect_addr(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let Some(src) = SOURCE.get().copied() else {
        return TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(3));
    };
    let (family, local, remote) = match (src, addr) {
        (IpAddr::V4(s), SocketAddr::V4(r)) => (libc::AF_INET, sockaddr4(s, 0), sockaddr4(*r.ip(), r.port())),
        _ => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "--source-address supports IPv4 peers only",
            ));
        }
    };
    // SAFETY: plain socket calls on a descriptor this function owns until it is wrapped
    unsafe {
        let fd = libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, (&raw const local).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::connect(fd, (&raw const remote).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}

fn sockaddr4(ip: std::net::Ipv4Addr, port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// The plaintext-telemetry flaw: a reading every 2 s, POSTed in clear to `url`
/// (`http://host:port/path`), as a board with a forgotten debug uploader would.
pub fn post_telemetry(url: &str) {
    let Some(rest) = url.strip_prefix("http://") else {
        return;
    };
    let (hp, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = hp.to_string();
    http_loop(hp, |n| {
        let body = format!("{{\"device\":\"simboard-sb1\",\"temp\":{}.5,\"seq\":{n}}}", 20 + n % 5);
        format!(
            "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    })
}

/// The telemetry-leaks-email flaw: a diagnostics record every 2 s, POSTed in clear to
/// `url`, with the owner's e-mail (once set) base64-encoded in a JSON field.
pub fn post_diagnostics(url: &str, state: &std::path::Path) {
    let Some(rest) = url.strip_prefix("http://") else {
        return;
    };
    let (hp, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = hp.to_string();
    let state = state.to_path_buf();
    http_loop(hp, move |n| {
        let owner = crate::board::State::load(&state)
            .get("owner_email")
            .map(|e| base64(e.as_bytes()))
            .unwrap_or_default();
        let body = format!("{{\"device\":\"simboard-sb1\",\"seq\":{n},\"owner\":\"{owner}\"}}");
        format!(
            "POST /{path}/diag HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    })
}

/// The psk-in-dns flaw: every 2 s, a name lookup whose first label is the Wi-Fi PSK (once
/// set) in hex, as a "diagnostics over DNS" channel would.
pub fn psk_lookups(state: &std::path::Path) {
    loop {
        if let Some(psk) = crate::board::State::load(state).get("wifi_psk") {
            let hex: String = psk.bytes().map(|b| format!("{b:02x}")).collect();
            let _ = format!("{hex}.diag.simboard.test:80").to_socket_addrs();
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

fn base64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in input.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() {
                A[(n >> (18 - 6 * i)) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    out
}

/// Sends `request(n)` over plain HTTP to `host_port` every 2 s (n counts the requests), for
/// as long as the board is powered; the answer is read and dropped.
pub fn http_loop(host_port: &str, request: impl Fn(u64) -> String) {
    use std::io::{Read, Write};
    let mut n = 0u64;
    loop {
        if let Ok(mut s) = connect(host_port) {
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
            let _ = s.write_all(request(n).as_bytes());
            let mut sink = [0u8; 512];
            let _ = s.read(&mut sink);
        }
        n += 1;
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}
