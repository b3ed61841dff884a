//! stats: see the crate docs.
