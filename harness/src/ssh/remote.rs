//! Connections to the hosts: one multiplexed OpenSSH master connection per host (the `openssh` crate over
//! the system `ssh`, ControlMaster), commands as argument arrays (the crate quotes each argument for the
//! remote shell; nothing is ever pasted into a shell string), a timeout on every command, and files moved
//! through a command's stdin and stdout.
//!
//! The connections live on a small runtime of their own, so that both the harness's blocking threads and its
//! async tasks (and `faultline heal`, which has no runtime) can use them.
//!
//! A watcher task per host asks its master connection every [`WATCH_INTERVAL`] whether it is still up, and
//! runs a command there every [`KEEPALIVE_EVERY`] ticks (a master with no session for 30 s exits by itself, so
//! that a master orphaned by a killed harness goes away). The first failure marks the host lost: the run
//! asks [`Remotes::lost`] and fails, and every later command to that host fails at once instead of waiting
//! for its timeout.

use super::hosts::SshHost;
use crate::HarnessError;
use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How long connecting to a host may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default timeout of one remote command.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the watcher checks each host's master connection.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// Every how many checks the watcher also runs a command on the host (keeps the master from idling out).
const KEEPALIVE_EVERY: u32 = 10;
/// How long an idle master connection outlives its last session.
const CONTROL_PERSIST_S: usize = 30;

/// What one remote command did.
#[derive(Debug, Clone)]
pub struct Output {
    /// The exit code (`None`: ended by a signal).
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// stderr on one line.
    pub fn stderr_line(&self) -> String {
        one_line(&String::from_utf8_lossy(&self.stderr))
    }
}

/// The connected hosts of a run, in hosts-file order.
pub struct Remotes {
    rt: Option<tokio::runtime::Runtime>,
    sessions: Vec<Arc<Session>>,
    hosts: Vec<SshHost>,
    /// Per host: why its connection is known to be lost (the first failure seen).
    lost: Arc<Vec<Mutex<Option<String>>>>,
}

/// Collapses an SSH error (often several lines) into one.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn ssh_error(h: &SshHost, reason: impl std::fmt::Display) -> HarnessError {
    HarnessError::Ssh {
        host: h.label(),
        reason: one_line(&reason.to_string()),
    }
}

