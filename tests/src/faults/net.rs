//! A private network of Linux network namespaces: one namespace per
//! member, each with a veth into one bridge in the root namespace, and
//! partitions made of iptables DROP rules inside the members' namespaces.
//!
//! - Addresses come from a private /24, `10.213.N.0/24`, with `N` chosen
//!   per [`Net`] among the ones no other live `Net` holds; the bridge is
//!   `.1` (the test process reaches every member through it) and member
//!   `i` is `.11 + i`. These addresses exist only in this machine's
//!   namespaces.
//! - Names carry a random tag: namespaces `cmf-TAG-MEMBER`, bridge
//!   `cmfbTAG`, veths `cmfhTAGi` (interface names stay under 15 chars).
//! - A `Net` registers itself in `/run/cronmesh-faults/N` (owner pid and
//!   start time) before it creates anything. Dropping it, even while a
//!   panic unwinds, removes everything; a new `Net` first removes what a
//!   crashed earlier run left (tags whose owner is gone).
//! - It needs root, `ip` (iproute2) and `iptables`; without them it
//!   panics saying so (the tests must not pass by doing nothing).

use std::{
    collections::BTreeSet,
    fs,
    net::Ipv4Addr,
    path::PathBuf,
    process::{Command, Output, Stdio},
    sync::Mutex,
    time::Duration,
};

const REGISTRY: &str = "/run/cronmesh-faults";
/// Namespaces are `cmf-TAG-MEMBER`.
const NS_PREFIX: &str = "cmf-";
/// The bridge is `cmfbTAG`.
const BRIDGE_PREFIX: &str = "cmfb";
/// Root-side veth ends are `cmfhTAGi`; the namespace side is renamed `eth0`.
const VETH_PREFIX: &str = "cmfh";
const TAG_LEN: usize = 5;

/// One `Net` at a time chooses its subnet in this process.
static ALLOCATION: Mutex<()> = Mutex::new(());

#[derive(Clone, Debug)]
pub struct Member {
    pub name: String,
    pub ns: String,
    pub ip: Ipv4Addr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    ns: String,
    chain: &'static str,
    spec: Vec<String>,
}

/// The rules one partition added; [`Net::heal`] removes exactly these.
#[must_use = "a partition stays until it is healed (or the Net dropped)"]
#[derive(Debug)]
pub struct Partition {
    pub what: String,
    rules: Vec<Rule>,
}

pub struct Net {
    pub tag: String,
    pub subnet: u8,
    pub bridge: String,
    members: Vec<Member>,
    rules: Mutex<Vec<Rule>>,
    registration: PathBuf,
    forward_rule: Option<Vec<String>>,
}

/// Runs a command; its stdout, or what went wrong.
fn run(argv: &[&str]) -> Result<String, String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {argv:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    } else {
        Err(format!(
            "{argv:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(argv: &[&str]) -> String {
    run(argv).unwrap_or_else(|e| panic!("network setup: {e}"))
}

/// Fails loudly when this machine cannot give the harness what it needs.
fn require_privileges() {
    const HOW: &str = "the fault tests need root, iproute2 (`ip netns`) and iptables: \
        run them as root on Linux with `apt-get install iproute2 iptables` (.ci/run does)";
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(str::to_string);
    assert_eq!(
        euid.as_deref(),
        Some("0"),
        "{HOW}; this process is not root (euid {euid:?})"
    );
    for argv in [
        &["ip", "-V"][..],
        &["ip", "netns", "list"],
        &["iptables", "-V"],
    ] {
        if let Err(e) = run(argv) {
            panic!("{HOW}; {e}");
        }
    }
}

/// Whether the process of a registration (`pid starttime tag`) still runs.
fn owner_alive(registration: &str) -> bool {
    let mut fields = registration.split_whitespace();
    let (Some(pid), Some(start)) = (fields.next(), fields.next()) else {
        return false;
    };
    process_start_time(pid).is_some_and(|s| s == start)
}

/// Field 22 of /proc/PID/stat: when the process started (clock ticks after boot).
fn process_start_time(pid: &str) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19).map(str::to_string)
}

