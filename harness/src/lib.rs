//! harness (see ARCHITECTURE.md)
