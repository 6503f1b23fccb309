//! VUL-01..03 (5.2-2, 5.2-3, issue 31): what the firmware ships, seen where certbench can
//! see it — the maker's SBOM, the maker's update image opened and read, the device's own
//! answer to `software.components_command` — against the lab's offline vulnerability data.
//! The SBOM is the maker's word: it counts as what ships (a component it lists is judged),
//! but a PASS needs components certbench saw itself, and data that names at least one of
//! them (the search's control).

use super::prelude::*;
use crate::config::scenario::VulnJudge;
use crate::config::update::ImageName;
use crate::vuln::judge::{self, Finding};
use crate::vuln::sbom::{self, Sbom};
use crate::vuln::{Component, ComponentSource, image, strings};

/// What was gathered for one step.
struct Seen {
    sbom: Option<Sbom>,
    /// The maker's VEX statements (the SBOM's and the OpenVEX file's).
    vex: Vec<crate::vuln::sbom::Vex>,
    components: Vec<Component>,
    /// Parts of the image not examined (where, what).
    not_examined: Vec<(String, String)>,
    /// What was not looked at, and why (no image, no command).
    gaps: Vec<String>,
}

/// The lab's data, loaded once per process for the same files unchanged (the run's
/// vulnerability checks, and an inventory's boards, share it): keyed by each file's path,
/// size and modification time.
/// The lab's data, today, the date the data is as current as, and its files in words.
type CurrentData = (std::sync::Arc<crate::vuln::data::Data>, String, String, Vec<String>);

fn load_data(spec: &crate::model::software::VulnData) -> Result<std::sync::Arc<crate::vuln::data::Data>, Stop> {
    use std::sync::{Arc, Mutex, OnceLock};
    type Cache = Mutex<Vec<(String, Arc<crate::vuln::data::Data>)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let files: Vec<&std::path::PathBuf> = spec.osv.iter().chain(&spec.nvd).chain(&spec.kev).collect();
    let key = files
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).ok();
            format!(
                "{}|{}|{:?}",
                p.display(),
                m.as_ref().map_or(0, |m| m.len()),
                m.and_then(|m| m.modified().ok())
            )
        })
        .collect::<Vec<_>>()
        .join(";");
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    if let Some((_, d)) = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(k, _)| *k == key)
    {
        return Ok(d.clone());
    }
    let mut data = crate::vuln::data::Data::default();
    let label = |p: &std::path::Path| p.display().to_string();
    for p in &spec.osv {
        data.load_osv(p, &label(p), &[crate::util::folder_of(&spec.named_in)])
            .map_err(Stop::Error)?;
    }
    for (p, kev) in spec
        .nvd
        .iter()
        .map(|p| (p, false))
        .chain(spec.kev.iter().map(|p| (p, true)))
    {
        let text =
            crate::util::read_user_text(p, &[crate::util::folder_of(&spec.named_in)], crate::util::limits::IMAGE)
                .map_err(|e| Stop::Error(format!("{}: {e}", p.display())))?;
        if kev {
            data.load_kev(&label(p), &text)
        } else {
            data.load_nvd(&label(p), &text)
        }
        .map_err(Stop::Error)?;
    }
    let data = Arc::new(data);
    let mut c = cache.lock().unwrap_or_else(|p| p.into_inner());
    // at most a few data sets live at once (the last four)
    if c.len() >= 4 {
        c.remove(0);
    }
    c.push((key, data.clone()));
    Ok(data)
}

fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// `vulnerabilities.txt`: the data's date and files, the build date and window, and a row per
/// finding.
fn findings_text(found: &[Finding], as_of: &str, files: &[String], build: Option<&str>, window: i64) -> String {
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|f| {
            vec![
                f.component.clone(),
                f.version.clone(),
                f.ids.join(" "),
                f.severity.clone().unwrap_or_else(|| "-".into()),
                if f.kev { "yes" } else { "no" }.into(),
                f.fixed.clone().unwrap_or_else(|| "none known".into()),
                f.published.clone().unwrap_or_else(|| "-".into()),
                f.vex.as_ref().map_or(String::new(), |v| v.state.clone()),
                f.seen.join("; "),
            ]
        })
        .collect();
    let mut text = format!(
        "data as current as {as_of}: {}\nbuild date: {}; fix window: {window} days\n\n",
        files.join(", "),
        build.unwrap_or("unknown")
    );
    text.push_str(&table(
        &[
            "component",
            "version",
            "ids",
            "severity",
            "KEV",
            "fixed in",
            "published",
            "VEX",
            "seen in",
        ],
        &rows,
    ));
    if rows.is_empty() {
        text.push_str("(no component the data names is affected)\n");
    }
    text
}

/// The findings sorted: failing (KEV, or fixed upstream longer ago than the window), set
/// aside by the maker's VEX for a reviewer, and newer ones within the window.
fn sort_findings(
    found: &[Finding],
    judge: VulnJudge,
    overdue: impl Fn(&Finding) -> Option<i64>,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut failing = Vec::new();
    let mut reviewed = Vec::new();
    let mut newer = Vec::new();
    for f in found {
        let why = match (judge, f.kev, overdue(f)) {
            (VulnJudge::Known, true, _) => Some("known exploited (KEV)".to_string()),
            (VulnJudge::Known, false, Some(d)) => Some(format!("fixed upstream, published {d} days before the build")),
            (_, _, Some(d)) => Some(format!("fixed upstream, published {d} days ago and still shipped")),
            _ => None,
        };
        let Some(why) = why else {
            newer.push(f.describe());
            continue;
        };
        match &f.vex {
            Some(v) if v.state == "not_affected" => reviewed.push(format!(
                "{} — the maker's VEX says not affected: {}{}",
                f.describe(),
                v.justification.as_deref().unwrap_or("(no justification)"),
                v.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
            )),
            _ => failing.push(format!("{} [{why}]", f.describe())),
        }
    }
    (failing, reviewed, newer)
}

/// Rows as an aligned text table (the report shows it in full).
fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count().min(60));
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let c: String = c.chars().take(120).collect();
            s.push_str(&format!("{c:<width$}  ", width = w[i]));
        }
        format!("{}\n", s.trim_end())
    };
    let mut out = line(head.iter().map(|h| h.to_string()).collect());
    out.push_str(&line(w.iter().map(|n| "-".repeat(*n)).collect()));
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

fn list(items: &[String], max: usize) -> String {
    let mut s = items.iter().take(max).cloned().collect::<Vec<_>>().join("; ");
    if items.len() > max {
        s.push_str(&format!("; and {} more", items.len() - max));
    }
    s
}

