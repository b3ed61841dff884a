//! The symmetry rule of [`Model::class`]: indeterminate operations of one class are linearized only in invoke
//! order, so the ones taken are always the first of the class.

use super::events::NIL;
use super::SearchOp;
use crate::model::{Model, Role};

pub(super) struct Classes {
    /// Per operation: its class, or NIL.
    class_of: Vec<u32>,
    /// Per class: its operations in invoke order, and how many of them are linearized.
    members: Vec<Vec<u32>>,
    taken: Vec<u32>,
}

impl Classes {
    pub(super) fn new<M: Model>(model: &M, ops: &[SearchOp]) -> Classes {
        let mut ids: rustc_hash::FxHashMap<u64, u32> = Default::default();
        let mut class_of = vec![NIL; ops.len()];
        let mut members: Vec<Vec<u32>> = Vec::new();
        let mut order: Vec<usize> = (0..ops.len())
            .filter(|&i| ops[i].role == Role::Optional)
            .collect();
        order.sort_by_key(|&i| (ops[i].call, i));
        for i in order {
            let Some(c) = model.class(i) else { continue };
            let n = ids.len() as u32;
            let id = *ids.entry(c).or_insert(n);
            if id as usize == members.len() {
                members.push(Vec::new());
            }
            members[id as usize].push(i as u32);
            class_of[i] = id;
        }
        let taken = vec![0; members.len()];
        Classes {
            class_of,
            members,
            taken,
        }
    }

    /// Whether `op` may be linearized now: in no class, or the first of its class not yet linearized.
    #[inline]
    pub(super) fn next_of_class(&self, op: usize) -> bool {
        let c = self.class_of[op];
        c == NIL || self.members[c as usize].get(self.taken[c as usize] as usize) == Some(&(op as u32))
    }

    #[inline]
    pub(super) fn take(&mut self, op: usize) {
        if let Some(c) = self.class_of.get(op).filter(|&&c| c != NIL) {
            self.taken[*c as usize] += 1;
        }
    }

    #[inline]
    pub(super) fn give_back(&mut self, op: usize) {
        if let Some(c) = self.class_of.get(op).filter(|&&c| c != NIL) {
            self.taken[*c as usize] -= 1;
        }
    }
}
