//! nemesis (see ARCHITECTURE.md)
