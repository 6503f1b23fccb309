//! `certbench coverage`: per requirement and provision of the catalogue, which scenarios (and
//! checks) cover it.

use crate::model::{Catalogue, Evidences};

/// Per requirement and provision, which scenarios (and checks) cover it.
pub fn coverage(catalogue: &Catalogue, scenarios: &[(&str, &Evidences)]) -> String {
    let mut out = format!("Coverage against ETSI EN 303 645 {}\n", catalogue.edition("EN 303 645"));
    let mut uncovered = Vec::new();
    let covering = |pid: &str| -> Vec<String> {
        scenarios
            .iter()
            .filter(|(_, e)| e.provisions.iter().any(|p| p.value == pid))
            .map(|(id, e)| {
                let checks: Vec<&str> = e.checks.iter().map(|c| c.value.as_str()).collect();
                format!("{id} ({})", checks.join(", "))
            })
            .collect()
    };
    for r in &catalogue.requirements {
        out.push_str(&format!("\nRequirement {}: {}\n", r.number, r.title));
        for p in &r.provisions {
            let c = covering(&p.id);
            let extra = [
                p.psti.as_deref().map(|x| format!("PSTI {x}")),
                p.nist.as_deref().map(|x| format!("NIST {x}")),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; ");
            out.push_str(&format!(
                "  {:<7} {} [{}{}]\n",
                p.id,
                p.title,
                p.ts103701,
                if extra.is_empty() {
                    String::new()
                } else {
                    format!("; {extra}")
                }
            ));
            if c.is_empty() {
                out.push_str("          covered by: nothing yet\n");
                uncovered.push(p.id.clone());
            } else {
                out.push_str(&format!("          covered by: {}\n", c.join(", ")));
            }
        }
    }
    out.push_str(&format!(
        "\n{} provision(s) not covered yet: {}\n",
        uncovered.len(),
        uncovered.join(", ")
    ));
    out
}
