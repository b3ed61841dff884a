//! `faultline run`.

/// Arguments of `faultline run`.
#[derive(clap::Args)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<u8> {
    Err(anyhow::anyhow!("faultline run is not built yet"))
}
