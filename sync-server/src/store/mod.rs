//! Storage. The trait, its models and the algorithms above it live in `doorstep-store`, which
//! knows no database driver; this module holds the backends that implement it and the choice
//! of backend from a database URL.
//!
//! **Invariant:** a backend applies each pushed event, its outcome and the device's
//! `last_applied_seq` atomically, as the push algorithm tells it — it never decides on its own.

pub mod postgres;
pub mod sqlite;

pub use doorstep_store::*;

/// A database URL, parsed once by the binary to choose the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH`
    SqliteFile(std::path::PathBuf),
    /// `sqlite::memory:` (tests and the deterministic simulator)
    SqliteMemory,
    /// `postgres://…` or `postgresql://…`, handed to the driver as it is.
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> StoreResult<Self> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            Ok(Self::SqliteFile(path.into()))
        } else if url == "sqlite::memory:" {
            Ok(Self::SqliteMemory)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else {
            Err(StoreError::UnsupportedUrl(Self::redact(url)))
        }
    }

    /// `url` without its password, for logs and error messages: the password of the user info
    /// and any `password=` query parameter become `***`. The user info ends at the last `@`
    /// before the query, so several hosts, or a `/` or `@` in an unencoded password, never
    /// leave part of it in the output.
    pub fn redact(url: &str) -> String {
        let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
            return url.to_owned();
        };
        let query_start = url[scheme_end..]
            .find('?')
            .map_or(url.len(), |i| scheme_end + i);
        let mut out = url[..scheme_end].to_owned();
        let rest = &url[scheme_end..query_start];
        match rest.rfind('@') {
            Some(at) => {
                let (userinfo, hosts) = rest.split_at(at);
                match userinfo.split_once(':') {
                    Some((user, _)) => out.push_str(&format!("{user}:***")),
                    None => out.push_str(userinfo),
                }
                out.push_str(hosts);
            }
            None => out.push_str(rest),
        }
        if query_start < url.len() {
            let params: Vec<String> = url[query_start + 1..]
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => param.to_owned(),
                })
                .collect();
            out.push('?');
            out.push_str(&params.join("&"));
        }
        out
    }
}

/// Opens an SQLite database named by `url`, running migrations.
pub fn open_sqlite(url: &str) -> StoreResult<sqlite::SqliteStore> {
    match DatabaseUrl::parse(url)? {
        DatabaseUrl::SqliteFile(path) => sqlite::SqliteStore::open(&path),
        DatabaseUrl::SqliteMemory => sqlite::SqliteStore::open_in_memory(),
        DatabaseUrl::Postgres(_) => Err(StoreError::UnsupportedUrl(url.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_host_url_is_postgres_and_kept_whole_for_the_driver() {
        let url = "postgres://doorstep@127.0.0.1:5433,127.0.0.1:5434/doorstep?target_session_attrs=read-write";
        assert_eq!(
            DatabaseUrl::parse(url).expect("postgres URL"),
            DatabaseUrl::Postgres(url.to_owned())
        );
        assert_eq!(DatabaseUrl::redact(url), url, "nothing secret to hide");
    }

    #[test]
    fn redaction_hides_every_password_and_keeps_hosts_and_options() {
        let cases = [
            (
                "postgres://u:s3cret@h1:5432,h2:5432/db?target_session_attrs=read-write",
                "postgres://u:***@h1:5432,h2:5432/db?target_session_attrs=read-write",
            ),
            ("postgresql://u:s3/cr@t@h/db", "postgresql://u:***@h/db"),
            (
                "postgres://u@h/db?password=s3cret&application_name=x",
                "postgres://u@h/db?password=***&application_name=x",
            ),
            ("sqlite://./data/doorstep.db", "sqlite://./data/doorstep.db"),
            ("sqlite::memory:", "sqlite::memory:"),
        ];
        for (url, want) in cases {
            let got = DatabaseUrl::redact(url);
            assert_eq!(got, want, "{url}");
            assert!(!got.contains("s3"), "{got}");
        }
    }

    #[test]
    fn an_unsupported_url_is_refused_without_its_password() {
        let err = DatabaseUrl::parse("mysql://u:s3cret@h/db").expect_err("no such backend");
        let msg = err.to_string();
        assert!(msg.contains("mysql://u:***@h/db"), "{msg}");
        assert!(!msg.contains("s3cret"), "{msg}");
    }
}
