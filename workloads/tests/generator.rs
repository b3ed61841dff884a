//! Properties of the operation generators over random seeds, task counts and key plans.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use workloads::{Call, Generator, KeyPlan, Workload};

fn workload() -> impl Strategy<Value = Workload> {
    prop::sample::select(Workload::ALL.to_vec())
}

/// The operations generated so far: how many on each key, and every value written (each must be new).
#[derive(Default)]
struct Seen {
    per_key: HashMap<String, u64>,
    unique: HashSet<String>,
}

impl Seen {
    fn add(&mut self, op: workloads::Op) -> Result<(), TestCaseError> {
        *self.per_key.entry(op.key.clone()).or_default() += 1;
        let written = match op.call {
            Call::Write(v) => v.to_string(),
            Call::Cas(a, b) => {
                prop_assert!(a.is_i64());
                b.to_string()
            }
            Call::Append(s) => s,
            Call::Add(e) => e.to_string(),
            Call::Read | Call::ReadSet => return Ok(()),
        };
        prop_assert!(self.unique.insert(written.clone()), "{} written twice", written);
        Ok(())
    }

    /// No key got more than `bound` operations.
    fn bounded(&self, bound: u64) -> Result<(), TestCaseError> {
        for (key, n) in &self.per_key {
            prop_assert!(*n <= bound, "{} ops on {} (bound {})", n, key, bound);
        }
        Ok(())
    }
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
        let mut seen = Seen::default();
        for task in 0..tasks {
            let mut g = Generator::new(w, seed, task, tasks, plan);
            for _ in 0..150 {
                seen.add(g.next_op())?;
            }
        }
        seen.bounded(per_key.min(tasks) as u64 * ops)?;
    }

    #[test]
    fn a_task_that_catches_up_skips_to_its_groups_round_and_keeps_the_streams_properties(
        w in workload(), seed in any::<u64>(), tasks in 1usize..20, per_key in 1usize..8, ops in 1u64..50,
        jumps in prop::collection::vec((0u64..30, 0u64..6), 1..20),
    ) {
        let plan = KeyPlan { tasks_per_key: per_key, ops_per_task_per_key: ops };
        let mut seen = Seen::default();
        for task in 0..tasks {
            let mut g = Generator::new(w, seed, task, tasks, plan);
            let mut mate = Generator::new(w, seed, task, tasks, plan);
            prop_assert!(g.group() < tasks);
            for (steps, ahead) in &jumps {
                for _ in 0..*steps {
                    seen.add(g.next_op())?;
                }
                let before = g.round();
                g.catch_up(before + ahead);
                prop_assert_eq!(g.round(), before + ahead);
                g.catch_up(0);
                prop_assert_eq!(g.round(), before + ahead, "never moves back");
                // After a jump the next operation is the first of its round, as a stream that ran there has it.
                if *ahead > 0 {
                    let mut there = g.clone();
                    while mate.round() < g.round() {
                        mate.next_op();
                    }
                    prop_assert_eq!(there.next_op(), mate.next_op());
                    mate = Generator::new(w, seed, task, tasks, plan);
                }
            }
        }
        seen.bounded(per_key.min(tasks) as u64 * ops)?;
    }
}
