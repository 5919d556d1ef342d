//! `application/problem+json` responses and a JSON extractor whose rejections are problems too,
//! so even a malformed body answers in the API's own shape.

use crate::service::ApiError;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
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
            .map_err(|e| ApiError::new(code_for_status(e.status()), e.body_text()))?;
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

/// The stable code for a refusal that carries only an HTTP status.
fn code_for_status(status: StatusCode) -> ProblemCode {
    match status.as_u16() {
        401 => ProblemCode::Unauthorized,
        403 => ProblemCode::Forbidden,
        404 => ProblemCode::NotFound,
        405 => ProblemCode::MethodNotAllowed,
        413 => ProblemCode::PayloadTooLarge,
        415 => ProblemCode::UnsupportedMediaType,
        429 => ProblemCode::RateLimited,
        503 => ProblemCode::Unavailable,
        400..=499 => ProblemCode::MalformedRequest,
        _ => ProblemCode::Internal,
    }
}

fn is_problem(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/problem+json"))
}

/// Longest framework refusal text kept as the problem's `detail`.
const MAX_REFUSAL_DETAIL: usize = 4 * 1024;

/// The outermost layer: a refusal the framework answered on its own (unknown path, wrong
/// method, a path or query extractor's rejection, a body over an extractor's limit, a static
/// file that is missing) becomes a problem document with the stable code for its status, so
/// every error the server sends is `application/problem+json`. The framework's text is kept as
/// `detail`; `Allow` and `Retry-After` survive.
pub async fn problem_for_bare_refusals(res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || is_problem(res.headers()) {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, MAX_REFUSAL_DETAIL)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("refused").to_owned());
    let mut out = ApiError::new(code_for_status(status), text).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}
