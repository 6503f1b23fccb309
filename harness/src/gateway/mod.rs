//! The device's network as the bench sees it (issue 12): its own link (a namespace for an
//! emulated device, a lab interface for a real board), a capture of every frame on it,
//! the flows that capture holds and what protocol each spoke, and a scan of the ports the
//! device listens on.

pub mod canary;
pub mod capture;
pub mod datagram;
pub mod dhcp;
pub mod dns;
pub mod flows;
pub mod intercept;
mod netlink;
pub mod netns;
mod nftables;
pub mod ntp;
pub mod pcapng;
pub mod scan;

/// The device's link during a run: its namespace (if certbench made one), the capture,
/// and what the last port scan found.
#[derive(Debug, Default)]
pub struct Gateway {
    /// Stopped (and its file flushed) before the namespace goes.
    pub capture: Option<capture::Capture>,
    pub net: Option<netns::DeviceNet>,
    /// The device's name server (namespace devices; real boards with `bench.dhcp`).
    pub dns: Option<dns::DnsServer>,
    /// The board's DHCP server (real boards with `bench.dhcp`).
    pub dhcp: Option<dhcp::DhcpServer>,
    /// Why the link could not be made or captured: the checks that need it ERROR with it.
    pub error: Option<String>,
    /// The last port scan's open ports.
    pub scan: Option<Vec<scan::OpenPort>>,
    /// The bench's answer to every other connection the device opens (namespace devices).
    pub intercept: Option<intercept::Interceptor>,
}
