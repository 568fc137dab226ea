/*!
Standalone fake Kubernetes API server for benchmarks and for poking with kubectl.

    cargo run --example fake_apiserver -- --pods 5000 --churn-per-sec 1000 \
        --kubeconfig-out /tmp/x/kubeconfig [--namespaces 20] [--churn-delay-secs S] [--seconds N] [--port P] \
        [--history N] [--bookmark-ms MS] [--seed S] [--nodes N]

Loads N kubelet-shaped pods across the namespaces (mostly healthy, a few crash-looping,
image-pull-failing, OOM-killed and unschedulable ones), writes a token kubeconfig, prints
`READY url=... kubeconfig=... pods=... rv=...` on stdout, then churns at the given rate:
status updates (restart counts climbing), crash loops starting and ending, and rollouts
(a pod deleted and its replacement created), until killed or `--seconds` pass.

With `--nodes N` the pods are spread over N kubelet-shaped nodes (with an image list, as
real nodes carry), and each node's status is re-written every 10 s with a new
`lastHeartbeatTime`, spread evenly over the 10 s, as kubelet's node-status heartbeat is
(from the start, churn or not).
*/

// The example uses part of the fakes' API; the integration tests (which have no dead-code
// allowance) use all of it. `fake_api` finds the server as `super::http`.
#[allow(dead_code, unused_imports)]
#[path = "../util/fake_api/mod.rs"]
mod fake_api;
#[allow(dead_code, unused_imports)]
#[path = "../util/http/mod.rs"]
mod http;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fake_api::pods::{PodBuilder, pod};
use fake_api::{Auth, FakeApi, Options};

const USAGE: &str = "usage: fake_apiserver [--pods N] [--namespaces N] [--churn-per-sec R] [--churn-delay-secs S] [--seconds S] \
[--kubeconfig-out PATH] [--port P] [--history N] [--bookmark-ms MS] [--seed S] [--nodes N]";

/// kubelet's node-status heartbeat period (nodeStatusUpdateFrequency).
const HEARTBEAT: Duration = Duration::from_secs(10);
/// Images per node: a node's status lists those on its disk.
const NODE_IMAGES: usize = 40;

struct Args {
    pods: usize,
    namespaces: usize,
    churn_per_sec: f64,
    churn_delay_secs: u64,
    seconds: Option<u64>,
    kubeconfig_out: Option<PathBuf>,
    port: u16,
    history: usize,
    bookmark_ms: u64,
    seed: u64,
    nodes: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        pods: 1000,
        namespaces: 20,
        churn_per_sec: 0.0,
        churn_delay_secs: 0,
        seconds: None,
        kubeconfig_out: None,
        port: 0,
        history: 50_000,
        bookmark_ms: 1000,
        seed: 42,
        nodes: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_string());
        }
        let val = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--pods" => a.pods = num(&val)? as usize,
            "--namespaces" => a.namespaces = (num(&val)? as usize).max(1),
            "--churn-per-sec" => {
                a.churn_per_sec = val
                    .parse()
                    .map_err(|_| format!("{flag}: not a number: {val}"))?
            }
            "--seconds" => a.seconds = Some(num(&val)?),
            "--churn-delay-secs" => a.churn_delay_secs = num(&val)?,
            "--kubeconfig-out" => a.kubeconfig_out = Some(PathBuf::from(val)),
            "--port" => a.port = num(&val)? as u16,
            "--history" => a.history = num(&val)? as usize,
            "--bookmark-ms" => a.bookmark_ms = num(&val)?,
            "--seed" => a.seed = num(&val)?,
            "--nodes" => a.nodes = num(&val)? as usize,
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    Ok(a)
}

/// xorshift64*: deterministic churn for a given --seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn suffix(&mut self) -> String {
        const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..5)
            .map(|_| ALPHA[self.below(ALPHA.len())] as char)
            .collect()
    }
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Running,
    CrashLoop(u32),
    Oom(u32),
    ImagePull,
    Unschedulable,
}

struct PodRec {
    node: Option<String>,
    ns: String,
    rs: String,
    name: String,
    uid: String,
    state: State,
}