impl Remotes {
    /// Connects to every host (in parallel), checking host keys against `known_hosts` (`accept_new`: a host
    /// not yet listed is added, as `StrictHostKeyChecking=accept-new`; a changed key is always refused).
    pub fn connect(hosts: &[SshHost], known_hosts: &Path, accept_new: bool) -> Result<Remotes, HarnessError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("faultline-ssh")
            .enable_all()
            .build()
            .map_err(HarnessError::Runtime)?;
        let known = known_hosts.to_path_buf();
        let futures: Vec<_> = hosts
            .iter()
            .cloned()
            .map(|h| {
                let known = known.clone();
                rt.spawn(async move {
                    let mut b = SessionBuilder::default();
                    b.port(h.port)
                        .known_hosts_check(if accept_new {
                            KnownHosts::Add
                        } else {
                            KnownHosts::Strict
                        })
                        .user_known_hosts_file(&known)
                        .connect_timeout(CONNECT_TIMEOUT)
                        .server_alive_interval(Duration::from_secs(2))
                        // An orphaned master (the harness was killed) goes away by itself.
                        .control_persist(openssh::ControlPersist::IdleFor(
                            std::num::NonZeroUsize::new(CONTROL_PERSIST_S).expect("30 > 0"),
                        ))
                        .control_directory(std::env::temp_dir());
                    if let Some(u) = &h.user {
                        b.user(u.clone());
                    }
                    if let Some(k) = &h.identity {
                        b.keyfile(k);
                    }
                    let connecting = b.connect(&h.host);
                    match tokio::time::timeout(CONNECT_TIMEOUT + Duration::from_secs(2), connecting).await {
                        Ok(Ok(s)) => Ok(Arc::new(s)),
                        Ok(Err(e)) => Err(ssh_error(&h, format!("cannot connect: {}", error_chain(&e)))),
                        Err(_) => Err(ssh_error(
                            &h,
                            format!("cannot connect: no answer within {:?}", CONNECT_TIMEOUT),
                        )),
                    }
                })
            })
            .collect();
        let sessions: Result<Vec<_>, _> = rt.block_on(async {
            let mut out = Vec::new();
            for f in futures {
                out.push(
                    f.await
                        .map_err(|e| HarnessError::Setup(format!("ssh connect task: {e}")))??,
                );
            }
            Ok(out)
        });
        let sessions = match sessions {
            Ok(s) => s,
            Err(e) => {
                rt.shutdown_background();
                return Err(e);
            }
        };
        let lost: Arc<Vec<_>> = Arc::new(hosts.iter().map(|_| Mutex::new(None)).collect());
        for (i, s) in sessions.iter().enumerate() {
            rt.spawn(watch(Arc::downgrade(s), hosts[i].clone(), lost.clone(), i));
        }
        Ok(Remotes {
            rt: Some(rt),
            sessions,
            hosts: hosts.to_vec(),
            lost,
        })
    }

    /// The first host whose connection was lost (the host and the SSH error), if any.
    pub fn lost(&self) -> Option<HarnessError> {
        (0..self.hosts.len()).find_map(|i| self.lost_reason(i).map(|r| ssh_error(&self.hosts[i], r)))
    }

    /// Why host `i`'s connection is lost, if it is.
    pub fn lost_reason(&self, i: usize) -> Option<String> {
        self.lost[i].lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn hosts(&self) -> &[SshHost] {
        &self.hosts
    }

    /// Runs a future on the connections' runtime and waits for it (from any thread, async or not).
    fn block<T: Send + 'static>(&self, f: impl Future<Output = T> + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        self.rt
            .as_ref()
            .expect("the runtime lives as long as the connections")
            .spawn(async move {
                let _ = tx.send(f.await);
            });
        rx.recv().expect("the ssh runtime runs every task it is given")
    }

    /// Runs `argv` on host `i` with a timeout; a non-zero exit is not an error here. A lost connection or a
    /// timeout is [`HarnessError::Ssh`] naming the host.
    pub fn run(&self, i: usize, argv: &[String], timeout: Duration) -> Result<Output, HarnessError> {
        self.block(self.run_future(i, argv, None, timeout))
    }

    /// Like [`Remotes::run`], awaited from an async task without blocking it.
    pub async fn run_async(
        &self,
        i: usize,
        argv: &[String],
        timeout: Duration,
    ) -> Result<Output, HarnessError> {
        let rt = self
            .rt
            .as_ref()
            .expect("the runtime lives as long as the connections");
        rt.spawn(self.run_future(i, argv, None, timeout))
            .await
            .map_err(|e| HarnessError::Setup(format!("ssh task: {e}")))?
    }

    /// Runs `argv` on host `i` and fails unless it exits 0 (the error carries its stderr).
    pub fn run_ok(&self, i: usize, argv: &[String], timeout: Duration) -> Result<Output, HarnessError> {
        let out = self.run(i, argv, timeout)?;
        if !out.success() {
            return Err(ssh_error(
                &self.hosts[i],
                format!("{}: exit {:?}: {}", argv.join(" "), out.status, out.stderr_line()),
            ));
        }
        Ok(out)
    }

    /// Runs `argv` with `input` on its stdin.
    pub fn run_with_input(
        &self,
        i: usize,
        argv: &[String],
        input: Vec<u8>,
        timeout: Duration,
    ) -> Result<Output, HarnessError> {
        self.block(self.run_future(i, argv, Some(input), timeout))
    }

    fn run_future(
        &self,
        i: usize,
        argv: &[String],
        input: Option<Vec<u8>>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Output, HarnessError>> + Send + 'static {
        let session = self.sessions[i].clone();
        let host = self.hosts[i].clone();
        let argv = argv.to_vec();
        let lost = self.lost_reason(i);
        async move {
            let what = argv.join(" ");
            if let Some(why) = lost {
                return Err(ssh_error(&host, format!("{what}: {why}")));
            }
            let go = async {
                let mut cmd = Session::to_command(session, &argv[0]);
                cmd.args(&argv[1..]).stdout(Stdio::piped()).stderr(Stdio::piped());
                cmd.stdin(if input.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                });
                let mut child = cmd.spawn().await?;
                if let (Some(data), Some(mut stdin)) = (input, child.stdin().take()) {
                    stdin.write_all(&data).await.map_err(openssh::Error::ChildIo)?;
                    stdin.shutdown().await.map_err(openssh::Error::ChildIo)?;
                    drop(stdin);
                }
                child.wait_with_output().await
            };
            match tokio::time::timeout(timeout, go).await {
                Ok(Ok(out)) => {
                    // 255 is ssh's own failure (the connection), not the command's.
                    if out.status.code() == Some(255) && out.stdout.is_empty() {
                        let err = String::from_utf8_lossy(&out.stderr).to_string();
                        if err.contains("ssh") || err.contains("onnection") || err.is_empty() {
                            return Err(ssh_error(&host, format!("{what}: lost the connection: {err}")));
                        }
                    }
                    Ok(Output {
                        status: out.status.code(),
                        stdout: out.stdout,
                        stderr: out.stderr,
                    })
                }
                Ok(Err(e)) => Err(ssh_error(&host, format!("{what}: {}", error_chain(&e)))),
                Err(_) => Err(ssh_error(&host, format!("{what}: no answer within {timeout:?}"))),
            }
        }
    }

    /// Whether every master connection is still up.
    pub fn check(&self, i: usize) -> Result<(), HarnessError> {
        let s = self.sessions[i].clone();
        let h = self.hosts[i].clone();
        self.block(async move {
            match tokio::time::timeout(COMMAND_TIMEOUT, s.check()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(ssh_error(&h, error_chain(&e))),
                Err(_) => Err(ssh_error(&h, "the connection does not answer")),
            }
        })
    }
}

