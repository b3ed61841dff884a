//! `faultline serve`.

/// Arguments of `faultline serve`.
#[derive(clap::Args)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<u8> {
    Err(anyhow::anyhow!("faultline serve is not built yet"))
}
