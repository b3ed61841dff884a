//! A tiny in-process server speaking the Redis protocol (RESP2), for the resp client's tests: GET, SET,
//! APPEND, SADD, SMEMBERS, a compare-and-set as `EVAL <script> 1 key from to` (the script text is ignored:
//! it does what the client's default script does) or as a module-style `CAS key from to`. No redis-server
//! is needed.
//!
//! Keys that ask for trouble: `slow-*` answers after 3 s; `noleader-*` answers `-NOLEADER` without
//! applying; `timeout-*` applies, then answers `-TIMEOUT`; `drop-*` closes the connection without answering.

#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
pub struct Data {
    pub strings: HashMap<String, String>,
    pub sets: HashMap<String, BTreeSet<String>>,
}

pub struct RespServer {
    pub addr: SocketAddr,
    pub data: Arc<Mutex<Data>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RespServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RespServer {
    pub async fn start() -> RespServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let data = Arc::new(Mutex::new(Data::default()));
        let shared = data.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(socket, shared.clone()));
            }
        });
        RespServer { addr, data, task }
    }

    pub fn node(&self) -> String {
        self.addr.to_string()
    }
}

async fn read_command(r: &mut BufReader<TcpStream>) -> Option<Vec<String>> {
    let mut line = String::new();
    if r.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let n: usize = line.trim_end().strip_prefix('*')?.parse().ok()?;
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        line.clear();
        r.read_line(&mut line).await.ok()?;
        let len: usize = line.trim_end().strip_prefix('$')?.parse().ok()?;
        let mut buf = vec![0; len + 2];
        r.read_exact(&mut buf).await.ok()?;
        buf.truncate(len);
        args.push(String::from_utf8(buf).ok()?);
    }
    Some(args)
}

fn bulk(v: Option<&String>) -> String {
    match v {
        Some(s) => format!("${}\r\n{s}\r\n", s.len()),
        None => "$-1\r\n".to_string(),
    }
}

async fn serve(socket: TcpStream, data: Arc<Mutex<Data>>) {
    let mut r = BufReader::new(socket);
    while let Some(args) = read_command(&mut r).await {
        let cmd = args[0].to_ascii_uppercase();
        let key = match cmd.as_str() {
            "EVAL" => args.get(3).cloned().unwrap_or_default(),
            _ => args.get(1).cloned().unwrap_or_default(),
        };
        if key.starts_with("slow-") {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        if key.starts_with("drop-") {
            return;
        }
        if key.starts_with("noleader-") {
            if r.get_mut()
                .write_all(b"-NOLEADER no leader known\r\n")
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        let reply = {
            let mut d = data.lock().unwrap();
            match (cmd.as_str(), args.len()) {
                ("GET", 2) => bulk(d.strings.get(&key)),
                ("SET", 3) => {
                    d.strings.insert(key.clone(), args[2].clone());
                    "+OK\r\n".into()
                }
                ("APPEND", 3) => {
                    let s = d.strings.entry(key.clone()).or_default();
                    s.push_str(&args[2]);
                    format!(":{}\r\n", s.len())
                }
                ("SADD", 3) => {
                    let added = d.sets.entry(key.clone()).or_default().insert(args[2].clone());
                    format!(":{}\r\n", added as u8)
                }
                ("SMEMBERS", 2) => {
                    let members = d.sets.get(&key).cloned().unwrap_or_default();
                    let mut out = format!("*{}\r\n", members.len());
                    for m in &members {
                        out.push_str(&bulk(Some(m)));
                    }
                    out
                }
                ("EVAL", 6) | ("CAS", 4) => {
                    let (from, to) = if cmd == "EVAL" {
                        (&args[4], &args[5])
                    } else {
                        (&args[2], &args[3])
                    };
                    if d.strings.get(&key) == Some(from) {
                        d.strings.insert(key.clone(), to.clone());
                        ":1\r\n".into()
                    } else {
                        ":0\r\n".into()
                    }
                }
                _ => format!("-ERR unknown command or wrong number of arguments for '{cmd}'\r\n"),
            }
        };
        let reply = if key.starts_with("timeout-") {
            "-TIMEOUT commit not confirmed\r\n".to_string()
        } else {
            reply
        };
        if r.get_mut().write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}
