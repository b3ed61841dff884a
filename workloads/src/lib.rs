//! workloads (see ARCHITECTURE.md)
