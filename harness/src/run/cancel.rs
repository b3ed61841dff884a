//! SIGINT, SIGTERM or SIGHUP at any point cancels whatever phase is running; the run then tears down.

use crate::HarnessError;
use std::sync::{Arc, Mutex};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;

/// Whether (and by which signal) the run was asked to stop.
#[derive(Clone)]
pub(crate) struct Cancel {
    rx: watch::Receiver<bool>,
    signal: Arc<Mutex<Option<&'static str>>>,
}

async fn recv(s: &mut Option<Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

impl Cancel {
    /// Installs the handlers (inside the runtime). They stay installed until the process ends: a second
    /// signal must not kill the harness in the middle of the tear-down.
    pub(crate) fn install() -> Cancel {
        let (tx, rx) = watch::channel(false);
        let name = Arc::new(Mutex::new(None::<&'static str>));
        let mut int = signal(SignalKind::interrupt()).ok();
        let mut term = signal(SignalKind::terminate()).ok();
        let mut hup = signal(SignalKind::hangup()).ok();
        let set = name.clone();
        tokio::spawn(async move {
            let got = tokio::select! {
                _ = recv(&mut int) => "SIGINT",
                _ = recv(&mut term) => "SIGTERM",
                _ = recv(&mut hup) => "SIGHUP",
            };
            *set.lock().unwrap_or_else(|e| e.into_inner()) = Some(got);
            eprintln!("faultline: {got} received: stopping and tearing down");
            let _ = tx.send(true);
            loop {
                tokio::select! {
                    _ = recv(&mut int) => {}
                    _ = recv(&mut term) => {}
                    _ = recv(&mut hup) => {}
                }
                eprintln!("faultline: still tearing down");
            }
        });
        Cancel { rx, signal: name }
    }

    pub(crate) fn is_set(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once a signal arrived (at once if one already did).
    pub(crate) async fn wait(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|set| *set).await;
    }

    /// A receiver for code that watches the flag itself.
    pub(crate) fn receiver(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }

    /// The error of an interrupted run, naming the signal.
    pub(crate) fn error(&self) -> HarnessError {
        let name = *self.signal.lock().unwrap_or_else(|e| e.into_inner());
        HarnessError::Interrupted(name.unwrap_or("a signal").to_string())
    }
}
