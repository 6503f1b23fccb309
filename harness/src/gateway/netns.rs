//! An emulated device's own network: a namespace `certbench-<pid>-<n>` joined to the bench
//! by a veth pair. The device gets an address in 198.18.0.0/15 (RFC 2544's range for
//! network test benches, never routed), the bench the other end of a /30; the device's
//! default route points at the bench, and the bench side forwards nothing, so whatever the
//! device sends reaches the capture and goes no further.
//!
//! Made without spawning a process: the namespace is unshared by a short-lived thread and
//! bound to `/run/netns/NAME` (where iproute2 keeps its named namespaces, so `ip netns exec`
//! and `ip netns list` see it), the link, addresses and route are route-netlink requests
//! (`netlink.rs`). Removed when dropped; a namespace whose certbench process is gone
//! (killed with SIGKILL) is found and removed, with the device processes still inside it,
//! at the next run's start.

use std::ffi::CString;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use super::netlink::Netlink;

const PREFIX: &str = "certbench-";
/// Where named network namespaces are bound (iproute2's `NETNS_RUN_DIR`).
const RUN_NETNS: &str = "/run/netns";
static NEXT: AtomicU32 = AtomicU32::new(0);

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("a network namespace needs root (this process runs as uid {0})")]
    NotRoot(u32),
    #[error("`ip {args}` failed: {why}")]
    Ip { args: String, why: String },
    #[error("no free /30 left in 198.18.0.0/15")]
    NoAddress,
    #[error("the device's network namespace: {0}")]
    Netlink(#[from] io::Error),
}

/// A device's namespace and link, removed on drop.
#[derive(Debug)]
pub struct DeviceNet {
    pub name: String,
    /// The bench's end of the veth pair (captured).
    pub host_if: String,
    pub device_if: String,
    pub host_ip: Ipv4Addr,
    pub device_ip: Ipv4Addr,
}

pub(crate) fn ip(args: &[&str]) -> Result<String, NetnsError> {
    let out = Command::new("ip").args(args).output().map_err(|e| NetnsError::Ip {
        args: args.join(" "),
        why: format!("cannot run ip (iproute2): {e}"),
    })?;
    if !out.status.success() {
        return Err(NetnsError::Ip {
            args: args.join(" "),
            why: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether this process may create namespaces.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions
    unsafe { libc::geteuid() == 0 }
}

/// Removes namespaces (and the device processes in them) left by certbench runs that
/// no longer exist, with their links. Returns the names removed.
pub fn remove_stale() -> Vec<String> {
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(RUN_NETNS).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let mut parts = rest.split('-');
        let (Some(pid), Some(n)) = (parts.next().and_then(|p| p.parse::<u32>().ok()), parts.next()) else {
            continue;
        };
        if pid == std::process::id() || crate::util::alive_certbench(pid) {
            continue;
        }
        teardown(&name, &format!("cb{pid}h{n}"));
        removed.push(name);
    }
    // the interception tables of dead runs (named like their namespaces)
    for t in super::intercept::tables() {
        let pid = t
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| p != std::process::id() && !crate::util::alive_certbench(p)) {
            super::intercept::delete_table(&t);
            removed.push(format!("nftables table {t}"));
        }
    }
    removed
}

/// The namespace a file or `/proc/PID/ns/net` link stands for (device, inode).
fn namespace_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The processes inside the namespace bound at `path` (what `ip netns pids` reads).
fn pids_in(path: &Path) -> Vec<i32> {
    let Some(id) = namespace_id(path) else {
        return Vec::new();
    };
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| namespace_id(Path::new(&format!("/proc/{pid}/ns/net"))) == Some(id))
        .collect()
}

fn c_path(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::other(format!("{}: a NUL in the path", p.display())))
}

