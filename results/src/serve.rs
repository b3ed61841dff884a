//! `faultline serve`: read-only static serving of a results store over HTTP, with axum and tower-http's
//! [`ServeDir`] (content types, `HEAD`, ranges, conditional requests, `index.html` and the redirect of a
//! folder to its `/` form are theirs).
//!
//! What this module adds around `ServeDir`:
//! - **confinement**: every request path is checked by [`resolve`] before `ServeDir` sees it. `ServeDir`
//!   refuses `..` (plain or percent-encoded) but follows symlinks wherever they lead; `resolve` refuses a
//!   path whose real location (after symlinks such as `latest`) is outside the store, so a symlink in the
//!   store cannot serve `/etc/passwd`.
//! - **read-only**: any method but `GET` and `HEAD` is answered `405` before anything is opened.
//! - a plain-text content type for the store's text files (`.jsonl`, `.log`, `.edn`, `.toml`, ...) that a
//!   browser should show rather than download, and `X-Content-Type-Options: nosniff` on every answer;
//! - an HTML-escaped **listing** of a folder that has no `index.html` (a run's `nodes/`).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::net::{SocketAddr, TcpListener};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use tower::ServiceExt;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("store {}: {source}", path.display())]
    Store {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A bound server; [`StoreServer::run`] serves until the process ends.
#[derive(Debug)]
pub struct StoreServer {
    listener: TcpListener,
    root: PathBuf,
}

impl StoreServer {
    /// Binds `addr` for serving the store folder `root`.
    pub fn bind(root: &Path, addr: SocketAddr) -> Result<StoreServer, ServeError> {
        let root = std::fs::canonicalize(root).map_err(|source| ServeError::Store {
            path: root.into(),
            source,
        })?;
        if !root.is_dir() {
            return Err(ServeError::Store {
                path: root,
                source: std::io::Error::other("not a folder"),
            });
        }
        let bind = |addr| {
            let listener = TcpListener::bind(addr)?;
            listener.set_nonblocking(true)?;
            Ok(listener)
        };
        let listener = bind(addr).map_err(|source| ServeError::Bind { addr, source })?;
        Ok(StoreServer { listener, root })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves forever, on a tokio runtime of its own.
    pub fn run(self) -> std::io::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(self.listener)?;
            axum::serve(listener, router(self.root)).await
        })
    }
}

/// The whole service: every path goes to [`serve_request`]; `nosniff` on every answer.
fn router(root: PathBuf) -> Router {
    Router::new()
        .fallback(serve_request)
        .with_state(Arc::new(root))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

async fn serve_request(State(root): State<Arc<PathBuf>>, request: Request) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let allow = [(header::ALLOW, "GET, HEAD")];
        let body = "read-only: GET and HEAD only\n";
        return (StatusCode::METHOD_NOT_ALLOWED, allow, body).into_response();
    }
    let Some(real) = resolve(&root, request.uri().path()) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    if real.is_dir() && request.uri().path().ends_with('/') && !real.join("index.html").is_file() {
        let page = listing(&root, &real);
        return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    }
    let served = ServeDir::new(&*root).oneshot(request).await;
    let mut response = match served {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    };
    if response.status().is_success() {
        if let Some(text) = text_type(&real) {
            let value = HeaderValue::from_static(text);
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
    }
    response
}

/// Maps a request path (`/cas/2026.../report.html`, the query already split off) to a file or folder
/// inside `root`, or None when it is malformed, names `..` or a root or NUL, or leads (through
/// symlinks) outside `root`. `root` must be canonical.
pub fn resolve(root: &Path, request_path: &str) -> Option<PathBuf> {
    let path = request_path.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/') {
        return None;
    }
    let decoded = percent_decode_str(path).decode_utf8().ok()?;
    if decoded.contains('\0') {
        return None;
    }
    let mut p = root.to_path_buf();
    for (i, c) in Path::new(&*decoded).components().enumerate() {
        match c {
            Component::RootDir if i == 0 => {}
            Component::CurDir => {}
            Component::Normal(s) => p.push(s),
            Component::RootDir | Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    let real = std::fs::canonicalize(&p).ok()?;
    real.starts_with(root).then_some(real)
}

/// The store's text files, shown as plain text (mime_guess knows none of these, or not as text);
/// `None` leaves `ServeDir`'s type.
fn text_type(path: &Path) -> Option<&'static str> {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => Some("text/html; charset=utf-8"),
        "jsonl" | "log" | "txt" | "edn" | "toml" | "xml" | "md" => Some("text/plain; charset=utf-8"),
        _ => None,
    }
}

/// Bytes kept as they are in a listing's links (RFC 3986 unreserved).
const LINK: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// An escaped listing of a folder of the store.
fn listing(root: &Path, dir: &Path) -> String {
    let mut names: Vec<(String, bool)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            (!n.starts_with('.')).then(|| (n, e.path().is_dir()))
        })
        .collect();
    names.sort();
    let rel = dir
        .strip_prefix(root)
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    maud::html! {
        (maud::DOCTYPE)
        html { head { meta charset="utf-8"; meta name="viewport" content="width=device-width, initial-scale=1"; title { "/" (rel) } }
        body { h1 { "/" (rel) } ul {
            @if !rel.is_empty() { li { a href="../" { "../" } } }
            @for (n, is_dir) in &names {
                @let href = format!("{}{}", utf8_percent_encode(n, LINK), if *is_dir { "/" } else { "" });
                li { a href=(href) { (n) @if *is_dir { "/" } } }
            }
        } } }
    }
    .into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_stays_inside_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap().join("store");
        std::fs::create_dir_all(root.join("t/run")).unwrap();
        std::fs::write(root.join("t/run/report.html"), "x").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink("t/run", root.join("latest")).unwrap();
        std::os::unix::fs::symlink("../secret", root.join("escape")).unwrap();
        assert_eq!(
            resolve(&root, "/t/run/report.html"),
            Some(root.join("t/run/report.html"))
        );
        assert_eq!(
            resolve(&root, "/latest/report.html?x=1"),
            Some(root.join("t/run/report.html"))
        );
        assert_eq!(
            resolve(&root, "/t/run/report%2Ehtml"),
            Some(root.join("t/run/report.html"))
        );
        assert_eq!(resolve(&root, "/"), Some(root.clone()));
        assert_eq!(resolve(&root, "/../secret"), None);
        assert_eq!(resolve(&root, "/%2e%2e/secret"), None);
        assert_eq!(resolve(&root, "/t/%2E%2E/%2E%2E/secret"), None);
        assert_eq!(resolve(&root, "/escape"), None);
        assert_eq!(resolve(&root, "relative"), None);
        assert_eq!(resolve(&root, "/%2Fetc/passwd"), None);
        assert_eq!(resolve(&root, "/bad%zz"), None);
        assert_eq!(resolve(&root, "/bad%ff"), None);
        assert_eq!(resolve(&root, "/nul%00"), None);
    }
}
