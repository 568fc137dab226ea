//! How fast one core decodes watch lines and applies them to the pod store.
//!
//! Run: `cargo bench --bench watch_apply` (or `scripts/bench.sh`, which also
//! measures the daemon's memory against the fake API server). Prints one
//! markdown table. Not a pass/fail gate: machines here are noisy.

// A `GlobalAlloc` is unsafe by definition; this one only counts and
// forwards to `System`. The benchmark is never part of the daemon.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

/// Counts live heap bytes, to report what the store costs per pod.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
}
#[global_allocator]
static ALLOC: Counting = Counting;

use opsctrl_daemon::classifier::detector::Detector;
use opsctrl_daemon::kube::store::{Event, Store};
use opsctrl_daemon::kube::types::{WatchEvent, decode_watch_line};
use opsctrl_daemon::model::PodRecord;
use opsctrl_daemon::settings::Detect;

/// A kubelet-shaped pod, with the bulk a real one carries (managedFields,
/// last-applied annotation, env) that the decoder has to skip.
fn pod_line(i: usize, rv: u64, kind: &str) -> String {
    let ns = format!("team-{}", i % 20);
    let name = format!("web-{i}-7d4b9c-x{}", i % 97);
    let restarts = rv % 7;
    format!(
        r#"{{"type":"{kind}","object":{{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"{name}","generateName":"web-{i}-7d4b9c-","namespace":"{ns}","uid":"0c6f6e1e-{i:08}-4bd8-9c1a-6f0a1d8e2b7c","resourceVersion":"{rv}","creationTimestamp":"2026-11-20T10:00:00Z","labels":{{"app":"web-{i}","pod-template-hash":"7d4b9c"}},"annotations":{{"kubectl.kubernetes.io/restartedAt":"2026-11-20T09:59:00Z","prometheus.io/scrape":"true"}},"ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-{i}-7d4b9c","uid":"9a1b2c3d-{i:08}","controller":true,"blockOwnerDeletion":true}}],"managedFields":[{{"manager":"kube-controller-manager","operation":"Update","apiVersion":"v1","time":"2026-11-20T10:00:00Z","fieldsType":"FieldsV1","fieldsV1":{{"f:metadata":{{"f:generateName":{{}},"f:labels":{{".":{{}},"f:app":{{}},"f:pod-template-hash":{{}}}},"f:ownerReferences":{{".":{{}}}}}},"f:spec":{{"f:containers":{{"k:{{\"name\":\"app\"}}":{{".":{{}},"f:image":{{}},"f:imagePullPolicy":{{}},"f:name":{{}},"f:resources":{{}}}}}}}}}}}},{{"manager":"kubelet","operation":"Update","apiVersion":"v1","time":"2026-11-20T10:00:05Z","fieldsType":"FieldsV1","fieldsV1":{{"f:status":{{"f:conditions":{{}},"f:containerStatuses":{{}},"f:hostIP":{{}},"f:phase":{{}},"f:podIP":{{}},"f:startTime":{{}}}}}},"subresource":"status"}}]}},"spec":{{"volumes":[{{"name":"kube-api-access","projected":{{"sources":[{{"serviceAccountToken":{{"expirationSeconds":3607,"path":"token"}}}}],"defaultMode":420}}}}],"containers":[{{"name":"app","image":"registry.example.com/team/web:{i}.2.3","ports":[{{"containerPort":8080,"protocol":"TCP"}}],"env":[{{"name":"LOG_LEVEL","value":"info"}},{{"name":"DB_HOST","value":"db.{ns}.svc"}}],"resources":{{"limits":{{"cpu":"500m","memory":"256Mi"}},"requests":{{"cpu":"100m","memory":"128Mi"}}}},"livenessProbe":{{"httpGet":{{"path":"/healthz","port":8080,"scheme":"HTTP"}},"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3}},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","serviceAccountName":"default","nodeName":"node-{}","schedulerName":"default-scheduler","tolerations":[{{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}}],"priority":0,"enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority"}},"status":{{"phase":"Running","conditions":[{{"type":"Initialized","status":"True","lastProbeTime":null,"lastTransitionTime":"2026-11-20T10:00:00Z"}},{{"type":"Ready","status":"True","lastProbeTime":null,"lastTransitionTime":"2026-11-20T10:00:05Z"}},{{"type":"ContainersReady","status":"True","lastProbeTime":null,"lastTransitionTime":"2026-11-20T10:00:05Z"}},{{"type":"PodScheduled","status":"True","lastProbeTime":null,"lastTransitionTime":"2026-11-20T10:00:00Z"}}],"hostIP":"10.0.0.{}","podIP":"10.42.{}.{}","startTime":"2026-11-20T10:00:00Z","containerStatuses":[{{"name":"app","state":{{"running":{{"startedAt":"2026-11-20T10:00:04Z"}}}},"lastState":{{}},"ready":true,"restartCount":{restarts},"image":"registry.example.com/team/web:{i}.2.3","imageID":"registry.example.com/team/web@sha256:4f2e9a","containerID":"containerd://8e1f{i:08}","started":true}}],"qosClass":"Burstable"}}}}}}"#,
        i % 5,
        i % 250,
        i % 250,
        i % 200
    )
}

