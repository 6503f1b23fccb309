//! Version order, per ecosystem: Debian's (epoch, upstream, revision; `~` before anything),
//! and the generic dotted order upstream projects use (semver, OpenSSL's letter suffixes
//! `1.0.1f`, OpenSSH's `9.2p1`, pre-releases `-rc1` before the release).

use std::cmp::Ordering;

/// How versions of one ecosystem compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionScheme {
    /// dpkg: Debian and its derivatives (also opkg, whose order is dpkg's).
    Dpkg,
    /// Dotted numbers with letters, the order of semver, PyPI, crates.io, Alpine and
    /// upstream release numbers.
    Generic,
}

impl VersionScheme {
    /// The scheme for an OSV ecosystem name (`Debian:12`, `Alpine:v3.18`, `crates.io`, …).
    pub fn for_ecosystem(ecosystem: &str) -> VersionScheme {
        let base = ecosystem.split(':').next().unwrap_or(ecosystem);
        match base {
            "Debian" | "Ubuntu" | "OpenWrt" | "deb" | "opkg" => VersionScheme::Dpkg,
            _ => VersionScheme::Generic,
        }
    }

    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            VersionScheme::Dpkg => dpkg(a, b),
            VersionScheme::Generic => generic(a, b),
        }
    }
}

/// Debian policy 5.6.12: `[epoch:]upstream[-revision]`.
pub fn dpkg(a: &str, b: &str) -> Ordering {
    let split = |v: &str| {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) if e.chars().all(|c| c.is_ascii_digit()) => (e.parse::<u64>().unwrap_or(0), r),
            _ => (0, v),
        };
        let (up, rev) = match rest.rsplit_once('-') {
            Some((u, r)) => (u, r),
            None => (rest, ""),
        };
        (epoch, up.to_string(), rev.to_string())
    };
    let (ea, ua, ra) = split(a.trim());
    let (eb, ub, rb) = split(b.trim());
    ea.cmp(&eb)
        .then_with(|| dpkg_part(&ua, &ub))
        .then_with(|| dpkg_part(&ra, &rb))
}

/// dpkg's verrevcmp: alternating non-digit and digit runs; letters sort before
/// non-letters, `~` before everything (even the end).
fn dpkg_part(a: &str, b: &str) -> Ordering {
    fn order(c: Option<u8>) -> i32 {
        match c {
            None => 0,
            Some(b'~') => -1,
            Some(c) if c.is_ascii_digit() => 0,
            Some(c) if c.is_ascii_alphabetic() => i32::from(c),
            Some(c) => i32::from(c) + 256,
        }
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let (ca, cb) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ca != cb {
                return ca.cmp(&cb);
            }
            i += 1;
            j += 1;
        }
        fn num<'s>(s: &'s [u8], k: &mut usize) -> &'s [u8] {
            while *k < s.len() && s[*k] == b'0' {
                *k += 1;
            }
            let start = *k;
            while *k < s.len() && s[*k].is_ascii_digit() {
                *k += 1;
            }
            &s[start..*k]
        }
        let (na, nb) = (num(a, &mut i), num(b, &mut j));
        let c = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
        if c != Ordering::Equal {
            return c;
        }
    }
    Ordering::Equal
}

#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Num(&'a str),
    Word(&'a str),
}

fn pieces(v: &str) -> (Vec<Piece<'_>>, Option<&str>) {
    let v = v.trim().trim_start_matches(['v', 'V']);
    // build metadata never orders (semver); a pre-release after `-` sorts before the release
    let v = v.split('+').next().unwrap_or(v);
    let (main, pre) = match v.split_once('-') {
        Some((m, p)) => (m, Some(p)),
        None => (v, None),
    };
    let mut out = Vec::new();
    let b = main.as_bytes();
    let mut k = 0;
    while k < b.len() {
        let start = k;
        if b[k].is_ascii_digit() {
            while k < b.len() && b[k].is_ascii_digit() {
                k += 1;
            }
            out.push(Piece::Num(main[start..k].trim_start_matches('0')));
        } else if b[k].is_ascii_alphabetic() {
            while k < b.len() && b[k].is_ascii_alphabetic() {
                k += 1;
            }
            out.push(Piece::Word(&main[start..k]));
        } else {
            k += 1;
        }
    }
    (out, pre)
}

/// Pre-release words (`rc`, `beta`, `alpha`, `pre`, `dev`) sort before the release; any
/// other letters after a number are a later revision (`1.0.1f` > `1.0.1`, `9.2p1` > `9.2`).
fn is_pre(w: &str) -> bool {
    let w = w.to_ascii_lowercase();
    ["rc", "beta", "alpha", "pre", "dev"].iter().any(|p| w.starts_with(p))
}

