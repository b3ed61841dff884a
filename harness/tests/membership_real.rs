//! The spec's membership actions against real clusters (raftkv and etcd, local backend): remove a member,
//! wipe it, add it back as a new member that joins, and see the cluster report it again; raftkv's also as
//! `kind = "command"` actions (a program run on faultline's host).

use harness::deployment::DeploymentOptions;
use harness::state::StateFile;
use harness::{Backend, Deployment, LoadedSpec, MemberChange};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;
use support::{ensure_raftkv, spec};

/// GET the url, or POST `{}` to it when `post`.
async fn json(url: String, post: bool) -> Option<serde_json::Value> {
    let c = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .ok()?;
    let rq = if post { c.post(url).body("{}") } else { c.get(url) };
    rq.send().await.ok()?.json().await.ok()
}

/// The member names in a member-list answer: raftkv's `/status` lists them as strings under `members`,
/// etcd's gateway as objects with a `name`. Only that list counts: raftkv's status also names the last
/// known leader, which may still be the member just removed. None when the answer has no such list.
fn member_names(v: &serde_json::Value) -> Option<Vec<String>> {
    let list = v.get("members")?.as_array()?;
    list.iter()
        .map(|m| m.as_str().or_else(|| m.get("name").and_then(|n| n.as_str())))
        .map(|n| n.map(str::to_string))
        .collect()
}

