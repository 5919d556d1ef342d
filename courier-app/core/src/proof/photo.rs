//! The photo pipeline: a camera or file-picker image in, a bounded full photo and a thumbnail
//! out, both re-encoded JPEG with their SHA-256 digests.
//!
//! **Invariants:**
//! - Nothing is decoded before its header has been checked against hard limits: width, height
//!   and the pixel buffer are reserved against [`PhotoLimits`] first. The `into_decoder` path
//!   of `image` does not apply its default allocation limit by itself, so the limits are set
//!   on the decoder and the buffer size is reserved explicitly.
//! - Re-encoding strips every metadata segment (EXIF, GPS, maker notes): the only location a
//!   proof carries is the app's own fix.
//! - The image is resized before the EXIF orientation is applied (rotating 12 MP is slow).

use doorstep_shared::BlobDigest;
use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, Limits};
use std::io::Cursor;

/// Longest side of the full photo kept as evidence.
pub const FULL_MAX_SIDE: u32 = 1600;
/// Longest side of the thumbnail dispatchers see first.
pub const THUMB_MAX_SIDE: u32 = 320;
const JPEG_QUALITY: u8 = 82;

/// Hard limits applied before any pixel is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhotoLimits {
    pub max_width: u32,
    pub max_height: u32,
    /// Bytes the decoder may allocate, the decoded pixel buffer included.
    pub max_alloc: u64,
    /// Largest input file accepted.
    pub max_input_bytes: usize,
}

impl Default for PhotoLimits {
    /// Room for a 48 MP phone camera (8192 × 6144 RGB is 151 MB), and not more.
    fn default() -> Self {
        Self {
            max_width: 8192,
            max_height: 8192,
            max_alloc: 192 * 1024 * 1024,
            max_input_bytes: 40 * 1024 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhotoError {
    #[error("the file is not a JPEG or PNG image")]
    UnsupportedFormat,
    #[error(
        "the image claims {width} × {height} px, more than the {max_width} × {max_height} allowed"
    )]
    TooLarge {
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
    },
    #[error("decoding needs {needed} bytes, more than the {limit} allowed")]
    TooMuchMemory { needed: u64, limit: u64 },
    #[error("a decoding limit was exceeded: {0}")]
    LimitExceeded(String),
    #[error("the file is {size} bytes, more than the {limit} allowed")]
    FileTooLarge { size: usize, limit: usize },
    #[error("the image is damaged or truncated: {0}")]
    Corrupt(String),
    #[error("re-encoding failed: {0}")]
    Encode(String),
}

/// One re-encoded JPEG and its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedImage {
    pub bytes: Vec<u8>,
    pub digest: BlobDigest,
    pub width: u32,
    pub height: u32,
}

impl EncodedImage {
    fn encode(img: &DynamicImage) -> Result<Self, PhotoError> {
        let rgb = img.to_rgb8();
        let mut bytes = Vec::with_capacity(rgb.len() / 8);
        JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY)
            .encode_image(&rgb)
            .map_err(|e| PhotoError::Encode(e.to_string()))?;
        Ok(Self {
            digest: BlobDigest::of(&bytes),
            width: rgb.width(),
            height: rgb.height(),
            bytes,
        })
    }
}

/// A processed proof photo: the evidence copy and its thumbnail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessedPhoto {
    pub full: EncodedImage,
    pub thumbnail: EncodedImage,
}

fn classify(e: ImageError) -> PhotoError {
    match e {
        ImageError::Unsupported(_) => PhotoError::UnsupportedFormat,
        ImageError::Limits(l) => PhotoError::LimitExceeded(l.to_string()),
        other => PhotoError::Corrupt(other.to_string()),
    }
}

/// Decodes `input` under `limits`, applies its orientation and produces the full photo and the
/// thumbnail.
pub fn process_photo(input: &[u8], limits: &PhotoLimits) -> Result<ProcessedPhoto, PhotoError> {
    if input.len() > limits.max_input_bytes {
        return Err(PhotoError::FileTooLarge {
            size: input.len(),
            limit: limits.max_input_bytes,
        });
    }
    let reader = ImageReader::new(Cursor::new(input))
        .with_guessed_format()
        .map_err(|e| PhotoError::Corrupt(e.to_string()))?;
    if !matches!(
        reader.format(),
        Some(image::ImageFormat::Jpeg | image::ImageFormat::Png)
    ) {
        return Err(PhotoError::UnsupportedFormat);
    }
    let mut decoder = reader.into_decoder().map_err(classify)?;
    let (width, height) = decoder.dimensions();
    if width > limits.max_width || height > limits.max_height {
        return Err(PhotoError::TooLarge {
            width,
            height,
            max_width: limits.max_width,
            max_height: limits.max_height,
        });
    }
    let mut lim = Limits::default();
    lim.max_image_width = Some(limits.max_width);
    lim.max_image_height = Some(limits.max_height);
    lim.max_alloc = Some(limits.max_alloc);
    let needed = decoder.total_bytes();
    if lim.reserve(needed).is_err() {
        return Err(PhotoError::TooMuchMemory {
            needed,
            limit: limits.max_alloc,
        });
    }
    decoder.set_limits(lim).map_err(classify)?;
    let orientation = decoder.orientation().map_err(classify)?;
    let decoded = DynamicImage::from_decoder(decoder).map_err(classify)?;
    let mut full = if decoded.width().max(decoded.height()) > FULL_MAX_SIDE {
        decoded.resize(FULL_MAX_SIDE, FULL_MAX_SIDE, FilterType::Triangle)
    } else {
        decoded
    };
    full.apply_orientation(orientation);
    let thumb = full.resize(THUMB_MAX_SIDE, THUMB_MAX_SIDE, FilterType::Triangle);
    Ok(ProcessedPhoto {
        full: EncodedImage::encode(&full)?,
        thumbnail: EncodedImage::encode(&thumb)?,
    })
}
