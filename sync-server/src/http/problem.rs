//! `application/problem+json` responses and a JSON extractor whose rejections are problems too,
//! so even a malformed body answers in the API's own shape.

use crate::service::ApiError;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use doorstep_shared::{Problem, ProblemCode};

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem::new(self.code, self.detail);
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut res = (status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = self.retry_after_s {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}

/// A JSON body; any rejection becomes a problem with a stable code.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(req.headers())?;
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(ProblemCode::PayloadTooLarge, e.body_text()))?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn require_json(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::new(
            ProblemCode::UnsupportedMediaType,
            format!(
                "expected Content-Type application/json, got {:?}",
                if ct.is_empty() { "(none)" } else { ct }
            ),
        ))
    }
}

pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::new(ProblemCode::MalformedRequest, e.to_string()))
}

impl IntoResponse for ApiJsonOut {
    fn into_response(self) -> Response {
        let mut res = (self.0, self.1).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        res
    }
}

/// A pre-serialised JSON response (used to replay idempotent answers byte for byte).
pub struct ApiJsonOut(pub StatusCode, pub String);
