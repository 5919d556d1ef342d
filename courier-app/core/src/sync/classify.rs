//! Every answer, classified. Transient (no answer, 408/429/5xx, an unreadable 2xx): retry with
//! backoff under the budget and breaker. Recoverable: change the request and go on at once
//! (split a batch the server found too large or invalid; drop compression it cannot read).
//! Terminal: no automatic retry, surface to the driver (401 → enroll again; anything else →
//! blocked with the server's code).

use crate::transport::{Encoding, RawResponse, TransportError};
use doorstep_shared::{FailureClass, Problem, ProblemCode};
use serde::de::DeserializeOwned;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Send the same events in smaller batches (413, or 400/422 on a multi-event batch).
    SplitBatch,
    /// The server cannot read our compression: send identity bodies.
    IdentityEncoding,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Terminal {
    /// 401: the token is gone; the device must enroll again.
    Reenroll,
    /// The server refuses this request as it is, and retrying will not change that.
    Blocked {
        status: u16,
        code: Option<ProblemCode>,
        detail: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Verdict<T> {
    Answered(T),
    Transient {
        retry_after: Option<Duration>,
        reason: String,
        /// The device itself had no network: the server saw nothing.
        offline: bool,
    },
    Recoverable(Recovery),
    Terminal(Terminal),
}

impl<T> Verdict<T> {
    /// `None` for a usable answer.
    pub fn class(&self) -> Option<FailureClass> {
        match self {
            Self::Answered(_) => None,
            Self::Transient { .. } => Some(FailureClass::Transient),
            Self::Recoverable(_) => Some(FailureClass::Recoverable),
            Self::Terminal(_) => Some(FailureClass::Terminal),
        }
    }
}

/// What was sent, as far as classification cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// Events in the batch; 0 for requests that are not pushes.
    pub batch_events: usize,
    pub encoding: Encoding,
}

pub fn classify<T: DeserializeOwned>(
    answer: &Result<RawResponse, TransportError>,
    sent: Sent,
) -> Verdict<T> {
    let resp = match answer {
        Err(e) => {
            return Verdict::Transient {
                retry_after: None,
                reason: e.to_string(),
                offline: matches!(e, TransportError::Offline),
            };
        }
        Ok(r) => r,
    };
    let transient = |reason: String| Verdict::Transient {
        retry_after: resp.retry_after,
        reason,
        offline: false,
    };
    if (200..300).contains(&resp.status) {
        return match serde_json::from_slice::<T>(&resp.body) {
            Ok(v) => Verdict::Answered(v),
            Err(e) => transient(format!("unreadable {} answer: {e}", resp.status)),
        };
    }
    let problem: Option<Problem> = serde_json::from_slice(&resp.body).ok();
    let code = problem.as_ref().map(|p| p.code);
    let detail = problem
        .as_ref()
        .map(|p| p.detail.clone().unwrap_or_else(|| p.title.clone()))
        .unwrap_or_else(|| format!("HTTP {}", resp.status));
    let multi = sent.batch_events > 1;
    match resp.status {
        401 => Verdict::Terminal(Terminal::Reenroll),
        408 | 429 | 500..=599 => transient(format!("HTTP {}: {detail}", resp.status)),
        400 if code == Some(ProblemCode::BadContentEncoding)
            && sent.encoding != Encoding::Identity =>
        {
            Verdict::Recoverable(Recovery::IdentityEncoding)
        }
        413 | 400 | 415 | 422 if multi => Verdict::Recoverable(Recovery::SplitBatch),
        status => Verdict::Terminal(Terminal::Blocked {
            status,
            code,
            detail,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_shared::protocol::PullResponse;

    fn problem(status: u16, code: ProblemCode) -> Result<RawResponse, TransportError> {
        Ok(RawResponse {
            status,
            retry_after: None,
            content_type: Some("application/problem+json".into()),
            body: serde_json::to_vec(&Problem::new(code, None))
                .unwrap()
                .into(),
        })
    }

    fn sent(n: usize) -> Sent {
        Sent {
            batch_events: n,
            encoding: Encoding::Zstd,
        }
    }

    fn class(answer: Result<RawResponse, TransportError>, n: usize) -> Verdict<PullResponse> {
        classify(&answer, sent(n))
    }

    #[test]
    fn network_failures_are_transient_and_offline_is_marked() {
        for e in [
            TransportError::Timeout,
            TransportError::Connect("refused".into()),
            TransportError::Io("reset".into()),
        ] {
            assert!(matches!(
                class(Err(e), 3),
                Verdict::Transient { offline: false, .. }
            ));
        }
        assert!(matches!(
            class(Err(TransportError::Offline), 3),
            Verdict::Transient { offline: true, .. }
        ));
    }

    #[test]
    fn retry_after_travels_with_429_and_503() {
        for status in [429, 503] {
            let mut r = problem(status, ProblemCode::RateLimited).unwrap();
            r.retry_after = Some(Duration::from_secs(9));
            let v = class(Ok(r), 1);
            assert!(
                matches!(v, Verdict::Transient { retry_after: Some(d), .. } if d.as_secs() == 9),
                "{status}: {v:?}"
            );
        }
    }

    #[test]
    fn garbage_and_5xx_are_transient() {
        assert!(matches!(
            class(Ok(RawResponse::json(200, "<html>proxy</html>")), 1),
            Verdict::Transient { .. }
        ));
        assert!(matches!(
            class(Ok(RawResponse::json(500, "boom")), 1),
            Verdict::Transient { .. }
        ));
    }

    #[test]
    fn request_errors_split_multi_event_batches_and_block_single_ones() {
        for (status, code) in [
            (413, ProblemCode::PayloadTooLarge),
            (400, ProblemCode::MalformedRequest),
            (422, ProblemCode::UnsupportedSchemaVersion),
            (415, ProblemCode::UnsupportedMediaType),
        ] {
            assert_eq!(
                class(problem(status, code), 2),
                Verdict::Recoverable(Recovery::SplitBatch)
            );
            assert!(matches!(
                class(problem(status, code), 1),
                Verdict::Terminal(Terminal::Blocked { code: Some(c), .. }) if c == code
            ));
        }
    }

    #[test]
    fn auth_and_encoding_problems() {
        assert_eq!(
            class(problem(401, ProblemCode::Unauthorized), 5),
            Verdict::Terminal(Terminal::Reenroll)
        );
        assert_eq!(
            class(problem(400, ProblemCode::BadContentEncoding), 5),
            Verdict::Recoverable(Recovery::IdentityEncoding)
        );
        assert!(matches!(
            class(problem(403, ProblemCode::DeviceMismatch), 5),
            Verdict::Terminal(Terminal::Blocked { status: 403, .. })
        ));
    }
}
