//! `faultline probe`: protocol tracing for spec authors. Starts the cluster of a spec, finds the leader,
//! sends one of each operation the spec's client protocol can send, and reports each request, the answer and
//! how it was classified; then tears everything down. A person debugging a new spec reads this in minutes
//! instead of reading a failed run.
//!
//! The cluster lives in a run folder of the store (`probe-<name>/<time>`), with the node logs and the state
//! file, so `faultline heal` finds it after a `kill -9`; Ctrl-C tears down at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use workloads::{Call, Op};

use crate::deployment::{Deployment, DeploymentOptions};
use crate::spec::LoadedSpec;
use crate::state::StateFile;
use crate::{Backend, HarnessError};

/// What `faultline probe` is asked to do.
#[derive(Debug, Clone)]
pub struct TraceConfig {
    pub spec: LoadedSpec,
    /// `None`: netns when root, local otherwise.
    pub backend: Option<Backend>,
    pub nodes: usize,
    pub store: PathBuf,
}

/// One operation sent and what became of it.
#[derive(Debug, Clone)]
pub struct Step {
    /// `write k=faultline-probe-1 value=1`
    pub operation: String,
    /// The node it was sent to.
    pub node: String,
    /// Each request sent for it and its answer (an etcd append makes several; an operation the spec does
    /// not describe, none), with the spec's rule that classified it (the templated `http` protocol).
    pub exchanges: Vec<workloads::Exchange>,
    /// `ok`, `fail` or `info`, with the value and the error.
    pub outcome: String,
    /// The answer was one no rule of the spec covers.
    pub unclassified: bool,
}

/// Everything `faultline probe` found.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// The client protocol (`http-kv`, `etcd`, `resp`, `http`).
    pub protocol: String,
    /// Lines about the cluster: the client protocol, where each node runs, the leader.
    pub cluster: Vec<String>,
    pub steps: Vec<Step>,
    /// The run folder (node logs).
    pub run_dir: PathBuf,
    /// What the tear-down could not remove.
    pub teardown_errors: Vec<String>,
}

/// The operations sent: a register on one key, an append on another, a set on a third; only those the
/// protocol can send.
fn operations(protocol: &workloads::Protocol) -> Vec<Op> {
    use workloads::Workload;
    let op = |key: &str, call: Call| Op {
        key: key.to_string(),
        call,
    };
    let mut ops = vec![op("faultline-probe-1", Call::Read)];
    let can = |w: Workload| protocol.missing_for(w).is_empty();
    let write = protocol.missing_for(Workload::Register).is_empty();
    if write {
        ops.push(op("faultline-probe-1", Call::Write(json!(1))));
        ops.push(op("faultline-probe-1", Call::Read));
    }
    if can(Workload::CasRegister) {
        ops.push(op("faultline-probe-1", Call::Cas(json!(1), json!(2))));
        ops.push(op("faultline-probe-1", Call::Cas(json!(1), json!(3))));
        ops.push(op("faultline-probe-1", Call::Read));
    }
    if can(Workload::Append) {
        ops.push(op("faultline-probe-2", Call::Append("x1;".into())));
        ops.push(op("faultline-probe-2", Call::Read));
    }
    if can(Workload::Set) {
        ops.push(op("faultline-probe-3", Call::ReadSet));
        ops.push(op("faultline-probe-3", Call::Add(7)));
        ops.push(op("faultline-probe-3", Call::ReadSet));
    }
    ops
}

fn describe(op: &Op) -> String {
    match &op.call {
        Call::Read => format!("read {}", op.key),
        Call::ReadSet => format!("read (set) {}", op.key),
        Call::Write(v) => format!("write {} {v}", op.key),
        Call::Cas(f, t) => format!("cas {} {f} -> {t}", op.key),
        Call::Append(s) => format!("append {} {s:?}", op.key),
        Call::Add(e) => format!("add {} {e}", op.key),
    }
}

