//! A lab of real SSH "hosts" for the ssh backend's tests and benchmark (included with `#[path]`).
//!
//! [`SshLab::new`] creates N network namespaces on a bridge of its own (a 10.x.y.0/24 it claims, names unique
//! to the lab), runs a real OpenSSH `sshd` in each (its own ed25519 host key, listening on the namespace's
//! address, root login by a key generated for this lab only), and writes a `known_hosts` with every host key
//! and a hosts file for `faultline run --backend ssh`. Each namespace has its own netfilter tables, so the
//! iptables rules faultline adds over SSH live "on that host". Dropping the lab stops its sshd processes (by
//! PID) and removes its namespaces, links, chains and claim. Root only.
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CLAIM_DIR: &str = "/run/faultline/subnets";

/// One host of the lab.
pub struct LabHost {
    /// The network namespace it lives in.
    pub netns: String,
    /// Its address on the lab's bridge (where sshd listens and nodes are reached).
    pub addr: Ipv4Addr,
    sshd: Child,
}

/// N sshd hosts in namespaces on a bridge; everything is removed on drop.
pub struct SshLab {
    /// Keys, configs, known_hosts, the hosts file, and the hosts' `dir` (remote data dirs live under it).
    pub dir: tempfile::TempDir,
    pub hosts: Vec<LabHost>,
    id: String,
    bridge: String,
    chain: String,
    claim: PathBuf,
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn claim_subnet(id: &str) -> (u32, PathBuf) {
    std::fs::create_dir_all(CLAIM_DIR).unwrap();
    let routes = String::from_utf8_lossy(&Command::new("ip").args(["-4", "route"]).output().unwrap().stdout)
        .into_owned();
    for _ in 0..500 {
        // 10.100-159.x.0/24: the runs' own netns subnets are drawn from 10.160-223.
        let a: u32 = 100 + rand::random::<u32>() % 60;
        let b: u32 = rand::random::<u32>() % 256;
        if routes.contains(&format!("10.{a}.{b}.")) || routes.contains(&format!("10.{a}.0.0/16")) {
            continue;
        }
        let path = Path::new(CLAIM_DIR).join(format!("10.{a}.{b}"));
        if let Ok(mut f) = OpenOptions::new().write(true).create_new(true).open(&path) {
            let _ = writeln!(f, "sshlab {id} {}", std::process::id());
            return ((10 << 24) | (a << 16) | (b << 8), path);
        }
    }
    panic!("no free subnet for the ssh lab");
}

impl SshLab {
    /// Creates `n` hosts and waits until each sshd accepts connections.
    pub fn new(n: usize) -> SshLab {
        let id = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        let dir = tempfile::Builder::new()
            .prefix("faultline-sshlab-")
            .tempdir()
            .unwrap();
        let (prefix, claim) = claim_subnet(&id);
        let mut lab = SshLab {
            dir,
            hosts: Vec::new(),
            bridge: format!("slb{id}"),
            chain: format!("SSHLAB-{id}"),
            id: id.clone(),
            claim,
        };
        let bridge = lab.bridge.clone();
        run(&["ip", "link", "add", &bridge, "type", "bridge"]);
        let bridge_ip = Ipv4Addr::from(prefix | 1);
        run(&["ip", "addr", "add", &format!("{bridge_ip}/24"), "dev", &bridge]);
        run(&["ip", "link", "set", &bridge, "up"]);
        // Accept the lab's bridged traffic in a chain of its own (a host whose FORWARD policy is DROP).
        let chain = lab.chain.clone();
        run(&["iptables", "-w", "-N", &chain]);
        run(&["iptables", "-w", "-A", &chain, "-i", &bridge, "-j", "ACCEPT"]);
        run(&["iptables", "-w", "-A", &chain, "-o", &bridge, "-j", "ACCEPT"]);
        run(&["iptables", "-w", "-I", "FORWARD", "1", "-j", &chain]);
        run(&["iptables", "-w", "-I", "INPUT", "1", "-j", &chain]);
        let d = lab.dir.path().to_path_buf();
        let key = d.join("id_ed25519");
        keygen(&key);
        std::fs::copy(d.join("id_ed25519.pub"), d.join("authorized_keys")).unwrap();
        std::fs::create_dir_all(d.join("hosts")).unwrap();
        let mut known = String::new();
        for i in 1..=n {
            let ns = format!("slb{id}-{i}");
            let addr = Ipv4Addr::from(prefix | (10 + i as u32));
            run(&["ip", "netns", "add", &ns]);
            let (host_end, peer_end) = (format!("slb{id}h{i}"), format!("slb{id}p{i}"));
            run(&[
                "ip", "link", "add", &host_end, "type", "veth", "peer", "name", &peer_end, "netns", &ns,
            ]);
            run(&["ip", "link", "set", &host_end, "master", &bridge]);
            run(&["ip", "link", "set", &host_end, "up"]);
            run(&["ip", "-n", &ns, "link", "set", &peer_end, "name", "eth0"]);
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            run(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            let host_key = d.join(format!("host_{i}"));
            keygen(&host_key);
            let pubkey = std::fs::read_to_string(host_key.with_extension("pub")).unwrap();
            let mut fields = pubkey.split_whitespace();
            let (kind, b64) = (fields.next().unwrap(), fields.next().unwrap());
            known.push_str(&format!("{addr} {kind} {b64}\n"));
            let config = d.join(format!("sshd_{i}.conf"));
            std::fs::write(
                &config,
                format!(
                    "Port 22\nListenAddress {addr}\nHostKey {}\nPidFile none\nAuthorizedKeysFile {}\n\
                     PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\nMaxSessions 100\n\
                     MaxStartups 100:30:200\nLogLevel ERROR\n",
                    host_key.display(),
                    d.join("authorized_keys").display()
                ),
            )
            .unwrap();
            let sshd = spawn_sshd(&ns, &config, &d.join(format!("sshd_{i}.log")), &empty_bashrc(&d));
            lab.hosts.push(LabHost {
                netns: ns,
                addr,
                sshd,
            });
        }
        std::fs::write(d.join("known_hosts"), known).unwrap();
        lab.wait_listening();
        lab
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for h in &self.hosts {
            loop {
                if std::net::TcpStream::connect_timeout(&(h.addr, 22).into(), Duration::from_millis(200))
                    .is_ok()
                {
                    break;
                }
                assert!(Instant::now() < deadline, "sshd on {} never listened", h.addr);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The private key of the lab's user (root).
    pub fn identity(&self) -> PathBuf {
        self.dir.path().join("id_ed25519")
    }

    /// A known_hosts file holding every host's key.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// Below it, host `i` keeps faultline's files in `h<i+1>/` (`dir` in the hosts file).
    pub fn remote_dir(&self) -> PathBuf {
        self.dir.path().join("hosts")
    }

    /// Writes a hosts file for the first `n` hosts (every host when `n` is larger) and returns its path.
    pub fn hosts_file(&self, n: usize) -> PathBuf {
        let mut t = format!(
            "# the ssh lab's hosts\nknown_hosts = \"{}\"\nuser = \"root\"\nidentity = \"{}\"\n",
            self.known_hosts().display(),
            self.identity().display(),
        );
        // The hosts share this machine's files: each gets a folder of its own, as real hosts have.
        for (i, h) in self.hosts.iter().take(n).enumerate() {
            t.push_str(&format!(
                "\n[[host]]\nhost = \"{}\"\ndir = \"{}\"\n",
                h.addr,
                self.remote_dir().join(format!("h{}", i + 1)).display()
            ));
        }
        let path = self.dir.path().join("hosts.toml");
        std::fs::write(&path, t).unwrap();
        path
    }

    /// Runs `argv` on host `i` (0-based) directly in its namespace, not over SSH: what a test inspects.
    pub fn on_host(&self, i: usize, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.hosts[i].netns])
            .args(argv)
            .output()
            .unwrap()
    }

    /// The iptables rules of host `i` (`iptables -S`).
    pub fn rules(&self, i: usize) -> String {
        String::from_utf8_lossy(&self.on_host(i, &["iptables", "-w", "-S"]).stdout).into_owned()
    }

    /// Stops host `i`'s sshd (an unreachable host).
    pub fn stop_sshd(&mut self, i: usize) {
        stop(&mut self.hosts[i].sshd);
    }

    /// Cuts host `i` off mid-run: stops its sshd, then ends the SSH sessions it forked (every process of the
    /// namespace whose program is sshd, by PID). The processes those sessions started (nodes) keep running.
    pub fn kill_ssh_sessions(&mut self, i: usize) {
        stop(&mut self.hosts[i].sshd);
        for pid in self.pids(i) {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            if exe == Path::new("/usr/sbin/sshd") || exe.ends_with("sshd-session") {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }

    /// Drops every packet to host `i`'s port 22 (a rule at the top of `INPUT` inside its namespace, which
    /// only this lab and the run under test use): its sshd stays up, but no SSH packet reaches it.
    pub fn drop_ssh(&self, i: usize) {
        let out = self.on_host(i, &SSH_DROP_ADD);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// Undoes [`SshLab::drop_ssh`].
    pub fn undrop_ssh(&self, i: usize) {
        let out = self.on_host(i, &SSH_DROP_DEL);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// Starts host `i`'s sshd again (after [`SshLab::stop_sshd`] or [`SshLab::kill_ssh_sessions`]).
    pub fn start_sshd(&mut self, i: usize) {
        let d = self.dir.path().to_path_buf();
        let n = i + 1;
        self.hosts[i].sshd = spawn_sshd(
            &self.hosts[i].netns,
            &d.join(format!("sshd_{n}.conf")),
            &d.join(format!("sshd_{n}.log")),
            &empty_bashrc(&d),
        );
        self.wait_listening();
    }

    /// The PIDs of every process in host `i`'s namespace.
    pub fn pids(&self, i: usize) -> Vec<i32> {
        pids_of(&self.hosts[i].netns)
    }
}

const SSH_DROP_ADD: [&str; 11] = [
    "iptables", "-w", "-I", "INPUT", "1", "-p", "tcp", "--dport", "22", "-j", "DROP",
];
const SSH_DROP_DEL: [&str; 10] = [
    "iptables", "-w", "-D", "INPUT", "-p", "tcp", "--dport", "22", "-j", "DROP",
];

fn pids_of(netns: &str) -> Vec<i32> {
    let out = Command::new("ip")
        .args(["netns", "pids", netns])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

/// An empty file in the lab's folder, bound over root's .bashrc in each sshd's mount namespace.
fn empty_bashrc(d: &Path) -> PathBuf {
    let empty = d.join("empty_bashrc");
    std::fs::write(&empty, "").unwrap();
    empty
}

/// Runs sshd (in the foreground, its own process group) in namespace `ns` with `config`, output to `log`.
fn spawn_sshd(ns: &str, config: &Path, log: &Path, empty: &Path) -> Child {
    use std::os::unix::process::CommandExt;
    std::fs::create_dir_all("/run/sshd").unwrap();
    let log = OpenOptions::new().create(true).append(true).open(log).unwrap();
    // sshd runs each command as `$SHELL -c`, and Debian's bash then reads ~/.bashrc: this machine's
    // root .bashrc runs `pyenv init`, whose rehash takes a lock file; a session killed mid-rehash left
    // the lock behind and every later remote command waited on it past faultline's 10 s timeout. A
    // lab host is a fresh host: in a mount namespace of its own, an empty file hides root's .bashrc.
    let script = "[ -e /root/.bashrc ] && mount --bind \"$0\" /root/.bashrc; \
                  exec /usr/sbin/sshd -D -e -f \"$1\"";
    Command::new("ip")
        .args(["netns", "exec", ns, "unshare", "--mount", "sh", "-c", script])
        .arg(empty)
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("starting sshd")
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "faultline-sshlab", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "ssh-keygen failed");
}

fn stop(c: &mut Child) {
    if c.try_wait().ok().flatten().is_some() {
        return;
    }
    let pid = nix::unistd::Pid::from_raw(c.id() as i32);
    // Our own child, in its own process group: the listener and the per-connection sshd children it forked.
    let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(3);
    while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = c.wait();
}

impl Drop for SshLab {
    fn drop(&mut self) {
        for h in &mut self.hosts {
            stop(&mut h.sshd);
        }
        let q = |args: &[&str]| {
            let _ = Command::new(args[0])
                .args(&args[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        for h in &self.hosts {
            // The listening sshd is gone, but the sessions it forked (one per SSH connection, reparented to
            // init) live on inside the namespace and would keep it alive: end them, by the PIDs the
            // namespace lists (every process in it was started by this lab's sshd).
            for pid in pids_of(&h.netns) {
                q(&["kill", "-KILL", &pid.to_string()]);
            }
            q(&["ip", "netns", "del", &h.netns]);
        }
        for i in 1..=self.hosts.len() {
            q(&["ip", "link", "del", &format!("slb{}h{i}", self.id)]);
        }
        q(&["iptables", "-w", "-D", "FORWARD", "-j", &self.chain]);
        q(&["iptables", "-w", "-D", "INPUT", "-j", &self.chain]);
        q(&["iptables", "-w", "-F", &self.chain]);
        q(&["iptables", "-w", "-X", &self.chain]);
        q(&["ip", "link", "del", &self.bridge]);
        let _ = std::fs::remove_file(&self.claim);
    }
}
