//! The HTML run report opens in a browser with no network and draws its
//! charts: a headless Chromium screenshot has the charts' colours in it.

use std::path::Path;
use std::process::Command;

use crate::ingest::{generate, ingest};

/// Pixels of the screenshot in exactly this colour.
fn pixels_of(png: &Path, rgb: [u8; 3]) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png).expect("screenshot"),
    ));
    let mut reader = decoder.read_info().expect("png");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("frame");
    let step = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(step)
        .filter(|p| p[..3] == rgb)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_report_renders_its_charts_in_headless_chromium() {
    let feeds = tempfile::tempdir().expect("tmp");
    let warehouse = tempfile::tempdir().expect("tmp");
    generate(feeds.path(), 200);
    let run = ingest(feeds.path(), warehouse.path()).await;
    let report = warehouse
        .path()
        .join(run.report.as_deref().expect("report written"));
    let html = std::fs::read_to_string(&report).expect("report");
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));
    for id in ["colours", "changes", "feeds", "quarantine", "coverage"] {
        assert!(
            html.contains(&format!("<svg id=\"{id}\"")),
            "chart {id} missing"
        );
    }
    // Hits per rule under the rules' Chinese titles and dimension names.
    assert!(
        html.contains("<h2>Hits by rule</h2>")
            && html.contains("运行管理")
            && html.contains("年检不合格"),
        "hits by rule in Chinese"
    );
    let shot = tempfile::tempdir().expect("tmp");
    let png = shot.path().join("report.png");
    let profile = shot.path().join("profile");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1100,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", report.display()))
        .output()
        .expect("chromium (./scripts/test installs Debian's chromium)");
    assert!(
        png.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each chart drew its bars: the colour distribution (green), rows per
    // feed (landed blue), key coverage (teal), quarantine reasons (red).
    for (what, rgb) in [
        ("green codes", [0x2e, 0x7d, 0x32]),
        ("landed rows", [0x15, 0x65, 0xc0]),
        ("keyed rows", [0x00, 0x89, 0x7b]),
        ("quarantined rows", [0xc6, 0x28, 0x28]),
    ] {
        let n = pixels_of(&png, rgb);
        assert!(
            n > 500,
            "{what}: {n} pixels of #{:02x}{:02x}{:02x}",
            rgb[0],
            rgb[1],
            rgb[2]
        );
    }
}
