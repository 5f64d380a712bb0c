//! `wrk`'s figures: what every load bench reads from `wrk --latency`.

/// One `wrk` run's figures.
#[derive(Debug, Default, Clone)]
pub struct Run {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub requests: u64,
}

/// A latency as `wrk` prints it (`812.00us`, `1.20ms`, `2.01s`), in milliseconds.
pub fn parse_ms(v: &str) -> f64 {
    let v = v.trim();
    if let Some(x) = v.strip_suffix("us") {
        x.parse::<f64>().unwrap_or(0.0) / 1000.0
    } else if let Some(x) = v.strip_suffix("ms") {
        x.parse().unwrap_or(0.0)
    } else if let Some(x) = v.strip_suffix('s') {
        x.parse::<f64>().unwrap_or(0.0) * 1000.0
    } else {
        0.0
    }
}

/// The figures of `wrk --latency` output.
pub fn parse_wrk(text: &str) -> Run {
    let mut run = Run::default();
    for line in text.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            run.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = t.strip_prefix("50%") {
            run.p50_ms = parse_ms(v);
        } else if let Some(v) = t.strip_prefix("99%") {
            run.p99_ms = parse_ms(v);
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            run.errors += v.trim().parse::<u64>().unwrap_or(0);
        } else if t.starts_with("Socket errors:") {
            run.errors += t
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u64>().ok())
                .sum::<u64>();
        } else if t.contains("requests in") {
            run.requests = t
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
    }
    assert!(run.requests > 0, "wrk made no requests: {text}");
    run
}
