//! `GET /docs`: the OpenAPI document rendered by Redoc, served from the binary.
//!
//! The viewer (Redoc 2.5.4's standalone bundle, MIT, `assets/redoc/`) is compiled in, so
//! the page works with no network: no CDN, no fonts fetched. Both paths in the page are
//! relative, so an app mounted under a prefix still finds its script and its document.

use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::{MethodRouter, get};

/// The page: Redoc pointed at `openapi.json`, beside `/docs`.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API reference</title>
<style>body { margin: 0; }</style>
</head>
<body>
<redoc spec-url="openapi.json"></redoc>
<script src="docs/redoc.standalone.js"></script>
</body>
</html>
"#;

/// Redoc's standalone bundle, as published on npm.
const VIEWER: &str = include_str!("assets/redoc/redoc.standalone.js");

/// `GET /docs`.
pub(crate) fn page() -> MethodRouter {
    get(|| async { Html(PAGE) })
}

/// `GET /docs/redoc.standalone.js`: cacheable for a day, since it only changes with a
/// fastagentic release.
pub(crate) fn viewer() -> MethodRouter {
    get(|| async {
        (
            [
                (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            VIEWER,
        )
            .into_response()
    })
}
