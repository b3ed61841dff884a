//! `faultline heal`.

/// Arguments of `faultline heal`.
#[derive(clap::Args)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<u8> {
    Err(anyhow::anyhow!("faultline heal is not built yet"))
}
