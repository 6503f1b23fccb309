//! The maker's SBOM: CycloneDX 1.4–1.6 JSON or SPDX 2.3 JSON, read for what certbench
//! compares — each component's name, version, purl and CPE — and for the maker's VEX
//! statements a CycloneDX document carries (`vulnerabilities[].analysis`).
//!
//! Read with serde over the fields the comparison uses (unknown fields are allowed, as both
//! specifications extend): a malformed document is refused with its line and column and
//! the field, never half-read.

use serde::Deserialize;

use super::{Component, ComponentSource};

/// What the SBOM says.
#[derive(Debug, Clone, Default)]
pub struct Sbom {
    /// `CycloneDX 1.5`, `SPDX-2.3`.
    pub format: String,
    /// When the document was made (CycloneDX `metadata.timestamp`, SPDX
    /// `creationInfo.created`), RFC 3339.
    pub created: Option<String>,
    pub components: Vec<Component>,
    /// The maker's VEX: (vulnerability id, component name or ref, state, justification).
    pub vex: Vec<Vex>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Vex {
    pub id: String,
    /// The components it is about (names or bom-refs as written); empty: every component.
    pub affects: Vec<String>,
    /// `not_affected`, `exploitable`, `resolved`, `in_triage`, `false_positive`, …
    pub state: String,
    pub justification: Option<String>,
    pub detail: Option<String>,
}

/// A document certbench cannot read: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomError {
    pub line: usize,
    pub column: usize,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for SbomError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, ", field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cdx {
    bom_format: String,
    spec_version: String,
    #[serde(default)]
    metadata: Option<CdxMeta>,
    #[serde(default)]
    components: Vec<CdxComponent>,
    #[serde(default)]
    vulnerabilities: Vec<CdxVuln>,
}

#[derive(Deserialize)]
struct CdxMeta {
    #[serde(default)]
    timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CdxComponent {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    purl: Option<String>,
    #[serde(default)]
    cpe: Option<String>,
    #[serde(default)]
    bom_ref: Option<String>,
    #[serde(default)]
    components: Vec<CdxComponent>,
}

#[derive(Deserialize)]
struct CdxVuln {
    id: String,
    #[serde(default)]
    analysis: Option<CdxAnalysis>,
    #[serde(default)]
    affects: Vec<CdxAffects>,
}

#[derive(Deserialize)]
struct CdxAnalysis {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    justification: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CdxAffects {
    #[serde(rename = "ref")]
    reference: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spdx {
    spdx_version: String,
    #[serde(default)]
    creation_info: Option<SpdxCreation>,
    #[serde(default)]
    packages: Vec<SpdxPackage>,
}

#[derive(Deserialize)]
struct SpdxCreation {
    #[serde(default)]
    created: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage {
    name: String,
    #[serde(default)]
    version_info: Option<String>,
    #[serde(default)]
    external_refs: Vec<SpdxRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpdxRef {
    reference_type: String,
    reference_locator: String,
}

/// `cpe:2.3:a:openbsd:openssh:9.2:p1:*…` or `cpe:/a:openbsd:openssh:9.2p1` → `openbsd:openssh`.
pub fn cpe_product(cpe: &str) -> Option<String> {
    let rest = cpe.strip_prefix("cpe:2.3:").or_else(|| cpe.strip_prefix("cpe:/"))?;
    let mut parts = rest.split(':');
    let _part = parts.next()?;
    let (vendor, product) = (parts.next()?, parts.next()?);
    (!vendor.is_empty() && !product.is_empty() && vendor != "*").then(|| format!("{vendor}:{product}"))
}

fn located(text: &str, e: &serde_json::Error, field: String) -> SbomError {
    let _ = text;
    SbomError {
        line: e.line(),
        column: e.column(),
        field,
        message: e.to_string().split(" at line ").next().unwrap_or("").to_string(),
    }
}

fn typed<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, SbomError> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        located(text, e.inner(), field)
    })
}

/// Reads a CycloneDX or SPDX JSON document.
pub fn parse(text: &str) -> Result<Sbom, SbomError> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| located(text, &e, String::new()))?;
    let whole = |message: String| SbomError {
        line: 1,
        column: 1,
        field: String::new(),
        message,
    };
    if v.get("bomFormat").is_some() {
        let d: Cdx = typed(text)?;
        if d.bom_format != "CycloneDX" {
            return Err(whole(format!("bomFormat is {:?}, not CycloneDX", d.bom_format)));
        }
        if !["1.4", "1.5", "1.6"].contains(&d.spec_version.as_str()) {
            return Err(whole(format!(
                "CycloneDX specVersion {} is not read (1.4, 1.5 and 1.6 are)",
                d.spec_version
            )));
        }
        let mut components = Vec::new();
        fn walk(list: &[CdxComponent], at: &str, out: &mut Vec<Component>) {
            for (i, c) in list.iter().enumerate() {
                let here = format!("{at}[{i}]");
                if let Some(v) = &c.version {
                    out.push(Component {
                        name: c.name.clone(),
                        version: v.clone(),
                        ecosystem: c.purl.as_deref().and_then(super::purl_ecosystem),
                        source_package: c.purl.as_deref().and_then(super::purl_upstream).map(|s| (s, v.clone())),
                        purl: c.purl.clone(),
                        cpe: c.cpe.as_deref().and_then(cpe_product),
                        origin: ComponentSource::Sbom,
                        seen_in: format!("{here} ({})", c.bom_ref.as_deref().unwrap_or(&c.name)),
                    });
                }
                walk(&c.components, &format!("{here}.components"), out);
            }
        }
        walk(&d.components, "components", &mut components);
        let vex = d
            .vulnerabilities
            .into_iter()
            .filter_map(|x| {
                let a = x.analysis?;
                Some(Vex {
                    id: x.id,
                    affects: x.affects.into_iter().map(|r| r.reference).collect(),
                    state: a.state.unwrap_or_default(),
                    justification: a.justification,
                    detail: a.detail,
                })
            })
            .collect();
        return Ok(Sbom {
            format: format!("CycloneDX {}", d.spec_version),
            created: d.metadata.and_then(|m| m.timestamp),
            components,
            vex,
        });
    }
    if v.get("spdxVersion").is_some() {
        let d: Spdx = typed(text)?;
        if d.spdx_version != "SPDX-2.3" {
            return Err(whole(format!("{} is not read (SPDX-2.3 is)", d.spdx_version)));
        }
        let components = d
            .packages
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let version = p.version_info.clone()?;
                let r = |ty: &str| {
                    p.external_refs
                        .iter()
                        .find(|r| r.reference_type.eq_ignore_ascii_case(ty))
                        .map(|r| r.reference_locator.clone())
                };
                let purl = r("purl");
                Some(Component {
                    name: p.name.clone(),
                    ecosystem: purl.as_deref().and_then(super::purl_ecosystem),
                    source_package: purl
                        .as_deref()
                        .and_then(super::purl_upstream)
                        .map(|s| (s, version.clone())),
                    version,
                    cpe: r("cpe23Type")
                        .or_else(|| r("cpe22Type"))
                        .as_deref()
                        .and_then(cpe_product),
                    purl,
                    origin: ComponentSource::Sbom,
                    seen_in: format!("packages[{i}] ({})", p.name),
                })
            })
            .collect();
        return Ok(Sbom {
            format: d.spdx_version,
            created: d.creation_info.and_then(|c| c.created),
            components,
            vex: Vec::new(),
        });
    }
    Err(whole(
        "neither a CycloneDX document (no `bomFormat`) nor SPDX (no `spdxVersion`)".into(),
    ))
}

