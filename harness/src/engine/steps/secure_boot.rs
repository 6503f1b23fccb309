//! UPD-10 (5.7-1): secure boot. An image is written where the device boots from through the
//! maker's raw write path (`secure_boot.tamper`: a console command, or the debug port at a
//! flash address, read back), bypassing the update agent, and the device is power-cycled. The tampered image is the maker's valid image with one byte flipped
//! inside its signed region; it claims the valid image's (newer) version, so a device that
//! runs it shows that version. The device must refuse it: come up on the firmware it ran
//! before (`on_failure: fallback`) or stop safely saying so (`halt`). Positive control in
//! the same run: the same path writing the valid image boots it (the version changes),
//! else the path does not reach the boot slot and the refusal proves nothing (ERROR). The
//! baseline firmware is put back afterwards (`update.restore`).

use regex::bytes::Regex;

use super::prelude::*;
use crate::config::update::{ImageName, Layout, Variant};
use crate::model::secure_boot::{OnFailure, SecureBoot, Tamper};
use crate::update::bench::Image;

/// The tampered image for a layout: one byte flipped inside what the signature covers.
fn tampered(layout: &Layout) -> ImageName {
    match layout {
        Layout::SignedTrailer { .. } => ImageName::Variant(Variant::FlipPayload),
        Layout::Generic => ImageName::Variant(Variant::FlipMiddle),
        Layout::Swu { .. } | Layout::Ranges { .. } => match layout.derived().into_iter().next() {
            Some(d) => ImageName::Supplied(Box::new(crate::config::update::HostileImage {
                label: d.label.clone(),
                check: "UPD-10".into(),
                describe: d.describe.clone(),
                version: None,
                source: crate::config::update::HostileSource::Derived(d),
            })),
            None => ImageName::Variant(Variant::FlipMiddle),
        },
    }
}

