//! Route netlink (rtnetlink(7)) spoken directly over a socket: the few requests a device's
//! namespace needs (a veth pair whose far end is born inside the namespace with the unit's
//! MAC, addresses, links up, a default route, a link removed). Each request asks for the
//! kernel's acknowledgement and waits for it, with a timeout: a refused request is an error
//! naming what was asked and the kernel's errno, never a silent half-made link.
//!
//! No process is spawned: with many boards the `ip` processes this replaces were most of a
//! namespace's setup time (P9 in BENCHMARKS.md).

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

// linux/rtnetlink.h, linux/netlink.h, linux/if_link.h, linux/veth.h
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;
const IFF_UP: u32 = 0x1;
const HEADER: usize = 16;
/// How long the kernel may take to answer one request.
const ANSWER: Duration = Duration::from_secs(5);

/// One netlink message being built: header, the family's fixed part, attributes.
pub(super) struct Message {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Message {
    pub(super) fn new(kind: u16, flags: u16) -> Message {
        let mut buf = vec![0u8; HEADER];
        buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        Message { buf, nests: Vec::new() }
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// `struct ifinfomsg` (family, type, index, flags, change).
    fn ifinfo(&mut self, index: i32, flags: u32, change: u32) -> &mut Self {
        self.buf.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
        self
    }

    /// The family's fixed header (or any bytes) as they are.
    pub(super) fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    pub(super) fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Self {
        let len = u16::try_from(4 + data.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    /// A 32-bit value in network byte order (nf_tables' integers).
    pub(super) fn be32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.attr(kind, &v.to_be_bytes())
    }

    pub(super) fn name(&mut self, kind: u16, name: &str) -> &mut Self {
        let mut z = name.as_bytes().to_vec();
        z.push(0);
        self.attr(kind, &z)
    }

    pub(super) fn begin(&mut self, kind: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self
    }

    pub(super) fn end(&mut self) -> &mut Self {
        if let Some(at) = self.nests.pop() {
            let len = u16::try_from(self.buf.len() - at).unwrap_or(u16::MAX);
            self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

/// A route netlink socket, in the network namespace of the thread that opened it.
pub(crate) struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

fn os(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

impl Netlink {
    /// Opens one in the calling thread's network namespace.
    pub(crate) fn open() -> io::Result<Netlink> {
        Self::open_protocol(libc::NETLINK_ROUTE)
    }

    /// A socket of another netlink family (`NETLINK_NETFILTER` for nf_tables).
    pub(super) fn open_protocol(protocol: i32) -> io::Result<Netlink> {
        // SAFETY: socket(2) with constant arguments; the fd is owned below
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol) };
        if fd < 0 {
            return Err(os("netlink socket"));
        }
        // SAFETY: fd was just returned by socket(2) and is not owned elsewhere
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: a zeroed sockaddr_nl is valid (pid 0: the kernel assigns one)
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: bind with a sockaddr_nl of the size given
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const sa).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(os("netlink bind"));
        }
        let tv = libc::timeval {
            tv_sec: ANSWER.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        // SAFETY: setsockopt with a timeval of the size given
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        Ok(Netlink { fd, seq: 1 })
    }

    /// Sends `msg` and returns the kernel's answer to it: the first message with its
    /// sequence number (an error message carrying errno 0 is the acknowledgement), or the
    /// errno the kernel refused it with (the inner error).
    fn exchange(&mut self, msg: Message, what: &str) -> io::Result<Result<Vec<u8>, i32>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let out = msg.finish(seq);
        self.send(&out, what)?;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let got = self.read(&mut buf, what)?;
            for (kind, their, body) in messages(&buf[..got]) {
                if their != seq {
                    continue;
                }
                if kind == NLMSG_ERROR {
                    let code = error_code(body);
                    if code != 0 {
                        return Ok(Err(-code));
                    }
                }
                return Ok(Ok(body.to_vec()));
            }
        }
    }

    /// Sends `msg`; the kernel's refusal is an error naming `what` and its errno.
    fn request(&mut self, msg: Message, what: &str) -> io::Result<Vec<u8>> {
        self.exchange(msg, what)?.map_err(|errno| refused(what, errno))
    }

    fn ack(&mut self, msg: Message, what: &str) -> io::Result<()> {
        self.request(msg, what).map(|_| ())
    }

    /// Sends `msgs` as one nfnetlink transaction (between batch begin and end, for the
    /// subsystem `subsys`): all of them take effect or none. Each asks for its
    /// acknowledgement; the first refusal is the error, naming `what`.
    pub(super) fn batch(&mut self, subsys: u16, msgs: Vec<Message>, what: &str) -> io::Result<()> {
        const BATCH_BEGIN: u16 = 16;
        const BATCH_END: u16 = 17;
        let frame = |kind: u16| {
            let mut m = Message::new(kind, 0);
            m.raw(&[libc::AF_UNSPEC as u8, 0]).raw(&subsys.to_be_bytes());
            m
        };
        let mut out = Vec::new();
        let mut asked = Vec::new();
        let all = std::iter::once(frame(BATCH_BEGIN))
            .chain(msgs.into_iter().map(|mut m| {
                let flags = u16::from_ne_bytes([m.buf[6], m.buf[7]]) | NLM_F_ACK;
                m.buf[6..8].copy_from_slice(&flags.to_ne_bytes());
                m
            }))
            .chain(std::iter::once(frame(BATCH_END)));
        for m in all {
            self.seq = self.seq.wrapping_add(1);
            let acked = m
                .buf
                .get(6..8)
                .is_some_and(|f| u16::from_ne_bytes([f[0], f[1]]) & NLM_F_ACK != 0);
            if acked {
                asked.push(self.seq);
            }
            out.extend_from_slice(&m.finish(self.seq));
        }
        self.send(&out, what)?;
        let mut buf = vec![0u8; 32 * 1024];
        while !asked.is_empty() {
            for (seq, code) in self.receive(&mut buf, what)? {
                if code != 0 {
                    return Err(refused(what, -code));
                }
                asked.retain(|s| *s != seq);
            }
        }
        Ok(())
    }

    /// One read: the (sequence number, errno) of every acknowledgement or error in it.
    fn receive(&mut self, buf: &mut [u8], what: &str) -> io::Result<Vec<(u32, i32)>> {
        let got = self.read(buf, what)?;
        let mut out = Vec::new();
        for (kind, seq, body) in messages(&buf[..got]) {
            if kind == NLMSG_ERROR {
                out.push((seq, error_code(body)));
            }
        }
        Ok(out)
    }

    /// A dump request's answers (their bodies), up to the kernel's end-of-dump message.
    pub(super) fn dump(&mut self, mut msg: Message, what: &str) -> io::Result<Vec<Vec<u8>>> {
        const NLM_F_DUMP: u16 = 0x300;
        const NLMSG_DONE: u16 = 3;
        let flags = u16::from_ne_bytes([msg.buf[6], msg.buf[7]]) | NLM_F_DUMP;
        msg.buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let out = msg.finish(seq);
        self.send(&out, what)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut bodies = Vec::new();
        loop {
            let got = self.read(&mut buf, what)?;
            for (kind, their, body) in messages(&buf[..got]) {
                if their != seq {
                    continue;
                }
                match kind {
                    NLMSG_DONE => return Ok(bodies),
                    NLMSG_ERROR => {
                        let code = error_code(body);
                        return Err(refused(what, -code));
                    }
                    _ => bodies.push(body.to_vec()),
                }
            }
        }
    }

    fn send(&self, out: &[u8], what: &str) -> io::Result<()> {
        // SAFETY: send(2) of a buffer we own, of its length
        let n = unsafe { libc::send(self.fd.as_raw_fd(), out.as_ptr().cast(), out.len(), 0) };
        if n < 0 || n as usize != out.len() {
            return Err(os(&format!("{what}: netlink send")));
        }
        Ok(())
    }

    /// One recv(2), retried when interrupted; a timeout names the request.
    fn read(&mut self, buf: &mut [u8], what: &str) -> io::Result<usize> {
        loop {
            // SAFETY: recv(2) into a buffer we own, of its length
            let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            let why = if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
                format!("the kernel did not answer within {}s", ANSWER.as_secs())
            } else {
                e.to_string()
            };
            return Err(io::Error::new(e.kind(), format!("{what}: {why}")));
        }
    }

