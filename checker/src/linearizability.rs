//! linearizability: see the crate docs.
