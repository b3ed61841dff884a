//! Crash faults and the composite minority-leader fault: what they are and how the schedule draws them
//! (pure, like the rest of the schedule). The runner's side is in `runner/crash.rs`.
//!
//! - `kill-several`: several nodes killed (SIGKILL) at the same moment, restarted together after a while.
//! - `kill-election`: the leader is killed; as soon as another node claims the lead, it is killed too, in the
//!   middle of taking office (its first entries may not have reached anyone yet); both are restarted later.
//! - `restart-majority`: a majority of the nodes, the leader first, each killed and restarted at once, one
//!   after another in quick succession, so that elections run while votes and terms held only in memory are
//!   being forgotten.
//! - `minority-leader`: the leader and some followers (a minority) are cut off from the rest, so the old
//!   leader keeps appending writes that cannot commit while the majority elects a new leader and commits
//!   others at the same log positions: the minority holds a conflicting suffix. The hold is counted from the
//!   moment the majority's leader shows up (waiting a few seconds at most), so that every cut has two
//!   leaders for its whole hold, however long the system's elections take. The cut heals, and after a
//!   short catch-up the current leader is killed, so the next leader is elected among nodes that held the
//!   conflicting suffix and nodes that did not.
//!
//! - `lagging-failover`: a minority of the followers paused for a few seconds while the leader goes on
//!   writing; the moment they resume, the leader is killed, so a new leader takes office while they lag far
//!   behind; once its first entries have reached them, the new leader and the followers that kept up are cut
//!   off from the laggards and the old leader (restarted inside the cut), a majority that must elect a leader
//!   of its own. A follower that took the new leader's entries without checking where they belong
//!   (at the end of its short log) has a log without the entries it missed, and now it may lead.
//!
//! - `crash-electorate`: under packet loss between every two nodes, the leader is killed; the moment another
//!   node claims the lead, every other node is killed (the loss means some of them never got the new
//!   leader's first entry, so a vote or term they held only in memory is forgotten) and the new leader is
//!   paused; once the restarted nodes have elected a leader of their own, the two leaders are cut from each
//!   other and the paused one resumes: a system that forgot who it voted for now has two leaders of one term,
//!   each reaching a majority through the same nodes.
//!
//! Every one of them undoes what it did before its step ends (each kill has its restart, the cut its stop),
//! so the schedule only needs to know that nothing else is in the way when it draws one, and to leave time
//! after it.

use crate::rng::Rng;
use crate::schedule::Action;
use std::time::Duration;

/// The crash and composite faults a `--nemesis` list can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrashKind {
    KillSeveral,
    KillElection,
    RestartMajority,
    MinorityLeader,
    CrashElectorate,
    LaggingFailover,
}

impl CrashKind {
    /// The crash faults proper (`crash` in `--nemesis`, and drawn whenever `kill` is chosen).
    pub const CRASHES: [CrashKind; 3] = [
        CrashKind::KillSeveral,
        CrashKind::KillElection,
        CrashKind::RestartMajority,
    ];

