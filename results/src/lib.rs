//! results (see ARCHITECTURE.md)
