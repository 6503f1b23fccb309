//! Throughput of the expect engine on a chatty console: a synthetic boot log with ANSI
//! colours, fed in 4 KiB chunks, searched for 20 patterns of which only the last one (a
//! login prompt at the very end) matches. Run: `cargo run --release --example expect_throughput`.

use std::time::Instant;

use certbench::console::matcher::{Cursor, MatchBuffer};
use regex::bytes::Regex;

fn main() {
    // usage: expect_throughput [MIB] [--write PATH]  (PATH receives the exact byte stream)
    let args: Vec<String> = std::env::args().collect();
    let mb: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(8);
    let write_to = args
        .iter()
        .position(|a| a == "--write")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let mut log = Vec::with_capacity(mb << 20);
    let mut n = 0u64;
    while log.len() < mb << 20 {
        log.extend_from_slice(
            format!(
                "[{:5}.{:06}] \x1b[33minit\x1b[0m: probing device {n:04x} ... ok\r\n",
                n / 1000,
                n % 1_000_000
            )
            .as_bytes(),
        );
        n += 1;
    }
    log.extend_from_slice(b"\r\nsimboard login: ");
    if let Some(p) = &write_to {
        std::fs::write(p, &log).expect("write the byte stream");
    }
    let mut pats: Vec<Regex> = (0..19)
        .map(|i| Regex::new(&format!("never-printed-{i} [a-z]+")).expect("regex"))
        .collect();
    pats.push(Regex::new("login: $").expect("regex"));
    let refs: Vec<&Regex> = pats.iter().collect();

    let t = Instant::now();
    let mut m = MatchBuffer::default();
    let mut cursor = Cursor::default();
    let mut found = None;
    for chunk in log.chunks(4096) {
        m.push(chunk);
        if let Some(f) = m.find(&mut cursor, &refs) {
            found = Some(f.index);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(found, Some(19), "the login prompt must be found");
    println!(
        "{:.1} MiB in {:.3} s = {:.1} MiB/s, 20 patterns, 4 KiB chunks, buffer kept {} bytes",
        log.len() as f64 / (1 << 20) as f64,
        secs,
        log.len() as f64 / (1 << 20) as f64 / secs,
        m.pending().len()
    );
}
