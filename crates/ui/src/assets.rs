//! Static files compiled into the binary: the vendored htmx and uPlot (with their licences,
//! recorded in `assets/vendor/MANIFEST`), and the dashboard's own script and style sheet.
//! Served at content-hashed URLs, cached for a year, gzip-compressed once at start.

use std::collections::HashMap;
use std::io::Write as _;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::UiState;

/// (logical name, content type, bytes)
const FILES: [(&str, &str, &[u8]); 5] = [
    (
        "htmx.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/htmx.min.js"),
    ),
    (
        "uplot.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/uPlot.iife.min.js"),
    ),
    (
        "uplot.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/vendor/uPlot.min.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/app.css"),
    ),
];

pub struct Asset {
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    pub gzip: Vec<u8>,
    /// `name.<hash>.ext`: the URL changes when the content does.
    pub hashed: String,
}

pub struct Assets {
    by_hashed: HashMap<String, Asset>,
    urls: HashMap<&'static str, String>,
}

impl Assets {
    pub fn load() -> anyhow::Result<Self> {
        let mut by_hashed = HashMap::new();
        let mut urls = HashMap::new();
        for (name, ct, bytes) in FILES {
            let hash = hex::encode(&Sha256::digest(bytes)[..8]);
            let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
            let hashed = format!("{stem}.{hash}.{ext}");
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(bytes)?;
            let gzip = gz.finish()?;
            urls.insert(name, format!("/ui/assets/{hashed}"));
            by_hashed.insert(
                hashed.clone(),
                Asset {
                    content_type: ct,
                    bytes,
                    gzip,
                    hashed,
                },
            );
        }
        Ok(Self { by_hashed, urls })
    }

    /// The URL of a logical asset (`app.js`).
    pub fn url(&self, name: &str) -> &str {
        self.urls
            .get(name)
            .map(String::as_str)
            .unwrap_or("/ui/assets/missing")
    }

    /// Bytes of JavaScript a page ships, gzip-compressed (the budget is 45 KB).
    pub fn script_gzip_bytes(&self) -> usize {
        self.by_hashed
            .values()
            .filter(|a| a.content_type.starts_with("text/javascript"))
            .map(|a| a.gzip.len())
            .sum()
    }
}

/// The asset URLs a page needs, handed to the layout.
#[derive(Clone)]
pub struct Urls {
    pub htmx: String,
    pub app_js: String,
    pub app_css: String,
    pub uplot_js: String,
    pub uplot_css: String,
}

impl Urls {
    pub fn of(a: &Assets) -> Self {
        Urls {
            htmx: a.url("htmx.js").to_owned(),
            app_js: a.url("app.js").to_owned(),
            app_css: a.url("app.css").to_owned(),
            uplot_js: a.url("uplot.js").to_owned(),
            uplot_css: a.url("uplot.css").to_owned(),
        }
    }
}

pub async fn serve(
    State(s): State<UiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(a) = s.assets.by_hashed.get(&name) else {
        return crate::error::UiError::NotFound.into_response();
    };
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut resp = if gzip_ok {
        let mut r = (StatusCode::OK, a.gzip.clone()).into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        (StatusCode::OK, a.bytes).into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored files are the ones the manifest names (re-hashed, no network).
    #[test]
    fn vendored_files_match_their_manifest() {
        use base64::Engine as _;
        let manifest = include_str!("../assets/vendor/MANIFEST");
        let files: [(&str, &[u8]); 3] = [
            (
                "htmx.min.js",
                include_bytes!("../assets/vendor/htmx.min.js"),
            ),
            (
                "uPlot.iife.min.js",
                include_bytes!("../assets/vendor/uPlot.iife.min.js"),
            ),
            (
                "uPlot.min.css",
                include_bytes!("../assets/vendor/uPlot.min.css"),
            ),
        ];
        for (file, bytes) in files {
            let line = manifest
                .lines()
                .find(|l| l.split_whitespace().nth(1) == Some(file))
                .unwrap_or_else(|| panic!("{file} is not in the manifest"));
            let want = line.split_whitespace().nth(2).expect("a hash column");
            let got = format!(
                "sha384-{}",
                base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(bytes))
            );
            assert_eq!(got, want, "{file}");
        }
    }

    #[test]
    fn the_scripts_stay_within_45_kb_gzip() {
        let a = Assets::load().unwrap();
        let n = a.script_gzip_bytes();
        assert!(n <= 45 * 1024, "{n} bytes of gzip JavaScript");
        assert!(n > 30_000, "htmx and uPlot are both shipped: {n}");
    }
}
