//! Push bodies: size-limited on the wire, then decompressed (gzip or zstd) into a buffer that
//! is size-limited again, so a compression bomb costs at most the decoded limit.

use crate::service::ApiError;
use axum::body::Body;
use axum::http::{HeaderMap, header};
use doorstep_shared::ProblemCode;
use std::io::Read;

fn too_large(what: &str, limit: usize) -> ApiError {
    ApiError::new(
        ProblemCode::PayloadTooLarge,
        format!("{what} exceeds {limit} bytes"),
    )
}

/// How much of an oversized body is read and thrown away before answering 413. An HTTP/1.1
/// client writes the whole body before it reads the answer: a server that answers early and
/// closes the connection leaves it with a broken pipe instead of the documented 413 (and a
/// device would retry that as a network failure forever). Past this, the connection is dropped.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Reads at most `limit` bytes of the body; a longer body is drained (up to [`DRAIN_LIMIT`],
/// without keeping it) and answered with 413.
pub async fn read_limited(
    mut body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    use axum::body::HttpBody;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return Err(too_large("request body", limit));
    }
    let mut buf = bytes::BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    let (mut seen, mut over) = (0usize, declared.is_some_and(|n| n > limit));
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let Ok(data) = frame
            .map_err(|_| ApiError::new(ProblemCode::MalformedRequest, "request body broke off"))?
            .into_data()
        else {
            continue; // trailers
        };
        seen += data.len();
        if seen > DRAIN_LIMIT {
            return Err(too_large("request body", limit));
        }
        if !over && seen > limit {
            over = true;
            buf = bytes::BytesMut::new();
        }
        if !over {
            buf.extend_from_slice(&data);
        }
    }
    if over {
        return Err(too_large("request body", limit));
    }
    Ok(buf.freeze())
}

/// Decodes `Content-Encoding` (identity, gzip, zstd) with a cap on the decoded size.
pub fn decode(headers: &HeaderMap, raw: bytes::Bytes, limit: usize) -> Result<Vec<u8>, ApiError> {
    let enc = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let mut out = Vec::new();
    let read = match enc.as_str() {
        "" | "identity" => return Ok(raw.to_vec()),
        "gzip" | "x-gzip" => flate2::read::GzDecoder::new(&raw[..])
            .take(limit as u64 + 1)
            .read_to_end(&mut out),
        "zstd" => match zstd::stream::read::Decoder::new(&raw[..]) {
            Ok(d) => d.take(limit as u64 + 1).read_to_end(&mut out),
            Err(e) => Err(e),
        },
        other => {
            return Err(ApiError::new(
                ProblemCode::BadContentEncoding,
                format!("Content-Encoding {other:?} is not supported (use gzip or zstd)"),
            ));
        }
    };
    if let Err(e) = read {
        return Err(ApiError::new(
            ProblemCode::BadContentEncoding,
            format!("{enc} body does not decode: {e}"),
        ));
    }
    if out.len() > limit {
        return Err(too_large("decompressed request body", limit));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use std::io::Write;

    fn headers(enc: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_str(enc).unwrap(),
        );
        h
    }

    #[test]
    fn gzip_bomb_is_cut_at_the_limit() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b' '; 10 * 1024 * 1024]).unwrap();
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 64 * 1024);
        let err = decode(&headers("gzip"), bomb.into(), 1024 * 1024).unwrap_err();
        assert_eq!(err.code, ProblemCode::PayloadTooLarge);
    }

    #[test]
    fn zstd_round_trips_and_garbage_is_a_clear_error() {
        let z = zstd::encode_all(&b"{\"a\":1}"[..], 3).unwrap();
        assert_eq!(
            decode(&headers("zstd"), z.into(), 1024).unwrap(),
            b"{\"a\":1}"
        );
        let err = decode(
            &headers("gzip"),
            bytes::Bytes::from_static(b"not gzip"),
            1024,
        )
        .unwrap_err();
        assert_eq!(err.code, ProblemCode::BadContentEncoding);
        let err = decode(&headers("br"), bytes::Bytes::from_static(b"x"), 1024).unwrap_err();
        assert_eq!(err.code, ProblemCode::BadContentEncoding);
    }
}