fn main() {
    let pods = 5_000;
    let events = 200_000usize;
    // Pre-render the lines: the bench measures decode + apply, not formatting.
    let lines: Vec<String> = (0..pods)
        .map(|i| pod_line(i, 1_000 + i as u64, "MODIFIED"))
        .collect();
    let bytes: usize = lines.iter().map(String::len).sum();

    let before = LIVE.load(Ordering::Relaxed);
    let mut store = Store::new();
    for l in &lines {
        let WatchEvent::Modified(p) = decode_watch_line(l.as_bytes()).expect("bench line decodes")
        else {
            unreachable!("bench lines are MODIFIED")
        };
        store.apply(0, Event::Apply(Box::new(PodRecord::from(p))));
    }

    let store_bytes = LIVE.load(Ordering::Relaxed) - before;

    // Every event changes the pod (restartCount), so the store really updates.
    let churn: Vec<String> = (0..pods)
        .map(|i| {
            pod_line(i, 900_000 + i as u64, "MODIFIED")
                .replace("\"restartCount\":", "\"restartCount\":1")
        })
        .collect();

    let decode_only = {
        let t = Instant::now();
        for k in 0..events {
            black_box(decode_watch_line(churn[k % pods].as_bytes()).ok());
        }
        t.elapsed()
    };
    let full = {
        let t = Instant::now();
        let mut changes = 0usize;
        for k in 0..events {
            let src = if (k / pods) % 2 == 0 { &churn } else { &lines };
            if let Ok(WatchEvent::Modified(p)) = decode_watch_line(src[k % pods].as_bytes()) {
                changes += store
                    .apply(0, Event::Apply(Box::new(PodRecord::from(p))))
                    .len();
            }
        }
        black_box(changes);
        t.elapsed()
    };

    // Decision latency: one watch line read → store applied → classified →
    // incident engine updated (transitions emitted when there are any).
    // A fifth of the events put a pod into CrashLoopBackOff or back.
    let crashing: Vec<String> = (0..pods)
        .map(|i| {
            pod_line(i, 2_000_000 + i as u64, "MODIFIED").replace(
                r#""state":{"running":{"startedAt":"2026-11-20T10:00:04Z"}},"lastState":{}"#,
                r#""state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off 40s restarting failed container"}},"lastState":{"terminated":{"exitCode":1,"reason":"Error","startedAt":"2026-11-20T10:00:04Z","finishedAt":"2026-11-20T10:00:09Z"}}"#,
            )
        })
        .collect();
    let mut dstore = Store::new();
    for l in &lines {
        if let Ok(WatchEvent::Modified(p)) = decode_watch_line(l.as_bytes()) {
            dstore.apply(0, Event::Apply(Box::new(PodRecord::from(p))));
        }
    }
    let before_detector = LIVE.load(Ordering::Relaxed);
    let mut detector = Detector::new("bench".into(), &Detect::default());
    black_box(detector.observe_all(&dstore, 0));
    let detector_bytes = LIVE.load(Ordering::Relaxed) - before_detector;
    let mut lat: Vec<u64> = Vec::with_capacity(events);
    let mut transitions = 0usize;
    let now_ms = 1_795_600_000_000i64;
    for k in 0..events {
        let i = k % pods;
        let src = match (k / pods) % 3 {
            0 => &churn,
            1 if i % 5 == 0 => &crashing,
            _ => &lines,
        };
        let t = Instant::now();
        if let Ok(WatchEvent::Modified(p)) = decode_watch_line(src[i].as_bytes()) {
            for c in dstore.apply(0, Event::Apply(Box::new(PodRecord::from(p)))) {
                transitions += detector.on_change(&dstore, c, now_ms + k as i64).len();
            }
        }
        lat.push(t.elapsed().as_nanos() as u64);
    }
    black_box(transitions);
    lat.sort_unstable();
    let pct = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)] as f64 / 1000.0;

    println!(
        "| measure (one core, {pods} pods, {events} MODIFIED events, {:.1} KiB/event) | value |",
        bytes as f64 / pods as f64 / 1024.0
    );
    println!("|---|---|");
    println!(
        "| decode only: events/s | {:.0} |",
        events as f64 / decode_only.as_secs_f64()
    );
    println!(
        "| decode + compact record + store apply: events/s | {:.0} |",
        events as f64 / full.as_secs_f64()
    );
    println!(
        "| decode + apply: µs/event | {:.2} |",
        full.as_secs_f64() * 1e6 / events as f64
    );
    println!("| pods in store | {} |", store.len());
    println!(
        "| store heap bytes per pod | {} |",
        store_bytes / pods as isize
    );
    println!(
        "| detection state heap bytes per healthy pod | {} |",
        detector_bytes / pods as isize
    );
    println!(
        "| decision latency p50 (line → incident engine), µs | {:.1} |",
        pct(0.50)
    );
    println!("| decision latency p99, µs | {:.1} |", pct(0.99));
    println!("| decision latency max, µs | {:.1} |", pct(1.0));
    println!("| incident transitions during the run | {transitions} |");
}
