//! Push body encodings: identity, gzip, zstd.

use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Identity,
    Gzip,
    #[default]
    Zstd,
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("{encoding:?} body does not decode: {source}")]
    Corrupt {
        encoding: Encoding,
        source: std::io::Error,
    },
    #[error("decoded body is larger than {limit} bytes")]
    TooLarge { limit: usize },
}

impl Encoding {
    /// The `Content-Encoding` header value, `None` for identity.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Self::Identity => None,
            Self::Gzip => Some("gzip"),
            Self::Zstd => Some("zstd"),
        }
    }

    pub fn from_header(value: Option<&str>) -> Option<Self> {
        match value.map(str::trim) {
            None | Some("" | "identity") => Some(Self::Identity),
            Some("gzip") => Some(Self::Gzip),
            Some("zstd") => Some(Self::Zstd),
            Some(_) => None,
        }
    }

    pub fn encode(self, raw: &[u8]) -> Vec<u8> {
        match self {
            Self::Identity => raw.to_vec(),
            Self::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(raw.len() / 4),
                    flate2::Compression::default(),
                );
                // Writing into a Vec cannot fail.
                if enc.write_all(raw).is_err() {
                    return raw.to_vec();
                }
                enc.finish().unwrap_or_default()
            }
            Self::Zstd => zstd::bulk::compress(raw, 3).unwrap_or_default(),
        }
    }

    /// Decodes at most `limit` bytes (a decompression bomb stops there).
    pub fn decode(self, body: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
        let corrupt = |source| CodecError::Corrupt {
            encoding: self,
            source,
        };
        let mut out = Vec::new();
        let read = match self {
            Self::Identity => {
                out.extend_from_slice(body);
                body.len()
            }
            Self::Gzip => flate2::read::GzDecoder::new(body)
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(corrupt)?,
            Self::Zstd => zstd::stream::read::Decoder::new(body)
                .map_err(corrupt)?
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(corrupt)?,
        };
        if read > limit {
            return Err(CodecError::TooLarge { limit });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_encoding_round_trips_and_compresses_json() {
        let raw = br#"{"kind":"parcel_scanned","payload":{"parcel":"PKG-0001"}}"#.repeat(50);
        for enc in [Encoding::Identity, Encoding::Gzip, Encoding::Zstd] {
            let body = enc.encode(&raw);
            assert_eq!(enc.decode(&body, 1 << 20).unwrap(), raw, "{enc:?}");
            if enc != Encoding::Identity {
                assert!(body.len() * 5 < raw.len(), "{enc:?} {}", body.len());
            }
        }
    }

    #[test]
    fn decode_stops_at_the_limit_and_refuses_garbage() {
        let raw = vec![b'a'; 10_000];
        let body = Encoding::Zstd.encode(&raw);
        assert!(matches!(
            Encoding::Zstd.decode(&body, 100),
            Err(CodecError::TooLarge { limit: 100 })
        ));
        assert!(Encoding::Gzip.decode(b"not gzip", 100).is_err());
        assert_eq!(Encoding::from_header(Some("br")), None);
        assert_eq!(Encoding::from_header(None), Some(Encoding::Identity));
    }
}
