//! The photo pipeline on real JPEG files generated here: EXIF orientations 1–8, size bounds,
//! metadata stripping, and hostile files rejected fast with bounded memory.

use courier_core::proof::{PhotoError, PhotoLimits, process_photo};
use image::codecs::jpeg::JpegEncoder;
use image::{ImageReader, Rgb, RgbImage};
use std::io::Cursor;
use std::time::{Duration, Instant};

const RED: Rgb<u8> = Rgb([220, 20, 20]);
const BLUE: Rgb<u8> = Rgb([20, 20, 220]);

/// An upright 80 × 40 picture: red top-left quadrant, blue elsewhere.
fn upright() -> RgbImage {
    RgbImage::from_fn(80, 40, |x, y| if x < 40 && y < 20 { RED } else { BLUE })
}

fn jpeg(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 95)
        .encode_image(img)
        .expect("encode test jpeg");
    out
}

/// A big-endian TIFF EXIF APP1 segment with one IFD0 entry: Orientation (0x0112) = `o`,
/// plus a GPS-looking maker string so stripping can be checked.
fn exif_app1(o: u16) -> Vec<u8> {
    let mut tiff = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes());
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&o.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    tiff.extend_from_slice(b"SECRET-GPS-52.52N");
    let mut seg = vec![0xFF, 0xE1];
    let len = (2 + 6 + tiff.len()) as u16;
    seg.extend_from_slice(&len.to_be_bytes());
    seg.extend_from_slice(b"Exif\x00\x00");
    seg.extend_from_slice(&tiff);
    seg
}

fn with_exif(jpeg: &[u8], o: u16) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend_from_slice(&exif_app1(o));
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn transpose(img: &RgbImage) -> RgbImage {
    RgbImage::from_fn(img.height(), img.width(), |x, y| *img.get_pixel(y, x))
}

fn flip_h(img: &RgbImage) -> RgbImage {
    let w = img.width();
    RgbImage::from_fn(w, img.height(), |x, y| *img.get_pixel(w - 1 - x, y))
}

fn flip_v(img: &RgbImage) -> RgbImage {
    let h = img.height();
    RgbImage::from_fn(img.width(), h, |x, y| *img.get_pixel(x, h - 1 - y))
}

/// What a camera stores for orientation `o` when the scene is `up` (EXIF 2.3, tag 0x0112):
/// the stored pixels are the inverse of the display transform.
fn stored_for(up: &RgbImage, o: u16) -> RgbImage {
    match o {
        1 => up.clone(),
        2 => flip_h(up),
        3 => flip_v(&flip_h(up)),
        4 => flip_v(up),
        5 => transpose(up),
        6 => flip_v(&transpose(up)), // display rotates 90° clockwise
        7 => flip_h(&flip_v(&transpose(up))),
        8 => flip_h(&transpose(up)), // display rotates 90° counter-clockwise
        _ => unreachable!(),
    }
}

fn close(a: Rgb<u8>, b: Rgb<u8>) -> bool {
    a.0.iter()
        .zip(b.0.iter())
        .all(|(x, y)| (*x as i32 - *y as i32).abs() < 60)
}

#[test]
fn every_exif_orientation_comes_out_upright_and_stripped() {
    let up = upright();
    for o in 1..=8u16 {
        let file = with_exif(&jpeg(&stored_for(&up, o)), o);
        let out = process_photo(&file, &PhotoLimits::default())
            .unwrap_or_else(|e| panic!("orientation {o}: {e}"));
        let img = image::load_from_memory(&out.full.bytes)
            .expect("decode output")
            .to_rgb8();
        assert_eq!((img.width(), img.height()), (80, 40), "orientation {o}");
        assert!(
            close(*img.get_pixel(10, 5), RED),
            "orientation {o}: top-left"
        );
        assert!(
            close(*img.get_pixel(70, 5), BLUE),
            "orientation {o}: top-right"
        );
        assert!(
            close(*img.get_pixel(10, 35), BLUE),
            "orientation {o}: bottom-left"
        );
        let stripped = !out.full.bytes.windows(10).any(|w| w == b"SECRET-GPS")
            && !out.full.bytes.windows(6).any(|w| w == b"Exif\0\0");
        assert!(stripped, "orientation {o}: metadata survived");
        assert_eq!(
            out.full.digest,
            doorstep_shared::BlobDigest::of(&out.full.bytes)
        );
    }
}

#[test]
fn large_photos_are_bounded_and_get_a_thumbnail() {
    let big = RgbImage::from_fn(3000, 2000, |x, y| {
        Rgb([(x % 251) as u8, (y % 241) as u8, 90])
    });
    let out = process_photo(&jpeg(&big), &PhotoLimits::default()).expect("process");
    assert_eq!((out.full.width, out.full.height), (1600, 1067));
    assert_eq!(out.thumbnail.width, 320);
    assert!(out.thumbnail.height <= 320);
    let fmt = ImageReader::new(Cursor::new(&out.thumbnail.bytes))
        .with_guessed_format()
        .expect("read")
        .format();
    assert_eq!(fmt, Some(image::ImageFormat::Jpeg));
    assert_ne!(out.full.digest, out.thumbnail.digest);
}

/// A valid 16 × 16 JPEG whose SOF header is patched to claim `w` × `h`.
fn claiming(w: u16, h: u16) -> Vec<u8> {
    let mut f = jpeg(&RgbImage::from_pixel(16, 16, BLUE));
    let sof = f
        .windows(2)
        .position(|m| m == [0xFF, 0xC0])
        .expect("baseline SOF0");
    f[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    f[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    f
}

#[cfg(target_os = "linux")]
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn hostile_files_are_rejected_fast_with_bounded_memory_and_nothing_else_is_lost() {
    #[cfg(target_os = "linux")]
    let before = peak_rss_kib();
    let limits = PhotoLimits::default();
    let started = Instant::now();

    let huge = claiming(65_500, 65_500);
    assert!(
        huge.len() < 1_000,
        "the hostile file is tiny: {}",
        huge.len()
    );
    assert!(matches!(
        process_photo(&huge, &limits),
        Err(PhotoError::TooLarge {
            width: 65_500,
            height: 65_500,
            ..
        })
    ));
    // Inside the per-side limit but over the allocation budget.
    let tight = PhotoLimits {
        max_alloc: 1024 * 1024,
        ..limits
    };
    assert!(matches!(
        process_photo(&claiming(8000, 8000), &tight),
        Err(PhotoError::TooMuchMemory { .. })
    ));
    // Wrong magic bytes.
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&[0; 64]);
    assert_eq!(
        process_photo(&gif, &limits),
        Err(PhotoError::UnsupportedFormat)
    );
    assert_eq!(
        process_photo(b"hello, not an image at all", &limits),
        Err(PhotoError::UnsupportedFormat)
    );
    // Truncated in the middle of the scan data.
    let good = jpeg(&upright());
    let cut = &good[..good.len() / 2];
    assert!(
        matches!(
            process_photo(cut, &limits),
            Err(PhotoError::Corrupt(_) | PhotoError::LimitExceeded(_))
        ) || process_photo(cut, &limits).is_ok_and(|p| p.full.width == 80)
    );
    assert!(matches!(
        process_photo(&good[..40], &limits),
        Err(PhotoError::Corrupt(_))
    ));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "hostile files took {:?}",
        started.elapsed()
    );
    #[cfg(target_os = "linux")]
    {
        let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
        assert!(grown_mib < 64, "peak memory grew by {grown_mib} MiB");
    }
    // Nothing else is lost: the next good photo goes through.
    assert!(process_photo(&good, &limits).is_ok());
}
