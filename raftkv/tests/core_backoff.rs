//! Fast conflict back-off: a follower with a long conflicting suffix is repaired in one rejection per
//! conflicting term, not one per entry.

use raftkv::core::{
    Body, Bugs, Config, Entry, EntryData, HardState, Membership, Message, Node, Persisted, Role,
};

fn entries(from: u64, to: u64, term: u64) -> Vec<Entry> {
    (from..=to)
        .map(|index| Entry {
            index,
            term,
            data: EntryData::Command(format!("{index}@{term}")),
        })
        .collect()
}

fn node(id: &str, term: u64, log: Vec<Entry>) -> Node {
    let base = Membership {
        voters: ["a".to_string(), "b".to_string()].into(),
        ..Membership::default()
    };
    let cfg = Config {
        id: id.into(),
        base,
        heartbeat_ticks: 2,
        election_ticks: 10,
        max_batch: 1000,
        max_inflight: 4,
        seed: 1,
        bugs: Bugs::default(),
    };
    Node::new(
        cfg,
        Persisted {
            hard_state: HardState { term, vote: None },
            snapshot: None,
            entries: log,
        },
    )
}

#[test]
fn conflicting_suffix_is_skipped_a_term_at_a_time() {
    let mut a = node("a", 3, [entries(1, 50, 1), entries(51, 100, 3)].concat());
    let mut b = node("b", 2, [entries(1, 50, 1), entries(51, 150, 2)].concat());
    let mut rejections = 0;
    let mut queue: Vec<Message> = Vec::new();
    for _ in 0..200 {
        a.tick();
        queue.extend(a.ready().messages);
        queue.extend(b.ready().messages);
        while !queue.is_empty() {
            for m in std::mem::take(&mut queue) {
                if matches!(m.body, Body::AppendResp { success: false, .. }) {
                    rejections += 1;
                }
                if m.to == "a" {
                    a.step(m);
                } else {
                    b.step(m);
                }
            }
            queue.extend(a.ready().messages);
            queue.extend(b.ready().messages);
        }
        if a.role() == Role::Leader
            && b.last_index() == a.last_index()
            && b.commit_index() == a.commit_index()
        {
            break;
        }
    }
    assert_eq!(a.role(), Role::Leader);
    assert_eq!(
        b.entries(),
        a.entries(),
        "the follower's log was repaired to the leader's"
    );
    assert_eq!(b.last_index(), 101);
    eprintln!("rejections: {rejections}");
    // 50 conflicting entries of one term: one rejection (entry-by-entry back-off would need 50).
    assert!((1..=2).contains(&rejections), "{rejections} rejections");
}
