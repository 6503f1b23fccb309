//! Plots for the evidence, rendered from templates (`templates/*.svg`, escaped by the
//! report's escaper like the page): the engine hands over what it measured, nothing drawn.

use askama::Template;

/// A dashed line.
struct Line {
    x1: String,
    y1: String,
    x2: String,
    y2: String,
}

/// An attempt: a dot (a wrong password) or a mark (the right one), at (x, y).
struct Point<'a> {
    x: String,
    y: String,
    n: usize,
    outcome: &'a str,
    t: String,
    color: &'static str,
}

#[derive(Template)]
#[template(path = "timeline.svg")]
struct Timeline<'a> {
    title: &'a str,
    w: f64,
    h: f64,
    pad: f64,
    base: f64,
    right: f64,
    below: f64,
    top_label: f64,
    t_max: String,
    count: usize,
    max_rate: u32,
    ceiling: Option<Line>,
    dots: Vec<Point<'a>>,
    marks: Vec<Point<'a>>,
}

/// The attempt timeline of a brute force: attempt number over time, the wrong passwords'
/// answers (`(seconds, outcome)`) as dots, the right password's tries as larger marks
/// (green: logged in, red: refused), and the ceiling rate (`max_rate` a minute) as a dashed
/// line from attempt `free_attempts` on.
pub fn timeline_svg(
    title: &str,
    answers: &[(f64, &str)],
    probes: &[(f64, &str)],
    max_rate: u32,
    free_attempts: usize,
) -> String {
    let (w, h, pad) = (640.0_f64, 240.0_f64, 36.0_f64);
    let t_max = answers
        .iter()
        .chain(probes)
        .map(|a| a.0)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let n_max = (answers.len() + 1) as f64;
    let x = |t: f64| pad + t / t_max * (w - 2.0 * pad);
    let y = |n: f64| h - pad - n / n_max * (h - 2.0 * pad);
    let ceiling = answers.get(free_attempts.saturating_sub(1)).map(|&(t10, _)| {
        let n_end = free_attempts as f64 + (t_max - t10) / 60.0 * f64::from(max_rate);
        Line {
            x1: format!("{:.1}", x(t10)),
            y1: format!("{:.1}", y(free_attempts as f64)),
            x2: format!("{:.1}", x(t_max)),
            y2: format!("{:.1}", y(n_end.min(n_max))),
        }
    });
    let dots = answers
        .iter()
        .enumerate()
        .map(|(i, (t, o))| Point {
            x: format!("{:.1}", x(*t)),
            y: format!("{:.1}", y((i + 1) as f64)),
            n: i + 1,
            outcome: o,
            t: format!("{t:.2}"),
            color: if *o == "rejected" { "#555" } else { "#d80" },
        })
        .collect();
    let marks = probes
        .iter()
        .map(|(t, o)| Point {
            x: format!("{:.1}", x(*t) - 3.5),
            y: format!("{:.1}", h - pad - 12.0),
            n: 0,
            outcome: o,
            t: format!("{t:.2}"),
            color: if *o == "accepted" { "#080" } else { "#c00" },
        })
        .collect();
    let page = Timeline {
        title,
        w,
        h,
        pad,
        base: h - pad,
        right: w - pad,
        below: h - pad + 14.0,
        top_label: pad + 4.0,
        t_max: format!("{t_max:.1}"),
        count: answers.len(),
        max_rate,
        ceiling,
        dots,
        marks,
    };
    page.render().unwrap_or_else(|e| {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><title>plot failed: {}</title></svg>\n",
            super::page::esc(&e.to_string())
        )
    })
}

/// A destination's name, at the left of its bars.
struct Row {
    y: String,
    label: String,
}

/// One phase's bar for one destination.
struct Bar<'a> {
    y: String,
    w: String,
    color: &'static str,
    host: &'a str,
    phase: &'a str,
    bytes: u64,
    flows: usize,
    lookups: usize,
}

struct Key<'a> {
    x: f64,
    tx: f64,
    color: &'static str,
    name: &'a str,
}

#[derive(Template)]
#[template(path = "consent.svg")]
struct ConsentPlot<'a> {
    title: &'a str,
    w: f64,
    h: f64,
    left: f64,
    max: u64,
    legend: Vec<Key<'a>>,
    rows: Vec<Row>,
    bars: Vec<Bar<'a>>,
}

