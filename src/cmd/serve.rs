//! `faultline serve`: serves a results store read-only over HTTP, on 127.0.0.1 by default.

use super::bad_input;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Arguments of `faultline serve`.
#[derive(clap::Args)]
pub struct Args {
    /// The results store to serve.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    if !args.store.is_dir() {
        return Err(bad_input(format!(
            "{}: no such store folder",
            args.store.display()
        )));
    }
    if !args.addr.ip().is_loopback() {
        eprintln!(
            "warning: serving {} on {}, which is reachable from other machines",
            args.store.display(),
            args.addr
        );
    }
    // Refresh the index so it lists every run present now.
    let store = results::Store::open(&args.store)?;
    store.write_index()?;
    let server =
        results::serve::StoreServer::bind(&args.store, args.addr).map_err(|e| bad_input(e.to_string()))?;
    let addr = server.local_addr()?;
    println!("serving {} read-only at http://{addr}/", args.store.display());
    server.run()?;
    Ok(0)
}