/// Watches host `i`'s master connection until it is lost (recorded in `lost`) or closed (`session` gone).
async fn watch(session: Weak<Session>, host: SshHost, lost: Arc<Vec<Mutex<Option<String>>>>, i: usize) {
    // Not at once: a check raced with the first sessions of a master just connected and wedged it (every
    // session of that host hung until its timeout, seen on the sshd lab).
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + WATCH_INTERVAL, WATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 1u32.. {
        tick.tick().await;
        let Some(s) = session.upgrade() else { return };
        let failed = if n % KEEPALIVE_EVERY == 0 {
            let go = async {
                let mut c = s.command("true");
                c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
                c.status().await
            };
            match tokio::time::timeout(COMMAND_TIMEOUT, go).await {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(format!("lost the connection: {}", error_chain(&e))),
                Err(_) => Some(format!(
                    "the connection does not answer within {COMMAND_TIMEOUT:?}"
                )),
            }
        } else {
            match tokio::time::timeout(COMMAND_TIMEOUT, s.check()).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("lost the connection: {}", error_chain(&e))),
                Err(_) => Some("lost the connection: its master does not answer".to_string()),
            }
        };
        drop(s);
        if let Some(why) = failed {
            tracing::warn!("{}: ssh: {why}", host.label());
            *lost[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(one_line(&why));
            return;
        }
    }
}

impl Drop for Remotes {
    fn drop(&mut self) {
        // Closing a session runs `ssh -O exit` (synchronously); the runtime is dropped without blocking, which
        // is allowed on an async worker too.
        self.sessions.clear();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    one_line(&s)
}
