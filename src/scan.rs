/*!
`scan`: a one-off look. List the pods once (from the cluster, or from a file
of `kubectl get pods -A -o json` output), classify each with the objects'
own timestamps and no history, group into would-be incidents per workload,
print them, and exit 1 if anything is failing.

From a cluster, each incident is then enriched exactly as the daemon's
delivery workers do (events, logs with INCLUDE_LOGS, redaction), so both
say the same; a file brings its own events when it is a `List` that
includes them.
*/

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::Arc;

use serde_json::Value;

use crate::classifier::detector::{engine_config, is_healthy, thresholds};
use crate::detect::classify::{NothingKnown, classify};
use crate::detect::incident::Engine;
use crate::detect::workload::{revision_of, rollout_of_incident, workload_of};
use crate::diagnose::redact::redact;
use crate::diagnose::rules::{Context, RuleSet};
use crate::enrich::Enricher;
use crate::kube::client::Client;
use crate::kube::types::Pod;
use crate::metrics::Metrics;
use crate::model::Diagnosis;
use crate::model::{Incident, Item, Rollout, State, Subject};
use crate::model::{NamespaceRecord, PodRecord};
use crate::output;
use crate::settings::{Output, Scope, Settings};
use crate::streams::plan_streams;
use crate::util::time::unix_now;

/// Where the pods come from.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    Cluster(&'a Client),
    /// A path, or `-` for stdin.
    File(&'a str),
}

/// Event lines by (namespace, pod name): `Warning BackOff: Back-off …`.
pub type Events = HashMap<(String, String), Vec<String>>;

/// One core/v1 Event as a line for the rules, if it is about a pod.
fn event_line(item: &Value) -> Option<((String, String), String)> {
    let obj = item.get("involvedObject")?;
    if obj.get("kind").and_then(Value::as_str) != Some("Pod") {
        return None;
    }
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let key = (s(obj.get("namespace")), s(obj.get("name")));
    let line = format!(
        "{} {}: {}",
        s(item.get("type")),
        s(item.get("reason")),
        s(item.get("message")).chars().take(500).collect::<String>()
    );
    Some((key, line))
}

/// Pods (and the pods' events) in a `kubectl get … -o json` document: a
/// `List` (pods, events, namespaces, anything else skipped), a `PodList`,
/// or one `Pod`. The pods of a namespace in the dump annotated
/// `opsctrl.dev/ignore: "true"` are left out, as the daemon leaves them.
pub fn pods_from_json(text: &str) -> Result<(Vec<PodRecord>, Events), String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let items: Vec<Value> = match doc.get("kind").and_then(Value::as_str) {
        Some("Pod") => vec![doc],
        Some(k) if k == "List" || k == "PodList" => match doc.get("items") {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::Null) | None => Vec::new(),
            Some(_) => return Err(format!("{k}: `items` is not an array")),
        },
        Some(k) => return Err(format!("kind {k:?} is not a Pod, PodList or List")),
        None => return Err("no `kind`: expected the output of `kubectl get pods -o json`".into()),
    };
    let mut out = Vec::new();
    let mut events = Events::new();
    let mut ignored: HashSet<Box<str>> = HashSet::new();
    for (i, item) in items.into_iter().enumerate() {
        match item.get("kind").and_then(Value::as_str).unwrap_or("Pod") {
            "Pod" => {
                let pod: Pod =
                    serde_json::from_value(item).map_err(|e| format!("item {i}: {e}"))?;
                out.push(PodRecord::from(pod));
            }
            "Event" => {
                if let Some((key, line)) = event_line(&item) {
                    events.entry(key).or_default().push(line);
                }
            }
            "Namespace" => {
                let ns: Pod = serde_json::from_value(item).map_err(|e| format!("item {i}: {e}"))?;
                let ns = NamespaceRecord::from(ns);
                if ns.ignore {
                    ignored.insert(ns.name);
                }
            }
            _ => {}
        }
    }
    out.retain(|p| !ignored.contains(&p.namespace));
    Ok((out, events))
}

fn in_scope(settings: &Settings, pod: &PodRecord) -> bool {
    match &settings.scope {
        Scope::Cluster { exclude } => !exclude.iter().any(|n| **n == *pod.namespace),
        Scope::Namespaces(list) => list.iter().any(|n| **n == *pod.namespace),
    }
}

