//! Properties of the operation generators over random seeds, task counts and key plans.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use workloads::{Call, Generator, KeyPlan, Workload};

fn workload() -> impl Strategy<Value = Workload> {
    prop::sample::select(Workload::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn streams_are_determined_by_seed_task_and_plan(
        w in workload(), seed in any::<u64>(), tasks in 1usize..20, per_key in 1usize..8, ops in 1u64..50,
    ) {
        let plan = KeyPlan { tasks_per_key: per_key, ops_per_task_per_key: ops };
        for task in 0..tasks {
            let mut a = Generator::new(w, seed, task, tasks, plan);
            let mut b = Generator::new(w, seed, task, tasks, plan);
            for _ in 0..100 {
                prop_assert_eq!(a.next_op(), b.next_op());
            }
        }
    }

    #[test]
    fn keys_are_bounded_and_written_values_unique(
        w in workload(), seed in any::<u64>(), tasks in 1usize..20, per_key in 1usize..8, ops in 1u64..50,
    ) {
        let plan = KeyPlan { tasks_per_key: per_key, ops_per_task_per_key: ops };
        let bound = per_key.min(tasks) as u64 * ops;
        let mut per_key_ops: HashMap<String, u64> = HashMap::new();
        let mut unique = HashSet::new();
        for task in 0..tasks {
            let mut g = Generator::new(w, seed, task, tasks, plan);
            for _ in 0..150 {
                let op = g.next_op();
                *per_key_ops.entry(op.key.clone()).or_default() += 1;
                match op.call {
                    Call::Write(v) => prop_assert!(unique.insert(v.to_string())),
                    Call::Cas(a, b) => {
                        prop_assert!(a.is_i64());
                        prop_assert!(unique.insert(b.to_string()));
                    }
                    Call::Append(s) => prop_assert!(unique.insert(s)),
                    Call::Add(e) => prop_assert!(unique.insert(e.to_string())),
                    Call::Read | Call::ReadSet => {}
                }
            }
        }
        for (key, n) in per_key_ops {
            prop_assert!(n <= bound, "{} ops on {} (bound {})", n, key, bound);
        }
    }
}