/// `members`: the request listing the members (path, whether it is a POST).
/// `lazyfs`: serve the data directories from lazyfs mounts (as `--nemesis lose-unsynced` does).
async fn remove_and_rejoin(spec: Arc<LoadedSpec>, members: (&str, bool), lazyfs: Option<lazyfs::Names>) {
    let dir = tempfile::tempdir().unwrap();
    let state = StateFile::create(dir.path()).unwrap();
    let mut opts = DeploymentOptions::plain(Backend::Local, 3, dir.path().to_path_buf());
    opts.lazyfs = lazyfs;
    let cluster = Deployment::create(spec, &opts, state).unwrap();
    cluster.start_all().unwrap();
    let (_tx, mut rx) = tokio::sync::watch::channel(false);
    cluster.wait_ready(&mut rx).await.unwrap();
    let n1 = cluster.nodes()[0].client_address.clone();
    // The member list as n1 answers it; a request that fails, or an answer without a member list, is
    // retried for a while and then fails the test (it never counts as "n3 is gone").
    let member_list = || async {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let answer = json(format!("http://{n1}{}", members.0), members.1).await;
            if let Some(names) = answer.as_ref().and_then(member_names) {
                return names;
            }
            assert!(Instant::now() < deadline, "no member list from n1: {answer:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let listed = member_list().await;
    assert!(
        listed.iter().any(|m| m == "n3"),
        "n3 is not listed at first: {listed:?}"
    );

    cluster
        .member_action(MemberChange::Remove, "n3", Duration::from_secs(20))
        .await
        .unwrap();
    let _ = cluster.kill_node("n3");
    let n3_data = cluster.nodes()[2].data_dir.clone();
    assert!(
        std::fs::read_dir(&n3_data).unwrap().next().is_some(),
        "n3 wrote no data"
    );
    cluster.wipe_data("n3").unwrap();
    assert!(
        !n3_data.exists() || std::fs::read_dir(&n3_data).unwrap().next().is_none(),
        "n3's data survived the wipe"
    );
    if cluster.has_lazyfs() {
        assert!(
            lazyfs::is_mounted(&n3_data),
            "the wipe took n3's lazyfs mount away"
        );
    }
    let listed = member_list().await;
    assert!(
        !listed.iter().any(|m| m == "n3"),
        "n3 still a member after remove: {listed:?}"
    );

    cluster
        .member_action(MemberChange::Add, "n3", Duration::from_secs(20))
        .await
        .unwrap();
    cluster.start_node("n3", true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = member_list().await;
        if listed.iter().any(|m| m == "n3") && cluster.probe_ready(&cluster.nodes()[2]).await {
            break;
        }
        assert!(Instant::now() < deadline, "n3 did not come back: {listed:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let report = cluster.teardown();
    assert!(report.errors.is_empty(), "{report:?}");
    let log = std::fs::read_to_string(dir.path().join("nodes/n3.log")).unwrap();
    assert_eq!(log.matches("=== faultline: starting n3").count(), 2, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raftkv_member_removed_and_added_back() {
    ensure_raftkv();
    remove_and_rejoin(spec("raftkv.toml"), ("/status", false), None).await;
}

/// The same on lazyfs data directories: wiping a removed member empties its mount (a mount point cannot be
/// removed: `member-remove` failed with EBUSY when `lose-unsynced` was chosen too). Needs root and /dev/fuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raftkv_member_removed_and_added_back_on_lazyfs() {
    ensure_raftkv();
    let names = lazyfs::Names::OnDirSync;
    remove_and_rejoin(spec("raftkv.toml"), ("/status", false), Some(names)).await;
}

/// raftkv's membership actions as `kind = "command"`: a program run on faultline's host (a shell script that
/// POSTs to `/members` through curl, trying each current member from `{peers}` until one takes it) instead of
/// the spec's HTTP requests.
const COMMAND_ACTIONS: &str = r#"[membership]
start_joining = "before"

[membership.add]
kind = "command"
command = ["SCRIPT", "add", "{id}", "{host}:{port}", "{peers}"]

[membership.remove]
kind = "command"
command = ["SCRIPT", "remove", "{id}", "{host}:{port}", "{peers}"]
"#;

const MEMBER_SCRIPT: &str = r#"#!/bin/sh
# member.sh add|remove ID ADDRESS PEERS: asks each of PEERS (id=host:port,...) in turn; exit 0 once one took it.
op=$1 id=$2 addr=$3
if [ "$op" = add ]; then body="{\"add\": {\"$id\": \"$addr\"}}"; else body="{\"remove\": [\"$id\"]}"; fi
echo "$op $id" >> "$0.calls"
for p in $(echo "$4" | tr ',' ' '); do
  curl -sf -m 5 -X POST -H 'content-type: application/json' -d "$body" "http://${p#*=}/members" && exit 0
done
exit 1
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raftkv_member_removed_and_added_back_through_command_actions() {
    use std::os::unix::fs::PermissionsExt;
    ensure_raftkv();
    assert!(
        std::process::Command::new("curl")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "this test's membership script needs curl"
    );
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("member.sh");
    std::fs::write(&script, MEMBER_SCRIPT).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dbs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dbs");
    let text = std::fs::read_to_string(dbs.join("raftkv.toml")).unwrap();
    let (head, tail) = text.split_once("[membership]").unwrap();
    let rest = &tail[tail.find("[stop]").unwrap()..];
    let actions = COMMAND_ACTIONS.replace("SCRIPT", &script.display().to_string());
    let spec = LoadedSpec::from_text(
        &format!("{head}{actions}\n{rest}"),
        "command-actions.toml",
        Some(dbs),
    )
    .unwrap();
    let m = spec.spec.membership.as_ref().unwrap();
    assert!(m.add.kind == harness::spec::ProbeKind::Command && m.change.is_none());
    remove_and_rejoin(Arc::new(spec), ("/status", false), None).await;
    // The program, not an HTTP request, made both changes.
    let calls = std::fs::read_to_string(dir.path().join("member.sh.calls")).unwrap();
    // (A call that found no member to take it is retried, so a change may appear more than once.)
    let calls: Vec<&str> = calls.lines().collect();
    let removes = calls.iter().take_while(|c| **c == "remove n3").count();
    assert!(
        removes >= 1 && calls[removes..].iter().all(|c| *c == "add n3") && calls.len() > removes,
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_member_removed_and_added_back() {
    // etcd lists members by name through its JSON gateway.
    remove_and_rejoin(spec("etcd.toml"), ("/v3/cluster/member/list", true), None).await;
}
