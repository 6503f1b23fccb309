//! `documents:` (the maker's security.txt, policies, support period, reviewers' sign-offs)
//! and `ics.not_applicable` (provisions the maker declares not applicable, with reasons).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::profile::RawProfile;
use super::resolver::Resolver;
use super::yaml::{self, InputError, Loc};

/// The maker's documents, resolved to absolute paths.
#[derive(Debug, Clone, Default)]
pub struct Documents {
    pub security_txt: Option<PathBuf>,
    pub disclosure_policy: Option<PathBuf>,
    pub support_period: Option<PathBuf>,
    pub privacy_policy: Option<PathBuf>,
    pub signoff: Option<PathBuf>,
}

/// Whether `p` (relative to the profile's folder `base`) stays inside that folder, also
/// once symbolic links are followed. A file that does not exist yet is left to
/// `config::device::named_files` (validate) and to the read at run, which pass the same
/// gate ([`crate::util::check_user_file`]).
fn confined(base: &Path, p: &Path) -> Result<(), String> {
    use std::path::Component;
    if p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err("outside the profile's folder (absolute or `..`)".into());
    }
    let full = base.join(p);
    if full.exists() {
        crate::util::check_user_file(&full, &[base], crate::util::limits::TEXT)?;
    }
    Ok(())
}

/// The documents, each confined to the profile's folder: they are quoted in reports, so a
/// profile cannot make a lab's private files (a signing key) appear in the evidence.
pub fn documents(rx: &Resolver, raw: &RawProfile) -> Option<Documents> {
    let d = raw.documents.as_ref()?;
    for (field, p) in d.declared() {
        if let Err(why) = confined(rx.base, &p.value) {
            rx.error(
                InputError::new(
                    rx.file,
                    Some(p.pos),
                    format!("documents.{field}"),
                    format!("{}: {why}", p.value.display()),
                )
                .with_hint(
                    "put the maker's documents in the profile's folder (or below it) and name them relative to it",
                ),
            );
        }
    }
    let abs = |p: &Option<Loc<PathBuf>>| p.as_ref().map(|p| rx.in_profile(&p.value));
    Some(Documents {
        security_txt: abs(&d.security_txt),
        disclosure_policy: abs(&d.disclosure_policy),
        support_period: abs(&d.support_period),
        privacy_policy: abs(&d.privacy_policy),
        signoff: abs(&d.signoff),
    })
}

/// The reviewers' sign-offs of the documentary checks; a PASS must name the exact document
/// it approves, or any later edit passes.
pub fn signoffs(rx: &Resolver, documents: Option<&Documents>) -> Vec<super::signoff::SignOff> {
    let Some(f) = documents.and_then(|d| d.signoff.clone()) else {
        return Vec::new();
    };
    match yaml::load::<super::signoff::SignOffFile>(&f) {
        Ok(s) => {
            for (i, so) in s.signoffs.iter().enumerate() {
                let hex = so
                    .document_sha256
                    .as_deref()
                    .is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()));
                if so.decision == super::signoff::Decision::Pass && !hex {
                    rx.error(
                        InputError::new(
                            &f,
                            None,
                            format!("signoffs[{i}].document_sha256"),
                            format!("the PASS sign-off of {} names no document SHA-256", so.check),
                        )
                        .with_hint("a PASS counts only for the exact document reviewed: add document_sha256 (sha256sum of the file)"),
                    );
                }
            }
            s.signoffs
        }
        Err(e) => {
            rx.error(e);
            Vec::new()
        }
    }
}

/// `ics.not_applicable`: each provision must be in the requirement catalogue.
pub fn not_applicable(rx: &Resolver, raw: &RawProfile) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (p, reason) in raw.ics.as_ref().map(|i| i.not_applicable.clone()).unwrap_or_default() {
        if crate::model::catalogue::Catalogue::get().provision(&p.value).is_none() {
            rx.error(
                InputError::new(
                    rx.file,
                    Some(p.pos),
                    "ics.not_applicable",
                    format!("provision {:?} is not in the requirement catalogue", p.value),
                )
                .with_hint("see `certbench coverage`"),
            );
        }
        out.insert(p.value, reason);
    }
    out
}
