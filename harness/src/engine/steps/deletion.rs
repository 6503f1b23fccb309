//! DEL-01 and DEL-02 (5.11-1, 5.11-4): the user's factory reset erases the data the owner
//! gave the device, and says so. The values `plant` set are searched for at the shell in
//! the places the maker says the device keeps user data — first before the reset, where
//! each must be found (the positive control: the search sees the data), then after the
//! reset the user types and the device's setup again. A value still there fails DEL-01,
//! naming the files, and so does one the device still sends after the reset, in what the
//! bench can read of its messages (a device that re-sends the old token has not forgotten
//! it); no confirmation fails DEL-02. A value the search did not find before
//! the reset cannot show it was erased: ERROR for it, never PASS.

use regex::bytes::Regex;

use super::prelude::*;
use crate::bench::sessions::Session;
use crate::gateway::canary::Canary;
use crate::model::privacy::Deletion;

/// Files named per value in a verdict (the count says how many in all).
const NAMED: usize = 10;

/// How long one search may take.
const SEARCH_TIME: Duration = Duration::from_secs(60);

/// After the reset command, a moment for messages already under way (they may carry the
/// old values); what the device sends after it is watched for at least SENT_WATCH.
const SENT_GRACE: Duration = Duration::from_secs(2);
const SENT_WATCH: Duration = Duration::from_secs(5);

/// The files a search printed: lines under a declared data path, not the echoed command.
fn hits(out: &str, d: &Deletion, value: &str) -> Vec<String> {
    let mut v: Vec<String> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.contains(value) && d.data_paths.iter().any(|p| l.starts_with(p.as_str())))
        .map(|l| crate::remote::target::printable(l, 200))
        .collect();
    v.dedup();
    v
}

fn named(files: &[String]) -> String {
    let mut s = files.iter().take(NAMED).cloned().collect::<Vec<_>>().join(", ");
    if files.len() > NAMED {
        s.push_str(&format!(" and {} more", files.len() - NAMED));
    }
    s
}

