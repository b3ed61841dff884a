//! `faultline check`.

/// Arguments of `faultline check`.
#[derive(clap::Args)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<u8> {
    Err(anyhow::anyhow!("faultline check is not built yet"))
}
