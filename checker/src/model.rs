//! model: see the crate docs.
