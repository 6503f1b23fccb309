//! UPD-11 (5.3-7): the update's own cryptography, judged on the maker's valid image
//! (`update::crypto`). Read from the image or verified with the declared key: PASS or FAIL
//! on what was seen. Only declared: REVIEW, the declaration shown, never PASS. Neither:
//! ERROR — the scheme is unknown, so the provision is not tested.

use super::prelude::*;
use crate::config::update::ImageName;
use crate::update::crypto::{self, Source};

impl Run<'_> {
    /// `update_crypto`: the valid image's signature scheme, judged.
    pub(in crate::engine) async fn update_crypto(&mut self) -> StepResult {
        let vars = self.rig.command_vars.clone();
        let u = self
            .rig
            .update
            .as_mut()
            .ok_or_else(|| Stop::Error("the device profile declares no update section".into()))?;
        let img = u.image(ImageName::Valid, &vars).map_err(Stop::Error)?;
        let (layout, declared) = (u.spec.layout.clone(), u.spec.signature.clone());
        let scheme = crypto::scheme(&img.data, &layout, declared.as_ref())
            .map_err(|e| Stop::Error(format!("the valid image's signature cannot be judged: {e}")))?;
        let Some(s) = scheme else {
            return Err(Stop::Error(
                "the valid image's format does not show how it is signed, and the profile does not declare it (`update.signature`): 5.3-7 is not tested"
                    .into(),
            ));
        };
        if let Some(weak) = s.weakness() {
            return Err(Stop::Fail {
                check: Some("UPD-11".into()),
                reason: format!(
                    "UPD-11: the update is signed with {weak} — {s} (valid image {}, sha256 {})",
                    img.path, img.sha256
                ),
            });
        }
        if s.source == Source::Declared {
            let why = format!(
                "the update signature is {s}: best practice if the declaration is true — a reviewer decides (declare `public_key` with an Ed25519 trailer, or use a format whose signature certbench reads)"
            );
            self.reviews.push(why.clone());
            return Ok(why);
        }
        Ok(format!(
            "the update is signed with {s}: best practice (valid image {}, sha256 {})",
            img.path, img.sha256
        ))
    }
}