impl PodRec {
    fn builder(&self) -> PodBuilder {
        let mut b = pod(&self.ns, &self.name).uid(&self.uid);
        if let Some(n) = &self.node {
            b = b.node(n);
        }
        match self.state {
            State::Running => b.running(),
            State::CrashLoop(r) => b.crash_loop(r, 1, "Error"),
            State::Oom(r) => b.oom_killed(r),
            State::ImagePull => b.image_pull_backoff(),
            State::Unschedulable => b.pending_unschedulable(
                "0/12 nodes are available: 12 Insufficient memory. preemption: 0/12 nodes are available: 12 No preemption victims found for incoming pod.",
            ),
        }
    }
}

fn new_pod(rng: &mut Rng, ns: &str, rs: &str, state: State, nodes: usize) -> PodRec {
    PodRec {
        node: (nodes > 0).then(|| node_name(rng.below(nodes))),
        ns: ns.to_string(),
        rs: rs.to_string(),
        name: format!("{rs}-{}", rng.suffix()),
        uid: fake_api::new_uid(),
        state,
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    let api = FakeApi::start_with(Options {
        port: args.port,
        history_limit: args.history.max(1),
        bookmark_interval: Duration::from_millis(args.bookmark_ms.max(1)),
        ..Options::default()
    });
    let mut rng = Rng(args.seed.max(1));

    // ~10 replicas per Deployment, Deployments spread over the namespaces.
    let t0 = Instant::now();
    let mut pods: Vec<PodRec> = Vec::with_capacity(args.pods);
    for i in 0..args.pods {
        let ns = format!("team-{:02}", i % args.namespaces);
        let dep = i / args.namespaces / 10;
        let rs = format!("svc-{dep:03}-{}", fake_hash(&format!("{ns}/{dep}")));
        let state = match rng.below(1000) {
            0..=19 => State::CrashLoop(1 + rng.below(30) as u32),
            20..=29 => State::ImagePull,
            30..=34 => State::Oom(1 + rng.below(10) as u32),
            35..=39 => State::Unschedulable,
            _ => State::Running,
        };
        pods.push(new_pod(&mut rng, &ns, &rs, state, args.nodes));
    }
    for i in 0..args.nodes {
        api.upsert_node(node_json(i, &rfc3339(std::time::SystemTime::now())));
    }
    let rv = api.apply_batch(pods.iter().map(|p| p.builder().build()));
    eprintln!("loaded {} pods in {:?}", pods.len(), t0.elapsed());

    let kubeconfig = args.kubeconfig_out.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("fake-apiserver-{}.kubeconfig", api.port()))
    });
    if let Some(dir) = kubeconfig.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(&kubeconfig, api.kubeconfig_yaml(&Auth::Token)) {
        eprintln!("write {}: {e}", kubeconfig.display());
        std::process::exit(1);
    }
    println!(
        "READY url={} kubeconfig={} pods={} nodes={} rv={rv}",
        api.url(),
        kubeconfig.display(),
        pods.len(),
        args.nodes
    );
    let _ = std::io::stdout().flush();

    let end = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs(s));
    let mut beats = Heartbeats::new(args.nodes);
    // Let a client list everything before the churn starts (benchmarks
    // measure start-up and churn separately).
    let churn_at = Instant::now() + Duration::from_secs(args.churn_delay_secs);
    while Instant::now() < churn_at {
        std::thread::sleep(Duration::from_millis(10));
        beats.due(&api);
    }
    if args.churn_per_sec > 0.0 {
        println!("CHURN rate={}", args.churn_per_sec);
        let _ = std::io::stdout().flush();
    }
    let tick = Duration::from_millis(10);
    let mut budget = 0.0f64;
    let mut last = Instant::now();
    let mut ops: u64 = 0;
    let mut report = Instant::now();
    while end.is_none_or(|e| Instant::now() < e) {
        std::thread::sleep(tick);
        beats.due(&api);
        let now = Instant::now();
        budget += args.churn_per_sec * now.duration_since(last).as_secs_f64();
        last = now;
        while budget >= 1.0 && !pods.is_empty() {
            budget -= 1.0;
            ops += 1;
            churn_once(&api, &mut rng, &mut pods);
        }
        if report.elapsed() >= Duration::from_secs(10) {
            eprintln!(
                "churn: {ops} ops, {} pods, rv {}",
                api.pod_count(),
                api.resource_version()
            );
            report = Instant::now();
        }
    }
}

