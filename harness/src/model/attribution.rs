//! Whose a connection is: the device's (by its declared address) or another peer's.

use std::net::IpAddr;

/// Whose a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// From the device's declared address.
    Device,
    /// No device address is declared: counted as the device's, as nothing tells them apart.
    Unattributed,
    /// From another address: recorded, never counted.
    OtherPeer,
}

impl Origin {
    /// Whether the checks count this connection as the device's.
    pub fn counts(self) -> bool {
        self != Origin::OtherPeer
    }
}

/// The device's address, if declared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attribution {
    pub device: Option<IpAddr>,
}

impl Attribution {
    pub fn origin(&self, peer: IpAddr) -> Origin {
        match self.device {
            None => Origin::Unattributed,
            Some(d) if same_host(d, peer) => Origin::Device,
            Some(_) => Origin::OtherPeer,
        }
    }

    /// One sentence for the evidence: whose connections were counted.
    pub fn describe(&self) -> String {
        match self.device {
            Some(d) => format!("only connections from the device's address {d} were counted"),
            None => "the device's address is not declared (network.address): connections from any peer were counted as the device's".into(),
        }
    }
}

/// An IPv4 peer may arrive as an IPv4-mapped IPv6 address on a dual-stack socket.
fn same_host(a: IpAddr, b: IpAddr) -> bool {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    canon(a) == canon(b)
}