/// Starts the cluster, traces one of each operation, tears down. Blocks; builds its own runtime.
pub fn trace(c: &TraceConfig) -> Result<Trace, HarnessError> {
    let protocol = c.spec.protocol()?;
    let connector = protocol
        .connector()
        .map_err(|e| HarnessError::BadInput(format!("{}: {e}", c.spec.origin)))?;
    let root = crate::sys::is_root();
    let backend = match (c.spec.spec.external.is_some(), c.backend) {
        (true, _) => Backend::External,
        (false, Some(Backend::Netns)) if !root => {
            return Err(HarnessError::BadInput(
                "--backend netns needs root; use --backend local".into(),
            ))
        }
        (false, Some(b)) => b,
        (false, None) if root => Backend::Netns,
        (false, None) => Backend::Local,
    };
    if backend != Backend::External {
        crate::spec::resolve_program(&c.spec)?;
    }
    let store = results::Store::open(&c.store)
        .map_err(|e| HarnessError::BadInput(format!("--store {}: {e}", c.store.display())))?;
    let run = store
        .create_run(&format!("probe-{}", c.spec.spec.name))
        .map_err(|e| HarnessError::BadInput(format!("--store {}: {e}", c.store.display())))?;
    let run_dir = run.path().to_path_buf();
    let state = StateFile::create(&run_dir).map_err(HarnessError::io("creating the state file"))?;
    let opts = DeploymentOptions::plain(backend, c.nodes, run_dir.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(HarnessError::Runtime)?;
    let spec = Arc::new(c.spec.clone());
    rt.block_on(async move {
        let created = {
            let (spec, state, opts) = (spec.clone(), state.clone(), opts.clone());
            tokio::task::spawn_blocking(move || Deployment::create(spec, &opts, state)).await
        };
        let cluster = match created {
            Ok(Ok(d)) => Arc::new(d),
            Ok(Err(e)) => return Err(e),
            Err(source) => {
                return Err(HarnessError::Panicked {
                    task: "setting up the hosts",
                    source,
                })
            }
        };
        let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
        let traced = tokio::select! {
            r = traced(&cluster, &connector, cancel_rx) => r,
            _ = tokio::signal::ctrl_c() => {
                let _ = cancel_tx.send(true);
                Err(HarnessError::Interrupted("SIGINT".into()))
            }
        };
        let report = {
            let cluster = cluster.clone();
            tokio::task::spawn_blocking(move || {
                cluster.collect_logs();
                cluster.teardown()
            })
            .await
            .unwrap_or_default()
        };
        let mut trace = traced?;
        trace.run_dir = run_dir;
        trace.teardown_errors = report.errors;
        Ok(trace)
    })
}

/// Starts the nodes, waits until they are ready, and sends the operations to the leader (else the first
/// node).
async fn traced(
    cluster: &Arc<Deployment>,
    connector: &workloads::Connector,
    mut cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<Trace, HarnessError> {
    {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || cluster.start_all())
            .await
            .map_err(|source| HarnessError::Panicked {
                task: "starting the nodes",
                source,
            })??;
    }
    cluster.wait_ready(&mut cancel).await?;
    let mut trace = Trace {
        protocol: connector.protocol().name().to_string(),
        ..Trace::default()
    };
    trace
        .cluster
        .push(format!("client protocol: {}", connector.protocol().name()));
    for n in cluster.nodes() {
        trace
            .cluster
            .push(format!("{} ready at {}", n.id, n.client_address));
    }
    let leader = match cluster.spec().spec.leader {
        Some(_) => cluster.leader().await.ok().flatten(),
        None => None,
    };
    let target = match &leader {
        Some(id) => {
            trace
                .cluster
                .push(format!("leader: {id} (by the spec's [leader] probe)"));
            cluster.nodes().iter().find(|n| &n.id == id)
        }
        None => {
            let why = if cluster.spec().spec.leader.is_some() {
                "the [leader] probe named no node"
            } else {
                "the spec has no [leader] probe"
            };
            trace
                .cluster
                .push(format!("leader: unknown ({why}); sending to the first node"));
            None
        }
    }
    .or(cluster.nodes().first())
    .ok_or_else(|| HarnessError::Setup("the cluster has no nodes".into()))?;
    let mut client = connector.client(&target.client_address);
    for op in operations(connector.protocol()) {
        let (completion, exchanges) = client.call_traced(&op).await;
        let error = completion.error.clone().unwrap_or_default();
        let unclassified = error.starts_with(crate::unclassified::PREFIX);
        let kind = format!("{:?}", completion.kind).to_lowercase();
        let outcome = match (&completion.error, &completion.value) {
            (Some(e), _) => format!("{kind} ({e})"),
            (None, Value::Null) if op.call.is_read() => format!("{kind}, read: absent (null)"),
            (None, v) if op.call.is_read() => format!("{kind}, read: {v}"),
            (None, _) => kind,
        };
        trace.steps.push(Step {
            operation: describe(&op),
            node: target.id.clone(),
            exchanges,
            outcome,
            unclassified,
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(trace)
}

impl Trace {
    /// The trace as text for a terminal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for l in &self.cluster {
            out.push_str(&format!("{l}\n"));
        }
        for s in &self.steps {
            out.push_str(&format!("\n{} (to {})\n", s.operation, s.node));
            for x in &s.exchanges {
                out.push_str(&format!("  > {}\n", x.request));
                if let Some(b) = &x.request_body {
                    out.push_str(&format!("  > body {:?}\n", shorten(b)));
                }
                match &x.answer {
                    Ok(a) => out.push_str(&format!("  < {a}\n")),
                    Err(e) => out.push_str(&format!("  < no answer ({e})\n")),
                }
            }
            match s.exchanges.last().and_then(|x| x.rule.as_ref()) {
                Some(r) => out.push_str(&format!("  = {} (by {r})\n", s.outcome)),
                // The fixed protocols classify by their own table (docs/db-spec.md, docs/http-kv.md).
                None if self.protocol != "http" && !s.exchanges.is_empty() => out.push_str(&format!(
                    "  = {} (by the {} protocol's own rules)\n",
                    s.outcome, self.protocol
                )),
                None => out.push_str(&format!("  = {}\n", s.outcome)),
            }
        }
        let bad = self.steps.iter().filter(|s| s.unclassified).count();
        if bad > 0 {
            out.push_str(&format!(
                "\n{bad} answers no rule of the spec covers: a run records them as info (a read as fail); \
                 add rules for them to [client]\n"
            ));
        }
        out.push_str(&format!(
            "\nnode logs: {}\n",
            self.run_dir.join("nodes").display()
        ));
        for e in &self.teardown_errors {
            out.push_str(&format!("tear-down: {e}\n"));
        }
        out
    }
}

fn shorten(body: &str) -> String {
    let mut s: String = body.chars().take(300).collect();
    if body.chars().count() > 300 {
        s.push('…');
    }
    s
}
