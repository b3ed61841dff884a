//! `faultline report`.

/// Arguments of `faultline report`.
#[derive(clap::Args)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<u8> {
    Err(anyhow::anyhow!("faultline report is not built yet"))
}
