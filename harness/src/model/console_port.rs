//! Where a console is: a serial device path, or an address a terminal server exports it at.

/// How the bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortMode {
    /// As they are (ser2net's `tcp` accepter).
    Raw,
    /// Telnet with RFC 2217 (ser2net's `telnet(rfc2217)` accepter).
    Rfc2217,
}

/// A console address: `tcp://HOST:PORT` or `rfc2217://HOST:PORT`; None for a device path.
pub fn parse(port: &str) -> Option<Result<(PortMode, String), String>> {
    let (mode, rest) = if let Some(r) = port.strip_prefix("tcp://") {
        (PortMode::Raw, r)
    } else if let Some(r) = port.strip_prefix("rfc2217://") {
        (PortMode::Rfc2217, r)
    } else {
        return None;
    };
    let rest = rest.trim_end_matches('/');
    Some(match rest.rsplit_once(':') {
        Some((host, p)) if !host.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0) => Ok((mode, rest.to_string())),
        _ => Err(format!("{port:?} is not HOST:PORT after its scheme")),
    })
}