/// What one destination got in one phase: (bytes, flows, lookups).
pub type PhaseVolume = (u64, usize, usize);

/// The consent phases as bars: per destination, one bar per phase (`phases`: the phase
/// names; `volumes`: per destination, its host and one volume per phase), bytes to scale;
/// a phase with lookups or flows but no bytes still shows a sliver.
pub fn consent_svg(title: &str, phases: &[&str], volumes: &[(String, Vec<PhaseVolume>)]) -> String {
    const COLORS: [&str; 3] = ["#999", "#080", "#d60"];
    let (w, left, row) = (640.0_f64, 190.0_f64, 12.0 + 9.0 * phases.len() as f64);
    let h = 44.0 + row * volumes.len() as f64;
    let max = volumes
        .iter()
        .flat_map(|(_, v)| v.iter().map(|p| p.0))
        .max()
        .unwrap_or(0)
        .max(1);
    let legend = phases
        .iter()
        .enumerate()
        .map(|(i, name)| Key {
            x: 8.0 + 150.0 * i as f64,
            tx: 22.0 + 150.0 * i as f64,
            color: COLORS[i % COLORS.len()],
            name,
        })
        .collect();
    let mut rows = Vec::new();
    let mut bars = Vec::new();
    for (d, (host, v)) in volumes.iter().enumerate() {
        let top = 44.0 + row * d as f64;
        rows.push(Row {
            y: format!("{:.1}", top + 10.0),
            label: host.chars().take(30).collect(),
        });
        for (i, (bytes, flows, lookups)) in v.iter().enumerate().take(phases.len()) {
            let len = *bytes as f64 / max as f64 * (w - left - 12.0);
            let sliver = if *flows + *lookups > 0 { 2.0 } else { 0.0 };
            bars.push(Bar {
                y: format!("{:.1}", top + 9.0 * i as f64),
                w: format!("{:.1}", len.max(sliver)),
                color: COLORS[i % COLORS.len()],
                host,
                phase: phases[i],
                bytes: *bytes,
                flows: *flows,
                lookups: *lookups,
            });
        }
    }
    let page = ConsentPlot {
        title,
        w,
        h,
        left,
        max,
        legend,
        rows,
        bars,
    };
    page.render().unwrap_or_else(|e| {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><title>plot failed: {}</title></svg>\n",
            super::page::esc(&e.to_string())
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_timeline_plot_is_svg_with_every_attempt_and_escaped_text() {
        let answers: Vec<(f64, &str)> = (1..=12).map(|i| (f64::from(i) * 0.1, "rejected")).collect();
        let svg = super::timeline_svg("t <&>", &answers, &[(1.5, "accepted")], 10, 10);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{svg}");
        assert!(
            svg.contains("t &lt;&amp;&gt;") && !svg.contains("t <&>"),
            "the title is escaped"
        );
        assert_eq!(svg.matches("<circle").count(), 12, "a dot per wrong password");
        assert_eq!(svg.matches("fill=\"#080\"").count(), 1, "the right password, taken");
        assert!(
            svg.contains("<title>ceiling 10/min</title>"),
            "the ceiling from the tenth attempt"
        );
        assert!(svg.contains("#12 rejected at 1.20 s"), "{svg}");
        // fewer attempts than the free ones: no ceiling
        let few = super::timeline_svg("t", &answers[..3], &[], 10, 10);
        assert!(!few.contains("ceiling") && few.matches("<circle").count() == 3);
    }

    #[test]
    fn the_consent_plot_has_a_bar_per_destination_and_phase_and_escapes_names() {
        let svg = super::consent_svg(
            "consent <&>",
            &["before consent", "with consent", "after withdrawal"],
            &[
                ("analytics.example".into(), vec![(0, 0, 0), (1000, 3, 6), (0, 0, 0)]),
                ("<evil>".into(), vec![(10, 1, 0), (10, 1, 0), (10, 1, 0)]),
            ],
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        assert_eq!(svg.matches("fill=\"#080\"").count(), 3, "{svg}");
        assert!(
            svg.contains("analytics.example, with consent: 1000 bytes, 3 flows, 6 lookups"),
            "{svg}"
        );
        assert!(!svg.contains("<evil>") && svg.contains("&lt;evil&gt;"), "{svg}");
        assert!(svg.contains("consent &lt;&amp;&gt;"), "{svg}");
    }
}