    /// The index of link `name` in this socket's namespace.
    pub(crate) fn index(&mut self, name: &str) -> io::Result<i32> {
        let mut m = Message::new(RTM_GETLINK, 0);
        m.ifinfo(0, 0, 0).name(IFLA_IFNAME, name);
        let body = self.request(m, &format!("find link {name}"))?;
        body.get(4..8)
            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .filter(|i| *i > 0)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("link {name}: no index in the answer")))
    }

    /// A veth pair: `host` here, `peer` born in the namespace open at `netns` (with `mac`).
    pub(crate) fn add_veth(&mut self, host: &str, peer: &str, netns: RawFd, mac: Option<[u8; 6]>) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(0, 0, 0).name(IFLA_IFNAME, host);
        m.begin(IFLA_LINKINFO)
            .name(IFLA_INFO_KIND, "veth")
            .begin(IFLA_INFO_DATA);
        m.begin(VETH_INFO_PEER).ifinfo(0, 0, 0).name(IFLA_IFNAME, peer);
        m.attr(IFLA_NET_NS_FD, &(netns as u32).to_ne_bytes());
        if let Some(mac) = mac {
            m.attr(IFLA_ADDRESS, &mac);
        }
        m.end().end().end();
        self.ack(m, &format!("add veth {host} / {peer}"))
    }

    /// Sets link `index` up.
    pub(crate) fn up(&mut self, index: i32, what: &str) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_ACK);
        m.ifinfo(index, IFF_UP, IFF_UP);
        self.ack(m, &format!("set {what} up"))
    }

    /// Adds `addr/prefix` on link `index`.
    pub(crate) fn add_address(&mut self, index: i32, addr: Ipv4Addr, prefix: u8, what: &str) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        m.buf.extend_from_slice(&[libc::AF_INET as u8, prefix, 0, 0]);
        m.buf.extend_from_slice(&(index as u32).to_ne_bytes());
        m.attr(IFA_LOCAL, &addr.octets()).attr(IFA_ADDRESS, &addr.octets());
        self.ack(m, &format!("add address {addr}/{prefix} on {what}"))
    }

    /// The default route: via `gateway` out of link `index`.
    pub(crate) fn add_default_route(&mut self, index: i32, gateway: Ipv4Addr) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        m.buf.extend_from_slice(&[
            libc::AF_INET as u8,
            0, // dst_len: the default route
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
        ]);
        m.buf.extend_from_slice(&0u32.to_ne_bytes());
        m.attr(RTA_GATEWAY, &gateway.octets())
            .attr(RTA_OIF, &(index as u32).to_ne_bytes());
        self.ack(m, &format!("add default route via {gateway}"))
    }

    /// Deletes link `name` (a veth's peer goes with it); a link already gone is no error.
    pub(crate) fn delete_link(&mut self, name: &str) -> io::Result<()> {
        let mut m = Message::new(RTM_DELLINK, NLM_F_ACK);
        m.ifinfo(0, 0, 0).name(IFLA_IFNAME, name);
        let what = format!("delete link {name}");
        match self.exchange(m, &what)? {
            Ok(_) | Err(libc::ENODEV) => Ok(()),
            Err(errno) => Err(refused(&what, errno)),
        }
    }
}

