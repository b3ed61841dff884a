//! Where the public corpora are: `$FAULTLINE_CORPUS`, else `../shared/corpus` beside the workspace (where CI
//! puts them; never copied into the repository). A missing corpus is a failure, not a skip.

use std::path::{Path, PathBuf};

pub fn corpus() -> PathBuf {
    let root = match std::env::var_os("FAULTLINE_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        // Canonicalised, so that the corpus is also found when the crate is built through a symlink.
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .canonicalize()
            .unwrap()
            .join("../../shared/corpus"),
    };
    assert!(root.is_dir(), "the corpus is missing at {}", root.display());
    root
}
