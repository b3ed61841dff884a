//! The run phases (set up, run, heal, final reads, tear down, check, write results).

/// The configuration of a run.
#[derive(Debug, Clone)]
pub struct RunConfig {}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {}

/// Runs a test (not wired yet).
pub fn run(_c: &RunConfig) -> Result<RunOutcome, crate::HarnessError> {
    Err(crate::HarnessError::Other("not built yet".into()))
}
