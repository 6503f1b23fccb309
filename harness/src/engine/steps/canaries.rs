//! COM-04 and PWD-10 (issue 28): values the run knows, searched for on the wire. `plant`
//! sets a fresh value of each of the profile's `personal_data` items at the device's shell;
//! `canaries` searches the run's whole capture for them and for every password the run set
//! or used (`gateway::canary`). A value found in clear fails its check, naming the frames;
//! the search counts only beside its positive control: a value the bench sends the device
//! in clear, in several encodings, must be found by the same search of the same file.

use regex::bytes::Regex;
use serde::Serialize;

use super::prelude::*;
use crate::gateway::canary::{self, Canary, Encoding, Hit, Searched};
use crate::model::personal::{Class, PersonalData, Shape};
use crate::model::template::Template;
use crate::report::events::{Part, Verdict};

/// Output of a command that did not take a value, whatever the device's words.
const REFUSED: &str = r"(?i)not found|unknown|invalid|error|denied|usage:|not allowed";
/// The encodings the positive control is sent in (one datagram each).
const CONTROL: [Encoding; 4] = [Encoding::Raw, Encoding::Base64, Encoding::Hex, Encoding::Utf16le];

/// `canaries.json`: what was searched and found (names only, never values).
#[derive(Debug, Serialize)]
struct Evidence<'a> {
    canaries: Vec<(&'a str, Class)>,
    control_found: Vec<Encoding>,
    searched: &'a Searched,
}