/// An OpenVEX document (`statements[]`: the vulnerability, the products, the status and the
/// justification): the maker's word on which findings do not apply.
pub fn openvex(text: &str) -> Result<Vec<Vex>, SbomError> {
    #[derive(Deserialize)]
    struct Doc {
        #[serde(rename = "@context")]
        context: String,
        statements: Vec<Statement>,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Named {
        Id(String),
        Object {
            #[serde(rename = "@id", default)]
            id: Option<String>,
            #[serde(default)]
            name: Option<String>,
        },
    }
    impl Named {
        fn text(&self) -> String {
            match self {
                Named::Id(s) => s.clone(),
                Named::Object { id, name } => name.clone().or(id.clone()).unwrap_or_default(),
            }
        }
    }
    #[derive(Deserialize)]
    struct Statement {
        vulnerability: Named,
        #[serde(default)]
        products: Vec<Named>,
        status: String,
        #[serde(default)]
        justification: Option<String>,
        #[serde(default)]
        impact_statement: Option<String>,
    }
    let d: Doc = typed(text)?;
    if !d.context.starts_with("https://openvex.dev/ns") {
        return Err(SbomError {
            line: 1,
            column: 1,
            field: "@context".into(),
            message: format!("{:?} is not OpenVEX's context (https://openvex.dev/ns/…)", d.context),
        });
    }
    Ok(d.statements
        .into_iter()
        .map(|s| Vex {
            id: s.vulnerability.text(),
            // products are purls or names: the name part is what matches a component
            affects: s
                .products
                .iter()
                .map(|p| {
                    let t = p.text();
                    super::purl_name(&t).unwrap_or(t)
                })
                .collect(),
            state: s.status,
            justification: s.justification,
            detail: s.impact_statement,
        })
        .collect())
}

/// What certbench observed, as a CycloneDX 1.5 document (evidence a lab feeds to the tools
/// it already uses). Each component once per name and version, with where it was seen.
pub fn observed_cdx(components: &[Component], serial: &str, timestamp: &str) -> serde_json::Value {
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut list = Vec::new();
    for c in components.iter().filter(|c| c.origin != ComponentSource::Sbom) {
        let k = (super::key(&c.name), c.version.clone());
        if seen.contains(&k) {
            continue;
        }
        seen.push(k);
        let wheres: Vec<String> = components
            .iter()
            .filter(|o| {
                o.origin != ComponentSource::Sbom
                    && super::key(&o.name) == super::key(&c.name)
                    && o.version == c.version
            })
            .map(|o| format!("{}: {}", o.origin, o.seen_in))
            .collect();
        let mut j = serde_json::json!({
            "type": "library",
            "name": c.name,
            "version": c.version,
            "properties": wheres.iter().map(|w| serde_json::json!({"name": "certbench:seen_in", "value": w})).collect::<Vec<_>>(),
        });
        if let Some(p) = &c.purl {
            j["purl"] = p.clone().into();
        }
        if let Some(cpe) = &c.cpe {
            j["cpe"] = format!("cpe:2.3:a:{cpe}:{}:*:*:*:*:*:*:*", c.version).into();
        }
        list.push(j);
    }
    serde_json::json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial,
        "version": 1,
        "metadata": { "timestamp": timestamp, "tools": { "components": [ { "type": "application", "name": "certbench", "version": env!("CARGO_PKG_VERSION") } ] } },
        "components": list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyclonedx_components_nested_and_vex_are_read() {
        let doc = r#"{"bomFormat":"CycloneDX","specVersion":"1.5","metadata":{"timestamp":"2026-11-20T10:00:00Z"},
          "components":[{"type":"firmware","name":"sb1","version":"2.0.0","bom-ref":"fw","components":[
            {"type":"application","name":"busybox","version":"1.36.1","purl":"pkg:generic/busybox@1.36.1","cpe":"cpe:2.3:a:busybox:busybox:1.36.1:*:*:*:*:*:*:*"}]}],
          "vulnerabilities":[{"id":"CVE-2022-48174","analysis":{"state":"not_affected","justification":"code_not_present"},"affects":[{"ref":"busybox"}]}]}"#;
        let s = parse(doc).expect("reads");
        assert_eq!(s.format, "CycloneDX 1.5");
        assert_eq!(s.created.as_deref(), Some("2026-11-20T10:00:00Z"));
        assert_eq!(s.components.len(), 2);
        assert_eq!(s.components[1].cpe.as_deref(), Some("busybox:busybox"));
        assert_eq!(s.components[1].seen_in, "components[0].components[0] (busybox)");
        assert_eq!(s.vex[0].state, "not_affected");
    }

    #[test]
    fn spdx_packages_with_their_purl_and_cpe_are_read() {
        let doc = r#"{"spdxVersion":"SPDX-2.3","creationInfo":{"created":"2026-11-01T00:00:00Z"},"packages":[
          {"name":"openssl","versionInfo":"3.0.11-1~deb12u2","externalRefs":[{"referenceCategory":"PACKAGE-MANAGER","referenceType":"purl","referenceLocator":"pkg:deb/debian/openssl@3.0.11-1~deb12u2"}]},
          {"name":"no-version"}]}"#;
        let s = parse(doc).expect("reads");
        assert_eq!(s.components.len(), 1);
        assert_eq!(s.components[0].ecosystem.as_deref(), Some("Debian"));
    }

    #[test]
    fn openvex_statements_are_read() {
        let v = openvex(
            r#"{"@context":"https://openvex.dev/ns/v0.2.0","@id":"x","author":"m","timestamp":"2026-11-20T00:00:00Z","version":1,
              "statements":[{"vulnerability":{"name":"CVE-2014-0160"},"products":[{"@id":"pkg:generic/openssl@1.0.1f"}],"status":"not_affected","justification":"vulnerable_code_not_in_execute_path"}]}"#,
        )
        .expect("reads");
        assert_eq!(v[0].id, "CVE-2014-0160");
        assert_eq!(v[0].affects, ["openssl"]);
        assert!(openvex(r#"{"@context":"https://example.com","statements":[]}"#).is_err());
    }

    #[test]
    fn a_malformed_document_is_refused_with_its_place() {
        let e = parse("{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.5\",\n\"components\":[{\"name\": 3}]}")
            .expect_err("refused");
        assert_eq!((e.line, e.field.as_str()), (2, "components[0].name"), "{e}");
        let e = parse("{\"bomFormat\":\"CycloneDX\",\n\"specVersion\":").expect_err("truncated");
        assert_eq!(e.line, 2, "{e}");
        let e = parse("{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.2\"}").expect_err("old");
        assert!(e.message.contains("1.2"), "{e}");
        assert!(parse("{\"x\":1}").is_err());
    }
}
