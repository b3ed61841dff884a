//! Deterministic simulation of the Raft core: thousands of seeded schedules with loss, delay, reordering,
//! partitions, crashes and restarts from persisted state; election safety, log matching, leader completeness
//! and state machine safety (plus read freshness and acknowledged-write durability) checked after every step.
//! Each `--bug` gets a schedule that breaks at least one property.

mod sim;

use raftkv::core::Bugs;
use sim::{Faults, Sim};

fn schedules() -> u64 {
    std::env::var("RAFTKV_SIM_SCHEDULES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

#[test]
fn random_schedules_keep_raft_safe() {
    let n = schedules();
    let (mut leaders, mut commits, mut snaps, mut configs, mut reads, mut restarts) = (0, 0, 0, 0, 0, 0);
    for seed in 0..n {
        let mut sim = Sim::new(seed, Faults::random(seed), Bugs::default());
        if let Some(v) = sim.run() {
            panic!("{v}\nfaults: {:?}", sim.faults);
        }
        leaders += sim.leaders_elected;
        commits += sim.commits;
        snaps += sim.snapshots_installed;
        configs += sim.config_changes;
        reads += sim.reads_served;
        restarts += sim.restarts_done;
    }
    eprintln!(
        "{n} schedules: {leaders} leaders elected, {commits} entries applied, {snaps} snapshots installed, \
         {configs} configuration entries applied, {reads} linearizable reads, {restarts} restarts"
    );
    // The schedules must actually exercise the protocol.
    assert!(
        leaders >= n && commits >= n * 100,
        "leaders {leaders}, commits {commits}"
    );
    assert!(
        snaps > 0 && configs > 0 && reads > 0 && restarts > 0,
        "a part of the protocol was never exercised"
    );
}

/// Liveness: whatever the faults did, once they end and a majority runs and can talk, the cluster commits
/// again. Each schedule runs its faults (no membership changes, so the majority is the initial one), then
/// keeps a random minority down and heals everything else (as a run's paused and killed nodes leave a bare
/// majority); new commands must be applied within 3,000 steps (200 shortest election timeouts: with one entry per
/// AppendEntries and 15-step delays a follower hundreds of entries behind needs about a thousand).
#[test]
fn a_live_majority_commits_again_after_any_faults() {
    let n = schedules() / 2;
    for seed in 0..n {
        let mut f = Faults::random(seed);
        f.membership = 0.0;
        let nodes = f.nodes;
        let mut sim = Sim::new(seed, f, Bugs::default());
        if let Some(v) = sim.run() {
            panic!("{v}\nfaults: {:?}", sim.faults);
        }
        let down: Vec<usize> = (0..nodes)
            .filter(|i| (seed.wrapping_mul(0x9E37_79B9) >> (i * 3)) & 1 == 1)
            .take((nodes - 1) / 2)
            .collect();
        sim.calm(&down);
        let before = sim.applied_high();
        let mut steps = 0;
        while sim.applied_high() < before + 5 && steps < 3000 {
            sim.step();
            steps += 1;
        }
        if let Some(v) = &sim.violation {
            panic!("{v}");
        }
        assert!(
            sim.applied_high() >= before + 5,
            "seed {seed}: nodes {down:?} down, the other {} up and connected, and nothing new applied \
             in {steps} steps (applied up to {before}, now {}; leader {:?}); faults: {:?}",
            nodes - down.len(),
            sim.applied_high(),
            sim.leader(),
            sim.faults
        );
    }
}

/// Finds a seed whose schedule breaks a property with `bug` on; the same schedule must hold without it.
fn find_violation(bug: &str, faults: impl Fn(u64) -> Faults, limit: u64) -> String {
    let mut bugs = Bugs::default();
    assert!(bugs.enable(bug));
    for seed in 0..limit {
        let mut sim = Sim::new(seed, faults(seed), bugs);
        if let Some(v) = sim.run() {
            let mut clean = Sim::new(seed, faults(seed), Bugs::default());
            assert_eq!(clean.run(), None, "seed {seed} fails without the bug too");
            eprintln!("--bug {bug}: {v}");
            return v;
        }
    }
    panic!("--bug {bug}: no schedule among {limit} seeds broke a property");
}

fn hostile(seed: u64) -> Faults {
    let mut f = Faults::random(seed);
    f.crash = 0.01;
    f.partition = 0.01;
    f.max_delay = 15;
    f.loss = 0.1;
    f
}

#[test]
fn bug_accept_stale_term_breaks_safety() {
    find_violation("accept-stale-term", hostile, 500);
}

#[test]
fn bug_skip_prev_log_check_breaks_log_matching() {
    find_violation("skip-prev-log-check", hostile, 500);
}

#[test]
fn bug_early_ack_loses_acknowledged_writes() {
    find_violation("early-ack", hostile, 500);
}

#[test]
fn bug_stale_leader_read_serves_stale_reads() {
    find_violation("stale-leader-read", hostile, 500);
}

#[test]
fn bug_volatile_vote_breaks_election_safety() {
    let faults = |seed| {
        let mut f = hostile(seed);
        f.crash = 0.03;
        f.restart = 0.3;
        f
    };
    find_violation("volatile-vote", faults, 1000);
}

#[test]
fn bug_unsafe_membership_breaks_safety() {
    let faults = |seed| {
        let mut f = hostile(seed);
        f.nodes = 5;
        f.membership = 0.02;
        f
    };
    find_violation("unsafe-membership", faults, 1000);
}

#[test]
fn bug_commit_old_term_breaks_safety() {
    // The Figure 8 interleaving is rare in random schedules: with partitions that come and go, about one
    // seed in 750 shows it (2 of 1500 measured when the simulator moved to ChaCha8); 6000 seeds find one
    // with a probability above 99.9%.
    let faults = |seed| {
        let mut f = hostile(seed);
        f.nodes = 5;
        f.max_batch = 1;
        f.crash = 0.02;
        f.restart = 0.1;
        f.partition = 0.03;
        f.heal = 0.02;
        f.loss = 0.2;
        f
    };
    find_violation("commit-old-term", faults, 6000);
}

/// Liveness: with identical election timers (and no pre-vote), the survivors of a dead leader time out
/// together and split the vote forever; with the correct randomised timers a new leader is elected.
fn elects_after_leader_crash(seed: u64, bugs: Bugs) -> bool {
    let f = Faults {
        nodes: 3,
        steps: 0,
        loss: 0.0,
        max_delay: 1,
        crash: 0.0,
        restart: 0.0,
        partition: 0.0,
        heal: 0.0,
        propose: 0.2,
        read: 0.0,
        membership: 0.0,
        skip_tick: 0.0,
        max_batch: 64,
        compact_every: 1000,
    };
    let mut sim = Sim::new(seed, f, bugs);
    // Nodes start a few ticks apart, as real processes do.
    for i in 0..3 {
        for _ in 0..i * 4 {
            sim.tick_only(i);
        }
    }
    let mut first = None;
    for _ in 0..2000 {
        sim.step();
        if let Some(l) = sim.leader() {
            first = Some(l);
            break;
        }
    }
    // Identical timers may never elect a first leader either: that is the same split vote.
    let Some(first) = first else {
        assert!(bugs.fixed_election_timeout, "no first leader with correct timers");
        return false;
    };
    for _ in 0..50 {
        sim.step();
    }
    sim.crash(first);
    for _ in 0..3000 {
        sim.step();
        if sim.leader().is_some() {
            return true;
        }
    }
    assert_eq!(sim.violation, None);
    false
}

#[test]
fn bug_fixed_election_timeout_splits_votes_forever() {
    // Over 40 seeds: correct timers always elect a new leader; identical timers split the vote forever in
    // most schedules (83 of 100 measured; a schedule that desynchronises the survivors by a tick still
    // elects one).
    let mut bugs = Bugs::default();
    bugs.enable("fixed-election-timeout");
    let seeds = 0..40u64;
    let correct = seeds
        .clone()
        .filter(|&s| elects_after_leader_crash(s, Bugs::default()))
        .count();
    assert_eq!(
        correct,
        40,
        "correct timers failed to elect in {} of 40 schedules",
        40 - correct
    );
    let buggy = seeds.filter(|&s| elects_after_leader_crash(s, bugs)).count();
    assert!(
        buggy * 2 <= 40,
        "with identical timers a leader was still elected in {buggy} of 40 schedules"
    );
}
