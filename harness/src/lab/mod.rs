//! A lab of many boards: an inventory, selection by name and tag, deterministic shards
//! for CI jobs, bounded parallel runs (one task per board), and a lock per board.

pub mod labgrid;
pub mod lock;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::yaml::{self, InputError, InputErrors, Loc};

/// The lab inventory, as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawInventory {
    /// Where board lock files live (default: a folder in the system temp dir).
    #[serde(default)]
    pub lock_dir: Option<PathBuf>,
    pub boards: Vec<RawBoard>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBoard {
    /// Unique board name (results folder, lock, JUnit).
    pub name: Loc<String>,
    /// Device profile (relative to the inventory file).
    pub profile: PathBuf,
    /// Lab binding for this board's wiring.
    #[serde(default)]
    pub lab: Option<PathBuf>,
    /// Serial port, overriding profile and lab.
    #[serde(default)]
    pub port: Option<String>,
    /// Values for `{{name}}` in this board's commands.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Which of its lab file's `units:` this board is (needed when the lab lists units).
    #[serde(default)]
    pub unit: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Board {
    pub name: String,
    pub profile: PathBuf,
    pub lab: Option<PathBuf>,
    pub port: Option<String>,
    pub vars: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub unit: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Inventory {
    pub lock_dir: PathBuf,
    pub boards: Vec<Board>,
}

pub fn load(path: &Path) -> Result<Inventory, InputErrors> {
    let raw: RawInventory = yaml::load(path)?;
    let base = crate::util::folder_of(path);
    let abs = |p: &PathBuf| if p.is_absolute() { p.clone() } else { base.join(p) };
    let mut errs = Vec::new();
    let mut boards: Vec<Board> = Vec::new();
    for (i, b) in raw.boards.iter().enumerate() {
        if b.name.value.is_empty() || boards.iter().any(|x| x.name == b.name.value) {
            errs.push(
                InputError::new(
                    path,
                    Some(b.name.pos),
                    format!("boards[{i}].name"),
                    format!("board name {:?} is empty or used twice", b.name.value),
                )
                .with_hint("board names are unique"),
            );
        }
        boards.push(Board {
            name: b.name.value.clone(),
            profile: abs(&b.profile),
            lab: b.lab.as_ref().map(abs),
            port: b.port.clone(),
            vars: b.vars.clone(),
            tags: b.tags.clone(),
            unit: b.unit.clone(),
        });
    }
    if boards.is_empty() {
        errs.push(InputError::new(path, None, "boards", "the inventory lists no boards"));
    }
    if !errs.is_empty() {
        return Err(InputErrors(errs));
    }
    Ok(Inventory {
        lock_dir: raw.lock_dir.as_ref().map(abs).unwrap_or_else(lock::default_dir),
        boards,
    })
}

/// A shard `i/n` (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (i, n) = s.split_once('/').ok_or("expected i/n, e.g. 1/3")?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| "i is not a number")?,
            n.trim().parse().map_err(|_| "n is not a number")?,
        );
        if count == 0 || index == 0 || index > count {
            return Err(format!("shard {index}/{count}: need 1 <= i <= n"));
        }
        Ok(Shard { index, count })
    }
}

/// Splits (board, scenario) pairs across shards: the pairs are ordered by board name, then
/// scenario id, and dealt round-robin, so every pair lands in exactly one shard whatever
/// machine computes it.
pub fn shard<'a>(boards: &[&'a str], scenarios: &[&'a str], s: Shard) -> Vec<(&'a str, &'a str)> {
    let mut b: Vec<&str> = boards.to_vec();
    let mut sc: Vec<&str> = scenarios.to_vec();
    b.sort();
    sc.sort();
    let mut out = Vec::new();
    let mut k = 0;
    for board in &b {
        for scen in &sc {
            if k % s.count == s.index - 1 {
                out.push((*board, *scen));
            }
            k += 1;
        }
    }
    out
}

/// Boards selected by name (any of) and tag (all of); no filter selects all.
pub fn select<'a>(inv: &'a Inventory, names: &[String], tags: &[String]) -> Result<Vec<&'a Board>, String> {
    for n in names {
        if !inv.boards.iter().any(|b| &b.name == n) {
            return Err(format!("no board named {n:?} in the inventory"));
        }
    }
    Ok(inv
        .boards
        .iter()
        .filter(|b| names.is_empty() || names.contains(&b.name))
        .filter(|b| tags.iter().all(|t| b.tags.contains(t)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_work_exactly() {
        let boards = ["b", "a", "c"];
        let scen = ["s2", "s1", "s3", "s4"];
        for n in 1..=7 {
            let mut all = Vec::new();
            for i in 1..=n {
                let part = shard(&boards, &scen, Shard { index: i, count: n });
                for p in &part {
                    assert!(!all.contains(p), "{p:?} in two shards of {n}");
                }
                all.extend(part);
            }
            assert_eq!(all.len(), 12, "n={n}");
        }
        // deterministic: input order does not matter
        assert_eq!(
            shard(&["a", "b"], &["x", "y"], Shard { index: 2, count: 3 }),
            shard(&["b", "a"], &["y", "x"], Shard { index: 2, count: 3 })
        );
    }

    #[test]
    fn shard_syntax() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        assert!("0/3".parse::<Shard>().is_err());
        assert!("4/3".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
    }
}
