//! P8: vulnerability data at the size labs hold it (issue 31). A synthetic OSV Debian dump of
//! 100 000 records (one zip, as OSV publishes it) and 300 000 NVD CVEs (20 feed files of CVE
//! JSON 2.0) are written once; then, timed: loading all of it and matching a device of 500
//! components (250 Debian packages, 250 upstream products by CPE). And the version-string
//! scan of a 100 MiB image.
//!
//! Valid only if the findings are exactly the ones the data was built to produce (each
//! package and product is affected by the 10 records fixed after its version, so 5 000), and
//! the scan finds exactly the strings planted in the image.
//!
//!   cargo bench -p certbench --bench vulndata

use std::io::Write;
use std::time::Instant;

use certbench::vuln::data::Data;
use certbench::vuln::{Component, ComponentSource, image, judge};

const PACKAGES: usize = 5_000;
const PER_PACKAGE: usize = 20;
const PRODUCTS: usize = 15_000;
const PER_PRODUCT: usize = 20;
const FEEDS: usize = 20;

fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn write_data(dir: &std::path::Path) {
    // OSV: package pkgN, records fixed at 1.1 .. 1.20
    let f = std::fs::File::create(dir.join("Debian.zip")).expect("zip");
    let mut z = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default();
    for p in 0..PACKAGES {
        for k in 1..=PER_PACKAGE {
            let id = format!("DEBIAN-SYN-{p}-{k}");
            z.start_file(format!("{id}.json"), opts).expect("entry");
            write!(
                z,
                r#"{{"id":"{id}","modified":"2026-12-01T00:00:00Z","published":"2020-01-01T00:00:00Z","aliases":["CVE-9000-{}"],"affected":[{{"package":{{"ecosystem":"Debian:12","name":"pkg{p}"}},"ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"1.{k}-1"}}]}}]}}]}}"#,
                p * PER_PACKAGE + k
            )
            .expect("write");
        }
    }
    z.finish().expect("zip");
    // NVD: product prodN (vendor vN), CVEs fixed at 2.1 .. 2.20
    let per_feed = PRODUCTS / FEEDS;
    for feed in 0..FEEDS {
        let mut s = String::from(
            r#"{"resultsPerPage":0,"startIndex":0,"totalResults":0,"format":"NVD_CVE","version":"2.0","timestamp":"2026-12-01T00:00:00.000","vulnerabilities":["#,
        );
        let mut first = true;
        for p in feed * per_feed..(feed + 1) * per_feed {
            for k in 1..=PER_PRODUCT {
                if !first {
                    s.push(',');
                }
                first = false;
                s.push_str(&format!(
                    r#"{{"cve":{{"id":"CVE-8000-{p}-{k}","published":"2020-01-01T00:00:00.000","vulnStatus":"Analyzed","metrics":{{"cvssMetricV31":[{{"cvssData":{{"baseScore":7.5,"vectorString":"CVSS:3.1/AV:N"}}}}]}},"configurations":[{{"nodes":[{{"operator":"OR","negate":false,"cpeMatch":[{{"vulnerable":true,"criteria":"cpe:2.3:a:v{p}:prod{p}:*:*:*:*:*:*:*:*","versionEndExcluding":"2.{k}"}}]}}]}}]}}}}"#
                ));
            }
        }
        s.push_str("]}");
        std::fs::write(dir.join(format!("nvd-{feed}.json")), s).expect("nvd");
    }
}

fn device() -> Vec<Component> {
    let mut out = Vec::new();
    for i in 0..250 {
        let p = i * (PACKAGES / 250);
        out.push(Component {
            name: format!("pkg{p}"),
            version: "1.10-1".into(),
            ecosystem: Some("Debian:12".into()),
            source_package: None,
            purl: None,
            cpe: None,
            origin: ComponentSource::Image,
            seen_in: "status".into(),
        });
        let q = i * (PRODUCTS / 250);
        out.push(Component {
            name: format!("prod{q}"),
            version: "2.10".into(),
            ecosystem: None,
            source_package: None,
            purl: None,
            cpe: Some(format!("v{q}:prod{q}")),
            origin: ComponentSource::Device,
            seen_in: "banner".into(),
        });
    }
    out
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    write_data(dir.path());
    let nvd_bytes: u64 = (0..FEEDS)
        .map(|f| std::fs::metadata(dir.path().join(format!("nvd-{f}.json"))).map_or(0, |m| m.len()))
        .sum();
    let zip_bytes = std::fs::metadata(dir.path().join("Debian.zip")).map_or(0, |m| m.len());
    println!(
        "data written in {:.1} s: OSV zip {:.0} MiB ({} records), NVD {:.0} MiB in {FEEDS} feeds ({} CVEs)",
        t.elapsed().as_secs_f64(),
        zip_bytes as f64 / 1048576.0,
        PACKAGES * PER_PACKAGE,
        nvd_bytes as f64 / 1048576.0,
        PRODUCTS * PER_PRODUCT
    );
    let comps = device();
    let t = Instant::now();
    let mut d = Data::default();
    d.load_osv(&dir.path().join("Debian.zip"), "Debian.zip", &[dir.path()])
        .expect("osv");
    for f in 0..FEEDS {
        let text = std::fs::read_to_string(dir.path().join(format!("nvd-{f}.json"))).expect("nvd");
        d.load_nvd(&format!("nvd-{f}"), &text).expect("nvd");
    }
    let loaded = t.elapsed();
    let found = judge::findings(&comps, &d, &[]);
    let total = t.elapsed();
    // each component is affected by the records fixed after its version: 1.11..1.20, 2.11..2.20
    assert_eq!(found.len(), 500 * 10, "the run is not valid: {} findings", found.len());
    assert!(found.iter().all(|f| {
        f.fixed
            .as_deref()
            .is_some_and(|x| x.ends_with("-1") || x.starts_with("2."))
    }));
    println!(
        "P8 load + match: {} records, 500 components, {} findings (as built): load {:.2} s, match {:.3} s, total {:.2} s (target ≤ 10 s); peak RSS {:.0} MiB (target ≤ 1024)",
        d.vulns.len(),
        found.len(),
        loaded.as_secs_f64(),
        (total - loaded).as_secs_f64(),
        total.as_secs_f64(),
        peak_rss_mib()
    );
    drop(d);

    // the version-string scan: 100 MiB of incompressible bytes with four banners planted
    let mut img = vec![0u8; 100 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in img.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = (x >> 24) as u8;
    }
    let planted: [&[u8]; 4] = [
        b"\0BusyBox v1.36.1 (2024-05-21) multi-call binary.\0",
        b"\0OpenSSL 3.0.15 3 Sep 2024\0",
        b"\0lighttpd/1.4.76\0",
        b"\0SSH-2.0-dropbear_2022.83\0",
    ];
    for (i, p) in planted.iter().enumerate() {
        let at = (i + 1) * (20 << 20);
        img[at..at + p.len()].copy_from_slice(p);
    }
    let t = Instant::now();
    let scan = image::scan_bytes("synthetic.bin", &img);
    let secs = t.elapsed().as_secs_f64();
    let mut got: Vec<String> = scan
        .components
        .iter()
        .map(|c| format!("{} {}", c.name, c.version))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "busybox 1.36.1",
            "dropbear 2022.83",
            "lighttpd 1.4.76",
            "openssl 3.0.15"
        ],
        "the scan is not valid"
    );
    println!(
        "version-string scan: 100 MiB in {secs:.2} s = {:.0} MiB/s (target ≥ 200), found exactly the 4 planted",
        100.0 / secs
    );
}
