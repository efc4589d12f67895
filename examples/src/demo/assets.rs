//! The demo page (compiled into the binary) and the wasm package (read from
//! its build folder).

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// One file of the page.
struct AppFile {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// The page's files, from `examples/demo/`.
const APP_FILES: &[AppFile] = &[
    AppFile {
        name: "demo.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../demo/demo.js"),
    },
    AppFile {
        name: "view.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../demo/view.js"),
    },
    AppFile {
        name: "sha256.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../demo/sha256.js"),
    },
    AppFile {
        name: "demo.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../demo/demo.css"),
    },
    AppFile {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../../demo/icon.svg"),
    },
];

const INDEX_HTML: &str = include_str!("../../demo/index.html");

/// Serves the page on a plain `GET /`; a WebSocket upgrade (a tracker
/// client announcing to the bare host) goes on to the tracker.
pub(crate) async fn page_at_root(request: Request, next: Next) -> Response {
    let is_page = request.uri().path() == "/"
        && matches!(*request.method(), Method::GET | Method::HEAD)
        && !request.headers().contains_key(header::UPGRADE);
    if !is_page {
        return next.run(request).await;
    }
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX_HTML,
    )
        .into_response()
}

/// `GET /app/{file}`: a file of the page.
pub(crate) async fn app_file(Path(name): Path<String>) -> Response {
    match APP_FILES.iter().find(|f| f.name == name) {
        Some(file) => (
            [
                (header::CONTENT_TYPE, file.content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            file.body,
        )
            .into_response(),
        None => not_found().await,
    }
}

/// `GET /pkg/{path}`: a file of the wasm package. Only plain names below the
/// package folder are served.
pub(crate) async fn pkg_file(
    State(dir): State<Arc<PathBuf>>,
    Path(path): Path<String>,
) -> Response {
    let Some(segments) = plain_segments(&path) else {
        return not_found().await;
    };
    let Some(last) = segments.last() else {
        return not_found().await;
    };
    let content_type = match last.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("json" | "map") => "application/json",
        Some("ts") => "text/plain; charset=utf-8",
        _ => return not_found().await,
    };
    let file = segments.iter().fold((*dir).clone(), |p, s| p.join(s));
    match tokio::fs::read(&file).await {
        Ok(bytes) => {
            let mut response = (
                [
                    (header::CONTENT_TYPE, content_type),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                bytes,
            )
                .into_response();
            // The streaming helper's Service Worker lives here but must
            // control the page at `/`.
            response
                .headers_mut()
                .insert("service-worker-allowed", HeaderValue::from_static("/"));
            response
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => not_found().await,
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "cannot read package file");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot read file\n").into_response()
        }
    }
}

/// The segments of a relative path if each is a plain file name: letters,
/// digits, `-`, `_` and `.`, not starting with a dot.
fn plain_segments(path: &str) -> Option<Vec<&str>> {
    let segments: Vec<&str> = path.split('/').collect();
    let plain = |s: &&str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    (segments.len() <= 4 && segments.iter().all(plain)).then_some(segments)
}

/// Any other path.
pub(crate) async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_package_paths_pass() {
        assert_eq!(
            plain_segments("chunkswarm_wasm.js"),
            Some(vec!["chunkswarm_wasm.js"])
        );
        assert_eq!(
            plain_segments("snippets/x-1/inline0.js"),
            Some(vec!["snippets", "x-1", "inline0.js"])
        );
        for bad in [
            "",
            "../secret.js",
            "a/../b.js",
            ".hidden.js",
            "a//b.js",
            "/abs.js",
            "a\\b.js",
            "a%2fb.js",
            "a/b/c/d/e.js",
        ] {
            assert_eq!(plain_segments(bad), None, "{bad:?}");
        }
    }
}
