//! The web client: the files of `web/` embedded in the binary (listed by `build.rs`), served at
//! `/` (the entry page, `no-cache`) and `/app/<bundle>/<path>` (everything else, `immutable`,
//! where `<bundle>` is a hash of all the files, so a new binary's client gets new URLs while
//! relative ES-module imports keep working). Every answer carries the client's security
//! headers; compressible files are gzipped once, when the node starts.
//!
//! **Boundary:** outside the JSON API (not in `ROUTES` nor the OpenAPI document); the client
//! talks to the node only through that API.

use std::collections::HashMap;
use std::io::Write as _;

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use sha2::{Digest, Sha256};

use super::json::{Body, full};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

/// The entry page's placeholder for the bundle hash (`/app/{{bundle}}/src/main.js`).
const BUNDLE_PLACEHOLDER: &str = "{{bundle}}";

/// The client's Content-Security-Policy: its own origin only, no inline script or style, no
/// framing. `blob:` lets it preview a picked image or a recorded clip before upload; `data:`
/// images are the SVG icons of the stylesheet.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; font-src 'self'; \
manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Features the client may ask for (at the moment of use) and nothing else. Geolocation is for
/// the nearby screen, which turns the position into a coarse cell on the device.
const PERMISSIONS: &str =
    "camera=(self), microphone=(self), geolocation=(self), payment=(), usb=()";

/// One servable file, with its gzip form when that is smaller.
#[derive(Debug)]
struct Asset {
    plain: Bytes,
    gzip: Option<Bytes>,
    content_type: &'static str,
    etag: HeaderValue,
}

/// The embedded client, hashed and compressed once.
#[derive(Debug)]
pub struct WebApp {
    bundle: String,
    index: Option<Asset>,
    assets: HashMap<&'static str, Asset>,
}

impl Default for WebApp {
    fn default() -> Self {
        Self::new()
    }
}

impl WebApp {
    /// Hashes and compresses the embedded files.
    pub fn new() -> Self {
        let mut hasher = Sha256::new();
        for (path, bytes) in embedded::FILES {
            hasher.update((path.len() as u64).to_le_bytes());
            hasher.update(path.as_bytes());
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        }
        let digest = hasher.finalize();
        let bundle: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let mut index = None;
        let mut assets = HashMap::new();
        for (path, bytes) in embedded::FILES {
            if *path == "index.html" {
                let text = String::from_utf8_lossy(bytes).replace(BUNDLE_PLACEHOLDER, &bundle);
                index = Some(Asset::new(Bytes::from(text), path));
            } else {
                assets.insert(*path, Asset::new(Bytes::from_static(bytes), path));
            }
        }
        WebApp {
            bundle,
            index,
            assets,
        }
    }

    /// Answers a request for the client, or `None` when the path is not the client's (the API
    /// router then handles it).
    pub fn serve<B>(&self, req: &Request<B>) -> Option<Response<Body>> {
        let path = req.uri().path();
        let (asset, immutable) = if path == "/" || path == "/index.html" {
            (self.index.as_ref(), false)
        } else if let Some(rest) = path.strip_prefix("/app/") {
            let (bundle, file) = rest.split_once('/').unwrap_or((rest, ""));
            if bundle != self.bundle {
                // An old page's asset after an upgrade: its URLs name files that are gone.
                return Some(not_found());
            }
            (self.assets.get(file), true)
        } else {
            return None;
        };
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return Some(plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "only GET is allowed here",
            ));
        }
        let Some(asset) = asset else {
            return Some(not_found());
        };
        Some(asset.reply(req, immutable))
    }
}

impl Asset {
    fn new(plain: Bytes, path: &str) -> Self {
        let content_type = content_type(path);
        let gzip = compressible(content_type)
            .then(|| gzip(&plain))
            .filter(|z| z.len() < plain.len())
            .map(Bytes::from);
        let digest = Sha256::digest(&plain);
        let tag: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        let etag = HeaderValue::from_str(&format!("\"{tag}\"")).expect("hex is a valid header");
        Asset {
            plain,
            gzip,
            content_type,
            etag,
        }
    }

    fn reply<B>(&self, req: &Request<B>, immutable: bool) -> Response<Body> {
        let cache = if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        let not_modified = req
            .headers()
            .get(IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == self.etag.as_bytes());
        let gzip_ok = req
            .headers()
            .get(ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(accepts_gzip);
        let (body, encoded) = match (&self.gzip, gzip_ok, not_modified) {
            (_, _, true) => (Bytes::new(), false),
            (Some(z), true, false) => (z.clone(), true),
            _ => (self.plain.clone(), false),
        };
        let mut r = Response::new(full(if req.method() == Method::HEAD {
            Bytes::new()
        } else {
            body
        }));
        if not_modified {
            *r.status_mut() = StatusCode::NOT_MODIFIED;
        }
        let h = r.headers_mut();
        security_headers(h);
        h.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
        h.insert(ETAG, self.etag.clone());
        if self.gzip.is_some() {
            h.insert(VARY, HeaderValue::from_static("accept-encoding"));
        }
        if encoded {
            h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        r
    }
}

/// The headers every answer of the client carries.
fn security_headers(h: &mut http::HeaderMap) {
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert("permissions-policy", HeaderValue::from_static(PERMISSIONS));
}

fn not_found() -> Response<Body> {
    plain(StatusCode::NOT_FOUND, "no such file")
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    security_headers(r.headers_mut());
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Whether an `Accept-Encoding` value admits gzip (`q=0` refuses it).
fn accepts_gzip(value: &str) -> bool {
    value.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "woff2" => "font/woff2",
        "png" => "image/png",
        _ => "text/plain; charset=utf-8",
    }
}

fn compressible(content_type: &str) -> bool {
    !matches!(content_type, "font/woff2" | "image/png")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_accepted_unless_refused_with_q_zero() {
        assert!(accepts_gzip("gzip, deflate, br"));
        assert!(accepts_gzip("br;q=1.0, gzip;q=0.5"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0, br"));
        assert!(!accepts_gzip("br, identity"));
    }

    #[test]
    fn entry_page_names_the_bundle_and_assets_are_immutable() {
        let app = WebApp::new();
        let req = Request::get("/").body(()).unwrap();
        let r = app.serve(&req).expect("the entry page is served");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[CACHE_CONTROL], "no-cache");
        let page = app.index.as_ref().unwrap();
        let text = std::str::from_utf8(&page.plain).unwrap();
        assert!(text.contains(&format!("/app/{}/src/main.js", app.bundle)));
        assert!(!text.contains(BUNDLE_PLACEHOLDER));
        let req = Request::get(format!("/app/{}/src/main.js", app.bundle))
            .header(ACCEPT_ENCODING, "gzip")
            .body(())
            .unwrap();
        let r = app.serve(&req).expect("an asset is served");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(r.headers()[CONTENT_ENCODING], "gzip");
        let old = Request::get("/app/0000000000000000/src/main.js")
            .body(())
            .unwrap();
        assert_eq!(app.serve(&old).unwrap().status(), StatusCode::NOT_FOUND);
        let api = Request::get("/api/v1/me").body(()).unwrap();
        assert!(app.serve(&api).is_none());
    }
}
