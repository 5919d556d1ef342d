//! Capturing a proof of delivery: process the photo, queue its blobs (thumbnail first) in the
//! outbox, then record the proof event, which the outbox signs and chains. The event syncs on
//! its own; the blobs follow through [`crate::blobs::Uploader`].

use super::photo::{PhotoError, PhotoLimits, process_photo};
use crate::device::{Device, DeviceError};
use crate::outbox::{AppendOutcome, BlobKind};
use doorstep_shared::StopId;
use doorstep_shared::event::{EventPayload, GeoPoint, ProofCaptured};

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("the photo was refused: {0}")]
    Photo(#[from] PhotoError),
    #[error(transparent)]
    Device(#[from] DeviceError),
}

impl Device {
    /// Records a proof of delivery for `stop_id`'s `attempt` from a camera or file-picker
    /// image. `location` is the app's own fix (photo metadata is stripped, never trusted).
    pub fn capture_proof(
        &self,
        stop_id: StopId,
        attempt: u32,
        image: &[u8],
        recipient_name: Option<String>,
        location: Option<GeoPoint>,
    ) -> Result<AppendOutcome, CaptureError> {
        let _span = tracing::info_span!("capture_proof", stop_id = %stop_id).entered();
        let photo = process_photo(image, &PhotoLimits::default())?;
        let now = self.now_ms();
        let stop = Some(stop_id.to_string());
        self.with_outbox(|o| {
            o.enqueue_blob(
                &photo.thumbnail.digest,
                &photo.thumbnail.bytes,
                BlobKind::Thumbnail,
                stop.clone(),
                now,
            )?;
            o.enqueue_blob(
                &photo.full.digest,
                &photo.full.bytes,
                BlobKind::Photo,
                stop,
                now,
            )
        })?;
        let payload = EventPayload::ProofCaptured(ProofCaptured {
            stop_id,
            attempt,
            photos: vec![photo.full.digest],
            thumbnails: vec![photo.thumbnail.digest],
            recipient_name,
            location,
            signature: None,
        });
        Ok(self.record_fact(payload)?)
    }
}
