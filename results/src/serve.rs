//! `faultline serve`: read-only static serving of a results store over HTTP/1.1 (std only, a thread per
//! connection, `Connection: close`). GET and HEAD only; paths are percent-decoded, `..` is refused, and a
//! path whose real location (after symlinks such as `latest`) is outside the store is refused too.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The most connections served at once; more get 503.
const MAX_CONNECTIONS: usize = 64;

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
        let listener = TcpListener::bind(addr).map_err(|source| ServeError::Bind { addr, source })?;
        Ok(StoreServer { listener, root })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves forever (each connection on its own thread).
    pub fn run(self) -> std::io::Result<()> {
        let root = Arc::new(self.root);
        let active = Arc::new(AtomicUsize::new(0));
        for stream in self.listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                active.fetch_sub(1, Ordering::SeqCst);
                let _ = respond_text(
                    &mut stream,
                    503,
                    "Service Unavailable",
                    "too many connections\n",
                    false,
                );
                continue;
            }
            let (root, active) = (root.clone(), active.clone());
            std::thread::spawn(move || {
                let _ = handle(&root, stream);
                active.fetch_sub(1, Ordering::SeqCst);
            });
        }
        Ok(())
    }
}

/// Maps a request path (`/cas/2026.../report.html?x`) to a file or folder inside `root`, or None when it
/// is malformed, names `..`, or leads (through symlinks) outside `root`. `root` must be canonical.
pub fn resolve(root: &Path, request_path: &str) -> Option<PathBuf> {
    let path = request_path.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/') {
        return None;
    }
    let decoded = percent_decode(path)?;
    if decoded.contains('\0') {
        return None;
    }
    let mut p = root.to_path_buf();
    for c in Path::new(&decoded).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(s) => p.push(s),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    let real = std::fs::canonicalize(&p).ok()?;
    real.starts_with(root).then_some(real)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" => "application/json",
        "jsonl" | "log" | "txt" | "edn" | "toml" | "xml" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn handle(root: &Path, mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?.take(16 * 1024));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // Drain the headers (bounded by the take above).
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let head = method == "HEAD";
    if method != "GET" && !head {
        return respond_text(
            &mut stream,
            405,
            "Method Not Allowed",
            "read-only: GET and HEAD only\n",
            head,
        );
    }
    let Some(path) = resolve(root, target) else {
        return respond_text(&mut stream, 404, "Not Found", "not found\n", head);
    };
    if path.is_dir() {
        if !target.split(['?', '#']).next().unwrap_or("").ends_with('/') {
            let loc = format!("{}/", target.split(['?', '#']).next().unwrap_or(""));
            let msg = format!(
                "HTTP/1.1 301 Moved Permanently\r\nLocation: {loc}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return stream.write_all(msg.as_bytes());
        }
        let index = path.join("index.html");
        if index.is_file() {
            return send_file(&mut stream, &index, head);
        }
        let listing = listing(root, &path);
        return respond(
            &mut stream,
            200,
            "OK",
            "text/html; charset=utf-8",
            listing.as_bytes(),
            head,
        );
    }
    send_file(&mut stream, &path, head)
}

fn send_file(stream: &mut TcpStream, path: &Path, head: bool) -> std::io::Result<()> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return respond_text(stream, 404, "Not Found", "not found\n", head);
    };
    let len = f.metadata()?.len();
    let header = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {len}\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        content_type(path)
    );
    stream.write_all(header.as_bytes())?;
    if !head {
        std::io::copy(&mut f, stream)?;
    }
    stream.flush()
}

fn respond_text(
    stream: &mut TcpStream,
    code: u16,
    reason: &str,
    body: &str,
    head: bool,
) -> std::io::Result<()> {
    respond(
        stream,
        code,
        reason,
        "text/plain; charset=utf-8",
        body.as_bytes(),
        head,
    )
}

fn respond(
    stream: &mut TcpStream,
    code: u16,
    reason: &str,
    ctype: &str,
    body: &[u8],
    head: bool,
) -> std::io::Result<()> {
    let header = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes())?;
    if !head {
        stream.write_all(body)?;
    }
    stream.flush()
}

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
                @let href = format!("{}{}", url_escape(n), if *is_dir { "/" } else { "" });
                li { a href=(href) { (n) @if *is_dir { "/" } } }
            }
        } } }
    }
    .into_string()
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
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
        assert_eq!(resolve(&root, "/bad%zz"), None);
        assert_eq!(resolve(&root, "/nul%00"), None);
    }
}
