//! The profile's `update:` section: how the device is offered an update, the maker's images and
//! the layout of their format; the names of the images a run can offer and the variants made
//! from the valid one. The `update` module serves and corrupts them; this one only says what
//! the profile asks for.

use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{RawCommand, RawTrust};
use super::yaml::{self, InputError, Loc};
use crate::model::duration::Dur;
use crate::model::template::Template;

/// The profile's `update:` section, as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUpdate {
    /// The update host name the device uses (the lab's DNS points it at the bench);
    /// HTTPS certificates are issued for it. Needed with a delivery path.
    #[serde(default)]
    pub host: Option<Loc<String>>,
    /// Which CA the device trusts for HTTPS updates (as for `network.mqtt.trust`).
    #[serde(default)]
    pub trust: Option<RawTrust>,
    /// The maker's images; paths may use `{{workdir}}` etc. (e.g. made by a setup command).
    pub images: RawImages,
    /// Where header, payload and signature are in an image (default: generic, opaque bytes).
    #[serde(default)]
    pub layout: Option<Layout>,
    /// How the images are signed (UPD-11), where the image does not show it: a `.swu`'s
    /// CMS signature is read from the image; an Ed25519 trailer is verified with
    /// `public_key`; anything else is shown as declared, for a reviewer.
    #[serde(default)]
    pub signature: Option<Loc<crate::model::signature::Declared>>,
    /// How the device is offered an update. None declared: the device has no update path
    /// the bench can drive (e.g. only the maker's programmer through its debug port). The
    /// update checks then FAIL for want of an update mechanism (minimum requirement 2),
    /// while the images still serve secure boot (`secure_boot`) and the image checks.
    #[serde(default)]
    pub delivery: RawDelivery,
    /// Path the bench serves images at; `{{image}}` is the image's name (default
    /// `/images/{{image}}.bin`).
    #[serde(default)]
    pub image_path: Option<Loc<String>>,
    /// Serve over `http` (default) or `https` (bench PKI).
    #[serde(default)]
    pub scheme: Option<Scheme>,
    /// Console command that prints the running firmware version.
    pub version_command: String,
    /// Regex with a `(?P<version>...)` group that reads the version from its output.
    pub version_pattern: Loc<String>,
    /// Console output by which the device reports refusing an image (optional: extra
    /// evidence; a refusal is decided by the device still running its old version after
    /// it fetched the whole image, with or without a message).
    #[serde(default)]
    pub rejected: Option<Loc<String>>,
    /// Console output when the device starts writing an image (optional). Only times the
    /// power cuts of update-power-loss: a client may print it before it verifies, so it
    /// never counts as accepting an image.
    #[serde(default)]
    pub installing: Option<Loc<String>>,
    /// Console output when an image is installed (optional): counts as accepting it.
    #[serde(default)]
    pub installed: Option<Loc<String>>,
    /// How long the device may take to decide about an image after fetching it (default 60s).
    #[serde(default)]
    pub decision_time: Option<Dur>,
    /// How long writing an image takes at most (default 30s): power cuts "during install"
    /// fall in this window after the fetch (or after `installing`).
    #[serde(default)]
    pub install_time: Option<Dur>,
    /// The maker's declared interval of automatic update checks (UPD-01 window, default 1h).
    #[serde(default)]
    pub check_interval: Option<Dur>,
    /// A command that puts the baseline firmware back (a lab reflash), so one installed
    /// variant does not spoil the next; without it the run stops testing variants once
    /// the device has left its baseline version.
    #[serde(default)]
    pub restore: Option<RawCommand>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    Http,
    Https,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawImages {
    /// A validly signed image newer than the firmware the board runs (the positive control).
    pub valid: RawImage,
    /// A validly signed older version (downgrade, UPD-07).
    #[serde(default)]
    pub older: Option<RawImage>,
    /// A validly signed image for another model (UPD-06).
    #[serde(default)]
    pub other_model: Option<RawImage>,
    /// Hostile images the maker or the lab supplies (e.g. signed with a foreign key, which
    /// certbench cannot make for a CMS-signed format): each is offered like a generated
    /// variant, one testcase each, under the same positive control.
    #[serde(default)]
    pub hostile: Vec<RawHostileImage>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHostileImage {
    pub file: Loc<String>,
    /// Names the testcase (`update-corrupt-image.<label>`): `hostile_` then lowercase
    /// letters, digits and `_`, e.g. hostile_foreign_key.
    pub label: Loc<String>,
    /// The check it evidences: UPD-03 (modified), UPD-04 (size), UPD-05 (signature),
    /// UPD-06 (model) or UPD-07 (downgrade).
    pub check: Loc<String>,
    /// What the image is, for the report (e.g. "signed with a foreign key").
    #[serde(default)]
    pub describe: Option<String>,
    /// The version the image claims (offered in the manifest; default the valid image's).
    #[serde(default)]
    pub version: Option<String>,
    /// What the device must do with it: `rejected` (the only outcome a hostile image may have).
    #[serde(default)]
    pub expect: Option<HostileExpect>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HostileExpect {
    Rejected,
}

/// Where a hostile image beyond the generic variants comes from.
#[derive(Debug, Clone)]
pub enum HostileSource {
    /// A file the maker or lab supplies.
    File(Template),
    /// Made from the valid image by altering one protected region of its layout.
    Derived(Derived),
}

/// A hostile image beyond the generic variants: supplied, or derived from the layout.
#[derive(Debug, Clone)]
pub struct HostileImage {
    pub source: HostileSource,
    pub label: String,
    pub check: String,
    pub describe: String,
    pub version: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawImage {
    pub file: Loc<String>,
    pub version: String,
}

/// How the device can be offered an update: one or several paths. The update checks use
/// the first declared (pull, console, mqtt in that order); UPD-01 always judges the
/// device's own polling when `pull` is declared.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDelivery {
    /// The device polls its update host (played by the bench) for a manifest.
    #[serde(default)]
    pub pull: Option<RawPull>,
    /// The harness types a command at the device's shell, e.g. `update {{image.url}}`.
    #[serde(default)]
    pub console: Option<RawConsoleDelivery>,
    /// The harness publishes a message on the bench's MQTT broker (`network.mqtt`) on a
    /// topic the device subscribes to.
    #[serde(default)]
    pub mqtt: Option<RawMqttDelivery>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPull {
    /// Path of the manifest on the update host, e.g. /manifest.json.
    pub manifest_path: Loc<String>,
    /// The manifest's text; `{{image.version}}`, `{{image.url}}`, `{{image.path}}`,
    /// `{{image.size}}`, `{{image.sha256}}` describe the offered image.
    pub manifest: Loc<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConsoleDelivery {
    pub command: Loc<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMqttDelivery {
    pub topic: Loc<String>,
    pub message: Loc<String>,
}

/// A resolved update section.
#[derive(Debug, Clone)]
pub struct UpdateSpec {
    pub host: String,
    pub trust: crate::model::TrustSource,
    pub valid: ImageSpec,
    pub older: Option<ImageSpec>,
    pub other_model: Option<ImageSpec>,
    pub hostile: Vec<HostileImage>,
    pub layout: Layout,
    pub signature: Option<crate::model::signature::Declared>,
    /// The declared delivery paths, in the order pull, console, mqtt; empty when the device
    /// has none the bench can drive.
    pub deliveries: Vec<Delivery>,
    pub image_path: Template,
    pub scheme: Scheme,
    pub version_command: String,
    pub version_pattern: regex::bytes::Regex,
    pub rejected: Option<regex::bytes::Regex>,
    pub installing: Option<regex::bytes::Regex>,
    pub installed: Option<regex::bytes::Regex>,
    pub decision_time: Duration,
    pub install_time: Duration,
    pub check_interval: Duration,
    pub restore: Option<super::common::CommandSpec>,
}

#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub file: Template,
    pub version: String,
}

#[derive(Debug, Clone)]
pub enum Delivery {
    Pull { manifest_path: String, manifest: Template },
    Console { command: Template },
    Mqtt { topic: Template, message: Template },
}

/// Names an image template may use besides the command variables.
pub const IMAGE_VARS: &[&str] = &[
    "image",
    "image.version",
    "image.url",
    "image.path",
    "image.size",
    "image.sha256",
];

/// Names the update bench adds for `{{name}}` in commands.
pub const VARS: &[&str] = &[
    "update.url",
    "update.host",
    "update.ca_cert",
    "bench.update_http.port",
    "bench.update_https.port",
];

/// One image the run can offer: its name (`valid`, `older`, `other_model`, a variant, or
/// a hostile image the maker or lab supplied).
#[derive(Debug, Clone)]
pub enum ImageName {
    Valid,
    Older,
    OtherModel,
    Variant(Variant),
    Supplied(Box<HostileImage>),
}

impl ImageName {
    pub fn as_str(&self) -> String {
        match self {
            ImageName::Valid => "valid".into(),
            ImageName::Older => "older".into(),
            ImageName::OtherModel => "other_model".into(),
            ImageName::Supplied(h) => h.label.clone(),
            ImageName::Variant(v) => <&str>::from(v).to_string(),
        }
    }

    pub fn parse(s: &str, spec: &UpdateSpec) -> Option<Self> {
        if let Some(h) = spec.hostile.iter().find(|h| h.label == s) {
            return Some(ImageName::Supplied(Box::new(h.clone())));
        }
        Self::builtin(s)
    }

    /// The images certbench knows by name without a profile (not the supplied ones).
    pub fn builtin(s: &str) -> Option<Self> {
        match s {
            "valid" => Some(ImageName::Valid),
            "older" => Some(ImageName::Older),
            "other_model" => Some(ImageName::OtherModel),
            v => v.parse().ok().map(ImageName::Variant),
        }
    }

    /// The check an image (other than the valid one) evidences.
    pub fn check(&self) -> String {
        match self {
            ImageName::Valid => "UPD-02".into(),
            ImageName::Older => "UPD-07".into(),
            ImageName::OtherModel => "UPD-06".into(),
            ImageName::Variant(v) => v.check().into(),
            ImageName::Supplied(h) => h.check.clone(),
        }
    }

    /// What was done to the image, for reports.
    pub fn describe(&self) -> String {
        match self {
            ImageName::Supplied(h) => h.describe.clone(),
            ImageName::Valid => "the maker's valid newer image".into(),
            ImageName::Older => "a validly signed older version (downgrade)".into(),
            ImageName::OtherModel => "a validly signed image for another model".into(),
            ImageName::Variant(v) => v.describe().into(),
        }
    }
}

impl UpdateSpec {
    /// The path the update checks use: the first declared, if any.
    pub fn delivery(&self) -> Option<&Delivery> {
        self.deliveries.first()
    }

    /// The pull path (the device's own polling), when declared.
    pub fn pull(&self) -> Option<(&str, &Template)> {
        self.deliveries.iter().find_map(|d| match d {
            Delivery::Pull {
                manifest_path,
                manifest,
            } => Some((manifest_path.as_str(), manifest)),
            _ => None,
        })
    }

    /// The hostile images this profile allows, in the order they are tried.
    pub fn hostile_images(&self) -> Vec<ImageName> {
        let mut v: Vec<ImageName> = Variant::for_layout(&self.layout)
            .iter()
            .map(|v| ImageName::Variant(*v))
            .collect();
        if self.older.is_some() {
            v.push(ImageName::Older);
        }
        if self.other_model.is_some() {
            v.push(ImageName::OtherModel);
        }
        v.extend(self.hostile.iter().map(|h| ImageName::Supplied(Box::new(h.clone()))));
        v
    }
}

/// Parses a template of a profile field, checking its variables; None (with the error
/// recorded) when it is invalid.
pub type TemplateCheck<'a> = &'a dyn Fn(&Path, &str, &Loc<String>) -> Option<Template>;

/// Resolves the section; `template` checks variable names against what commands may use.
pub fn resolve(
    file: &Path,
    raw: &RawUpdate,
    base: &Path,
    template: TemplateCheck<'_>,
    errs: &mut Vec<InputError>,
) -> Option<UpdateSpec> {
    let patterns = patterns(file, raw, errs);
    let image = |field: &str, i: &RawImage| {
        Some(ImageSpec {
            file: template(file, &format!("update.images.{field}.file"), &i.file)?,
            version: i.version.clone(),
        })
    };
    let valid = image("valid", &raw.images.valid);
    let older = raw.images.older.as_ref().map(|i| image("older", i));
    let other_model = raw.images.other_model.as_ref().map(|i| image("other_model", i));
    let mut hostile = supplied_hostile(file, raw, template, errs);
    // the layout's region variants are hostile images too, one testcase each
    let layout = raw.layout.clone().unwrap_or(Layout::Generic);
    check_layout(file, &layout, errs);
    hostile.extend(layout.derived().into_iter().map(|d| HostileImage {
        label: d.label.clone(),
        check: d.check.clone(),
        describe: d.describe.clone(),
        version: None,
        source: HostileSource::Derived(d),
    }));
    let deliveries = deliveries(file, raw, template, errs);
    let image_path = match &raw.image_path {
        Some(p) => template(file, "update.image_path", p),
        None => Template::parse("/images/{{image}}.bin").ok(),
    };
    let restore = raw.restore.as_ref().and_then(|r| {
        Some(super::common::CommandSpec {
            command: template(file, "update.restore.command", &r.command)?,
            timeout: r.timeout.unwrap_or(Dur::secs(300)).0,
        })
    });
    let signature = signature(file, raw.signature.as_ref(), &layout, errs);
    let trust = match &raw.trust {
        None | Some(RawTrust::BenchCa) => crate::model::TrustSource::BenchCa,
        Some(RawTrust::None) => crate::model::TrustSource::None,
        Some(RawTrust::MakerCa { cert, key }) => {
            let abs = |p: &std::path::PathBuf| if p.is_absolute() { p.clone() } else { base.join(p) };
            crate::model::TrustSource::Maker {
                cert: abs(cert),
                key: abs(key),
            }
        }
    };
    let host = match &raw.host {
        Some(h) => h.value.clone(),
        None if deliveries.is_empty() => String::new(),
        None => {
            let d = &raw.delivery;
            let at = d.pull.as_ref().map(|p| p.manifest_path.pos);
            let at = at.or(d.console.as_ref().map(|c| c.command.pos));
            let at = at.or(d.mqtt.as_ref().map(|m| m.topic.pos));
            errs.push(
                InputError::new(
                    file,
                    at,
                    "update.host",
                    "a delivery path is declared and no update host name",
                )
                .with_hint("the name the device fetches updates from, e.g. updates.example.com (the bench plays it)"),
            );
            return None;
        }
    };
    Some(UpdateSpec {
        host,
        trust,
        valid: valid?,
        hostile,
        older: older.flatten(),
        other_model: other_model.flatten(),
        layout,
        signature,
        deliveries,
        image_path: image_path?,
        scheme: raw.scheme.unwrap_or(Scheme::Http),
        version_command: raw.version_command.clone(),
        version_pattern: patterns.version?,
        rejected: patterns.rejected.flatten(),
        installing: patterns.installing.flatten(),
        installed: patterns.installed.flatten(),
        decision_time: raw.decision_time.unwrap_or(Dur::secs(60)).0,
        install_time: raw.install_time.unwrap_or(Dur::secs(30)).0,
        check_interval: raw.check_interval.unwrap_or(Dur::secs(3600)).0,
        restore,
    })
}

/// The console patterns of an update: the version (with its `version` group) and the
/// device's words for rejected, installing and installed (an inner None: invalid).
struct Patterns {
    version: Option<regex::bytes::Regex>,
    rejected: Option<Option<regex::bytes::Regex>>,
    installing: Option<Option<regex::bytes::Regex>>,
    installed: Option<Option<regex::bytes::Regex>>,
}

fn patterns(file: &Path, raw: &RawUpdate, errs: &mut Vec<InputError>) -> Patterns {
    let mut re = |field: &str, src: &Loc<String>| match yaml::regex(file, &format!("update.{field}"), src) {
        Ok(r) => Some(r),
        Err(e) => {
            errs.push(e);
            None
        }
    };
    let version = re("version_pattern", &raw.version_pattern);
    let rejected = raw.rejected.as_ref().map(|s| re("rejected", s));
    let installing = raw.installing.as_ref().map(|s| re("installing", s));
    let installed = raw.installed.as_ref().map(|s| re("installed", s));
    if let Some(p) = &version
        && !p.capture_names().flatten().any(|n| n == "version")
    {
        errs.push(
            InputError::new(
                file,
                Some(raw.version_pattern.pos),
                "update.version_pattern",
                "the pattern has no `version` group",
            )
            .with_hint("write it like 'firmware (?P<version>[0-9.]+)'"),
        );
    }
    Patterns {
        version,
        rejected,
        installing,
        installed,
    }
}

/// The hostile images the maker supplies (`images.hostile`), each with a label of its own
/// and the check it evidences.
fn supplied_hostile(
    file: &Path,
    raw: &RawUpdate,
    template: TemplateCheck<'_>,
    errs: &mut Vec<InputError>,
) -> Vec<HostileImage> {
    let mut hostile = Vec::new();
    for (n, h) in raw.images.hostile.iter().enumerate() {
        let field = |f: &str| format!("update.images.hostile[{n}].{f}");
        let label_ok = h.label.value.starts_with("hostile_")
            && h.label
                .value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        let builtin = ["valid", "older", "other_model"].contains(&h.label.value.as_str())
            || Variant::for_layout(&Layout::Generic)
                .iter()
                .chain(Variant::for_layout(&Layout::SignedTrailer {
                    header_len: 0,
                    signature_len: 0,
                }))
                .any(|v| ImageName::Variant(*v).as_str() == h.label.value);
        if !label_ok || builtin || raw.images.hostile[..n].iter().any(|o| o.label.value == h.label.value) {
            errs.push(
                InputError::new(
                    file,
                    Some(h.label.pos),
                    field("label"),
                    format!("{:?} cannot name a hostile image", h.label.value),
                )
                .with_hint("start it with hostile_, then lowercase letters, digits and `_`; labels are unique"),
            );
        }
        const CHECKS: [&str; 5] = ["UPD-03", "UPD-04", "UPD-05", "UPD-06", "UPD-07"];
        if !CHECKS.contains(&h.check.value.as_str()) {
            errs.push(
                InputError::new(
                    file,
                    Some(h.check.pos),
                    field("check"),
                    format!("{:?} is not a check a hostile image evidences", h.check.value),
                )
                .with_hint("one of UPD-03, UPD-04, UPD-05, UPD-06, UPD-07"),
            );
        }
        if let Some(t) = template(file, &field("file"), &h.file) {
            hostile.push(HostileImage {
                source: HostileSource::File(t),
                label: h.label.value.clone(),
                check: h.check.value.clone(),
                describe: h
                    .describe
                    .clone()
                    .unwrap_or_else(|| format!("the supplied hostile image {:?}", h.label.value)),
                version: h.version.clone(),
            });
        }
    }
    hostile
}

/// A ranges layout names usable regions; an swu layout names its artifacts.
fn check_layout(file: &Path, layout: &Layout, errs: &mut Vec<InputError>) {
    if let Layout::Ranges { ranges } = layout {
        for (i, r) in ranges.iter().enumerate() {
            let ok_name = !r.name.is_empty()
                && r.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            let ok_check = r.check.as_deref().is_none_or(|c| c == "UPD-03" || c == "UPD-05");
            if !ok_name || !ok_check || r.length == 0 {
                errs.push(
                    InputError::new(
                        file,
                        None,
                        format!("update.layout.ranges[{i}]"),
                        format!("range {:?} is not usable", r.name),
                    )
                    .with_hint("name: lowercase letters, digits, `_`; length > 0; check: UPD-03 (default) or UPD-05"),
                );
            }
        }
    }
    if let Layout::Swu { artifacts } = layout
        && artifacts.is_empty()
    {
        errs.push(
            InputError::new(file, None, "update.layout.swu.artifacts", "no artifact is named")
                .with_hint("list the artifact file names of the .swu (as in its sw-description)"),
        );
    }
}

/// The declared signature scheme: a key size where the algorithm has one (and none where it
/// does not), a digest but for Ed25519, and a public key only where certbench can use it
/// (Ed25519 on a `signed_trailer` image).
fn signature(
    file: &Path,
    raw: Option<&Loc<crate::model::signature::Declared>>,
    layout: &Layout,
    errs: &mut Vec<InputError>,
) -> Option<crate::model::signature::Declared> {
    use crate::model::signature::DeclaredAlgorithm as A;
    let d = raw?;
    let mut bad = |field: &str, msg: String, hint: &str| {
        errs.push(InputError::new(file, Some(d.pos), format!("update.signature.{field}"), msg).with_hint(hint));
    };
    let v = &d.value;
    let ed = v.algorithm == A::Ed25519;
    match (ed, v.key_bits) {
        (true, Some(_)) => bad(
            "key_bits",
            "an Ed25519 key has no size to declare".into(),
            "leave key_bits out",
        ),
        (false, None) => bad(
            "key_bits",
            "the key size is what makes this algorithm strong or weak".into(),
            "e.g. key_bits: 3072 (RSA) or 256 (ECDSA P-256)",
        ),
        (false, Some(0)) => bad("key_bits", "a key of 0 bits".into(), "the key size in bits"),
        _ => {}
    }
    if ed && v.digest.is_some() {
        bad(
            "digest",
            "Ed25519 fixes its digest (SHA-512)".into(),
            "leave digest out",
        );
    }
    if !ed && v.digest.is_none() {
        bad(
            "digest",
            "the digest the signature is made over is not declared".into(),
            "e.g. digest: sha256",
        );
    }
    if let Some(k) = &v.public_key {
        if !ed || !matches!(layout, Layout::SignedTrailer { .. }) {
            bad(
                "public_key",
                "certbench verifies only an Ed25519 signature trailing the image (layout signed_trailer)".into(),
                "leave public_key out: the scheme is shown as declared",
            );
        } else if k.len() != 64 || !k.bytes().all(|b| b.is_ascii_hexdigit()) {
            bad(
                "public_key",
                "not 64 hex digits".into(),
                "the 32-byte Ed25519 public key in hex",
            );
        }
    }
    Some(v.clone())
}

/// How the device is told of an update: pull (a manifest it polls), a console command, an
/// MQTT message; none when the device has no update path the bench can drive.
fn deliveries(file: &Path, raw: &RawUpdate, template: TemplateCheck<'_>, errs: &mut Vec<InputError>) -> Vec<Delivery> {
    let mut deliveries = Vec::new();
    if let Some(RawPull {
        manifest_path,
        manifest,
    }) = &raw.delivery.pull
    {
        if !manifest_path.value.starts_with('/') {
            errs.push(
                InputError::new(
                    file,
                    Some(manifest_path.pos),
                    "update.delivery.pull.manifest_path",
                    format!("{:?} is not a path", manifest_path.value),
                )
                .with_hint("write it like /manifest.json"),
            );
        }
        deliveries.extend(
            template(file, "update.delivery.pull.manifest", manifest).map(|m| Delivery::Pull {
                manifest_path: manifest_path.value.clone(),
                manifest: m,
            }),
        );
    }
    if let Some(RawConsoleDelivery { command }) = &raw.delivery.console {
        deliveries.extend(
            template(file, "update.delivery.console.command", command).map(|c| Delivery::Console { command: c }),
        );
    }
    if let Some(RawMqttDelivery { topic, message }) = &raw.delivery.mqtt {
        let t = template(file, "update.delivery.mqtt.topic", topic);
        let m = template(file, "update.delivery.mqtt.message", message);
        if let (Some(topic), Some(message)) = (t, m) {
            deliveries.push(Delivery::Mqtt { topic, message });
        }
    }
    deliveries
}

/// Where the parts of an image are, as declared per image format. Variants only ever alter
/// bytes the format protects: a flip in padding the device never reads would make a
/// correct device "install a corrupt image".
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Layout {
    /// Opaque bytes, ALL assumed protected (by a signature or hash over the whole file):
    /// byte flips at start, middle and end, truncation, appended bytes, empty. Do not use it
    /// for formats with padding or trailing bytes the device ignores (use `swu` or `ranges`).
    Generic,
    /// A header of `header_len` bytes, the payload, then a signature of `signature_len`
    /// bytes at the end.
    SignedTrailer { header_len: usize, signature_len: usize },
    /// SWUpdate's `.swu`: a cpio (newc) archive of `sw-description`, its signature
    /// `sw-description.sig` and the artifacts it lists, padded to a block. Variants flip a
    /// byte inside sw-description, inside its signature and inside each named artifact,
    /// and truncate inside the last artifact; padding and bytes after the archive are
    /// never touched (the device does not read them).
    Swu {
        /// The artifact file names inside the archive (as in sw-description).
        artifacts: Vec<String>,
    },
    /// The maker declares which byte ranges are protected: one flip inside each, and a
    /// truncation inside the last; nothing outside them is altered.
    Ranges { ranges: Vec<ProtectedRange> },
}

/// A protected byte range of an image (`ranges` layout).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProtectedRange {
    /// Names the testcase (`flip_<name>`): lowercase letters, digits and `_`.
    pub name: String,
    pub start: usize,
    pub length: usize,
    /// UPD-03 (content, default) or UPD-05 (the range is the signature).
    #[serde(default)]
    pub check: Option<String>,
}

/// A region of an image a derived variant alters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Region {
    /// A file inside a cpio (newc) archive, by name.
    CpioEntry(String),
    /// Bytes `start..start+length`.
    Bytes { start: usize, length: usize },
}

/// What a derived variant does to its region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alter {
    /// One byte flipped in the middle of the region.
    Flip,
    /// The image cut in the middle of the region.
    Truncate,
}

/// A variant made from the valid image by altering one protected region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub label: String,
    pub check: String,
    pub describe: String,
    pub region: Region,
    pub alter: Alter,
}