impl Run<'_> {
    /// `deletion`: search, reset as the user, set up again, search again.
    pub(in crate::engine) async fn deletion(&mut self) -> StepResult {
        let Some(d) = self.rig.device.deletion.clone() else {
            return Err(Stop::Fail {
                check: Some("DEL-01".into()),
                reason: "DEL-01: the maker declares no way for a user to erase their data from the device (profile `privacy.deletion`): the founding letter asks for one".into(),
            });
        };
        let planted = self.rig.planted.clone();
        if planted.is_empty() {
            return Err(Stop::Error(
                "nothing was planted (no `personal_data` declared, or no `plant` step before): there is no data whose erasure could be shown".into(),
            ));
        }
        self.ensure_shell().await?;
        let mut before = Vec::new();
        for p in &planted {
            before.push(self.search(&d, p, "before the reset").await?);
        }
        let evidence: Vec<String> = planted
            .iter()
            .zip(&before)
            .map(|(p, f)| {
                format!(
                    "{}: {}",
                    p.name,
                    if f.is_empty() { "not found".into() } else { named(f) }
                )
            })
            .collect();

        let (said, sent_from) = self.typed_reset(&d).await?;
        // after a reset the device knows only its factory login again
        self.rig.current = self.rig.device.factory.clone();
        self.rig.state.lost();
        let setup = self.ensure_shell().await?;
        let mut kept = self.still_kept(&d, &planted).await?;
        let sent = self.still_sent(&planted, sent_from).await;
        kept.extend(sent.1);
        self.keep_evidence(
            "deletion.txt",
            format!(
                "data paths: {}\nbefore the reset: {}\nreset: `{}`; confirmation {}\nwhat the device sent after the reset: {}\nafter the reset ({setup}): {}\n",
                d.data_paths.join(", "),
                evidence.join("; "),
                d.console,
                said.as_deref().map_or("not seen".into(), |s| format!("seen: {s}")),
                sent.0,
                if kept.is_empty() {
                    "none found".into()
                } else {
                    kept.join("; ")
                }
            ),
        );
        if !kept.is_empty() {
            return Err(Stop::Fail {
                check: Some("DEL-01".into()),
                reason: format!(
                    "DEL-01: after the user's factory reset (`{}`) the owner's data is still on the device: {} (searched in {})",
                    d.console,
                    kept.join("; "),
                    d.data_paths.join(", ")
                ),
            });
        }
        let unseen: Vec<&str> = planted
            .iter()
            .zip(&before)
            .filter(|(_, f)| f.is_empty())
            .map(|(p, _)| p.name.as_str())
            .collect();
        let Some(said) = said else {
            return Err(Stop::Fail {
                check: Some("DEL-02".into()),
                reason: format!(
                    "DEL-02: the device did not confirm the deletion: no line matching {:?} within {:?} of `{}`{}",
                    d.confirmed,
                    d.within,
                    d.console,
                    if unseen.is_empty() {
                        " (the data itself was erased)"
                    } else {
                        ""
                    }
                ),
            });
        };
        if !unseen.is_empty() {
            return Err(Stop::Error(format!(
                "not decided: {} not found in {} before the reset either, so its absence after it shows nothing (declare where the device keeps it in privacy.deletion.data_paths, or a search that finds it)",
                unseen.join(", "),
                d.data_paths.join(", ")
            )));
        }
        Ok(format!(
            "the user's factory reset erased the owner's data: {} found before it ({}), none after; the device said {said}",
            planted.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "),
            evidence.join("; ")
        ))
    }

    /// The user's reset, typed at the shell: what the device said to confirm it (None: no
    /// confirmation within the declared time), and from when what it sends counts.
    async fn typed_reset(&mut self, d: &Deletion) -> Result<(Option<String>, Instant), Stop> {
        let confirmed = Regex::new(&d.confirmed).map_err(|e| Stop::Error(e.to_string()))?;
        let c = self.console()?;
        self.rig.state.lost();
        self.send_line(&c, &d.console)?;
        let said = match c
            .expect(&[&confirmed], Instant::now() + d.within, None)
            .await
            .map_err(console_lost)?
        {
            Wait::Found(f) => Some(shown(&self.rig.redactor, f.text.trim())),
            Wait::Timeout => None,
        };
        // what the device sends from a moment after the reset (a message under way when it
        // was typed may still carry the old values)
        let sent_from = Instant::now() + SENT_GRACE;
        Ok((said, sent_from))
    }

    /// Each planted value still found on the device after the reset, in words.
    async fn still_kept(&mut self, d: &Deletion, planted: &[Canary]) -> Result<Vec<String>, Stop> {
        let mut kept = Vec::new();
        for p in planted {
            let after = self.search(d, p, "after the reset").await?;
            if !after.is_empty() {
                kept.push(format!(
                    "{} ({}) still in {}",
                    p.name,
                    <&str>::from(p.class),
                    named(&after)
                ));
            }
        }
        Ok(kept)
    }

    /// The planted values the device still sends after the reset, in what the bench can
    /// read (its broker's payloads, the HTTP it answers): a value still sent was not
    /// forgotten. Watched from `from` for SENT_WATCH; returns what was watched, in words,
    /// and a finding per value still sent.
    async fn still_sent(&self, planted: &[Canary], from: Instant) -> (String, Vec<String>) {
        if self.rig.net.is_none() && self.rig.gateway.intercept.is_none() {
            return (
                "not watched (the bench reads none of the device's messages in this run)".into(),
                Vec::new(),
            );
        }
        tokio::time::sleep((from + SENT_WATCH).saturating_duration_since(Instant::now())).await;
        let (readable, _, _) = self.readable_since(from);
        let found = planted
            .iter()
            .filter_map(|p| {
                let hits: Vec<_> = readable
                    .iter()
                    .filter(|r| super::recipients::found_in(&r.bytes, &p.value).is_some())
                    .collect();
                hits.first().map(|first| {
                    format!(
                        "{} ({}) still sent by the device after the reset, to {} in {} message(s) (the first: {})",
                        p.name,
                        <&str>::from(p.class),
                        first.host,
                        hits.len(),
                        first.via
                    )
                })
            })
            .collect();
        (
            format!(
                "{} readable messages from {:?} after the reset searched",
                readable.len(),
                SENT_GRACE
            ),
            found,
        )
    }

    /// `cloud_deletion` (DEL-03, 5.11-2): the user's reset also asks the cloud, which the
    /// bench plays, to delete the owner's account. The positive control comes first: the
    /// device must be seen publishing to the bench's broker before the reset (else its
    /// silence after it shows nothing: ERROR). Then the reset is typed as the user would,
    /// and a new session of the device must publish on the declared topic within the
    /// declared time; none fails DEL-03, naming what the device did publish.
    pub(in crate::engine) async fn cloud_deletion(&mut self) -> StepResult {
        let Some((d, cloud)) = self
            .rig
            .device
            .deletion
            .clone()
            .and_then(|d| d.cloud.clone().map(|c| (d, c)))
        else {
            return Err(Stop::Skip(
                "the maker declares no cloud account that the user's reset deletes (privacy.deletion.cloud)".into(),
            ));
        };
        let log = self.net()?.log.clone();
        let publishes = |s: &Session| s.published.values().sum::<u64>() + s.published_other_topics > 0;
        let control = log
            .wait_until(Instant::now() + cloud.within, |all| {
                all.iter().find(|s| publishes(s)).map(|s| s.describe())
            })
            .await
            .map_err(|_| {
                Stop::Error(format!(
                    "not decided: the device published nothing to the bench's broker within {:?} before the reset, so the bench is not seen playing its cloud and its silence after the reset would show nothing",
                    cloud.within
                ))
            })?;
        // sessions after this one began after the reset
        let mark = log.all().last().map_or(0, |s| s.id);
        self.ensure_shell().await?;
        let c = self.console()?;
        self.rig.state.lost();
        self.send_line(&c, &d.console)?;
        let t0 = Instant::now();
        // after a reset the device knows only its factory login again
        self.rig.current = self.rig.device.factory.clone();
        let asked = |s: &Session| {
            s.id > mark
                && s.published
                    .keys()
                    .any(|t| crate::bench::mqtt::topic_matches(&cloud.mqtt_topic, t))
        };
        match log
            .wait_until(t0 + cloud.within, |all| {
                all.iter().find(|s| asked(s)).map(|s| s.describe())
            })
            .await
        {
            Ok(seen) => Ok(format!(
                "DEL-03: {:.1}s after the user's reset (`{}`) the device asked its cloud to delete the account on {:?}: {seen} (its cloud traffic before the reset: {control})",
                t0.elapsed().as_secs_f64(),
                d.console,
                cloud.mqtt_topic
            )),
            Err(all) => {
                let mut topics: Vec<&str> = all
                    .iter()
                    .filter(|s| s.id > mark)
                    .flat_map(|s| s.published.keys().map(String::as_str))
                    .collect();
                topics.sort_unstable();
                topics.dedup();
                Err(Stop::Fail {
                    check: Some("DEL-03".into()),
                    reason: format!(
                        "DEL-03: within {:?} of the user's factory reset (`{}`) the device sent its cloud no request to delete the owner's account (no PUBLISH on {:?}); after the reset it published {} (before it: {control})",
                        cloud.within,
                        d.console,
                        cloud.mqtt_topic,
                        if topics.is_empty() {
                            "nothing".to_string()
                        } else {
                            format!("on {}", topics.join(", "))
                        }
                    ),
                })
            }
        }
    }

    /// The files under the data paths that hold `p`'s value (at the shell).
    async fn search(&mut self, d: &Deletion, p: &Canary, when: &str) -> Result<Vec<String>, Stop> {
        let out = self
            .shell_output(
                &d.search_for(&p.value),
                SEARCH_TIME,
                &format!("the data paths were not searched {when}"),
            )
            .await?;
        Ok(hits(&out, d, &p.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_are_files_under_the_data_paths_never_the_echo() {
        let d = Deletion {
            console: "factory-reset".into(),
            confirmed: "done".into(),
            within: Duration::from_secs(5),
            data_paths: vec!["/data".into()],
            search: crate::model::privacy::DEFAULT_SEARCH.into(),
            cloud: None,
        };
        let out = "grep -rlF -e 'x@example.com' '/data'\r\n/data/settings\r\n/data/settings\r\n/etc/other\r\ngrep: /data/locked: Permission denied\r\n";
        assert_eq!(hits(out, &d, "x@example.com"), vec!["/data/settings".to_string()]);
        assert!(hits("grep -rlF -e 'v' '/data'\r\n", &d, "v").is_empty());
    }
}
