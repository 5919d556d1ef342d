//! Proof of delivery on the device: the photo pipeline ([`photo`]) and the re-export of the
//! device's evidence key API (`crate::outbox::evidence`). Signing happens inside the outbox transaction that assigns
//! the event's HLC stamp, so the signed time and chain link are exactly those of the event.

pub mod capture;
pub mod photo;

pub use capture::CaptureError;
pub use photo::{EncodedImage, PhotoError, PhotoLimits, ProcessedPhoto, process_photo};