/// Namespaces annotated `opsctrl.dev/ignore: "true"` (cluster-wide only: a
/// namespaced Role cannot read namespace objects, as for the daemon). A
/// failure to read them is a warning: the scan goes on without them.
fn ignored_namespaces(settings: &Settings, client: &Client) -> HashSet<Box<str>> {
    if !matches!(settings.scope, Scope::Cluster { .. }) {
        return HashSet::new();
    }
    let mut ignored = HashSet::new();
    let mut token: Option<String> = None;
    loop {
        let mut q: Vec<(&str, &str)> = vec![("limit", "500")];
        if let Some(t) = &token {
            q.push(("continue", t));
        }
        match client.list_objects("/api/v1/namespaces", &q) {
            Ok(page) => {
                ignored.extend(
                    page.items
                        .into_iter()
                        .map(NamespaceRecord::from)
                        .filter(|n| n.ignore)
                        .map(|n| n.name),
                );
                match page.metadata.continue_token {
                    Some(t) if !t.is_empty() && token.as_deref() != Some(t.as_str()) => {
                        token = Some(t)
                    }
                    _ => break,
                }
            }
            // Refused (RBAC): said once. Unreachable: the pod LIST that
            // follows fails with the same error, which is what to report.
            Err(e) if e.code().is_some() => {
                log::warn!(
                    "namespaces cannot be listed ({e}): scanning without the namespace opsctrl.dev/ignore annotation"
                );
                break;
            }
            Err(e) => {
                log::debug!("namespaces: {e}");
                break;
            }
        }
    }
    ignored
}

fn list_cluster(settings: &Settings, client: &Client) -> Result<Vec<PodRecord>, String> {
    let mut pods = Vec::new();
    for spec in plan_streams(settings) {
        let mut token: Option<String> = None;
        loop {
            let limit = spec.page_size.to_string();
            let mut q: Vec<(&str, &str)> = vec![("limit", &limit)];
            if let Some(t) = &token {
                q.push(("continue", t));
            }
            if let Some(f) = &spec.field_selector {
                q.push(("fieldSelector", f));
            }
            if let Some(l) = &spec.label_selector {
                q.push(("labelSelector", l));
            }
            let page = client
                .list_pods(&spec.path, &q)
                .map_err(|e| format!("listing pods ({}): {e}", spec.name))?;
            pods.extend(page.items);
            match page.metadata.continue_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
    }
    // After the pods: when the cluster cannot be reached (or credentials
    // hang), the pod LIST's error is the one to report, once.
    let ignored = ignored_namespaces(settings, client);
    pods.retain(|p| !ignored.contains(&p.namespace));
    Ok(pods)
}

/// Classifies pods as of `now` (Unix seconds) into would-be incidents, each
/// with its diagnosis, in reading order.
pub fn incidents(
    settings: &Settings,
    cluster: &str,
    pods: &[PodRecord],
    events: &Events,
    now: i64,
    rules: &RuleSet,
) -> Vec<(Incident, Diagnosis)> {
    diagnosed(settings, cluster, pods, events, now, rules)
        .into_iter()
        .map(|(i, d, _)| (i, d))
        .collect()
}

/// `incidents`, with where each incident's revision stands.
fn diagnosed(
    settings: &Settings,
    cluster: &str,
    pods: &[PodRecord],
    events: &Events,
    now: i64,
    rules: &RuleSet,
) -> Vec<(Incident, Diagnosis, Rollout)> {
    let th = thresholds(&settings.detect);
    let mut engine = Engine::new(engine_config(cluster.to_string(), &settings.detect));
    for pod in pods.iter().filter(|p| in_scope(settings, p)) {
        let findings = classify(pod, &NothingKnown, now, &th);
        engine.observe_revision(
            &pod.key(),
            &workload_of(pod),
            revision_of(pod),
            is_healthy(pod),
            findings,
            now * 1000,
        );
    }
    // A scan sees each incident once, as it stands: it is open, however
    // many of its pods the engine met one after another.
    let mut found: Vec<Incident> = engine
        .open_incidents()
        .cloned()
        .map(|mut i| {
            i.state = State::Open;
            i
        })
        .collect();
    found.sort_by(|a, b| (&a.namespace, &a.workload, a.id).cmp(&(&b.namespace, &b.workload, b.id)));
    let mut diagnosed: Vec<(Incident, Diagnosis, Rollout)> = found
        .iter()
        .filter_map(|i| {
            let pod = pod_of(pods, i)?;
            let none = Vec::new();
            let ev = events
                .get(&(i.namespace.clone(), i.finding.pod.clone()))
                .unwrap_or(&none);
            let rollout = rollout_of_incident(i, pod, pods, &found);
            let d = rules.diagnose(&Context {
                finding: &i.finding,
                pod,
                workload: &i.workload,
                events: ev,
                logs: &[],
                rollout: &rollout,
            });
            Some((i.clone(), d, rollout))
        })
        .collect();
    in_reading_order(&mut diagnosed);
    diagnosed
}

fn pod_of<'a>(pods: &'a [PodRecord], i: &Incident) -> Option<&'a PodRecord> {
    pods.iter()
        .find(|p| *p.namespace == *i.namespace && *p.name == *i.finding.pod)
}