pub fn generic(a: &str, b: &str) -> Ordering {
    let (pa, prea) = pieces(a);
    let (pb, preb) = pieces(b);
    let n = pa.len().max(pb.len());
    for k in 0..n {
        let c = match (pa.get(k), pb.get(k)) {
            (Some(Piece::Num(x)), Some(Piece::Num(y))) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
            (Some(Piece::Word(x)), Some(Piece::Word(y))) => match (is_pre(x), is_pre(y)) {
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                _ => x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase()),
            },
            // a number ranks above a word at the same place: 1.2.0 > 1.2rc1, 1.2.1 > 1.2a
            (Some(Piece::Num(_)), Some(Piece::Word(_))) => Ordering::Greater,
            (Some(Piece::Word(_)), Some(Piece::Num(_))) => Ordering::Less,
            // the longer one: more numbers is later (1.2.1 > 1.2; 1.2.0 == 1.2), a letter
            // suffix is a later revision unless it is a pre-release word
            (Some(Piece::Num(x)), None) => {
                if x.is_empty() {
                    Ordering::Equal
                } else {
                    Ordering::Greater
                }
            }
            (None, Some(Piece::Num(y))) => {
                if y.is_empty() {
                    Ordering::Equal
                } else {
                    Ordering::Less
                }
            }
            (Some(Piece::Word(x)), None) => {
                if is_pre(x) {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (None, Some(Piece::Word(y))) => {
                if is_pre(y) {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (None, None) => Ordering::Equal,
        };
        if c != Ordering::Equal {
            return c;
        }
    }
    match (prea, preb) {
        (None, None) => Ordering::Equal,
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (Some(x), Some(y)) => generic(x, y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("1.0", "1.0-1", Ordering::Less)]
    #[case("1:1.35.0-4+deb12u1+b1", "1:1.35.0-4", Ordering::Greater)]
    #[case("1.0~rc1-1", "1.0-1", Ordering::Less)]
    #[case("2:1.0", "1:9.9", Ordering::Greater)]
    #[case("1.2.13.dfsg-1", "1.2.13-1", Ordering::Greater)]
    #[case("3.0.11-1~deb12u2", "3.0.11-1", Ordering::Less)]
    #[case("9.2p1-2+deb12u3", "9.2p1-2+deb12u4", Ordering::Less)]
    #[case("1.0a", "1.0+", Ordering::Less)]
    #[case("7.88.1-10+deb12u5", "7.88.1-10+deb12u5", Ordering::Equal)]
    fn dpkg_order_is_debian_policys(#[case] a: &str, #[case] b: &str, #[case] want: Ordering) {
        assert_eq!(dpkg(a, b), want, "{a} vs {b}");
        assert_eq!(dpkg(b, a), want.reverse(), "{b} vs {a}");
    }

    /// Against dpkg itself, where it is installed (it is on Debian, the CI machine).
    #[test]
    fn dpkg_order_agrees_with_dpkg_compare_versions() {
        let pairs = [
            ("1:1.35.0-4+deb12u1+b1", "1.36.0"),
            ("1.0~beta1", "1.0"),
            ("2.90-4~deb12u2", "2.90-4"),
            ("1.1.1w", "1.1.1"),
            ("0.8-10+deb12u1", "0.8-10"),
        ];
        if std::process::Command::new("dpkg").arg("--version").output().is_err() {
            eprintln!("dpkg not installed: compared with the table above only");
            return;
        }
        for (a, b) in pairs {
            let lt = std::process::Command::new("dpkg")
                .args(["--compare-versions", a, "lt", b])
                .status()
                .expect("dpkg runs")
                .success();
            assert_eq!(dpkg(a, b) == Ordering::Less, lt, "{a} < {b} by dpkg: {lt}");
        }
    }

    #[rstest]
    #[case("1.0.1f", "1.0.1g", Ordering::Less)]
    #[case("1.0.1", "1.0.1f", Ordering::Less)]
    #[case("9.2p1", "9.3", Ordering::Less)]
    #[case("9.2", "9.2p1", Ordering::Less)]
    #[case("1.36.0", "1.36", Ordering::Equal)]
    #[case("1.36.1", "1.36.0", Ordering::Greater)]
    #[case("8.4.0", "8.10.0", Ordering::Less)]
    #[case("2.0.0-rc1", "2.0.0", Ordering::Less)]
    #[case("2.0rc1", "2.0", Ordering::Less)]
    #[case("2.0rc1", "2.0.1", Ordering::Less)]
    #[case("v1.2.3", "1.2.3", Ordering::Equal)]
    #[case("1.2.3+build5", "1.2.3", Ordering::Equal)]
    #[case("2022.83", "2020.81", Ordering::Greater)]
    fn generic_order_reads_upstream_numbers(#[case] a: &str, #[case] b: &str, #[case] want: Ordering) {
        assert_eq!(generic(a, b), want, "{a} vs {b}");
        assert_eq!(generic(b, a), want.reverse(), "{b} vs {a}");
    }
}