    /// The name in `--nemesis` and in history events (`"fault"` of the kill and restart events).
    pub const fn name(self) -> &'static str {
        match self {
            CrashKind::KillSeveral => "kill-several",
            CrashKind::KillElection => "kill-election",
            CrashKind::RestartMajority => "restart-majority",
            CrashKind::MinorityLeader => "minority-leader",
            CrashKind::CrashElectorate => "crash-electorate",
            CrashKind::LaggingFailover => "lagging-failover",
        }
    }

    /// The kind called `name`, if any.
    pub fn parse(name: &str) -> Option<CrashKind> {
        [
            CrashKind::KillSeveral,
            CrashKind::KillElection,
            CrashKind::RestartMajority,
            CrashKind::MinorityLeader,
            CrashKind::CrashElectorate,
            CrashKind::LaggingFailover,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

/// What the schedule knows when it considers one of these faults.
pub(crate) struct Room<'a> {
    pub nodes: &'a [String],
    pub healthy: &'a [String],
    /// Nodes killed or paused by the schedule right now.
    pub down: usize,
    pub max_dead: usize,
    /// Whether a partition is in force.
    pub partition: bool,
    /// The mean interval between changes.
    pub mean: Duration,
    /// From now to the end of the fault window (the quiet period's start).
    pub left: Duration,
}

// The ranges the durations are drawn from (milliseconds, both ends included).
const DOWN_MS: (u64, u64) = (1000, 4000);
const RESTART_DOWN_MS: (u64, u64) = (0, 300);
const RESTART_GAP_MS: (u64, u64) = (100, 1000);
const MINORITY_SETTLE_MS: (u64, u64) = (500, 2000);
const MINORITY_DOWN_MS: (u64, u64) = (1000, 3000);
const ELECTORATE_DOWN_MS: (u64, u64) = (200, 1000);
const ELECTORATE_HOLD_MS: (u64, u64) = (1000, 3000);
const LAG_MS: (u64, u64) = (1000, 3000);
const LAG_SETTLE_MS: (u64, u64) = (300, 1000);
const LAG_HOLD_MS: (u64, u64) = (1000, 3000);
/// lagging-failover: the longest wait for the next leader after the old one is killed.
pub(crate) const LAG_ELECTION_WAIT_MS: u64 = 3000;
/// Waiting for a new leader takes a second or more.
const ELECTION_WAIT_MS: u64 = 2000;
/// crash-electorate waits for two elections.
const ELECTORATE_WAIT_MS: u64 = 6000;
/// minority-leader: how long the cut waits for the majority side to elect a leader before its hold starts.
pub(crate) const MINORITY_ELECTION_WAIT_MS: u64 = 3000;

impl CrashKind {
    /// Whether the fault can start now without breaking the schedule's limits: killed and paused nodes never
    /// exceed `max_dead` (kill-several and kill-election add two or more; restart-majority has one down at a
    /// time, but only on a cluster with nothing down; minority-leader kills one and needs no other partition),
    /// and its shortest draw is over before the fault window ends ([`CrashKind::draw`] shortens the others).
    pub(crate) fn fits(self, room: &Room) -> bool {
        self.allowed(room) && self.bound_ms(room, false) < room.left.as_millis() as u64
    }

    fn allowed(self, room: &Room) -> bool {
        let n = room.nodes.len();
        match self {
            CrashKind::KillSeveral | CrashKind::KillElection => {
                room.down + 2 <= room.max_dead && room.healthy.len() >= 2
            }
            CrashKind::RestartMajority => room.down == 0 && n >= 3 && room.max_dead >= 1,
            CrashKind::MinorityLeader => !room.partition && n >= 3 && room.down < room.max_dead,
            // Pauses (n-1)/2 followers, then kills the leader just after resuming them: nothing else down.
            CrashKind::LaggingFailover => {
                !room.partition && n >= 3 && room.down == 0 && room.max_dead >= (n - 1) / 2
            }
            // Every node but one is killed for a moment (as a power cut kills them all): nothing else down.
            CrashKind::CrashElectorate => !room.partition && n >= 3 && room.down == 0 && room.max_dead >= 1,
        }
    }

    /// The [`busy`] time of this kind's shortest draw (`longest` false) or longest draw in `room`, in ms.
    fn bound_ms(self, room: &Room, longest: bool) -> u64 {
        let b = |r: (u64, u64)| if longest { r.1 } else { r.0 };
        match self {
            CrashKind::KillSeveral => b(DOWN_MS),
            CrashKind::KillElection => b(DOWN_MS) + ELECTION_WAIT_MS,
            CrashKind::RestartMajority => {
                (b(RESTART_DOWN_MS) + b(RESTART_GAP_MS)) * (room.nodes.len() / 2 + 1) as u64
            }
            CrashKind::MinorityLeader => {
                b(minority_hold_ms(room))
                    + b(MINORITY_SETTLE_MS)
                    + b(MINORITY_DOWN_MS)
                    + MINORITY_ELECTION_WAIT_MS
                    + ELECTION_WAIT_MS
            }
            CrashKind::CrashElectorate => b(ELECTORATE_DOWN_MS) + b(ELECTORATE_HOLD_MS) + ELECTORATE_WAIT_MS,
            CrashKind::LaggingFailover => {
                b(LAG_MS) + b(LAG_SETTLE_MS) + b(LAG_HOLD_MS) + LAG_ELECTION_WAIT_MS + ELECTION_WAIT_MS
            }
        }
    }

    /// The share of each duration's range a draw may use, so that even the longest draw is over before the
    /// fault window ends: 1 when the whole ranges fit (busy time is linear in every duration).
    fn scale(self, room: &Room) -> f64 {
        let (lo, hi) = (self.bound_ms(room, false), self.bound_ms(room, true));
        let left = room.left.as_millis() as u64;
        if hi < left || hi == lo {
            return 1.0;
        }
        left.saturating_sub(lo + 1) as f64 / (hi - lo) as f64
    }

    /// The composite faults: each has a start of its own in the schedule (drawn only when named, or with
    /// the kinds [`crate::FaultSet::crash_kinds`] says), not one among the crash faults proper.
    pub(crate) fn composite(self) -> bool {
        matches!(
            self,
            CrashKind::MinorityLeader | CrashKind::CrashElectorate | CrashKind::LaggingFailover
        )
    }

    /// Draws the action (targets and durations) of a fault that [`CrashKind::fits`].
    pub(crate) fn draw(self, room: &Room, rng: &mut Rng) -> Action {
        let f = self.scale(room);
        match self {
            CrashKind::KillSeveral => {
                let most = room.max_dead - room.down;
                let k = 2 + rng.below(most - 1);
                let mut order = room.healthy.to_vec();
                rng.shuffle(&mut order);
                let mut nodes = order[..k.min(order.len())].to_vec();
                nodes.sort();
                Action::KillSeveral {
                    nodes,
                    down_ms: draw_ms(rng, DOWN_MS, f),
                }
            }
            CrashKind::KillElection => Action::KillElection {
                down_ms: draw_ms(rng, DOWN_MS, f),
            },
            CrashKind::RestartMajority => {
                let n = room.nodes.len();
                let mut order = room.nodes.to_vec();
                rng.shuffle(&mut order);
                order.truncate(n / 2 + 1);
                Action::RestartMajority {
                    nodes: order,
                    down_ms: draw_ms(rng, RESTART_DOWN_MS, f),
                    gap_ms: draw_ms(rng, RESTART_GAP_MS, f),
                }
            }
            CrashKind::MinorityLeader => {
                // Long enough for the majority to elect a leader and write, short enough that the majority's
                // leader still holds in its log what the minority lacks (a long cut ends in a snapshot, which
                // replaces the minority's state instead of reconciling its log).
                Action::MinorityLeader {
                    hold_ms: draw_ms(rng, minority_hold_ms(room), f),
                    settle_ms: draw_ms(rng, MINORITY_SETTLE_MS, f),
                    down_ms: draw_ms(rng, MINORITY_DOWN_MS, f),
                    pick: rng.next_u64() % 1024,
                }
            }
            CrashKind::CrashElectorate => Action::CrashElectorate {
                probability: ELECTORATE_LOSS,
                down_ms: draw_ms(rng, ELECTORATE_DOWN_MS, f),
                hold_ms: draw_ms(rng, ELECTORATE_HOLD_MS, f),
            },
            CrashKind::LaggingFailover => Action::LaggingFailover {
                lag_ms: draw_ms(rng, LAG_MS, f),
                settle_ms: draw_ms(rng, LAG_SETTLE_MS, f),
                hold_ms: draw_ms(rng, LAG_HOLD_MS, f),
                pick: rng.next_u64() % 1024,
            },
        }
    }
}

/// A duration from the first `share` of `lo..=hi`.
fn draw_ms(rng: &mut Rng, (lo, hi): (u64, u64), share: f64) -> u64 {
    rng.range(lo, lo + ((hi - lo) as f64 * share) as u64)
}

/// minority-leader's cut: 30-80 % of the mean interval.
fn minority_hold_ms(room: &Room) -> (u64, u64) {
    let mean = room.mean.as_millis().max(10) as u64;
    (mean * 3 / 10, mean * 8 / 10)
}

/// crash-electorate: the share of the packets between two nodes dropped while the election runs.
pub(crate) const ELECTORATE_LOSS: f64 = 0.3;

/// How long a step of these faults keeps the nemesis busy (at least), so that the schedule leaves that much
/// time (plus a mean interval) before the next change; zero for every other action.
pub(crate) fn busy(action: &Action) -> Duration {
    let ms = match action {
        Action::KillSeveral { down_ms, .. } => *down_ms,
        Action::KillElection { down_ms } => down_ms + ELECTION_WAIT_MS,
        Action::RestartMajority {
            nodes,
            down_ms,
            gap_ms,
        } => (down_ms + gap_ms) * nodes.len() as u64,
        Action::MinorityLeader {
            hold_ms,
            settle_ms,
            down_ms,
            ..
        } => hold_ms + settle_ms + down_ms + MINORITY_ELECTION_WAIT_MS + ELECTION_WAIT_MS,
        Action::CrashElectorate { down_ms, hold_ms, .. } => down_ms + hold_ms + ELECTORATE_WAIT_MS,
        Action::LaggingFailover {
            lag_ms,
            settle_ms,
            hold_ms,
            ..
        } => lag_ms + settle_ms + hold_ms + LAG_ELECTION_WAIT_MS + ELECTION_WAIT_MS,
        _ => 0,
    };
    Duration::from_millis(ms)
}
