//! One HTTP/1.1 connection per client (hyper's low-level client), for the HTTP protocols.
//!
//! A client task is pinned to one node, so it needs no pool: it keeps one keep-alive connection and makes a
//! new one after any problem. What matters most here is knowing whether a request may have left:
//! a failure to connect, or a connection found closed *before* the request was handed to it, means nothing
//! was sent ([`HttpTrouble::NotSent`]); any problem after that leaves the outcome open
//! ([`HttpTrouble::Unknown`]). After a timeout the connection is dropped, never reused: a late answer on it
//! would be taken for the next request's.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::exchange::{Answer, Exchange};

/// Why a request produced no answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HttpTrouble {
    /// Nothing was sent (the connection could not be made).
    NotSent(String),
    /// The request may have reached the server.
    Unknown(String),
}

/// A keep-alive connection to one node, made on first use.
#[derive(Debug)]
pub(crate) struct HttpConn {
    node: String,
    timeout: Duration,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// The task driving the current connection: aborted (closing the socket) when the connection is given
    /// up, so that requests stuck behind a partition do not leave sockets behind.
    driver: Option<tokio::task::AbortHandle>,
    /// Each request and its answer, while [`HttpConn::record_exchanges`] is on (for `faultline probe`).
    exchanges: Option<Vec<Exchange>>,
}

impl Drop for HttpConn {
    fn drop(&mut self) {
        self.close();
    }
}

impl HttpConn {
    pub(crate) fn new(node: &str, timeout: Duration) -> HttpConn {
        HttpConn {
            node: node.to_string(),
            timeout,
            sender: None,
            driver: None,
            exchanges: None,
        }
    }

    /// Gives up the current connection, if any.
    fn close(&mut self) {
        self.sender = None;
        if let Some(driver) = self.driver.take() {
            driver.abort();
        }
    }

    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// Starts keeping each request and its answer, until [`HttpConn::take_exchanges`].
    pub(crate) fn record_exchanges(&mut self) {
        self.exchanges = Some(Vec::new());
    }

    /// The requests and answers kept since [`HttpConn::record_exchanges`]; stops keeping them.
    pub(crate) fn take_exchanges(&mut self) -> Vec<Exchange> {
        self.exchanges.take().unwrap_or_default()
    }

    /// Sends one request (`path` is absolute, e.g. `/kv/k1`) and reads the whole answer, all within the
    /// timeout; keeps the exchange when asked to.
    pub(crate) async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, Bytes), HttpTrouble> {
        if self.exchanges.is_none() {
            return self.send(method, path, body, headers).await;
        }
        let request = format!("{method} {path}");
        let request_body = body.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
        let result = self.send(method, path, body, headers).await;
        let answer = match &result {
            Ok((status, bytes)) => Ok(Answer::Http {
                status: status.as_u16(),
                body: String::from_utf8_lossy(bytes).into_owned(),
            }),
            Err(HttpTrouble::NotSent(e) | HttpTrouble::Unknown(e)) => Err(e.clone()),
        };
        if let Some(kept) = self.exchanges.as_mut() {
            kept.push(Exchange {
                request,
                request_body,
                answer,
                rule: None,
            });
        }
        result
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, Bytes), HttpTrouble> {
        let deadline = Instant::now() + self.timeout;
        let mut sender = match self.ready_sender(deadline).await {
            Ok(s) => s,
            Err(e) => return Err(HttpTrouble::NotSent(e)),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.node);
        let typed = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
        if body.is_some() && !typed {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = match request.body(Full::new(Bytes::from(body.unwrap_or_default()))) {
            Ok(r) => r,
            Err(e) => return Err(HttpTrouble::NotSent(format!("bad request: {e}"))),
        };
        let exchange = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| error_text("connection error", &e))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| error_text("connection error", &e))?
                .to_bytes();
            Ok::<_, String>((status, bytes))
        };
        match tokio::time::timeout_at(deadline, exchange).await {
            Ok(Ok(answer)) => {
                self.sender = Some(sender);
                Ok(answer)
            }
            Ok(Err(e)) => {
                self.close();
                Err(HttpTrouble::Unknown(e))
            }
            Err(_) => {
                self.close();
                Err(HttpTrouble::Unknown("client-timeout".into()))
            }
        }
    }

    /// The connection, ready for a request; a new one when there is none or the old one closed.
    async fn ready_sender(&mut self, deadline: Instant) -> Result<SendRequest<Full<Bytes>>, String> {
        if let Some(mut sender) = self.sender.take() {
            // A closed connection fails here, before anything is handed to it.
            if !sender.is_closed() && sender.ready().await.is_ok() {
                return Ok(sender);
            }
        }
        self.close();
        let connect = async {
            let stream = TcpStream::connect(&self.node)
                .await
                .map_err(|_| "connection-refused".to_string())?;
            let _ = stream.set_nodelay(true);
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| error_text("handshake", &e))?;
            // Drives the connection; ends when the sender is dropped, the peer closes, or close() aborts it.
            let driver = tokio::spawn(async move {
                let _ = connection.await;
            })
            .abort_handle();
            Ok::<_, String>((sender, driver))
        };
        let (mut sender, driver) = match tokio::time::timeout_at(deadline, connect).await {
            Ok(result) => result?,
            Err(_) => return Err("connect-timeout".into()),
        };
        self.driver = Some(driver);
        match tokio::time::timeout_at(deadline, sender.ready()).await {
            Ok(Ok(())) => Ok(sender),
            Ok(Err(e)) => {
                self.close();
                Err(error_text("connection error", &e))
            }
            Err(_) => {
                self.close();
                Err("connect-timeout".into())
            }
        }
    }
}

fn error_text(context: &str, e: &dyn std::error::Error) -> String {
    let mut text = format!("{context}: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}
