//! Parsers for the benchmark formats of `shared/bench/routing`. Each returns an
//! [`Instance`] under the conventions of that folder's README, or a [`FormatError`] that
//! says what is wrong and where. They take the file's text, not a path: reading files is
//! the caller's business (see [`crate::cli`]).

pub mod solomon;
pub mod tsplib;
pub mod tsptw;

use crate::instance::{Instance, InstanceError};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("unexpected end of file: expected {0}")]
    Truncated(&'static str),
    #[error("line {line}: cannot read {what} from {token:?}")]
    BadNumber {
        line: usize,
        what: &'static str,
        token: String,
    },
    #[error("missing header field {0}")]
    MissingField(&'static str),
    #[error("unsupported {field}: {value}")]
    Unsupported { field: &'static str, value: String },
    #[error("line {line}: {message}")]
    Invalid { line: usize, message: String },
    #[error("could not tell the format of {0:?} (expected TSPTW, Solomon .vrp or TSPLIB)")]
    UnknownFormat(String),
    #[error(transparent)]
    Instance(#[from] InstanceError),
}

/// Guesses the format from the content (a TSPTW file starts with a bare number; a VRPLIB
/// Solomon file has a TIME_WINDOW_SECTION) and parses it.
pub fn parse_any(name: &str, text: &str) -> Result<Instance, FormatError> {
    let first = text
        .split_whitespace()
        .next()
        .ok_or(FormatError::Truncated("a header"))?;
    if first.parse::<i64>().is_ok() {
        tsptw::parse(name, text)
    } else if text.contains("TIME_WINDOW_SECTION") {
        solomon::parse(name, text)
    } else if text.contains("NODE_COORD_SECTION") {
        tsplib::parse(name, text)
    } else {
        Err(FormatError::UnknownFormat(name.to_owned()))
    }
}

/// Whitespace tokens with their 1-based line numbers, skipping `#` comment lines.
pub(crate) struct Tokens<'a> {
    inner: Box<dyn Iterator<Item = (usize, &'a str)> + 'a>,
}

impl<'a> Tokens<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let inner = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim_start().starts_with('#'))
            .flat_map(|(i, l)| l.split_whitespace().map(move |t| (i + 1, t)));
        Self {
            inner: Box::new(inner),
        }
    }

    pub(crate) fn next_tok(&mut self, what: &'static str) -> Result<(usize, &'a str), FormatError> {
        self.inner.next().ok_or(FormatError::Truncated(what))
    }

    pub(crate) fn next_i64(&mut self, what: &'static str) -> Result<i64, FormatError> {
        let (line, tok) = self.next_tok(what)?;
        parse_i64(line, what, tok)
    }

    pub(crate) fn rest_is_empty(&mut self) -> Option<(usize, &'a str)> {
        self.inner.next()
    }
}

/// Integers, also written as "12.00" by some generators (exact values only).
pub(crate) fn parse_i64(line: usize, what: &'static str, tok: &str) -> Result<i64, FormatError> {
    if let Ok(v) = tok.parse::<i64>() {
        return Ok(v);
    }
    match tok.parse::<f64>() {
        Ok(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 => Ok(v as i64),
        _ => Err(FormatError::BadNumber {
            line,
            what,
            token: tok.to_owned(),
        }),
    }
}

/// `KEY : VALUE` header lines of the TSPLIB / VRPLIB family, up to the first section.
pub(crate) fn header_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then_some(v.trim())
    })
}

/// The lines after `section` up to the next all-caps section keyword or EOF.
pub(crate) fn section<'a>(text: &'a str, section: &str) -> Option<Vec<(usize, &'a str)>> {
    let mut lines = text.lines().enumerate();
    lines.find(|(_, l)| l.trim() == section)?;
    Some(
        lines
            .take_while(|(_, l)| {
                let t = l.trim();
                !(t == "EOF" || t.ends_with("_SECTION"))
            })
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| (i + 1, l))
            .collect(),
    )
}