fn os(what: String) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Ends the processes left inside namespace `name` (a device the run started), deletes
/// the bench's end of its link (the device's end goes with it) and unbinds the namespace.
fn teardown(name: &str, host_if: &str) {
    let path = Path::new(RUN_NETNS).join(name);
    for pid in pids_in(&path) {
        // SAFETY: kill(2) on a pid read from the namespace this run (or a dead run) made
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    if let Ok(mut nl) = Netlink::open() {
        let _ = nl.delete_link(host_if);
    }
    if let Ok(c) = c_path(&path) {
        // SAFETY: umount2 of a path we made; failing (not mounted) is harmless
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir_all(format!("/etc/netns/{name}"));
}

/// `/run/netns` as iproute2 leaves it: a mount point shared with other mount namespaces,
/// so a namespace bound in it is seen by `ip netns exec` (which makes its own). Once.
fn run_netns_ready() -> Result<(), NetnsError> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY
        .get_or_init(|| {
            let dir = Path::new(RUN_NETNS);
            std::fs::create_dir_all(dir).map_err(|e| format!("{RUN_NETNS}: {e}"))?;
            let d = c_path(dir).map_err(|e| e.to_string())?;
            let share = || {
                // SAFETY: mount(2) with NUL-terminated strings that outlive the call
                unsafe {
                    libc::mount(
                        c"none".as_ptr(),
                        d.as_ptr(),
                        std::ptr::null(),
                        libc::MS_SHARED | libc::MS_REC,
                        std::ptr::null(),
                    )
                }
            };
            if share() == 0 {
                return Ok(());
            }
            // not a mount point yet: bind it onto itself, then share it
            // SAFETY: as above
            let bound = unsafe {
                libc::mount(
                    d.as_ptr(),
                    d.as_ptr(),
                    c"none".as_ptr(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                )
            };
            if bound != 0 || share() != 0 {
                return Err(os(format!("making {RUN_NETNS} a shared mount point")).to_string());
            }
            Ok(())
        })
        .clone()
        .map_err(|e| NetnsError::Netlink(io::Error::other(e)))
}

/// A new network namespace bound at `path`, and a route-netlink socket inside it.
fn make_namespace(path: &Path) -> io::Result<(std::fs::File, Netlink)> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let target = c_path(path)?;
    // a thread of its own: unshare(CLONE_NEWNET) moves only the calling thread
    let nl = std::thread::spawn(move || -> io::Result<Netlink> {
        // SAFETY: unshare(2) of this thread's network namespace
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(os("unshare(CLONE_NEWNET)".into()));
        }
        // SAFETY: mount(2) with NUL-terminated strings that outlive the call
        let r = unsafe {
            libc::mount(
                c"/proc/thread-self/ns/net".as_ptr(),
                target.as_ptr(),
                c"none".as_ptr(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        };
        if r != 0 {
            return Err(os("binding the namespace".into()));
        }
        Netlink::open()
    })
    .join()
    .map_err(|_| io::Error::other("the namespace thread panicked"))??;
    Ok((std::fs::File::open(path)?, nl))
}

/// The `inet ADDRESS/PREFIX` entries of `ip -o -4 addr show` output, in order.
pub(crate) fn inet_addresses(text: &str) -> Vec<(Ipv4Addr, u8)> {
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let cidr = *w.get(w.iter().position(|x| *x == "inet")? + 1)?;
            let (a, p) = cidr.split_once('/').unwrap_or((cidr, "32"));
            Some((a.parse().ok()?, p.parse().ok()?))
        })
        .collect()
}

/// Every IPv4 address on this machine's links (getifaddrs).
fn used_addresses() -> Vec<Ipv4Addr> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we free below
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut at = list;
    while !at.is_null() {
        // SAFETY: a node of the list getifaddrs returned; ifa_addr may be null
        let ifa = unsafe { &*at };
        if !ifa.ifa_addr.is_null() && i32::from(unsafe { (*ifa.ifa_addr).sa_family }) == libc::AF_INET {
            // SAFETY: an AF_INET address is a sockaddr_in
            let sin = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in>() };
            out.push(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
        }
        at = ifa.ifa_next;
    }
    // SAFETY: the list getifaddrs returned, freed once
    unsafe { libc::freeifaddrs(list) };
    out
}