fn ident(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

impl Layout {
    /// The region-altering variants this layout asks for (none for generic / signed_trailer).
    pub fn derived(&self) -> Vec<Derived> {
        let d = |label: String, check: &str, describe: String, region: Region, alter: Alter| Derived {
            label,
            check: check.into(),
            describe,
            region,
            alter,
        };
        match self {
            Layout::Generic | Layout::SignedTrailer { .. } => Vec::new(),
            Layout::Swu { artifacts } => {
                let mut v = vec![
                    d(
                        "flip_sw_description".into(),
                        "UPD-03",
                        "one byte flipped inside sw-description".into(),
                        Region::CpioEntry("sw-description".into()),
                        Alter::Flip,
                    ),
                    d(
                        "flip_sw_description_sig".into(),
                        "UPD-05",
                        "one byte flipped inside sw-description.sig (its signature)".into(),
                        Region::CpioEntry("sw-description.sig".into()),
                        Alter::Flip,
                    ),
                ];
                for a in artifacts {
                    v.push(d(
                        format!("flip_artifact_{}", ident(a)),
                        "UPD-03",
                        format!("one byte flipped inside the artifact {a}"),
                        Region::CpioEntry(a.clone()),
                        Alter::Flip,
                    ));
                }
                if let Some(a) = artifacts.last() {
                    v.push(d(
                        format!("truncate_artifact_{}", ident(a)),
                        "UPD-04",
                        format!("cut off in the middle of the artifact {a}"),
                        Region::CpioEntry(a.clone()),
                        Alter::Truncate,
                    ));
                }
                v
            }
            Layout::Ranges { ranges } => {
                let mut v: Vec<Derived> = ranges
                    .iter()
                    .map(|r| {
                        d(
                            format!("flip_{}", ident(&r.name)),
                            r.check.as_deref().unwrap_or("UPD-03"),
                            format!("one byte flipped inside the protected range {}", r.name),
                            Region::Bytes {
                                start: r.start,
                                length: r.length,
                            },
                            Alter::Flip,
                        )
                    })
                    .collect();
                if let Some(r) = ranges.iter().max_by_key(|r| r.start + r.length) {
                    v.push(d(
                        format!("truncate_{}", ident(&r.name)),
                        "UPD-04",
                        format!("cut off in the middle of the protected range {}", r.name),
                        Region::Bytes {
                            start: r.start,
                            length: r.length,
                        },
                        Alter::Truncate,
                    ));
                }
                v
            }
        }
    }
}

/// What was done to the valid image.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Deserialize,
    Serialize,
    schemars::JsonSchema,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Variant {
    FlipHeader,
    FlipPayload,
    FlipSignature,
    /// The signature region zeroed: an unsigned image.
    Unsigned,
    /// Generic layout: a flipped byte at the start / middle / end.
    FlipStart,
    FlipMiddle,
    FlipEnd,
    Truncated,
    Oversized,
    Empty,
}

impl Variant {
    /// The generic variants a layout supports (see `Layout::derived` for the rest).
    pub fn for_layout(l: &Layout) -> &'static [Variant] {
        match l {
            // appended bytes and a cut anywhere may land where the device never reads
            Layout::Swu { .. } | Layout::Ranges { .. } => &[Variant::Empty],
            Layout::Generic => &[
                Variant::FlipStart,
                Variant::FlipMiddle,
                Variant::FlipEnd,
                Variant::Truncated,
                Variant::Oversized,
                Variant::Empty,
            ],
            Layout::SignedTrailer { .. } => &[
                Variant::FlipHeader,
                Variant::FlipPayload,
                Variant::FlipSignature,
                Variant::Unsigned,
                Variant::Truncated,
                Variant::Oversized,
                Variant::Empty,
            ],
        }
    }

    /// What was done, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Variant::FlipHeader => "one byte flipped in the header",
            Variant::FlipPayload => "one byte flipped in the payload",
            Variant::FlipSignature => "one byte flipped in the signature",
            Variant::Unsigned => "its signature zeroed (unsigned)",
            Variant::FlipStart => "the first byte flipped",
            Variant::FlipMiddle => "the middle byte flipped",
            Variant::FlipEnd => "the last byte flipped",
            Variant::Truncated => "truncated to half its length",
            Variant::Oversized => "4 KiB of garbage appended",
            Variant::Empty => "empty (0 bytes)",
        }
    }

    /// The check a variant evidences.
    pub fn check(self) -> &'static str {
        match self {
            Variant::FlipHeader
            | Variant::FlipPayload
            | Variant::FlipStart
            | Variant::FlipMiddle
            | Variant::FlipEnd => "UPD-03",
            Variant::Truncated | Variant::Oversized | Variant::Empty => "UPD-04",
            Variant::FlipSignature | Variant::Unsigned => "UPD-05",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_read_back_as_the_image_they_name() {
        for v in [Variant::FlipHeader, Variant::Unsigned, Variant::Empty, Variant::FlipEnd] {
            let name = ImageName::Variant(v).as_str();
            assert!(
                matches!(ImageName::builtin(&name), Some(ImageName::Variant(w)) if w == v),
                "{name}"
            );
        }
        assert_eq!(ImageName::Variant(Variant::FlipHeader).as_str(), "flip_header");
        assert!(matches!(ImageName::builtin("other_model"), Some(ImageName::OtherModel)));
        assert!(ImageName::builtin("no_such_image").is_none());
    }
}
