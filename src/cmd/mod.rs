//! One module per subcommand, plus the exit-code conventions they share.
//!
//! Exit codes (Jepsen's, extended): 0 valid, 1 invalid, 2 unknown, 3 the run itself failed (a node never
//! became ready, ...), 254 bad usage or bad input, 255 internal failure.

pub mod check;
pub mod heal;
pub mod probe;
pub mod report;
pub mod run;
pub mod serve;
pub mod suite;

use std::process::ExitCode;

pub const EXIT_RUN_FAILED: u8 = 3;
pub const EXIT_BAD_INPUT: u8 = 254;
pub const EXIT_INTERNAL: u8 = 255;

/// Marks an error as the user's input being wrong (exit 254), as opposed to an internal failure (255).
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for BadInput {}

/// Marks an error as the run itself failing (exit 3): the system under test could not be set up.
#[derive(Debug)]
pub struct RunFailed(pub String);

impl std::fmt::Display for RunFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for RunFailed {}

/// Shorthand for a bad-input error.
pub fn bad_input(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(msg.into()))
}

/// Turns a subcommand's result (an exit code, or an error) into the process exit code, printing the error on
/// one line.
pub fn exit(result: anyhow::Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<BadInput>().is_some() {
                ExitCode::from(EXIT_BAD_INPUT)
            } else if e.downcast_ref::<RunFailed>().is_some() {
                ExitCode::from(EXIT_RUN_FAILED)
            } else {
                ExitCode::from(EXIT_INTERNAL)
            }
        }
    }
}

/// Logs to stderr; `RUST_LOG` overrides the default level (warn).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colour only on a terminal: warnings also land in pipes and CI logs.
    let _ = tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