/// One change, weighted like a busy cluster: mostly status updates, some crash loops
/// starting/ending, some rollout replacements.
fn churn_once(api: &FakeApi, rng: &mut Rng, pods: &mut Vec<PodRec>) {
    let i = rng.below(pods.len());
    match rng.below(100) {
        0..=59 => {
            // Status update: crash loopers restart again; healthy pods get re-written as the
            // kubelet does when probes or conditions change.
            let p = &mut pods[i];
            p.state = match p.state {
                State::CrashLoop(r) => State::CrashLoop(r + 1),
                State::Oom(r) => State::Oom(r + 1),
                s => s,
            };
            api.upsert_pod(p.builder().build());
        }
        60..=74 => {
            let p = &mut pods[i];
            if p.state == State::Running {
                p.state = if rng.below(4) == 0 {
                    State::Oom(1)
                } else {
                    State::CrashLoop(1)
                };
                api.upsert_pod(p.builder().build());
            }
        }
        75..=84 => {
            let p = &mut pods[i];
            if matches!(
                p.state,
                State::CrashLoop(_) | State::Oom(_) | State::ImagePull
            ) {
                p.state = State::Running;
                api.upsert_pod(p.builder().build());
            }
        }
        _ => {
            // Rollout step: the old pod goes away, a replacement with a new name comes up.
            let old = pods.swap_remove(i);
            api.delete_pod(&old.ns, &old.name);
            let replacement = new_pod(rng, &old.ns, &old.rs, State::Running, 0);
            let replacement = PodRec {
                node: old.node.clone(),
                ..replacement
            };
            api.upsert_pod(replacement.builder().build());
            pods.push(replacement);
        }
    }
}

fn fake_hash(s: &str) -> String {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u64 = 1_469_598_103_934_665_603;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(1_099_511_628_211);
    }
    (0..10)
        .map(|i| ALPHA[((h >> (i * 6)) % ALPHA.len() as u64) as usize] as char)
        .collect()
}

fn node_name(i: usize) -> String {
    format!("node-{i:04}")
}

/// Unix time as RFC 3339 (UTC, seconds), without a date library.
fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A Ready node as kubelet writes it, heartbeat at `now`.
fn node_json(i: usize, now: &str) -> serde_json::Value {
    let name = node_name(i);
    let cond = |t: &str, s: &str, reason: &str, message: &str| {
        serde_json::json!({"type": t, "status": s, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": "2026-01-01T00:00:00Z"})
    };
    let images: Vec<serde_json::Value> = (0..NODE_IMAGES)
        .map(|k| {
            serde_json::json!({"names": [
                format!("registry.example.com/team/svc-{k:03}@sha256:{:064x}", k * 7919 + i),
                format!("registry.example.com/team/svc-{k:03}:1.{k}.0")],
              "sizeBytes": 20_000_000 + k * 1_000_000})
        })
        .collect();
    serde_json::json!({
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
            "node-role.kubernetes.io/worker": "true", "topology.kubernetes.io/zone": format!("zone-{}", i % 3)}},
        "spec": {"podCIDR": format!("10.42.{}.0/24", i % 256)},
        "status": {
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": format!("10.0.{}.{}", i / 250, i % 250 + 1)},
                          {"type": "Hostname", "address": name}],
            "capacity": {"cpu": "4", "memory": "8148008Ki", "pods": "110", "ephemeral-storage": "51287520Ki"},
            "allocatable": {"cpu": "4", "memory": "8045608Ki", "pods": "110", "ephemeral-storage": "47266578354"},
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"kubeletVersion": "v1.31.4+k3s1", "kubeProxyVersion": "v1.31.4+k3s1",
                         "containerRuntimeVersion": "containerd://1.7.23-k3s2", "osImage": "Debian GNU/Linux 12 (bookworm)",
                         "kernelVersion": "6.1.0-28-arm64", "operatingSystem": "linux", "architecture": "arm64"},
            "images": images,
        }
    })
}

/// Every node's status re-written once per `HEARTBEAT`, spread evenly.
struct Heartbeats {
    nodes: usize,
    step: Duration,
    next: Instant,
    i: usize,
}

impl Heartbeats {
    fn new(nodes: usize) -> Heartbeats {
        Heartbeats {
            nodes,
            step: HEARTBEAT / nodes.max(1) as u32,
            next: Instant::now(),
            i: 0,
        }
    }

    /// The heartbeats due by now.
    fn due(&mut self, api: &FakeApi) {
        if self.nodes == 0 {
            return;
        }
        let now = Instant::now();
        let stamp = rfc3339(std::time::SystemTime::now());
        while self.next <= now {
            api.upsert_node(node_json(self.i, &stamp));
            self.i = (self.i + 1) % self.nodes;
            self.next += self.step;
        }
    }
}
