//! The device's network as the bench sees it (issue 12): its own link (a namespace for an
//! emulated device, a lab interface for a real board), a capture of every frame on it,
//! the flows that capture holds and what protocol each spoke, and a scan of the ports the
//! device listens on.

pub mod capture;
pub mod flows;
pub mod netns;
pub mod pcapng;
pub mod scan;
