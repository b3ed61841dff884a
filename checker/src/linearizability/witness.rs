//! A linearizable prefix to show when the model rejected a history before the search
//! ([`Model::impossible`]): the search never ran, so it built no prefix of its own.
//!
//! Every operation that completed before the impossible one was invoked must precede it in any
//! linearization; so do the indeterminate ones invoked before it, if they take effect at all, and those
//! that change the state, invoked before it and completed after, may (an operation completing before the
//! cut may have seen their effect): the search takes these as indeterminate. The prefix
//! shown is a linearization of those, found by the same search over them alone (everything else
//! [`Role::Skip`]), with a short deadline of its own. Skipping operations can only make the model's pruning
//! hooks cut more, never admit an illegal step (each step is still checked by [`Model::step`] in real-time
//! order), so what is shown is always a genuine linearization; when none is found in time, or none is
//! found at all (the hooks cut too much), the longest linearizable prefix the search built is shown (of
//! some of those operations, in real-time order).

use super::search::{self, Budget, FoundPrefix, SearchOp};
use crate::model::{Model, Role};
use std::time::{Duration, Instant};

/// How long the search for the prefix may take at most.
const DEADLINE: Duration = Duration::from_secs(2);

/// A prefix ending before `blocked`, the operation [`Model::impossible`] named.
pub(crate) fn before_impossible<M: Model>(
    model: &mut M,
    ops: &[SearchOp],
    blocked: usize,
    budget: &Budget<'_>,
) -> FoundPrefix<M::State> {
    let cut = ops[blocked].call;
    let before: Vec<SearchOp> = ops
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let role = match o.role {
                Role::Required if o.ret.is_some_and(|r| r < cut) => Role::Required,
                // Invoked before the cut, completed after it: one that changes the state may have taken
                // effect before the cut (an operation completing before the cut may have seen it), or not.
                Role::Required if o.call < cut && !model.pure(i) => Role::Optional,
                Role::Optional if o.call < cut => Role::Optional,
                _ => Role::Skip,
            };
            SearchOp { role, ..*o }
        })
        .collect();
    let deadline = Instant::now() + DEADLINE;
    let budget = Budget {
        deadline: Some(budget.deadline.map_or(deadline, |d| d.min(deadline))),
        ..*budget
    };
    let mut prefix = search::linearization(model, &before, &budget).unwrap_or(FoundPrefix {
        omitted: 0,
        ops: Vec::new(),
        states: Vec::new(),
        blocked: 0,
    });
    prefix.blocked = blocked as u32;
    prefix
}