/// The (negative) errno an `NLMSG_ERROR` message carries; 0 is an acknowledgement.
fn error_code(body: &[u8]) -> i32 {
    body.get(..4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
}

/// The kernel refused request `what` with `errno`: an error of that kind naming both.
fn refused(what: &str, errno: i32) -> io::Error {
    let e = io::Error::from_raw_os_error(errno);
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// The messages in one datagram: (type, sequence number, body after the header).
fn messages(got: &[u8]) -> Vec<(u16, u32, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + HEADER <= got.len() {
        let len = u32::from_ne_bytes([got[at], got[at + 1], got[at + 2], got[at + 3]]) as usize;
        let kind = u16::from_ne_bytes([got[at + 4], got[at + 5]]);
        let seq = u32::from_ne_bytes([got[at + 8], got[at + 9], got[at + 10], got[at + 11]]);
        if len < HEADER || at + len > got.len() {
            break;
        }
        out.push((kind, seq, &got[at + HEADER..at + len]));
        at += (len + 3) & !3;
    }
    out
}

/// The attributes of a message body after its fixed header of `skip` bytes: (type, data).
pub(super) fn attributes(body: &[u8], skip: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut at = skip;
    while at + 4 <= body.len() {
        let len = usize::from(u16::from_ne_bytes([body[at], body[at + 1]]));
        let kind = u16::from_ne_bytes([body[at + 2], body[at + 3]]) & 0x3fff;
        if len < 4 || at + len > body.len() {
            break;
        }
        out.push((kind, &body[at + 4..at + len]));
        at += (len + 3) & !3;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_aligned_and_nests_carry_their_length() {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_ACK);
        m.ifinfo(0, 0, 0)
            .begin(IFLA_LINKINFO)
            .name(IFLA_INFO_KIND, "veth")
            .end();
        let b = m.finish(7);
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize, b.len());
        assert_eq!(u32::from_ne_bytes(b[8..12].try_into().unwrap()), 7);
        // the nest: 4 bytes of its own + "veth\0" in a 4-byte header, padded to 12
        let nest = &b[HEADER + 16..];
        assert_eq!(u16::from_ne_bytes([nest[0], nest[1]]), 4 + 12);
        assert_eq!(u16::from_ne_bytes([nest[4], nest[5]]), 4 + 5);
        assert_eq!(&nest[8..13], b"veth\0");
        assert_eq!(b.len() % 4, 0);
    }

    #[test]
    fn a_missing_link_is_an_error_that_names_it() {
        let Ok(mut nl) = Netlink::open() else {
            eprintln!("skipped: no netlink socket here");
            return;
        };
        let e = nl.index("cb-no-such-link").unwrap_err();
        assert!(e.to_string().contains("cb-no-such-link"), "{e}");
        assert_eq!(nl.index("lo").unwrap(), 1);
    }
}