impl Run<'_> {
    /// `plant`: each `personal_data` item set to a fresh value, at the shell or by a
    /// request on a declared service, as the owner.
    pub(in crate::engine) async fn plant(&mut self) -> StepResult {
        let items = self.rig.device.personal_data.clone();
        if items.is_empty() {
            return Ok(
                "the profile declares no personal data (`personal_data`): the passwords the run sets and uses are the only canaries"
                    .into(),
            );
        }
        if items.iter().any(|p| p.console.is_some()) {
            self.ensure_shell().await?;
        }
        let mut done = Vec::new();
        for p in items {
            let value = p.shape.generate();
            // a secret before it is sent: transcripts and answers show its name
            self.rig.redactor.add(&format!("personal_data.{}", p.name), &value);
            let how = match &p.console {
                Some(cmd) => self.plant_at_shell(&p, cmd, &value).await?,
                None => self.plant_by_request(&p, &value).await?,
            };
            self.rig.planted.retain(|k| k.name != p.name);
            self.rig.planted.push(Canary {
                name: p.name.clone(),
                class: p.class,
                value,
            });
            done.push(format!("{} ({}, {how})", p.name, <&str>::from(p.class)));
        }
        let frame = self.rig.gateway.capture.as_ref().map_or(0, |c| c.snapshot().0.packets);
        self.rig.planted_at = Some((Instant::now(), frame));
        Ok(format!(
            "planted fresh values of {}: from now on they are searched for on the wire",
            done.join(", ")
        ))
    }

    /// Types the item's command at the shell; Ok: how it was confirmed.
    async fn plant_at_shell(&mut self, p: &PersonalData, cmd: &Template, value: &str) -> Result<String, Stop> {
        let c = self.console()?;
        let shell = self.spec()?.prompts.shell.clone();
        let refused = Regex::new(REFUSED).map_err(|e| Stop::Error(e.to_string()))?;
        let mut vars = self.vars.clone();
        vars.insert("value".into(), value.to_string());
        let line = cmd.render(&vars, Quote::Raw).map_err(Stop::Error)?;
        self.rig.state.lost();
        self.send_line(&c, &line)?;
        let deadline = Instant::now() + Duration::from_secs(15);
        let accepted = match &p.accepted {
            Some(a) => Some(Regex::new(a).map_err(|e| Stop::Error(e.to_string()))?),
            None => None,
        };
        let mut pats: Vec<&Regex> = vec![&shell];
        if let Some(a) = &accepted {
            pats.insert(0, a);
        }
        match c.expect(&pats, deadline, None).await.map_err(console_lost)? {
            Wait::Found(f) if accepted.is_some() && f.index == 0 => {
                // back at the prompt for the next command
                if let Ok(Wait::Found(_)) = c.expect(&[&shell], Instant::now() + Duration::from_secs(5), None).await {
                    self.rig.state.saw_shell();
                }
                Ok("at the shell, the declared answer seen".into())
            }
            Wait::Found(f) if accepted.is_none() && !refused.is_match(f.before.as_bytes()) => {
                self.rig.state.saw_shell();
                Ok("at the shell, no error".into())
            }
            Wait::Found(f) => Err(Stop::Error(format!(
                "could not plant {} ({}): the device answered `{}` with {:?}, not what the profile declares it says when it took the value",
                p.name,
                <&str>::from(p.class),
                self.rig.redactor.redact(&line),
                shown(&self.rig.redactor, f.before.trim())
            ))),
            Wait::Timeout => Err(Stop::Error(format!(
                "could not plant {}: no answer to `{}` within 15s",
                p.name,
                self.rig.redactor.redact(&line)
            ))),
        }
    }

    /// Sends the item's request as the owner; Ok: the device's answer (2xx, PUBACK, or the
    /// declared `accepted`).
    async fn plant_by_request(&mut self, p: &PersonalData, value: &str) -> Result<String, Stop> {
        let Some(req) = &p.request else {
            return Err(Stop::Error(format!("{} has no way to be set", p.name)));
        };
        let owner = self.rig.current.clone().ok_or_else(|| {
            Stop::Error("the run knows no credentials for the owner: nothing can be planted as the owner".into())
        })?;
        let t = self.request_target(req)?;
        let path = self.render(&req.path, Quote::Raw)?;
        let (cred, _) = self.config_credentials(&t, &owner).await?;
        let answer = self.send_request(&t, req, &path, &cred, value).await?;
        let said = shown(&self.rig.redactor, &answer);
        let took = match &p.accepted {
            Some(a) => Regex::new(a)
                .map_err(|e| Stop::Error(e.to_string()))?
                .is_match(answer.as_bytes()),
            None => answer.starts_with('2') || answer.ends_with("PUBACK"),
        };
        if !took {
            return Err(Stop::Error(format!(
                "could not plant {} ({}) through {}: it answered {said}",
                p.name,
                <&str>::from(p.class),
                t.describe()
            )));
        }
        Ok(format!("through {} ({said})", t.describe()))
    }

    /// `canaries`: the capture searched for every value the run knows.
    pub(in crate::engine) async fn canaries(&mut self, observe: Duration) -> StepResult {
        // the passwords the device sent the bench's cloud are secrets, and canaries, too
        if let Some(n) = &self.rig.net {
            for s in n.log.secrets() {
                self.rig.redactor.add("device.password", &s);
            }
        }
        let Some(cap) = &self.rig.gateway.capture else {
            return Err(self.link_error());
        };
        let since = self.rig.planted_at.map_or(cap.started, |p| p.0);
        tokio::time::sleep(observe.saturating_sub(since.elapsed())).await;
        let (table, _) = cap.snapshot();
        let Some(device) = table.device else {
            return Err(Stop::Error(
                "the device's address on its link is not known: the positive control cannot be sent to it".into(),
            ));
        };
        // positive control: a value only the bench knows, sent to the device in clear
        let control = Canary {
            name: "bench-control".into(),
            class: Class::Control,
            value: Shape::Token.generate(),
        };
        send_control(device, &control.value)
            .map_err(|e| Stop::Error(format!("could not send the positive control to {device}: {e}")))?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let Some(cap) = &self.rig.gateway.capture else {
            return Err(self.link_error());
        };
        let Some(len) = cap.flush(Duration::from_secs(5)) else {
            return Err(Stop::Error("the capture did not write out its file within 5s".into()));
        };
        let (_, stats) = cap.snapshot();
        let path = cap.path.clone();
        let canaries = self.canary_list(control);
        let list = canaries.clone();
        let searched = tokio::task::spawn_blocking(move || canary::search(&path, len, &list, Some(device)))
            .await
            .map_err(|e| Stop::Error(format!("the search stopped: {e}")))?
            .map_err(|e| Stop::Error(format!("the capture cannot be read: {e}")))?;
        let control_found: Vec<Encoding> = CONTROL
            .into_iter()
            .filter(|e| {
                searched
                    .hits
                    .iter()
                    .any(|h| h.class == Class::Control && h.encoding == *e && h.dst == device)
            })
            .collect();
        self.keep_evidence(
            "canaries.json",
            serde_json::to_string_pretty(&Evidence {
                canaries: canaries.iter().map(|c| (c.name.as_str(), c.class)).collect(),
                control_found: control_found.clone(),
                searched: &searched,
            })
            .unwrap_or_default(),
        );
        self.judge_canaries(&canaries, &searched, &control_found, &stats)
    }

    /// Every value to search for: the passwords the run knows (its secrets, but for those
    /// that are public identifiers such as a user name), the planted values, the control.
    fn canary_list(&self, control: Canary) -> Vec<Canary> {
        let public = self.rig.redactor.public_secrets();
        let mut v: Vec<Canary> = self
            .rig
            .redactor
            .secrets()
            .into_iter()
            .filter(|(n, val)| {
                !public.iter().any(|(_, p)| p == val)
                    && !self.rig.planted.iter().any(|c| &c.value == val || &c.name == n)
            })
            .map(|(name, value)| Canary {
                name,
                class: Class::Password,
                value,
            })
            .collect();
        v.extend(self.rig.planted.iter().cloned());
        v.push(control);
        v
    }

    fn judge_canaries(
        &mut self,
        canaries: &[Canary],
        s: &Searched,
        control_found: &[Encoding],
        stats: &crate::gateway::capture::CaptureStats,
    ) -> StepResult {
        let names = |classes: &[Class]| -> Vec<String> {
            canaries
                .iter()
                .filter(|c| classes.contains(&c.class))
                .map(|c| c.name.clone())
                .collect()
        };
        let words = searched_words(s);
        let control_ok = control_found.len() == CONTROL.len();
        // the device's own positive control: it said something after the values were set
        let from = self.rig.planted_at.map_or(0, |p| p.1);
        let silent = (s.device_last_data_frame <= from).then(|| {
            format!(
                "the device sent no application data {} (its last: frame {}), so it had no chance to leak them",
                if from > 0 {
                    format!("after the values were planted (frame {from})")
                } else {
                    "in the whole capture".into()
                },
                s.device_last_data_frame
            )
        });
        self.parts.push(control_part(control_found));
        // what could hide a value: frames the file lacks or the kernel dropped, bytes not searched
        let blind = blind_spots(s, stats);
        let found = |classes: &[Class]| -> Vec<&Hit> { s.hits.iter().filter(|h| classes.contains(&h.class)).collect() };
        let groups: [(&str, &str, &[Class]); 2] = [
            ("passwords", "PWD-10", &[Class::Password, Class::Security]),
            ("personal-data", "COM-04", &[Class::Personal, Class::Sensitive]),
        ];
        let mut failing: Vec<(&str, String)> = Vec::new();
        for (part, check, classes) in groups {
            let hits = found(classes);
            let searched_for = names(classes);
            let (verdict, reason) = if !hits.is_empty() {
                let r = format!("{check}: in clear on the wire — {}", summarise(&hits));
                failing.push((check, r.clone()));
                (Verdict::Fail, r)
            } else if searched_for.is_empty() {
                (
                    Verdict::NotApplicable,
                    "no value of this kind was known to the run (none declared in `personal_data`, none planted)"
                        .to_string(),
                )
            } else if !control_ok {
                (
                    Verdict::Error,
                    "not found, but the positive control was not found either".to_string(),
                )
            } else if let Some(why) = &silent {
                (Verdict::Error, format!("not found, but {why}"))
            } else if !blind.is_empty() {
                (
                    Verdict::Error,
                    format!(
                        "not found in what was searched, but not everything was: {}",
                        blind.join("; ")
                    ),
                )
            } else {
                (
                    Verdict::Pass,
                    format!("none of {} found in clear, in any encoding", searched_for.join(", ")),
                )
            };
            self.parts.push(Part {
                name: part.into(),
                verdict,
                check: Some(check.into()),
                reason,
            });
        }
        let planted = names(&[Class::Personal, Class::Sensitive, Class::Security]);
        let planted = if planted.is_empty() {
            "no personal data planted (none declared)".to_string()
        } else {
            format!("planted: {}", planted.join(", "))
        };
        if let Some((check, _)) = failing.first() {
            return Err(Stop::Fail {
                check: Some((*check).to_string()),
                reason: format!(
                    "{}. {planted}; {words}",
                    failing.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>().join(". ")
                ),
            });
        }
        if !control_ok {
            return Err(Stop::Error(format!(
                "positive control failed: the bench's own value, sent to the device in clear, was found in {} of {} encodings — the search cannot show what crosses this link. {words}",
                control_found.len(),
                CONTROL.len()
            )));
        }
        if let Some(why) = silent {
            return Err(Stop::Error(format!(
                "no known value found in clear, but {why}: silence shows nothing. {planted}; {words}"
            )));
        }
        if !blind.is_empty() {
            return Err(Stop::Error(format!(
                "no known value found in clear, but not everything could be searched: {}. {planted}; {words}",
                blind.join("; ")
            )));
        }
        Ok(format!(
            "no password ({}) and no planted value found in clear in any encoding; positive control found in all {} encodings. {planted}; {words}",
            names(&[Class::Password]).join(", "),
            CONTROL.len()
        ))
    }
}

