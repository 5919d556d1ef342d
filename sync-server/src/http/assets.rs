//! The dashboard's static files, read from a directory at request time (`--ui-dir`,
//! `DOORSTEP_UI_DIR`, default `ui/dashboard/dist`), so a rebuilt UI needs no server restart.
//! Without a build, `/` explains how to make one instead of failing.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use std::path::{Path, PathBuf};

fn not_built(dir: &Path) -> String {
    let dir = dir.display().to_string();
    let dir = dir
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Doorstep dispatch — dashboard not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #1a1a1a">
<h1>Doorstep dispatch</h1>
<p>The sync server is running, but the dashboard has not been built: <code>{dir}/index.html</code> does not exist.</p>
<p>Build it from the repository root, then reload this page:</p>
<pre style="background: #f2f2f2; padding: 1rem; overflow-x: auto">npm ci --prefix ui
npm run build --prefix ui</pre>
<p>Or point the server at a built copy with <code>--ui-dir DIR</code> (env <code>DOORSTEP_UI_DIR</code>).</p>
<p>The dispatcher API is under <code>/v1/dispatch/</code>; <code>/metrics</code>, <code>/healthz</code> and <code>/readyz</code> work as usual.</p>
</body></html>"#
    )
}

/// `GET /`: the built dashboard's `index.html`, or a page that says how to build it.
pub async fn index(dir: PathBuf) -> Response {
    match tokio::fs::read_to_string(dir.join("index.html")).await {
        Ok(html) => {
            let mut res = Html(html).into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            res
        }
        Err(_) => (StatusCode::OK, Html(not_built(&dir))).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_build_explains_itself() {
        let res = index(PathBuf::from("/nonexistent/doorstep-ui")).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("npm run build --prefix ui"), "{text}");
    }
}