impl Run<'_> {
    async fn gather(&mut self) -> Result<Seen, Stop> {
        let sw = self.rig.device.software.clone();
        let mut seen = Seen {
            sbom: None,
            vex: Vec::new(),
            components: Vec::new(),
            not_examined: Vec::new(),
            gaps: Vec::new(),
        };
        if let Some(p) = &sw.sbom {
            let roots = [crate::util::folder_of(&self.rig.device.profile_file)];
            let text = crate::util::read_user_text(p, &roots, crate::util::limits::IMAGE)
                .map_err(|e| Stop::Error(format!("the SBOM {} cannot be read: {e}", p.display())))?;
            let s =
                sbom::parse(&text).map_err(|e| Stop::Error(format!("the SBOM {} is not read: {e}", p.display())))?;
            seen.components.extend(s.components.iter().cloned());
            seen.vex.extend(s.vex.iter().cloned());
            seen.sbom = Some(s);
        }
        if let Some(p) = &sw.vex {
            let roots = [crate::util::folder_of(&self.rig.device.profile_file)];
            let text = crate::util::read_user_text(p, &roots, crate::util::limits::IMAGE)
                .map_err(|e| Stop::Error(format!("the VEX {} cannot be read: {e}", p.display())))?;
            let v =
                sbom::openvex(&text).map_err(|e| Stop::Error(format!("the VEX {} is not read: {e}", p.display())))?;
            seen.vex.extend(v);
        }
        let vars = self.rig.command_vars.clone();
        match self.rig.update.as_mut() {
            Some(u) => {
                let img = u.image(ImageName::Valid, &vars).map_err(Stop::Error)?;
                let scan = image::scan_bytes(&img.path, &img.data);
                seen.components.extend(scan.components);
                seen.not_examined.extend(scan.not_examined);
            }
            None => seen
                .gaps
                .push("the profile declares no update image: the firmware image is not examined".into()),
        }
        match sw.components_command {
            Some(cmd) => {
                self.ensure_shell().await?;
                let out = self
                    .shell_output(&cmd, Duration::from_secs(20), "the components command did not finish")
                    .await?;
                let seen_in = format!("the answer to `{cmd}` at the shell");
                seen.components
                    .extend(strings::components(out.as_bytes(), ComponentSource::Device, &seen_in));
            }
            None => seen
                .gaps
                .push("the profile declares no `software.components_command`: the running device is not asked".into()),
        }
        self.banners(&mut seen).await;
        let observed: Vec<Component> = seen
            .components
            .iter()
            .filter(|c| c.origin != ComponentSource::Sbom)
            .cloned()
            .collect();
        let stamp = format!("{}T00:00:00Z", today());
        let serial = format!("urn:certbench:{}", self.id);
        self.keep_evidence(
            "components.json",
            serde_json::to_string_pretty(&serde_json::json!({
                "components": seen.components,
                "not_examined": seen.not_examined,
                "not_looked_at": seen.gaps,
            }))
            .unwrap_or_default(),
        );
        let rows: Vec<Vec<String>> = seen
            .components
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    c.version.clone(),
                    c.origin.to_string().trim_start_matches("the ").to_string(),
                    c.seen_in.clone(),
                    c.purl.clone().or(c.cpe.clone()).unwrap_or_default(),
                ]
            })
            .collect();
        let mut text = table(&["component", "version", "source", "seen in", "purl / CPE"], &rows);
        for (w, x) in &seen.not_examined {
            text.push_str(&format!("not examined: {w}: {x}\n"));
        }
        for g in &seen.gaps {
            text.push_str(&format!("not looked at: {g}\n"));
        }
        self.keep_evidence("components.txt", text);
        self.keep_evidence(
            "sbom.cdx.json",
            serde_json::to_string_pretty(&sbom::observed_cdx(&observed, &serial, &stamp)).unwrap_or_default(),
        );
        Ok(seen)
    }

    /// What each declared service with a banner (SSH, FTP, telnet, HTTP) says it runs.
    /// A service that does not answer is noted, not an error: the other sources remain.
    async fn banners(&mut self, seen: &mut Seen) {
        use crate::config::services::ServiceKind;
        let services: Vec<_> = self
            .rig
            .device
            .services
            .iter()
            .filter(|s| !s.udp && s.kind != ServiceKind::NoLogin)
            .cloned()
            .collect();
        for s in services {
            let Ok(port) = self.service_port(&s) else { continue };
            let t = crate::remote::target::Target::new(s.clone(), port);
            // a device just powered on listens once it has booted: a refused connection is
            // tried again until its boot window has passed
            let boot = self.spec().map_or(Duration::from_secs(30), |c| c.boot_time);
            let deadline = Instant::now() + boot;
            let login = self.rig.current.clone().or(self.rig.device.factory.clone());
            let said = loop {
                let said = if s.kind == ServiceKind::Mqtt {
                    // a broker says what it is on $SYS, where it lets a client read it:
                    // anonymously, else as the account the run logs in with
                    let creds = login.as_ref().map(|l| (l.user.as_str(), l.password.as_str()));
                    crate::remote::mqtt::sys_version(&t, creds, Duration::from_secs(5)).await
                } else {
                    crate::remote::banner::banner(&t, Duration::from_secs(5)).await
                };
                match said {
                    Err(e) if e.contains("refused") && Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    other => break other,
                }
            };
            match said {
                Ok(text) => {
                    let seen_in = format!("the banner of {}", t.describe());
                    seen.components
                        .extend(strings::components(text.as_bytes(), ComponentSource::Device, &seen_in));
                }
                Err(e) => seen.gaps.push(format!("{}: no banner read ({e})", t.describe())),
            }
        }
    }

    /// `vulnerabilities`: one of VUL-01, VUL-02, VUL-03 decided on what was gathered.
    pub(in crate::engine) async fn vulnerabilities(&mut self, judge: VulnJudge) -> StepResult {
        let seen = self.gather().await?;
        let observed: Vec<&Component> = seen
            .components
            .iter()
            .filter(|c| c.origin != ComponentSource::Sbom)
            .collect();
        if observed.is_empty() {
            let mut why = vec!["no component was seen in the image or on the device".to_string()];
            why.extend(seen.gaps.iter().cloned());
            why.extend(seen.not_examined.iter().map(|(w, x)| format!("{w}: {x}")));
            return Err(Stop::Error(format!(
                "{}: the SBOM alone is the maker's word, not evidence",
                why.join("; ")
            )));
        }
        match judge {
            VulnJudge::Sbom => self.sbom_matches(&seen),
            VulnJudge::Updateable => self.updateable(&seen),
            VulnJudge::Known | VulnJudge::TimeToFix => self.known_vulnerabilities(&seen, judge),
        }
    }

    /// UPD-12 (5.3-1): what the device runs and the SBOM lists, against what the maker's
    /// update image carries. A component no update carries and no declaration explains fails.
    fn updateable(&mut self, seen: &Seen) -> StepResult {
        if self.rig.update.is_none() {
            return Err(Stop::Fail {
                check: Some("UPD-12".into()),
                reason: "UPD-12: the device has no update mechanism (no `update:` image): no component is updateable"
                    .into(),
            });
        }
        let carried: Vec<&Component> = seen
            .components
            .iter()
            .filter(|c| c.origin == ComponentSource::Image)
            .collect();
        if carried.is_empty() || !seen.not_examined.is_empty() {
            let parts: Vec<String> = seen.not_examined.iter().map(|(w, x)| format!("{w}: {x}")).collect();
            return Err(Stop::Error(format!(
                "what the update image carries is not known ({}): 5.3-1 is not tested",
                if parts.is_empty() {
                    "no component found in it".to_string()
                } else {
                    list(&parts, 5)
                }
            )));
        }
        let declared = &self.rig.device.software.not_updateable;
        let mut missing = Vec::new();
        let mut exempt = Vec::new();
        let mut said = std::collections::BTreeSet::new();
        for c in seen.components.iter().filter(|c| c.origin != ComponentSource::Image) {
            let names = crate::vuln::aliases(c);
            if carried
                .iter()
                .any(|i| crate::vuln::aliases(i).iter().any(|n| names.contains(n)))
            {
                continue;
            }
            if !said.insert(crate::vuln::key(&c.name)) {
                continue;
            }
            match declared.iter().find(|(n, _)| names.contains(&crate::vuln::key(n))) {
                Some((_, why)) => exempt.push(format!("{} (declared not updateable: {why})", c.name)),
                None => missing.push(format!("{} {} ({}: {})", c.name, c.version, c.origin, c.seen_in)),
            }
        }
        if !missing.is_empty() {
            return Err(Stop::Fail {
                check: Some("UPD-12".into()),
                reason: format!(
                    "UPD-12: the device runs software no update carries, and the maker declares it nowhere as not updateable: {}",
                    list(&missing, 8)
                ),
            });
        }
        let names: std::collections::BTreeSet<String> =
            carried.iter().map(|c| format!("{} {}", c.name, c.version)).collect();
        let mut msg = format!(
            "every component seen on the device and in the SBOM is carried by the update image: {}",
            names.into_iter().collect::<Vec<_>>().join(", ")
        );
        if !exempt.is_empty() {
            msg.push_str(&format!("; {}", exempt.join("; ")));
        }
        for g in &seen.gaps {
            msg.push_str(&format!("; {g}"));
        }
        Ok(msg)
    }

    fn sbom_matches(&mut self, seen: &Seen) -> StepResult {
        let Some(s) = &seen.sbom else {
            let why = "the maker supplies no SBOM (`software.sbom`)";
            return if self.rig.device.vuln_policy.sbom_required {
                Err(Stop::Fail {
                    check: Some("VUL-03".into()),
                    reason: format!("VUL-03: {why}, and the lab's policy requires one"),
                })
            } else {
                Err(Stop::Error(format!(
                    "{why}; the lab's policy makes it optional: VUL-03 is not tested"
                )))
            };
        };
        let diffs = judge::sbom_differences(&seen.components);
        if !diffs.is_empty() {
            return Err(Stop::Fail {
                check: Some("VUL-03".into()),
                reason: format!(
                    "VUL-03: the maker's SBOM does not describe the device ({}, {} components): {}",
                    s.format,
                    s.components.len(),
                    list(&diffs, 8)
                ),
            });
        }
        let observed: Vec<String> = seen
            .components
            .iter()
            .filter(|c| c.origin != ComponentSource::Sbom)
            .map(|c| format!("{} {} ({})", c.name, c.version, c.origin))
            .collect();
        let mut msg = format!(
            "the maker's SBOM ({}, {} components) lists each component seen, at the version seen: {}",
            s.format,
            s.components.len(),
            list(&observed, 12)
        );
        for g in seen.gaps.iter().chain(
            seen.not_examined
                .iter()
                .map(|(w, x)| format!("{w}: {x}"))
                .collect::<Vec<_>>()
                .iter(),
        ) {
            msg.push_str(&format!("; {g}"));
        }
        if !seen.not_examined.is_empty() {
            return Err(Stop::Error(format!(
                "{msg}: part of the image was not examined, so the SBOM was not compared with all of it"
            )));
        }
        Ok(msg)
    }

    /// The lab's vulnerability data, if it is current enough to decide: the data, today, the
    /// date it is as current as, and its files in words.
    fn current_data(&self, provision: &str) -> Result<CurrentData, Stop> {
        let Some(spec) = self.rig.device.vuln_data.clone() else {
            return Err(Stop::Error(format!(
                "the lab supplied no vulnerability data (`vulnerability_data:` in the lab file: OSV, NVD, KEV): {provision} is not tested"
            )));
        };
        let data = load_data(&spec)?;
        let today = today();
        let as_of = data
            .as_of()
            .map(str::to_string)
            .ok_or_else(|| Stop::Error("the lab's vulnerability data names no file".into()))?;
        let age = judge::days(&today)
            .zip(judge::days(&as_of))
            .map(|(a, b)| a - b)
            .unwrap_or(i64::MAX);
        let files: Vec<String> = data.files.iter().map(|(f, d)| format!("{f} of {d}")).collect();
        if age > i64::from(spec.max_age_days) {
            return Err(Stop::Error(format!(
                "the lab's vulnerability data is {age} days old (as current as {as_of}; the lab allows {} days): stale data decides nothing — {}",
                spec.max_age_days,
                files.join(", ")
            )));
        }
        Ok((data, today, as_of, files))
    }

    fn known_vulnerabilities(&mut self, seen: &Seen, judge: VulnJudge) -> StepResult {
        let (check, provision) = match judge {
            VulnJudge::Known => ("VUL-01", "5.2-3"),
            _ => ("VUL-02", "5.2-2"),
        };
        let (data, today, as_of, files) = self.current_data(provision)?;
        let found = judge::findings(&seen.components, &data, &seen.vex);
        let window = i64::from(self.rig.device.vuln_policy.fix_within_days);
        let sbom_date = seen
            .sbom
            .as_ref()
            .and_then(|s| s.created.as_deref())
            .and_then(|c| c.get(..10));
        let build = self
            .rig
            .device
            .software
            .build_date
            .clone()
            .or(sbom_date.map(str::to_string));
        let reference = match judge {
            VulnJudge::Known => build.clone(),
            _ => Some(today.clone()),
        };
        let overdue = |f: &Finding| -> Option<i64> {
            let (Some(_), Some(p), Some(r)) = (&f.fixed, &f.published, &reference) else {
                return None;
            };
            let d = judge::days(r)? - judge::days(p)?;
            (d > window).then_some(d)
        };
        self.keep_evidence(
            "vulnerabilities.json",
            serde_json::to_string_pretty(&serde_json::json!({
                "data": data.files, "as_of": as_of, "skipped": data.skipped,
                "build_date": build, "fix_within_days": window, "findings": found,
            }))
            .unwrap_or_default(),
        );
        let text = findings_text(&found, &as_of, &files, build.as_deref(), window);
        self.keep_evidence("vulnerabilities.txt", text);
        let (failing, reviewed, newer) = sort_findings(&found, judge, overdue);
        if !failing.is_empty() {
            return Err(Stop::Fail {
                check: Some(check.into()),
                reason: format!(
                    "{check}: the firmware ships {} known vulnerabilit{} ({}): {} (data as current as {as_of})",
                    failing.len(),
                    if failing.len() == 1 { "y" } else { "ies" },
                    match judge {
                        VulnJudge::Known =>
                            format!("in the KEV catalogue, or fixed more than {window} days before the build"),
                        _ => format!("fixed upstream more than {window} days ago"),
                    },
                    list(&failing, 6)
                ),
            });
        }
        if judge == VulnJudge::Known && build.is_none() {
            return Err(Stop::Error(
                "the firmware's build date is unknown (the SBOM has no creation date and `software.build_date` is not declared): 5.2-3's window cannot be measured"
                    .into(),
            ));
        }
        let observed: Vec<Component> = seen
            .components
            .iter()
            .filter(|c| c.origin != ComponentSource::Sbom)
            .cloned()
            .collect();
        let known = judge::known_products(&observed, &data);
        if known.is_empty() {
            let names: Vec<String> = observed.iter().map(|c| format!("{} {}", c.name, c.version)).collect();
            return Err(Stop::Error(format!(
                "the lab's data names none of the components seen ({}): it cannot clear this device — supply data for its ecosystems or products",
                list(&names, 10)
            )));
        }
        if !seen.not_examined.is_empty() {
            let parts: Vec<String> = seen.not_examined.iter().map(|(w, x)| format!("{w}: {x}")).collect();
            return Err(Stop::Error(format!(
                "no known vulnerability in what was examined, but part of the image was not: {}",
                list(&parts, 5)
            )));
        }
        let mut msg = format!(
            "no shipped component has a vulnerability {} (data as current as {as_of}: {}; {} components seen by certbench, {} named by the data: {})",
            match judge {
                VulnJudge::Known => format!(
                    "in the KEV catalogue or fixed more than {window} days before the build of {}",
                    build.unwrap_or_default()
                ),
                _ => format!("fixed upstream more than {window} days ago"),
            },
            files.join(", "),
            observed.len(),
            known.len(),
            known.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        if !newer.is_empty() {
            msg.push_str(&format!("; newer, within the window: {}", list(&newer, 5)));
        }
        for g in &seen.gaps {
            msg.push_str(&format!("; {g}"));
        }
        if !reviewed.is_empty() {
            let why = format!("{msg}; for a reviewer: {}", reviewed.join("; "));
            self.reviews.push(why.clone());
            return Ok(why);
        }
        Ok(msg)
    }
}
