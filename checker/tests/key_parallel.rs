//! Hot keys (one key, 50 processes, from the class generator) whose search runs alone for a moment and is
//! then joined by a helper, the way `check` escalates a search that runs long: each gets its verdict. Alone
//! in its binary, so that the process's step counter is this test's own.

#[path = "support/class.rs"]
mod class;

use checker::linearizability::{check, search_steps_so_far, Options};
use checker::{ModelKind, Verdict};
use std::time::Duration;

#[test]
fn hot_keys_get_their_verdict_when_a_helper_joins_partway() {
    if cfg!(debug_assertions) {
        return; // unoptimised, these keys take minutes; CI tests in release
    }
    let (mut wrong, mut joined) = (Vec::new(), 0);
    for seed in 0..8 {
        let mut shape = class::Shape::class(seed, seed % 2 == 1);
        shape.keys = 1;
        shape.processes = 50;
        shape.ops = 2_500;
        let ops = class::generate(&shape, seed);
        let opts = Options {
            model: if shape.cas {
                ModelKind::CasRegister
            } else {
                ModelKind::Register
            },
            time_limit: Some(Duration::from_secs(20)),
            key_threads: 2,
            // The first look at the clock comes after a few thousand steps: the helper joins then.
            key_parallel_after: Duration::from_nanos(1),
            ..Options::default()
        };
        let before = search_steps_so_far();
        let r = check(&ops, &opts).unwrap();
        let want = if shape.anomaly.is_some() {
            Verdict::Invalid
        } else {
            Verdict::Valid
        };
        if r.verdict != want {
            wrong.push((seed, r.verdict));
        }
        if search_steps_so_far() - before > 8_192 {
            joined += 1;
        }
    }
    assert!(wrong.is_empty(), "not the expected verdict: {wrong:?}");
    assert!(joined > 0, "no key searched long enough for a helper to join");
}
