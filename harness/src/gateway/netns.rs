//! An emulated device's own network: a namespace `certbench-<pid>-<n>` joined to the bench
//! by a veth pair. The device gets an address in 198.18.0.0/15 (RFC 2544's range for
//! network test benches, never routed), the bench the other end of a /30; the device's
//! default route points at the bench, and the bench side forwards nothing, so whatever the
//! device sends reaches the capture and goes no further.
//!
//! Built with iproute2's `ip` (a lab dependency, like the capture's root). Removed when
//! dropped; a namespace whose certbench process is gone (killed with SIGKILL) is found and
//! removed, with the device processes still inside it, at the next run's start.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

const PREFIX: &str = "certbench-";
static NEXT: AtomicU32 = AtomicU32::new(0);

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("a network namespace needs root (this process runs as uid {0})")]
    NotRoot(u32),
    #[error("`ip {args}` failed: {why}")]
    Ip { args: String, why: String },
    #[error("no free /30 left in 198.18.0.0/15")]
    NoAddress,
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

/// Runs `ip [opts] -batch -` with these commands (one per line); the first failure stops it.
fn ip_batch(opts: &[&str], commands: &str) -> Result<(), NetnsError> {
    use std::io::Write;
    let args: Vec<&str> = opts.iter().copied().chain(["-batch", "-"]).collect();
    let fail = |why: String| NetnsError::Ip {
        args: format!("{} <<< {}", args.join(" "), commands.trim().replace('\n', "; ")),
        why,
    };
    let mut child = Command::new("ip")
        .args(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run ip (iproute2): {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(commands.as_bytes())
            .map_err(|e| fail(format!("cannot write to ip: {e}")))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(())
}

/// Whether this process may create namespaces.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions
    unsafe { libc::geteuid() == 0 }
}

fn alive_certbench(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim().starts_with("certbench"))
}

/// Removes namespaces (and the device processes in them) left by certbench runs that
/// no longer exist. Returns the names removed.
pub fn remove_stale() -> Vec<String> {
    let Ok(list) = ip(&["netns", "list"]) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() || alive_certbench(pid) {
            continue;
        }
        teardown(name);
        removed.push(name.to_string());
    }
    // the interception tables of dead runs (named like their namespaces)
    for t in super::intercept::tables() {
        let pid = t
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| p != std::process::id() && !alive_certbench(p)) {
            super::intercept::delete_table(&t);
            removed.push(format!("nftables table {t}"));
        }
    }
    removed
}

/// Ends the processes left inside namespace `name` (a device the run started) and deletes it.
fn teardown(name: &str) {
    if let Ok(pids) = ip(&["netns", "pids", name]) {
        for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            // SAFETY: kill(2) on a pid read from the namespace this run (or a dead run) made
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let _ = ip(&["netns", "del", name]);
    let _ = std::fs::remove_dir_all(format!("/etc/netns/{name}"));
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

fn used_addresses() -> Vec<Ipv4Addr> {
    inet_addresses(&ip(&["-o", "-4", "addr", "show"]).unwrap_or_default())
        .into_iter()
        .map(|(a, _)| a)
        .collect()
}

impl DeviceNet {
    /// `mac`: the address the device's end of the link gets (a simulated or emulated
    /// unit's label MAC); the kernel picks one otherwise.
    pub fn create(mac: Option<[u8; 6]>) -> Result<DeviceNet, NetnsError> {
        if !is_root() {
            // SAFETY: geteuid has no preconditions
            return Err(NetnsError::NotRoot(unsafe { libc::geteuid() }));
        }
        remove_stale();
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
        ip(&["netns", "add", &d.name])?;
        // two `ip -batch` runs (the bench side, then inside the namespace), not one process
        // per command: with 64 boards the `ip` processes were most of the setup's CPU
        let host_side = format!(
            "link add {host_if} type veth peer name {dev_if} netns {ns}\n\
             addr add {host}/30 dev {host_if}\n\
             link set {host_if} up\n",
            host_if = d.host_if,
            dev_if = d.device_if,
            ns = d.name,
            host = d.host_ip,
        );
        let set_mac = mac
            .map(|m| {
                format!(
                    "link set {} address {}\n",
                    d.device_if,
                    crate::model::unit::format_mac(&m)
                )
            })
            .unwrap_or_default();
        let device_side = format!(
            "{set_mac}addr add {dev}/30 dev {dev_if}\n\
             link set {dev_if} up\n\
             link set lo up\n\
             route add default via {gw}\n",
            dev = d.device_ip,
            dev_if = d.device_if,
            gw = d.host_ip,
        );
        ip_batch(&[], &host_side)?;
        ip_batch(&["-n", &d.name], &device_side)?;
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
        teardown(&self.name);
        let _ = ip(&["link", "del", &self.host_if]);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
