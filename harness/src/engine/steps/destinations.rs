//! PRV-01 (6-5): every destination the device contacts is one its maker declares, with a
//! purpose. What the device contacted is read from what the bench saw: every name it looked
//! up (the bench is its name server; reverse lookups aside) and every address it opened a
//! flow to without a name (a literal address, not one the bench's name server gave). An
//! undeclared one is processing the maker does not describe: FAIL, naming it and when it was
//! first seen. A device that contacted nothing leaves the check undecided (ERROR).

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::prelude::*;
use crate::gateway::flows::Side;
use crate::model::privacy::Destination;

/// Undeclared destinations named in the verdict (the count says how many in all).
const NAMED: usize = 20;

/// Ports whose flows say nothing of where data goes (address and name service).
const INFRASTRUCTURE: [u16; 5] = [53, 67, 68, 546, 547];

impl Run<'_> {
    /// `destinations`: waits `observe`, then judges every destination of the run so far.
    pub(in crate::engine) async fn destinations(&mut self, observe: Duration) -> StepResult {
        let Some(declared) = self.rig.device.destinations.clone() else {
            return Err(Stop::Skip(
                "the maker declares no destinations (`privacy.destinations`): 6-5 is not tested".into(),
            ));
        };
        let (Some(dns), Some(_)) = (&self.rig.gateway.dns, &self.rig.gateway.capture) else {
            return Err(self.link_error());
        };
        let bench = dns.addr.ip();
        tokio::time::sleep(observe).await;
        let Some(dns) = &self.rig.gateway.dns else {
            return Err(self.link_error());
        };
        // name -> first seen (ms since the bench started), in lower case
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut answers: Vec<IpAddr> = vec![bench];
        {
            let log = dns.log.lock().unwrap_or_else(|p| p.into_inner());
            for q in log.queries.iter().filter(|q| q.kind != "PTR" && !q.name.is_empty()) {
                seen.entry(q.name.trim_end_matches('.').to_ascii_lowercase())
                    .or_insert_with(|| format!("looked up at +{:.1}s", q.at_ms as f64 / 1000.0));
                answers.extend(q.answer.as_deref().and_then(|a| a.parse::<IpAddr>().ok()));
            }
        }
        let Some(cap) = &self.rig.gateway.capture else {
            return Err(self.link_error());
        };
        let (table, _) = cap.snapshot();
        for f in table.flows.iter().filter(|f| f.opened_by == Side::Device) {
            let peer = f.peer;
            let local = match peer {
                IpAddr::V4(a) => a.is_broadcast() || a.is_multicast() || a.is_link_local() || a.is_unspecified(),
                IpAddr::V6(a) => a.is_multicast() || a.is_unspecified() || (a.segments()[0] & 0xffc0) == 0xfe80,
            };
            if local || answers.contains(&peer) || INFRASTRUCTURE.contains(&f.peer_port) {
                continue;
            }
            seen.entry(peer.to_string()).or_insert_with(|| {
                format!(
                    "{} to port {} without a name, frame {}",
                    <&str>::from(f.transport),
                    f.peer_port,
                    f.packets.first().copied().unwrap_or(0)
                )
            });
        }
        if seen.is_empty() {
            return Err(Stop::Error(
                "the device looked up no name and opened no flow this run: what it contacts cannot be judged from silence".into(),
            ));
        }
        let covering = |name: &str| -> Option<&Destination> { declared.iter().find(|d| d.covers(name)) };
        // a name is the device's bytes: escaped, and at most NAMED of them in words
        let shown = |n: &str| n.chars().flat_map(char::escape_debug).take(120).collect::<String>();
        let all: Vec<String> = seen
            .iter()
            .filter(|(n, _)| covering(n).is_none())
            .map(|(n, how)| format!("{} ({how})", shown(n)))
            .collect();
        let mut undeclared: Vec<String> = all.iter().take(NAMED).cloned().collect();
        if all.len() > NAMED {
            undeclared.push(format!("and {} more", all.len() - NAMED));
        }
        if !undeclared.is_empty() {
            return Err(Stop::Fail {
                check: Some("PRV-01".into()),
                reason: format!(
                    "PRV-01 (6-5): the device contacted {} destination(s) its maker does not declare — {}",
                    all.len(),
                    undeclared.join("; ")
                ),
            });
        }
        let listed: Vec<String> = seen
            .keys()
            .map(|n| {
                format!(
                    "{} ({})",
                    shown(n),
                    covering(n).map_or("?", |d| <&str>::from(d.purpose))
                )
            })
            .collect();
        Ok(format!(
            "every destination the device contacted is declared with its purpose: {}",
            listed.join(", ")
        ))
    }
}
