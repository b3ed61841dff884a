//! The `faultline` command line: wiring only. Each subcommand lives in its own module under `src/cmd/`;
//! the work is done by the library crates (see ARCHITECTURE.md).

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Tells whether a Raft system is really linearizable under faults.
#[derive(Parser)]
#[command(name = "faultline", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check histories for linearizability (faultline JSONL, Jepsen EDN or Jepsen log).
    Check(cmd::check::Args),
    /// Run a test: start a cluster, drive clients under faults, record, check, report.
    Run(Box<cmd::run::Args>),
    /// Try a DB spec: start its cluster, send one of each operation, print each request, answer and
    /// classification, tear down.
    Probe(cmd::probe::Args),
    /// Remove whatever a killed run left behind (iptables rules, namespaces, processes).
    Heal(cmd::heal::Args),
    /// Re-render a run's report from its history.
    Report(cmd::report::Args),
    /// Serve the results store read-only over HTTP.
    Serve(cmd::serve::Args),
    /// Run a suite file (a matrix of runs with expectations); `suite merge` joins shards, `suite report`
    /// writes a suite's results as Markdown.
    Suite(Box<cmd::suite::Args>),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(cmd::EXIT_BAD_INPUT)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    cmd::init_logging();
    let result = match cli.command {
        Command::Check(a) => cmd::check::main(a),
        Command::Run(a) => cmd::run::main(*a),
        Command::Heal(a) => cmd::heal::main(a),
        Command::Probe(a) => cmd::probe::main(a),
        Command::Report(a) => cmd::report::main(a),
        Command::Serve(a) => cmd::serve::main(a),
        Command::Suite(a) => cmd::suite::main(*a),
    };
    cmd::exit(result)
}