/// Most severe first, then the longest failing: what to look at first. An
/// old revision's failure comes right after the failures of its workload's
/// newer revision, which are what to fix first.
fn in_reading_order(found: &mut [(Incident, Diagnosis, Rollout)]) {
    found.sort_by(|(a, ..), (b, ..)| {
        (
            b.severity(),
            a.first_seen_ms,
            &a.namespace,
            &a.workload,
            a.id,
        )
            .cmp(&(
                a.severity(),
                b.first_seen_ms,
                &b.namespace,
                &b.workload,
                b.id,
            ))
    });
    let rank: Vec<(usize, u8, usize)> = found
        .iter()
        .enumerate()
        .map(|(at, (i, _, r))| {
            let newer = match r {
                Rollout::Superseded {
                    newer,
                    newer_failing: Some(_),
                } => found.iter().rposition(|(o, ..)| {
                    o.namespace == i.namespace
                        && o.workload == i.workload
                        && o.revision.as_deref() == Some(newer.as_str())
                }),
                _ => None,
            };
            newer.map_or((at, 0, 0), |n| (n, 1, at))
        })
        .collect();
    let mut order: Vec<usize> = (0..found.len()).collect();
    order.sort_by_key(|&k| rank[k]);
    let sorted: Vec<(Incident, Diagnosis, Rollout)> =
        order.iter().map(|&k| found[k].clone()).collect();
    found.clone_from_slice(&sorted);
}

/// Diagnoses each incident again as the daemon's delivery workers do
/// (`enrich::Enricher`: events, logs with INCLUDE_LOGS, facts, redaction),
/// so a live `scan` says what the daemon would say. A failed read is noted
/// in the evidence, never fatal.
fn enrich_all(
    settings: &Settings,
    client: &Client,
    rules: &Arc<RuleSet>,
    pods: &[PodRecord],
    found: &mut [(Incident, Diagnosis, Rollout)],
) {
    let enricher = Enricher::new(
        settings.diagnosis.enabled.then(|| client.clone()),
        rules.clone(),
        settings.diagnosis.include_logs,
        redact,
        Arc::new(Metrics::new(&[], settings.reconnect.max_failures)),
    );
    for (i, d, rollout) in found.iter_mut() {
        let Some(pod) = pod_of(pods, i) else {
            continue;
        };
        let subject = Subject {
            pod: pod.clone(),
            rollout: rollout.clone(),
        };
        let mut item = Item::new(i.clone(), Some(d.clone()));
        enricher.enrich(&mut item, Some(&subject));
        if let Some(better) = item.diagnosis {
            *d = better;
        }
    }
}

/// Largest dump `scan -f` reads: far above any real cluster's
/// `kubectl get pods -A -o json`, far below what would exhaust a laptop
/// (`/dev/zero` or a wrong path must not eat all memory).
const MAX_DUMP: u64 = 512 * 1024 * 1024;

/// Reads a dump file (or stdin for `-`), refusing one over `MAX_DUMP`.
fn read_dump(path: &str) -> Result<String, String> {
    let mut text = String::new();
    let read = if path == "-" {
        std::io::stdin()
            .take(MAX_DUMP + 1)
            .read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_DUMP + 1).read_to_string(&mut text))
    };
    read.map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_DUMP {
        return Err(format!(
            "larger than {} MiB; not a kubectl dump",
            MAX_DUMP / 1024 / 1024
        ));
    }
    Ok(text)
}

/// Runs the scan and prints the result; `Ok(true)` when something is failing.
pub fn run(
    settings: &Settings,
    cluster: &str,
    source: Source,
    rules: &Arc<RuleSet>,
) -> Result<bool, String> {
    let (pods, events) = match source {
        Source::Cluster(client) => (list_cluster(settings, client)?, Events::new()),
        Source::File(path) => {
            let name = if path == "-" { "stdin" } else { path };
            let text = read_dump(path).map_err(|e| format!("{name}: {e}"))?;
            pods_from_json(&text).map_err(|e| format!("{name}: {e}"))?
        }
    };
    let now = unix_now();
    let mut found = diagnosed(settings, cluster, &pods, &events, now, rules);
    if let Source::Cluster(client) = source {
        enrich_all(settings, client, rules, &pods, &mut found);
    }
    let found: Vec<(Incident, Diagnosis)> = found.into_iter().map(|(i, d, _)| (i, d)).collect();
    match settings.output {
        Output::Json => {
            let arr: Vec<Value> = found
                .iter()
                .map(|(i, d)| output::incident_json(i, Some(d)))
                .collect();
            println!("{}", Value::Array(arr));
        }
        Output::Text => {
            if found.is_empty() {
                println!("no failing pods ({} pods checked)", pods.len());
            } else {
                print!("{}", output::scan_table(&found, now * 1000));
            }
        }
    }
    Ok(!found.is_empty())
}