/// What was searched, in words.
fn searched_words(s: &Searched) -> String {
    format!(
        "{} frames searched ({} TCP directions, {} datagrams; {} bytes in clear, {} of ciphertext not searched; {} frames of the device's data, the last frame {})",
        s.frames,
        s.tcp_directions,
        s.datagrams,
        s.clear_bytes,
        s.encrypted_bytes,
        s.device_data_frames,
        s.device_last_data_frame
    )
}

/// The positive control's part: the bench's own value, sent to the device in clear, found
/// in every encoding.
fn control_part(control_found: &[Encoding]) -> Part {
    let control_ok = control_found.len() == CONTROL.len();
    Part {
        name: "control".into(),
        verdict: if control_ok { Verdict::Pass } else { Verdict::Error },
        check: None,
        reason: format!(
            "the bench's value sent to the device in clear found in {} of {} encodings ({})",
            control_found.len(),
            CONTROL.len(),
            control_found
                .iter()
                .map(|e| <&str>::from(*e))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// What could hide a value: frames the file lacks or the kernel dropped, bytes not searched.
fn blind_spots(s: &Searched, stats: &crate::gateway::capture::CaptureStats) -> Vec<String> {
    let mut blind = s.unsearched();
    if stats.unsaved_packets > 0 {
        blind.push(format!(
            "{} packets past the capture file's limit",
            stats.unsaved_packets
        ));
    }
    if stats.kernel_drops > 0 {
        blind.push(format!(
            "{} packets the kernel dropped before the capture read them",
            stats.kernel_drops
        ));
    }
    blind
}

/// Groups shown in a verdict (all hits are in canaries.json).
const NAMED: usize = 5;

/// The hits in words, one group per value, encoding, place and peer (a device sending the
/// same thing every few seconds is one finding with many flows), what the device sent first.
fn summarise(hits: &[&Hit]) -> String {
    type Group<'a> = ((bool, &'a str, Encoding, &'a str, std::net::IpAddr, u16), Vec<&'a Hit>);
    let mut groups: Vec<Group> = Vec::new();
    for h in hits {
        let by_device = h.from_device != Some(false);
        // the peer's end: the server a device's connection went to, or the bench's side
        let (peer, port) = if by_device { (h.dst, h.dport) } else { (h.src, h.sport) };
        let key = (
            !by_device,
            h.canary.as_str(),
            h.encoding,
            <&str>::from(h.layer),
            peer,
            port,
        );
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(h),
            None => groups.push((key, vec![h])),
        }
    }
    groups.sort_by_key(|((to_device, ..), v)| (*to_device, v.first().and_then(|h| h.frames.first().copied())));
    let mut out: Vec<String> = groups
        .iter()
        .take(NAMED)
        .map(|((to_device, name, enc, layer, peer, port), v)| {
            let mut frames: Vec<u64> = v.iter().flat_map(|h| h.frames.iter().copied()).collect();
            frames.truncate(8);
            let f: Vec<String> = frames.iter().map(u64::to_string).collect();
            format!(
                "{name} ({}) {} {peer}:{port} over {} in {} flow(s), {} encoding in the {}, frames: frame.number in {{{}}}",
                <&str>::from(v[0].class),
                if *to_device { "sent to the device by" } else { "sent by the device to" },
                <&str>::from(v[0].transport),
                v.len(),
                <&str>::from(*enc),
                layer.replace('_', " "),
                f.join(", ")
            )
        })
        .collect();
    if groups.len() > NAMED {
        out.push(format!("and {} more (canaries.json)", groups.len() - NAMED));
    }
    out.join("; ")
}

/// The control value to the device's discard port, one datagram per encoding: it crosses
/// the device's link whatever the device does with it.
fn send_control(device: std::net::IpAddr, value: &str) -> std::io::Result<()> {
    let any: std::net::IpAddr = if device.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    let sock = std::net::UdpSocket::bind((any, 0))?;
    let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
    let utf16: Vec<u8> = value.encode_utf16().flat_map(u16::to_le_bytes).collect();
    // misaligned by one byte inside the encoded text
    let b64 = crate::util::base64(format!("c{value}").as_bytes());
    for payload in [
        format!("certbench control {value}").into_bytes(),
        format!("certbench control {b64}").into_bytes(),
        format!("certbench control {hex}").into_bytes(),
        utf16,
    ] {
        sock.send_to(&payload, (device, 9))?;
    }
    Ok(())
}
