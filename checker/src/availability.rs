//! availability: see the crate docs.