impl Run<'_> {
    /// `secure_boot`: the tampered image refused, the valid one booted, the baseline back.
    pub(in crate::engine) async fn secure_boot(&mut self) -> StepResult {
        let Some(sb) = self.rig.device.secure_boot.clone() else {
            return Err(Stop::Skip(
                "the maker declares no way to write an image where the device boots from (`secure_boot.tamper`): 5.7-1 is not tested".into(),
            ));
        };
        if self.rig.power.is_none() {
            return Err(Stop::Error(
                "secure boot is judged across a power cycle: the device needs power control".into(),
            ));
        }
        let before = self.at_baseline().await?;
        let vars = self.rig.command_vars.clone();
        let (valid, bad) = {
            let u = self.updates()?;
            let layout = u.spec.layout.clone();
            let valid = u.image(ImageName::Valid, &vars).map_err(Stop::Error)?;
            let bad = u.image(tampered(&layout), &vars).map_err(Stop::Error)?;
            (valid, bad)
        };
        let what = bad.altered.clone().unwrap_or_else(|| bad.name.describe());
        // 1. the tampered image
        self.write_boot_slot(&sb, &bad).await?;
        let (after, refused) = self.boot_after_write(&sb, "tampered image in the boot slot").await?;
        let verdict = match (&after, sb.on_failure) {
            (Ok(v), _) if *v == before => Ok(format!(
                "the tampered image ({what}) was refused: it still runs {before}{}",
                refused
                    .as_deref()
                    .map(|r| format!(", saying {r:?}"))
                    .unwrap_or_default()
            )),
            (Ok(v), _) => Err(format!(
                "the device booted the tampered image ({what}, {}): it runs {v} (was {before}); secure boot did not verify it",
                self.write_path(&sb)
            )),
            (Err(_), OnFailure::Halt) if refused.is_some() => Ok(format!(
                "the tampered image ({what}) was refused and the device halted, as its maker declares, saying {:?}",
                refused.clone().unwrap_or_default()
            )),
            (Err(why), OnFailure::Halt) => Err(format!(
                "after the tampered image ({what}) the device does not come up ({why}) and did not say it refused it (secure_boot.refused): a halt that cannot be told from running a broken image"
            )),
            (Err(why), OnFailure::Fallback) => Err(format!(
                "after the tampered image ({what}) the device does not come up ({why}); its maker declares it falls back to the previous firmware"
            )),
        };
        // back to the baseline whatever happened, then the positive control
        if after.as_ref().ok() != Some(&before) {
            let now = after.clone().unwrap_or_else(|e| format!("no readable version ({e})"));
            self.restore(&before, &now).await?;
        }
        self.write_boot_slot(&sb, &valid).await?;
        let (control, _) = self.boot_after_write(&sb, "valid image in the boot slot").await?;
        let restored = match &control {
            Ok(v) if *v == valid.version => self
                .restore(&before, v)
                .await
                .map(|_| format!("; {before} put back (update.restore)")),
            _ => Ok(String::new()),
        };
        match control {
            Ok(v) if v == valid.version => {}
            other => {
                let seen = other.unwrap_or_else(|e| format!("no readable version ({e})"));
                return Err(Stop::Error(format!(
                    "positive control failed: the same path writing the maker's valid image {} did not boot it (the device runs {seen}): the write does not reach what the device boots, so the tampered image's outcome proves nothing",
                    valid.version
                )));
            }
        }
        let restored = restored?;
        match verdict {
            Ok(ok) => Ok(format!(
                "{ok}; the valid image written the same way boots ({}){restored}",
                valid.version
            )),
            Err(why) => Err(Stop::Fail {
                check: Some("UPD-10".into()),
                reason: format!(
                    "UPD-10: {why}; the valid image written the same way boots ({}){restored}",
                    valid.version
                ),
            }),
        }
    }

    /// How the image was written, for the evidence.
    fn write_path(&self, sb: &SecureBoot) -> String {
        match &sb.tamper {
            Tamper::Console { command, .. } => format!(
                "written with `{}`",
                self.render(command, Quote::Raw).unwrap_or_default()
            ),
            Tamper::Debug { address } => format!("written through the debug port at {address:#x}"),
        }
    }

    /// Writes `img` where the device boots from, by the maker's path.
    async fn write_boot_slot(&mut self, sb: &SecureBoot, img: &Image) -> Result<(), Stop> {
        match &sb.tamper {
            Tamper::Console { command, written } => self.write_by_console(command, written.as_deref(), img).await,
            Tamper::Debug { address } => self.write_by_debug_port(*address, img).await,
        }
    }

    /// Through the debug port: attach, halt, write, read it all back, detach (the part runs
    /// on; the power cycle that follows boots what is in flash).
    async fn write_by_debug_port(&mut self, address: u64, img: &Image) -> Result<(), Stop> {
        use crate::debug::DebugError;
        let (_, mut port) = self.debug_port()?;
        let c = self.console()?;
        c.marker(format!(
            "writing image {} ({} bytes) at {address:#x} through the debug port",
            img.name.as_str(),
            img.data.len()
        ));
        self.rig.state.lost();
        let data = img.data.clone();
        let done = tokio::task::spawn_blocking(move || -> Result<bool, DebugError> {
            port.attach()?;
            port.halt()?;
            port.write(address, &data)?;
            let mut back = vec![0u8; data.len()];
            for (i, chunk) in back.chunks_mut(512).enumerate() {
                port.read(address + (i * 512) as u64, chunk)?;
            }
            port.resume()?;
            Ok(back[..] == data[..])
        })
        .await
        .map_err(|e| Stop::Error(format!("the debug-port write stopped: {e}")))?;
        match done {
            Ok(true) => Ok(()),
            Ok(false) => Err(Stop::Error(format!(
                "the debug port accepted the write of image {} at {address:#x} but reading it back gives other bytes: the image is not where the device boots from",
                img.name.as_str()
            ))),
            Err(DebugError::Refused(why)) => Err(Stop::Skip(format!(
                "the debug port refused to write the boot slot ({why}): with the port locked and no other raw write path declared, 5.7-1 is not tested"
            ))),
            Err(e) => Err(Stop::Error(format!(
                "writing the boot slot through the debug port: {e}"
            ))),
        }
    }

    /// Serves `img` and types the maker's raw write command; waits until the bench served
    /// all of it and the device said it wrote it.
    async fn write_by_console(&mut self, command: &Template, written: Option<&str>, img: &Image) -> Result<(), Stop> {
        self.ensure_shell().await?;
        let vars = self.rig.command_vars.clone();
        let (ivars, mark) = {
            let u = self.updates()?;
            u.routes
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(img.path.clone(), img.data.clone());
            (u.image_vars(img, &vars), u.log.len())
        };
        let line = command.render(&ivars, Quote::Raw).map_err(Stop::Error)?;
        let c = self.console()?;
        c.marker(format!("writing image {} to the boot slot", img.name.as_str()));
        self.rig.state.lost();
        self.send_line(&c, &line)?;
        self.wait_fetched(img, mark, Duration::from_secs(60)).await?;
        let shell = self.spec()?.prompts.shell.clone();
        let written = match written {
            Some(w) => Some(Regex::new(w).map_err(|e| Stop::Error(e.to_string()))?),
            None => None,
        };
        let pats: Vec<&Regex> = written.iter().chain(std::iter::once(&shell)).collect();
        match c
            .expect(&pats, Instant::now() + Duration::from_secs(60), None)
            .await
            .map_err(console_lost)?
        {
            Wait::Found(f) if written.is_none() || f.index == 0 => {
                if written.is_some() {
                    let _ = c.expect(&[&shell], Instant::now() + Duration::from_secs(5), None).await;
                }
                self.rig.state.saw_shell();
                Ok(())
            }
            Wait::Found(f) => Err(Stop::Error(format!(
                "`{line}` did not say it wrote the image (secure_boot.tamper.written): {}",
                shown(&self.rig.redactor, f.before.trim())
            ))),
            Wait::Timeout => Err(Stop::Error(format!("`{line}` did not finish within 60s"))),
        }
    }

    /// Power-cycles and reads the version the device comes up with, and whether the boot
    /// log said it refused an image (`secure_boot.refused`).
    async fn boot_after_write(
        &mut self,
        sb: &SecureBoot,
        why: &str,
    ) -> Result<(Result<String, String>, Option<String>), Stop> {
        let c = self.console()?;
        let mark = c.with_transcript(|t| t.mark());
        self.cycle(why).await?;
        let version = self.version_after_boot().await;
        let refused = match &sb.refused {
            Some(r) => {
                let re = Regex::new(r).map_err(|e| Stop::Error(e.to_string()))?;
                let log = c.with_transcript(|t| t.render_raw(mark, &self.rig.redactor));
                re.find(&log)
                    .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
            }
            None => None,
        };
        Ok((version, refused))
    }
}