/// Tags and subnets of the live registrations.
fn live_registrations() -> (BTreeSet<String>, BTreeSet<u8>) {
    let mut tags = BTreeSet::new();
    let mut subnets = BTreeSet::new();
    if let Ok(entries) = fs::read_dir(REGISTRY) {
        for entry in entries.flatten() {
            let text = fs::read_to_string(entry.path()).unwrap_or_default();
            if owner_alive(&text) {
                if let Some(tag) = text.split_whitespace().nth(2) {
                    tags.insert(tag.to_string());
                }
                if let Some(n) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                    subnets.insert(n);
                }
            }
        }
    }
    (tags, subnets)
}

fn namespaces() -> Vec<String> {
    run(&["ip", "netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn links() -> Vec<String> {
    run(&["ip", "-o", "link", "show"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_string())
        .collect()
}

/// Kills whatever still runs in a namespace, then deletes it.
fn delete_namespace(ns: &str) -> Result<(), String> {
    for pid in run(&["ip", "netns", "pids", ns])
        .unwrap_or_default()
        .split_whitespace()
    {
        let _ = run(&["kill", "-KILL", pid]);
    }
    run(&["ip", "netns", "del", ns]).map(|_| ())
}

/// Removes what earlier runs left behind: namespaces, bridges, veths,
/// root FORWARD rules and registrations of tags whose owner is gone.
fn sweep_leftovers() {
    // List the objects before reading the registry: a live Net registers
    // before it creates anything, so whatever is listed here and has no
    // live registration is a leftover.
    let spaces = namespaces();
    let interfaces = links();
    let forward = run(&["iptables", "-S", "FORWARD"]).unwrap_or_default();
    let (live, _) = live_registrations();
    let dead = |tag: &str| !live.contains(tag);
    for ns in &spaces {
        if let Some(tag) = ns
            .strip_prefix(NS_PREFIX)
            .and_then(|rest| rest.split('-').next())
        {
            if tag.len() == TAG_LEN && dead(tag) {
                eprintln!("faults: removing namespace {ns} left by an earlier run");
                let _ = delete_namespace(ns);
            }
        }
    }
    for link in &interfaces {
        let tag = link
            .strip_prefix(BRIDGE_PREFIX)
            .or_else(|| link.strip_prefix(VETH_PREFIX))
            .and_then(|rest| rest.get(..TAG_LEN));
        if let Some(tag) = tag {
            if dead(tag) {
                eprintln!("faults: removing interface {link} left by an earlier run");
                let _ = run(&["ip", "link", "del", link]);
            }
        }
    }
    for rule in forward.lines() {
        let Some(tag) = rule
            .split_once("--comment cmf-")
            .and_then(|(_, rest)| rest.get(..TAG_LEN))
        else {
            continue;
        };
        if dead(tag) {
            if let Some(spec) = rule.strip_prefix("-A ") {
                let mut argv = vec!["iptables", "-D"];
                argv.extend(spec.split_whitespace());
                let _ = run(&argv);
            }
        }
    }
    if let Ok(entries) = fs::read_dir(REGISTRY) {
        for entry in entries.flatten() {
            let text = fs::read_to_string(entry.path()).unwrap_or_default();
            if !owner_alive(&text) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// Subnets `10.213.N.0/24` that the root namespace already routes.
fn routed_subnets() -> BTreeSet<u8> {
    run(&["ip", "-4", "route", "show", "table", "all"])
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("10.213."))
        .filter_map(|rest| rest.split('.').next()?.parse().ok())
        .collect()
}

fn random_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let mut rng = super::rng::Rng::new(nanos ^ (u64::from(std::process::id()) << 32));
    (0..TAG_LEN)
        .map(|_| char::from_digit(rng.below(36) as u32, 36).expect("a base-36 digit"))
        .collect()
}

impl Net {
    /// A bridge and one namespace per name in `members`, every member
    /// reachable from the test process and from each other.
    pub fn new(members: &[&str]) -> Self {
        require_privileges();
        fs::create_dir_all(REGISTRY).unwrap_or_else(|e| panic!("cannot create {REGISTRY}: {e}"));
        let tag = random_tag();
        let allocation = ALLOCATION.lock().unwrap_or_else(|p| p.into_inner());
        sweep_leftovers();
        let (_, taken) = live_registrations();
        let routed = routed_subnets();
        let me = std::process::id().to_string();
        let start = process_start_time(&me).expect("this process's start time");
        let first = u8::try_from(1 + (tag.as_bytes()[0] as usize * 7) % 254).unwrap_or(1);
        // The registration appears complete or not at all: written aside,
        // then linked to its name (which fails if the name is taken).
        let draft = PathBuf::from(REGISTRY).join(format!(".{tag}"));
        fs::write(&draft, format!("{me} {start} {tag}\n"))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", draft.display()));
        let claimed = (0..254u16)
            .map(|k| ((u16::from(first) - 1 + k) % 254 + 1) as u8)
            .filter(|n| !taken.contains(n) && !routed.contains(n))
            .find_map(|n| {
                let path = PathBuf::from(REGISTRY).join(n.to_string());
                fs::hard_link(&draft, &path).ok().map(|_| (n, path))
            });
        let _ = fs::remove_file(&draft);
        let (subnet, registration) =
            claimed.expect("a free subnet 10.213.N.0/24 (all 254 are taken?)");
        drop(allocation);

        // From here on, Drop removes whatever was created.
        let mut net = Self {
            bridge: format!("{BRIDGE_PREFIX}{tag}"),
            members: members
                .iter()
                .enumerate()
                .map(|(i, name)| Member {
                    name: name.to_string(),
                    ns: format!("{NS_PREFIX}{tag}-{name}"),
                    ip: Ipv4Addr::new(10, 213, subnet, 11 + i as u8),
                })
                .collect(),
            tag,
            subnet,
            rules: Mutex::new(Vec::new()),
            registration,
            forward_rule: None,
        };
        net.create();
        net
    }

    fn create(&mut self) {
        let bridge = self.bridge.clone();
        let host = self.host_ip().to_string();
        must(&["ip", "link", "add", &bridge, "type", "bridge"]);
        must(&["ip", "addr", "add", &format!("{host}/24"), "dev", &bridge]);
        must(&["ip", "link", "set", &bridge, "up"]);
        // When bridged traffic passes through iptables (br_netfilter), a
        // FORWARD policy of DROP (as Docker sets) would cut every member
        // off: accept what stays on this bridge.
        let comment = format!("cmf-{}", self.tag);
        let forward: Vec<String> = [
            "FORWARD",
            "-i",
            &bridge,
            "-o",
            &bridge,
            "-m",
            "comment",
            "--comment",
            &comment,
            "-j",
            "ACCEPT",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut insert = vec!["iptables", "-I"];
        insert.extend(forward.iter().map(String::as_str));
        must(&insert);
        self.forward_rule = Some(forward);
        for (i, member) in self.members.clone().iter().enumerate() {
            let host_end = format!("{VETH_PREFIX}{}{i}", self.tag);
            let ns_end = format!("cmfp{}{i}", self.tag);
            let ns = member.ns.as_str();
            must(&["ip", "netns", "add", ns]);
            must(&[
                "ip", "link", "add", &host_end, "type", "veth", "peer", "name", &ns_end,
            ]);
            must(&["ip", "link", "set", &ns_end, "netns", ns]);
            must(&["ip", "link", "set", &host_end, "master", &bridge, "up"]);
            must(&["ip", "-n", ns, "link", "set", &ns_end, "name", "eth0"]);
            must(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/24", member.ip),
                "dev",
                "eth0",
            ]);
            must(&["ip", "-n", ns, "link", "set", "eth0", "up"]);
            must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        eprintln!(
            "faults: network {}: bridge {} {}/24, {}",
            self.tag,
            self.bridge,
            self.host_ip(),
            self.members
                .iter()
                .map(|m| format!("{}={} ({})", m.name, m.ip, m.ns))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    /// The bridge's address: where the test process is on this network.
    pub fn host_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.subnet, 1)
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn member(&self, name: &str) -> &Member {
        self.members
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no member {name} in this network"))
    }

    pub fn ip(&self, name: &str) -> Ipv4Addr {
        self.member(name).ip
    }

    /// The argv prefix that runs a program inside `name`'s namespace
    /// (`ip netns exec` execs it, so the pid is the program's own).
    pub fn exec_prefix(&self, name: &str) -> Vec<String> {
        ["ip", "netns", "exec", &self.member(name).ns]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// Runs `argv` inside `name`'s namespace, killed after `limit`.
    pub fn run_in(&self, name: &str, argv: &[&str], limit: Duration) -> Output {
        let secs = format!("{:.1}", limit.as_secs_f64());
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.member(name).ns,
                "timeout",
                "-s",
                "KILL",
                &secs,
            ])
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {argv:?} in {name}'s namespace: {e}"))
    }

    fn add(&self, rules: Vec<Rule>, what: String) -> Partition {
        for rule in &rules {
            let mut argv = vec![
                "ip", "netns", "exec", &rule.ns, "iptables", "-A", rule.chain,
            ];
            argv.extend(rule.spec.iter().map(String::as_str));
            must(&argv);
        }
        self.rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(rules.iter().cloned());
        Partition { what, rules }
    }

    /// In `ns`, drop what comes from `peer`. Partitions drop on input
    /// only: a rule on output would fail the sender's own calls at once
    /// (EPERM) where a real partition is silence.
    fn drop_from(ns: &str, peer: Ipv4Addr) -> Rule {
        Rule {
            ns: ns.to_string(),
            chain: "INPUT",
            spec: vec!["-s".into(), peer.to_string(), "-j".into(), "DROP".into()],
        }
    }

    /// Drops every packet between `a` and `b`, both ways.
    pub fn cut(&self, a: &str, b: &str) -> Partition {
        let (ma, mb) = (self.member(a), self.member(b));
        let rules = vec![
            Self::drop_from(&ma.ns, mb.ip),
            Self::drop_from(&mb.ns, ma.ip),
        ];
        self.add(rules, format!("cut {a} <-> {b}"))
    }

    /// Drops every packet of `a` except on its loopback: nothing reaches
    /// it (from its peers or the test process), and what it sends reaches
    /// no member.
    pub fn isolate(&self, a: &str) -> Partition {
        let isolated = self.member(a);
        let mut rules = vec![Rule {
            ns: isolated.ns.clone(),
            chain: "INPUT",
            spec: ["!", "-i", "lo", "-j", "DROP"].map(String::from).to_vec(),
        }];
        rules.extend(
            self.members
                .iter()
                .filter(|m| m.name != a)
                .map(|m| Self::drop_from(&m.ns, isolated.ip)),
        );
        self.add(rules, format!("isolate {a}"))
    }

    /// Removes the rules of one partition (others stay).
    pub fn heal(&self, partition: Partition) {
        let mut kept = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        for rule in &partition.rules {
            let mut argv = vec![
                "ip", "netns", "exec", &rule.ns, "iptables", "-D", rule.chain,
            ];
            argv.extend(rule.spec.iter().map(String::as_str));
            must(&argv);
            if let Some(i) = kept.iter().position(|r| r == rule) {
                kept.remove(i);
            }
        }
    }

    /// Removes every partition.
    pub fn heal_all(&self) {
        let mut kept = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        for member in &self.members {
            for chain in ["INPUT", "OUTPUT"] {
                must(&["ip", "netns", "exec", &member.ns, "iptables", "-F", chain]);
            }
        }
        kept.clear();
    }

    /// The DROP rules in force, per member (for logs and checks).
    pub fn rules_of(&self, name: &str) -> String {
        let ns = &self.member(name).ns;
        must(&["ip", "netns", "exec", ns, "iptables", "-S"])
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let mut problems = Vec::new();
        for member in &self.members {
            if namespaces().contains(&member.ns) {
                if let Err(e) = delete_namespace(&member.ns) {
                    problems.push(e);
                }
            }
        }
        // Root-side veth ends go with their namespace, unless setup
        // stopped before moving the other end into it.
        let present = links();
        for i in 0..self.members.len() {
            let host_end = format!("{VETH_PREFIX}{}{i}", self.tag);
            if present.contains(&host_end) {
                let _ = run(&["ip", "link", "del", &host_end]);
            }
        }
        if present.contains(&self.bridge) {
            if let Err(e) = run(&["ip", "link", "del", &self.bridge]) {
                problems.push(e);
            }
        }
        if let Some(rule) = &self.forward_rule {
            let mut argv = vec!["iptables", "-D"];
            argv.extend(rule.iter().map(String::as_str));
            if let Err(e) = run(&argv) {
                problems.push(e);
            }
        }
        let _ = fs::remove_file(&self.registration);
        if !problems.is_empty() {
            eprintln!(
                "faults: cleaning up network {} left: {problems:?}",
                self.tag
            );
        }
    }
}
