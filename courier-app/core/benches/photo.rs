//! The 12 MP photo pipeline: decode (with limits) → resize to 1600 px → orientation → JPEG,
//! plus the 320 px thumbnail and both digests. Target ≤ 600 ms per photo.
//! Run: `cargo bench -p courier-core --bench photo`; writes `target/bench/photo.json`.

use courier_core::proof::{PhotoLimits, process_photo};
use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};
use std::time::Instant;

const RUNS: usize = 7;
const TARGET_MS: f64 = 600.0;

/// A 4000 × 3000 camera-like JPEG (smooth gradients with fine texture), quality 90.
fn twelve_megapixels() -> Vec<u8> {
    let img = RgbImage::from_fn(4000, 3000, |x, y| {
        let t = ((x * 7 + y * 13) % 17) as u8;
        Rgb([
            (x / 16 % 256) as u8 ^ t,
            (y / 12 % 256) as u8,
            ((x + y) / 28 % 256) as u8 ^ (t << 2),
        ])
    });
    let mut out = Vec::new();
    if let Err(e) = JpegEncoder::new_with_quality(&mut out, 90).encode_image(&img) {
        eprintln!("cannot encode the input: {e}");
        std::process::exit(1);
    }
    out
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn main() {
    let input = twelve_megapixels();
    let before = peak_rss_mib();
    let limits = PhotoLimits::default();
    let mut ms = Vec::with_capacity(RUNS);
    let mut sizes = (0, 0);
    for _ in 0..RUNS {
        let t = Instant::now();
        match process_photo(&input, &limits) {
            Ok(p) => sizes = (p.full.bytes.len(), p.thumbnail.bytes.len()),
            Err(e) => {
                eprintln!("pipeline failed: {e}");
                std::process::exit(1);
            }
        }
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let median = ms[RUNS / 2];
    let report = serde_json::json!({
        "bench": "photo_pipeline_12mp",
        "input": {"width": 4000, "height": 3000, "jpeg_bytes": input.len()},
        "runs": RUNS,
        "median_ms": median,
        "min_ms": ms[0],
        "max_ms": ms[RUNS - 1],
        "target_ms": TARGET_MS,
        "meets_target": median <= TARGET_MS,
        "full_jpeg_bytes": sizes.0,
        "thumbnail_jpeg_bytes": sizes.1,
        "peak_rss_mib_before_pipeline": before,
        "peak_rss_mib": peak_rss_mib(),
    });
    println!("{report:#}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("photo.json"), format!("{report:#}\n")));
    if let Err(e) = written {
        eprintln!("cannot write target/bench/photo.json: {e}");
    }
}
