//! Enrollment: exchange a one-time code for the device's identity and token.

use crate::device::{Device, DeviceError};
use crate::outbox::Identity;
use crate::sync::classify::{Sent, Terminal, Verdict, classify};
use crate::transport::{Encoding, Request, Transport, TransportError};
use doorstep_shared::protocol::{EnrollRequest, EnrollResponse};

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("enrollment failed, try again: {0}")]
    Transient(String),
    #[error("the server refused the enrollment: {0}")]
    Refused(String),
    #[error(transparent)]
    Device(#[from] DeviceError),
}

/// Enrolls `device` and stores the identity in its outbox.
pub async fn enroll(
    device: &Device,
    transport: &dyn Transport,
    request: &EnrollRequest,
) -> Result<Identity, EnrollError> {
    // The evidence key is created here, once; the server registers its public half.
    let mut request = request.clone();
    if request.public_key.is_none() {
        request.public_key = Some(device.with_outbox(|o| o.evidence_public_key())?);
    }
    let body = serde_json::to_vec(&request).map_err(|e| EnrollError::Refused(e.to_string()))?;
    let answer: Result<_, TransportError> =
        transport.send(Request::Enroll { body: body.into() }).await;
    let sent = Sent {
        batch_events: 0,
        encoding: Encoding::Identity,
    };
    match classify::<EnrollResponse>(&answer, sent) {
        Verdict::Answered(r) => {
            let identity = Identity {
                device_id: r.device_id,
                courier_id: r.courier_id,
                token: r.token,
            };
            device.set_identity(&identity)?;
            Ok(identity)
        }
        Verdict::Transient { reason, .. } => Err(EnrollError::Transient(reason)),
        Verdict::Recoverable(r) => Err(EnrollError::Refused(format!("{r:?}"))),
        Verdict::Terminal(Terminal::Reenroll) => Err(EnrollError::Refused(
            "the enrollment code is invalid".into(),
        )),
        Verdict::Terminal(Terminal::Blocked { detail, .. }) => Err(EnrollError::Refused(detail)),
    }
}
