//! The [`Deployment`] as the nemesis sees it: the harness's implementation of the `nemesis::Cluster` trait
//! (its network layout, its nodes, running commands where a node's network lives, kill/restart,
//! pause/resume, the leader, a node's clock offset).

use crate::deployment::Deployment;
use crate::Backend;
use std::sync::Arc;

/// A deployment as a `nemesis::Cluster`.
pub struct FaultTarget(pub Arc<Deployment>);

impl FaultTarget {
    /// Every host, members and spares, as the nemesis sees them.
    fn all_nodes(&self) -> Vec<nemesis::Node> {
        self.0
            .nodes()
            .iter()
            .map(|n| {
                let mut ports = vec![n.client_port];
                if n.peer_port != n.client_port {
                    ports.push(n.peer_port);
                }
                nemesis::Node {
                    id: n.id.clone(),
                    addr: n.host,
                    ports,
                    netns: n.netns.clone(),
                    cgroup: n.cgroup.clone(),
                    faketime_file: n.faketime_file.clone(),
                }
            })
            .collect()
    }
}

impl FaultTarget {
    /// Signals a node's group off the async workers (on the ssh backend it is a remote command).
    fn signal<'a>(
        &'a self,
        node: &'a str,
        sig: nix::sys::signal::Signal,
    ) -> nemesis::BoxFuture<'a, Result<(), nemesis::ClusterError>> {
        let (c, id) = (self.0.clone(), node.to_string());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || c.signal_node(&id, sig))
                .await
                .map_err(cerr)?
                .map_err(cerr)
        })
    }
}

fn cerr(e: impl std::fmt::Display) -> nemesis::ClusterError {
    nemesis::ClusterError(e.to_string())
}

impl nemesis::Cluster for FaultTarget {
    fn layout(&self) -> nemesis::NetLayout {
        match self.0.backend() {
            // Each ssh host has its own netfilter tables and address, as a namespace does.
            Backend::Netns | Backend::Ssh => nemesis::NetLayout::Netns,
            _ => nemesis::NetLayout::Local,
        }
    }

    fn nodes(&self) -> Vec<nemesis::Node> {
        let spares: Vec<String> = self
            .0
            .nodes()
            .iter()
            .filter(|n| n.spare)
            .map(|n| n.id.clone())
            .collect();
        self.all_nodes()
            .into_iter()
            .filter(|n| !spares.contains(&n.id))
            .collect()
    }

    fn exec<'a>(
        &'a self,
        node: &'a str,
        argv: &'a [String],
    ) -> nemesis::BoxFuture<'a, Result<nemesis::ExecOutput, nemesis::ClusterError>> {
        Box::pin(async move {
            let out = self.0.exec(node, argv).await.map_err(cerr)?;
            Ok(nemesis::ExecOutput {
                status: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        })
    }

    fn kill<'a>(&'a self, node: &'a str) -> nemesis::BoxFuture<'a, Result<(), nemesis::ClusterError>> {
        let (c, id) = (self.0.clone(), node.to_string());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || c.kill_node(&id))
                .await
                .map_err(cerr)?
                .map_err(cerr)
        })
    }

    fn restart<'a>(&'a self, node: &'a str) -> nemesis::BoxFuture<'a, Result<(), nemesis::ClusterError>> {
        let (c, id) = (self.0.clone(), node.to_string());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || c.start_node(&id, false))
                .await
                .map_err(cerr)?
                .map_err(cerr)
        })
    }

    fn pause<'a>(&'a self, node: &'a str) -> nemesis::BoxFuture<'a, Result<(), nemesis::ClusterError>> {
        self.signal(node, nix::sys::signal::Signal::SIGSTOP)
    }

    fn resume<'a>(&'a self, node: &'a str) -> nemesis::BoxFuture<'a, Result<(), nemesis::ClusterError>> {
        self.signal(node, nix::sys::signal::Signal::SIGCONT)
    }

    fn leader(&self) -> nemesis::BoxFuture<'_, Result<Option<String>, nemesis::ClusterError>> {
        Box::pin(async move { self.0.leader().await.map_err(cerr) })
    }

    fn spares(&self) -> Vec<nemesis::Node> {
        let spares: Vec<String> = self
            .0
            .nodes()
            .iter()
            .filter(|n| n.spare)
            .map(|n| n.id.clone())
            .collect();
        self.all_nodes()
            .into_iter()
            .filter(|n| spares.contains(&n.id))
            .collect()
    }

    fn change_members<'a>(
        &'a self,
        add: &'a [String],
        remove: &'a [String],
        members: &'a [String],
        via: Option<&'a str>,
    ) -> nemesis::BoxFuture<'a, Result<(), nemesis::ClusterError>> {
        Box::pin(async move {
            self.0
                .change_members(add, remove, members, via)
                .await
                .map_err(cerr)
        })
    }

    fn retire<'a>(&'a self, node: &'a str) -> nemesis::BoxFuture<'a, Result<(), nemesis::ClusterError>> {
        let (c, id) = (self.0.clone(), node.to_string());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || c.retire(&id))
                .await
                .map_err(cerr)?
                .map_err(cerr)
        })
    }

    fn clock_faults(&self) -> Result<(), String> {
        match self.0.backend() {
            // Looked up on each host before its node started (a host without it fails the setup).
            Backend::Ssh => Ok(()),
            _ => nemesis::clock::available_here(),
        }
    }

    fn set_clock<'a>(
        &'a self,
        node: &'a str,
        offset_ms: i64,
    ) -> nemesis::BoxFuture<'a, Result<(), nemesis::ClusterError>> {
        Box::pin(async move { self.0.set_clock(node, offset_ms).await.map_err(cerr) })
    }

    fn durability(&self) -> Result<(), String> {
        if self.0.has_lazyfs() {
            Ok(())
        } else {
            Err("the data directories are not lazyfs mounts".into())
        }
    }

    fn lose_unsynced<'a>(
        &'a self,
        node: &'a str,
    ) -> nemesis::BoxFuture<'a, Result<nemesis::DataLoss, nemesis::ClusterError>> {
        let (c, id) = (self.0.clone(), node.to_string());
        Box::pin(async move {
            let lost = tokio::task::spawn_blocking(move || c.lose_unsynced(&id))
                .await
                .map_err(cerr)?
                .map_err(cerr)?;
            Ok(nemesis::DataLoss {
                files: lost.files,
                bytes: lost.bytes,
                dirs: lost.dirs,
            })
        })
    }
}
