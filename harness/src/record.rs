//! How the harness fills the run record (`test.json`, typed as [`results::RunRecord`]): from the run's
//! configuration, the nodes as started, the schedule drawn and the tear-down's report.

use crate::deployment::NodeInfo;
use crate::heal::HealReport;
use results::record::{NemesisRecord, NodeRecord, ScheduleRecord, SpecRecord, StepRecord, TeardownRecord};
use results::RunRecord;
use std::collections::BTreeMap;

/// What the record is first made from, before anything is created.
pub(crate) struct RecordStart<'a> {
    pub name: &'a str,
    pub spec: &'a crate::LoadedSpec,
    pub workload: &'a workloads::Workload,
    pub protocol: &'a workloads::Protocol,
    pub backend: crate::Backend,
    pub config: &'a crate::RunConfig,
    pub schedule_opts: &'a nemesis::ScheduleOptions,
    pub leader_targeted: Option<bool>,
    pub seed: u64,
    pub run_id: &'a str,
}

/// The record as the run begins: configuration, seed, versions, command line.
pub(crate) fn start(s: &RecordStart<'_>) -> RunRecord {
    let c = s.config;
    RunRecord {
        schema_version: results::SCHEMA_VERSION,
        name: s.name.to_string(),
        db: s.spec.spec.name.clone(),
        spec: SpecRecord {
            origin: s.spec.origin.clone(),
            text: s.spec.text.clone(),
        },
        workload: s.workload.name().to_string(),
        model: s.workload.model_name().to_string(),
        protocol: s.protocol.name().to_string(),
        backend: s.backend.name().to_string(),
        node_count: c.nodes,
        concurrency: c.concurrency,
        rate: c.rate,
        time_limit: c.time_limit.as_secs_f64(),
        recovery_limit: c.recovery_limit.as_secs_f64(),
        seed: Some(s.seed),
        node_args: c.node_args.clone(),
        nemesis: NemesisRecord {
            faults: c.nemesis.clone(),
            interval: s.schedule_opts.interval.as_secs_f64(),
            leader_targeted: s.leader_targeted,
            options: object(serde_json::to_value(s.schedule_opts)),
            schedule: None,
        },
        run_id: s.run_id.to_string(),
        started_at: results::store::utc_timestamp(std::time::SystemTime::now()),
        versions: results::record::Versions {
            faultline: env!("CARGO_PKG_VERSION").to_string(),
            system: None,
        },
        argv: std::env::args().collect(),
        ..Default::default()
    }
}

/// The nodes as started.
pub(crate) fn nodes(nodes: &[NodeInfo]) -> Vec<NodeRecord> {
    nodes
        .iter()
        .map(|n| NodeRecord {
            id: n.id.clone(),
            index: n.index,
            host: n.host.to_string(),
            client_port: n.client_port,
            peer_port: n.peer_port,
            netns: n.netns.clone(),
            client_address: n.client_address.clone(),
            data_dir: n.data_dir.clone(),
            log_path: n.log_path.clone(),
            argv: n.argv.clone(),
            env: n.env.clone(),
            cgroup: n.cgroup.clone(),
            faketime_file: n.faketime_file.clone(),
        })
        .collect()
}

/// The schedule drawn: each step's time, action name and the action's own fields.
pub(crate) fn schedule(s: &nemesis::Schedule) -> ScheduleRecord {
    let steps = s
        .steps
        .iter()
        .map(|step| {
            let mut detail = object(serde_json::to_value(&step.action));
            let action = match detail.remove("action") {
                Some(serde_json::Value::String(a)) => a,
                _ => String::new(),
            };
            StepRecord {
                at_ms: step.at.as_millis() as u64,
                action,
                detail,
            }
        })
        .collect();
    ScheduleRecord { seed: s.seed, steps }
}

/// What the tear-down did.
pub(crate) fn teardown(r: &HealReport) -> TeardownRecord {
    TeardownRecord {
        processes_stopped: r.processes_stopped.clone(),
        removed: r.removed.clone(),
        errors: r.errors.clone(),
    }
}

/// Now, as the record writes times.
pub(crate) fn now() -> String {
    results::store::utc_timestamp(std::time::SystemTime::now())
}

fn object(v: Result<serde_json::Value, serde_json::Error>) -> BTreeMap<String, serde_json::Value> {
    match v {
        Ok(serde_json::Value::Object(m)) => m.into_iter().collect(),
        _ => BTreeMap::new(),
    }
}