impl DeviceNet {
    /// `mac`: the address the device's end of the link gets (a simulated or emulated
    /// unit's label MAC); the kernel picks one otherwise.
    pub fn create(mac: Option<[u8; 6]>) -> Result<DeviceNet, NetnsError> {
        if !is_root() {
            // SAFETY: geteuid has no preconditions
            return Err(NetnsError::NotRoot(unsafe { libc::geteuid() }));
        }
        // once per process: a dead run's leftovers do not appear during this one, and with
        // many boards listing nftables' tables per board was most of the harness's CPU (P3)
        static CLEANED: std::sync::Once = std::sync::Once::new();
        CLEANED.call_once(|| {
            remove_stale();
        });
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let used = used_addresses();
        // 32 768 /30s in 198.18.0.0/15; start from this process's slot
        let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
        let start = (pid.wrapping_mul(8).wrapping_add(n)) % 32_768;
        let slot = (0..32_768u32)
            .map(|i| (start + i) % 32_768)
            .find(|s| {
                let net = base + s * 4;
                !used.iter().any(|a| u32::from(*a) & !3 == net)
            })
            .ok_or(NetnsError::NoAddress)?;
        let net = base + slot * 4;
        let d = DeviceNet {
            name: format!("{PREFIX}{pid}-{n}"),
            host_if: format!("cb{pid}h{n}"),
            device_if: format!("cb{pid}d{n}"),
            host_ip: Ipv4Addr::from(net + 1),
            device_ip: Ipv4Addr::from(net + 2),
        };
        // from here on, drop removes what exists
        run_netns_ready()?;
        let (ns, mut inside) = make_namespace(&Path::new(RUN_NETNS).join(&d.name))?;
        let mut host = Netlink::open()?;
        host.add_veth(&d.host_if, &d.device_if, ns.as_raw_fd(), mac)?;
        drop(ns);
        let h = host.index(&d.host_if)?;
        host.add_address(h, d.host_ip, 30, &d.host_if)?;
        host.up(h, &d.host_if)?;
        let dev = inside.index(&d.device_if)?;
        inside.add_address(dev, d.device_ip, 30, &d.device_if)?;
        inside.up(dev, &d.device_if)?;
        let lo = inside.index("lo")?;
        inside.up(lo, "lo")?;
        inside.add_default_route(dev, d.host_ip)?;
        // the bench side never forwards what the device sends elsewhere
        let _ = std::fs::write(format!("/proc/sys/net/ipv4/conf/{}/forwarding", d.host_if), "0");
        // programs started with `ip netns exec` resolve names at the bench, not at this
        // machine's resolver (ip bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf)
        let etc = format!("/etc/netns/{}", d.name);
        if std::fs::create_dir_all(&etc).is_ok() {
            let _ = std::fs::write(format!("{etc}/resolv.conf"), format!("nameserver {}\n", d.host_ip));
        }
        Ok(d)
    }

    /// The command prefix that starts a program inside the namespace (`{{netns.exec}}`).
    pub fn exec_prefix(&self) -> String {
        format!("ip netns exec {}", self.name)
    }
}

impl Drop for DeviceNet {
    fn drop(&mut self) {
        teardown(&self.name, &self.host_if);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A certbench killed but not yet reaped (a zombie, as under a container's PID 1 that
    /// reaps nothing) left its namespaces to clean: it is not alive; a running one is.
    #[test]
    fn a_zombie_certbench_is_not_alive_and_a_running_one_is() {
        let dir = tempfile::tempdir().unwrap();
        // a copy of a program under a certbench name; spawning retries "text file busy" (a
        // fork in another test thread may hold the copy's write end for a moment)
        let spawn = |prog: &str, name: &str, args: &[&str]| {
            let p = dir.path().join(name);
            std::fs::copy(prog, &p).unwrap();
            let mut tries = 0;
            loop {
                match Command::new(&p).args(args).spawn() {
                    Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    other => break other.unwrap(),
                }
            }
        };
        let mut running = spawn("/bin/sleep", "certbench-sleep", &["30"]);
        let mut zombie = spawn("/bin/true", "certbench-true", &[]);
        let state = |pid: u32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit_once(')').map(|(_, t)| t.trim().chars().next()))
                .flatten()
        };
        let t0 = std::time::Instant::now();
        while state(zombie.id()) != Some('Z') && t0.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(state(zombie.id()), Some('Z'), "the child exited unreaped");
        assert!(!crate::util::alive_certbench(zombie.id()), "a zombie is not a live run");
        assert!(crate::util::alive_certbench(running.id()), "a running certbench is");
        running.kill().unwrap();
        running.wait().unwrap();
        zombie.wait().unwrap();
    }

    #[test]
    fn a_namespace_comes_and_goes_with_its_link() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let d = DeviceNet::create(None).unwrap();
        assert!(ip(&["netns", "list"]).unwrap().contains(&d.name));
        let addrs = ip(&["-n", &d.name, "-o", "-4", "addr", "show"]).unwrap();
        assert!(addrs.contains(&d.device_ip.to_string()), "{addrs}");
        // the device reaches the bench's end (bash's /dev/tcp: a real TCP connect from inside)
        let l = std::net::TcpListener::bind((d.host_ip, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let c = Command::new("ip")
            .args(["netns", "exec", &d.name, "bash", "-c"])
            .arg(format!("exec 3<>/dev/tcp/{}/{port} && echo hi >&3", d.host_ip))
            .status()
            .unwrap();
        assert!(c.success());
        let (mut s, peer) = l.accept().unwrap();
        assert_eq!(peer.ip(), std::net::IpAddr::from(d.device_ip));
        let mut got = String::new();
        std::io::Read::read_to_string(&mut s, &mut got).unwrap();
        assert_eq!(got, "hi\n");
        let (name, host_if) = (d.name.clone(), d.host_if.clone());
        drop(d);
        assert!(!ip(&["netns", "list"]).unwrap().contains(&name));
        assert!(ip(&["link", "show", &host_if]).is_err());
    }
}
