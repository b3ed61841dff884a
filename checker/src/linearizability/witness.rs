//! A linearizable prefix to show when the model rejected a history before the search
//! ([`Model::impossible`]): the search never ran, so it built no prefix of its own.
//!
//! The prefix is built greedily from the operations that completed before the impossible one was invoked
//! (all of them must precede it in any linearization), in completion order, which always respects real
//! time. When one cannot happen in the state reached, an indeterminate operation invoked before that
//! completion is tried first; when none helps, the prefix stops there. Every step is legal, so what is shown
//! is a genuine linearization of its operations, though not always the longest one.

use super::search::{FoundPrefix, SearchOp, PREFIX_KEEP};
use crate::model::{Model, Role};

/// A prefix ending before `blocked`, the operation [`Model::impossible`] named.
pub(crate) fn before_impossible<M: Model>(
    model: &mut M,
    ops: &[SearchOp],
    blocked: usize,
) -> FoundPrefix<M::State> {
    let cut = ops[blocked].call;
    let mut required: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].role == Role::Required && ops[i].ret.is_some_and(|r| r < cut))
        .collect();
    required.sort_by_key(|&i| ops[i].ret);
    let mut optional: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].role == Role::Optional && ops[i].call < cut)
        .collect();
    optional.sort_by_key(|&i| ops[i].call);

    let mut state = model.init();
    let mut taken: Vec<(u32, M::State)> = Vec::new();
    for &i in &required {
        let ret = ops[i].ret.unwrap_or(u64::MAX);
        let helped = model.step(&state, i).map(|s| (None, s)).or_else(|| {
            optional
                .iter()
                .enumerate()
                .filter(|&(_, &o)| ops[o].call < ret)
                .find_map(|(k, &o)| {
                    let mid = model.step(&state, o)?;
                    let after = model.step(&mid, i)?;
                    Some((Some((k, mid)), after))
                })
        });
        let Some((via, after)) = helped else { break };
        if let Some((k, mid)) = via {
            taken.push((optional.remove(k) as u32, mid));
        }
        taken.push((i as u32, after.clone()));
        state = after;
    }
    let from = taken.len().saturating_sub(PREFIX_KEEP);
    let (ops, states) = taken.drain(from..).unzip();
    FoundPrefix {
        omitted: from,
        ops,
        states,
        blocked: blocked as u32,
    }
}
