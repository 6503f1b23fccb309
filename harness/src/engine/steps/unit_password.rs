//! PWD-05 (EN 303 645 5.1-1, 5.1-2): the factory password is this unit's own. Three
//! observations, on the unit itself: its label password follows from nothing the unit shows
//! (the MACs of the frames it sent on the bench, its serial, vendor and model) and is in no
//! wordlist; every other unit's label password is refused at its login; its own is taken
//! (the positive control: without it a refusal means nothing).

use super::prelude::*;
use crate::model::unit::{Shown, derived, format_mac};

/// Debian's cracklib word list (package cracklib-runtime), read when present.
const CRACKLIB: &str = "/usr/share/dict/cracklib-small";

impl Run<'_> {
    pub(in crate::engine) async fn unique_password(&mut self) -> StepResult {
        let device = &self.rig.device;
        let Some(factory) = device.factory.clone() else {
            return Err(Stop::Skip("the profile declares no factory credentials".into()));
        };
        let this = device.unit.clone();
        let others: Vec<_> = device
            .units
            .iter()
            .filter(|u| this.as_ref().is_none_or(|t| t.name != u.name))
            .cloned()
            .collect();
        for u in &others {
            if let Some(p) = &u.password {
                self.rig.redactor.add(&format!("unit.{}.password", u.name), p);
            }
        }
        let mut seen: Vec<String> = Vec::new();
        // 1. what the unit shows: its hardware addresses on the bench, its label
        let shown = self.shown_by_unit(this.as_ref()).await;
        seen.push(format!(
            "shown by the unit: MAC {}; serial {}; names {}",
            if shown.macs.is_empty() {
                "none seen (no capture of its link)".to_string()
            } else {
                shown.macs.iter().map(format_mac).collect::<Vec<_>>().join(", ")
            },
            shown.serials.first().map_or("not given", String::as_str),
            shown.names.join(", ")
        ));
        if let Some(scheme) = derived(&factory.password, &shown) {
            self.keep_evidence("unit-password.txt", seen.join("\n"));
            return Err(Stop::Fail {
                check: Some("PWD-05".into()),
                reason: format!("the factory password follows from what the unit shows: it is the {scheme}"),
            });
        }
        // 2. the wordlists
        let lists = wordlists(&factory.password, &device.default_credentials);
        seen.push(format!(
            "wordlists: {}",
            lists
                .iter()
                .map(|(n, len, _)| format!("{n} ({len} entries)"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if let Some((name, _, _)) = lists.iter().find(|l| l.2) {
            self.keep_evidence("unit-password.txt", seen.join("\n"));
            return Err(Stop::Fail {
                check: Some("PWD-05".into()),
                reason: format!("the factory password is in {name}"),
            });
        }
        // 3. every other unit's label refused here
        let within = self.spec()?.boot_time + Duration::from_secs(30);
        let mut tried = 0;
        for u in &others {
            let Some(p) = &u.password else {
                seen.push(format!("unit {}: the lab gives no label password", u.label()));
                continue;
            };
            let outcome = self.login(&factory.user, p, within).await?;
            tried += 1;
            let same = *p == factory.password;
            match outcome {
                LoginOutcome::Rejected => seen.push(format!("unit {}'s label password: refused", u.label())),
                _ => {
                    seen.push(format!("unit {}'s label password: taken", u.label()));
                    self.keep_evidence("unit-password.txt", seen.join("\n"));
                    self.leave_dialog().await?;
                    return Err(Stop::Fail {
                        check: Some("PWD-05".into()),
                        reason: format!(
                            "unit {}'s label password opens this unit{}",
                            u.label(),
                            if same {
                                " (both labels carry the same password)"
                            } else {
                                ""
                            }
                        ),
                    });
                }
            }
        }
        // 4. the positive control: its own label is taken
        let outcome = self.login(&factory.user, &factory.password, within).await?;
        if outcome == LoginOutcome::Rejected {
            self.keep_evidence("unit-password.txt", seen.join("\n"));
            return Err(Stop::Error(
                "not decided: this unit's own label password was refused, so the other units' refusals mean nothing (is the label's password the unit's?)".into(),
            ));
        }
        seen.push("this unit's own label password: taken (the positive control)".into());
        self.keep_evidence("unit-password.txt", seen.join("\n"));
        self.leave_dialog().await?;
        if tried == 0 {
            return Err(Stop::Skip(format!(
                "uniqueness across units is not tested: {} (the lab's `units:` lists each unit's label); the password follows from nothing the unit shows and is in no wordlist",
                if others.is_empty() {
                    "one unit of the model only"
                } else {
                    "no other unit's label password is given"
                }
            )));
        }
        Ok(format!(
            "the label passwords of {tried} other unit(s) are refused and this unit's own is taken; it follows from nothing the unit shows and is in no wordlist"
        ))
    }

    /// What the unit shows: the hardware addresses seen on its link (waiting a little for a
    /// unit just powered on), its label's MAC, its serial and names.
    async fn shown_by_unit(&self, this: Option<&crate::model::unit::Unit>) -> Shown {
        let device = &self.rig.device;
        let mut shown = Shown::default();
        if let Some(cap) = &self.rig.gateway.capture {
            // a unit just powered on may not have sent a frame yet
            let until = Instant::now() + Duration::from_secs(10);
            loop {
                shown.macs = cap.snapshot().0.device_macs.into_iter().collect();
                if !shown.macs.is_empty() || Instant::now() >= until {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        if let Some(m) = this.and_then(|u| u.mac)
            && !shown.macs.contains(&m)
        {
            shown.macs.push(m);
        }
        shown.serials.extend(device.identity.serial.clone());
        shown.names = [&device.identity.vendor, &device.identity.model]
            .into_iter()
            .filter(|n| !n.trim().is_empty())
            .cloned()
            .collect();
        shown
    }

    /// A login that opened a password change or a shell is left by a power cycle: the unit
    /// stays as the factory left it.
    async fn leave_dialog(&mut self) -> Result<(), Stop> {
        if self.rig.power.is_some() {
            self.power_step(&PowerAction::Cycle, None).await.map(|_| ())
        } else {
            Ok(())
        }
    }
}

/// The wordlists the factory password is looked up in: name, entries, whether it is there.
fn wordlists(password: &str, lab: &[(String, String)]) -> Vec<(String, usize, bool)> {
    let mut lists: Vec<(String, usize, bool)> = Vec::new();
    let mirai = crate::remote::defaults::MIRAI.iter().any(|(_, p)| *p == password);
    lists.push(("the Mirai list".into(), crate::remote::defaults::MIRAI.len(), mirai));
    let in_lab = lab.iter().any(|(_, p)| *p == password);
    lists.push(("the lab's default credentials".into(), lab.len(), in_lab));
    if let Ok(words) = std::fs::read_to_string(CRACKLIB) {
        let hit = words.lines().any(|w| w == password);
        lists.push((format!("{CRACKLIB} (Debian's cracklib)"), words.lines().count(), hit));
    }
    lists
}
