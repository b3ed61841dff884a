//! Arbitrary bytes into every history parser (JSON Lines, EDN, Jepsen logs, auto-detection), then into
//! pairing, stats and availability. Any panic is a bug; errors must stay on one line.
#![no_main]

use std::path::Path;
use std::time::Duration;

use checker::history::{read_bytes, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the `independent` flag, so the fuzzer can reach both paths.
    let (independent, data) = match data.split_first() {
        Some((b, rest)) => (b & 1 == 1, rest),
        None => (false, data),
    };
    for format in [Format::Auto, Format::Jsonl, Format::Edn, Format::JepsenLog] {
        match read_bytes(data, Path::new("fuzz.in"), format, independent) {
            Err(e) => assert!(!e.to_string().contains('\n')),
            Ok(h) => {
                if let Err(e) = h.operations() {
                    assert!(!e.to_string().contains('\n'));
                }
                let _ = checker::stats::compute(&h);
                let _ = checker::availability::check(&h, Duration::from_secs(1));
            }
        }
    }
});
