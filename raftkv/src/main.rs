//! The `raftkv` binary: parses the command line and runs one node (see the library's docs).

mod server;

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;
use raftkv::core::Bugs;

/// The reference Raft key-value node serving the http-kv protocol.
#[derive(Parser, Debug)]
#[command(name = "raftkv", version)]
struct Cli {
    /// This node's id, e.g. n1.
    #[arg(long)]
    id: String,
    /// host:port for the client API and Raft traffic.
    #[arg(long)]
    listen: String,
    /// The other initial members: ID=HOST:PORT,ID=HOST:PORT (this node's own entry is ignored).
    #[arg(long, default_value = "")]
    peers: String,
    /// Where term, vote, log and snapshots are kept.
    #[arg(long = "data-dir")]
    data_dir: PathBuf,
    /// Start outside any configuration and wait to be added with POST /members on the leader.
    #[arg(long)]
    join: bool,
    /// Switch on a classic Raft bug (repeatable): fixed-election-timeout, accept-stale-term,
    /// skip-prev-log-check, early-ack, stale-leader-read, volatile-vote, unsafe-membership, commit-old-term,
    /// skip-fsync.
    #[arg(long = "bug")]
    bug: Vec<String>,
    /// Take a snapshot (and drop the log before it) every N applied entries.
    #[arg(long = "snapshot-every", default_value_t = 10_000)]
    snapshot_every: u64,
    /// Length of one clock tick in milliseconds.
    #[arg(long = "tick-ms", default_value_t = 10)]
    tick_ms: u64,
    /// Leader heartbeat interval in milliseconds.
    #[arg(long = "heartbeat-ms", default_value_t = 50)]
    heartbeat_ms: u64,
    /// Shortest election timeout in milliseconds (the actual one is random in [T, 2T)).
    #[arg(long = "election-ms", default_value_t = 500)]
    election_ms: u64,
    /// How long the leader waits for a client request to commit before answering 504 timeout.
    #[arg(long = "request-timeout-ms", default_value_t = 2000)]
    request_timeout_ms: u64,
    /// Only check the flags: exit 0 when they are accepted, 2 with the reason when not (starts nothing).
    #[arg(long)]
    check: bool,
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("raftkv: {msg}");
    std::process::exit(2);
}

fn valid_addr(s: &str) -> bool {
    s.parse::<std::net::SocketAddr>().is_ok()
}

fn options(cli: Cli) -> Result<server::Options, String> {
    if cli.id.is_empty() || cli.id.contains([',', '=', '/']) {
        return Err(format!(
            "--id: {:?} is not a valid id (no ',', '=' or '/')",
            cli.id
        ));
    }
    if !valid_addr(&cli.listen) {
        return Err(format!("--listen: expected IP:PORT, got {:?}", cli.listen));
    }
    let mut peers = BTreeMap::new();
    for part in cli.peers.split(',').filter(|p| !p.trim().is_empty()) {
        let Some((id, addr)) = part.trim().split_once('=') else {
            return Err(format!("--peers: expected ID=IP:PORT, got {part:?}"));
        };
        if id.is_empty() || !valid_addr(addr) {
            return Err(format!("--peers: expected ID=IP:PORT, got {part:?}"));
        }
        if id != cli.id && peers.insert(id.to_string(), addr.to_string()).is_some() {
            return Err(format!("--peers: {id} is listed twice"));
        }
    }
    let mut bugs = Bugs::default();
    for b in &cli.bug {
        if !bugs.enable(b) {
            return Err(format!(
                "--bug: unknown bug {b:?} (known: {})",
                Bugs::NAMES.join(", ")
            ));
        }
    }
    if cli.tick_ms == 0 || cli.heartbeat_ms < cli.tick_ms || cli.election_ms <= cli.heartbeat_ms {
        return Err("--tick-ms, --heartbeat-ms, --election-ms: need 0 < tick <= heartbeat < election".into());
    }
    if cli.snapshot_every == 0 {
        return Err("--snapshot-every: must be at least 1".into());
    }
    Ok(server::Options {
        id: cli.id,
        listen: cli.listen,
        peers,
        data_dir: cli.data_dir,
        join: cli.join,
        bugs,
        snapshot_every: cli.snapshot_every,
        tick_ms: cli.tick_ms,
        heartbeat_ms: cli.heartbeat_ms,
        election_ms: cli.election_ms,
        request_timeout_ms: cli.request_timeout_ms,
    })
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if e.use_stderr() => {
            let text = e.to_string();
            let line: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
                .map(|l| l.trim().trim_start_matches("error: "))
                .collect();
            let line = line.join(" ");
            fail(format!("{line} (see raftkv --help)"));
        }
        Err(e) => e.exit(),
    };
    let check = cli.check;
    let opts = options(cli).unwrap_or_else(|e| fail(e));
    if check {
        return;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RAFTKV_LOG")
                .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(format!("cannot start the runtime: {e}")));
    if let Err(e) = rt.block_on(server::run(opts)) {
        eprintln!("raftkv: {e:#}");
        std::process::exit(1);
    }
}
