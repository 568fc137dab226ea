/*!
`scan`: a one-off look. List the pods once (from the cluster, or from a file
of `kubectl get pods -A -o json` output), classify each with the objects'
own timestamps and no history, group into would-be incidents per workload,
print them, and exit 1 if anything is failing.

Nodes too, cluster-wide (listed live, or the `Node` objects of a dump such as
`kubectl get nodes,pods,events -A -o json`): NotReady and pressure are node
incidents, and the pod failures they cause are attributed to them, as the
daemon does. A cordon is not reported: how long a node has been cordoned is
not in the object, and a scan has no history.


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
use crate::classifier::nodes::{node_key, node_workload, pods_on};
use crate::detect::classify::{NothingKnown, classify};
use crate::detect::incident::Engine;
use crate::detect::node::{NodeSeen, NodeThresholds, classify_node, node_cause};
use crate::detect::workload::{revision_of, rollout_of_incident, workload_of};
use crate::diagnose::fit::scheduling_facts;
use crate::diagnose::node::{attribute, diagnose_node};
use crate::diagnose::redact::redact;
use crate::diagnose::rules::{Context, RuleSet};
use crate::enrich::Enricher;
use crate::kube::client::Client;
use crate::kube::node_types::{Node, NodeList};
use crate::kube::types::Pod;
use crate::metrics::Metrics;
use crate::model::Diagnosis;
use crate::model::{FailureType, NodeRecord};
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

/// What a dump holds: pods, their events, and nodes.
#[derive(Default)]
pub struct Dump {
    pub pods: Vec<PodRecord>,
    pub events: Events,
    pub nodes: Vec<NodeRecord>,
}

/// Pods (and the pods' events) in a `kubectl get … -o json` document: a
/// `List` (pods, events, namespaces, anything else skipped), a `PodList`,
/// or one `Pod`. The pods of a namespace in the dump annotated
/// `opsctrl.dev/ignore: "true"` are left out, as the daemon leaves them.
pub fn pods_from_json(text: &str) -> Result<(Vec<PodRecord>, Events), String> {
    dump_from_json(text).map(|d| (d.pods, d.events))
}

/// Pods, events and nodes in a `kubectl get … -o json` document: a `List`
/// (namespaces read for their ignore annotation, anything else skipped), a
/// `PodList`, a `NodeList`, one `Pod` or one `Node`.
pub fn dump_from_json(text: &str) -> Result<Dump, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let doc_kind = doc.get("kind").and_then(Value::as_str).map(String::from);
    let items: Vec<Value> = match doc.get("kind").and_then(Value::as_str) {
        Some("Pod") | Some("Node") => vec![doc],
        Some(k) if k == "List" || k == "PodList" || k == "NodeList" => match doc.get("items") {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::Null) | None => Vec::new(),
            Some(_) => return Err(format!("{k}: `items` is not an array")),
        },
        Some(k) => {
            return Err(format!(
                "kind {k:?} is not a Pod, PodList, Node, NodeList or List"
            ));
        }
        None => return Err("no `kind`: expected the output of `kubectl get pods -o json`".into()),
    };
    let mut out = Vec::new();
    let mut events = Events::new();
    let mut nodes = Vec::new();
    let mut ignored: HashSet<Box<str>> = HashSet::new();
    let default_kind = if doc_kind_is_nodes(&doc_kind) {
        "Node"
    } else {
        "Pod"
    };
    for (i, item) in items.into_iter().enumerate() {
        match item
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or(default_kind)
        {
            "Node" => {
                let node: Node =
                    serde_json::from_value(item).map_err(|e| format!("item {i}: {e}"))?;
                nodes.push(NodeRecord::from(node));
            }
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
    Ok(Dump {
        pods: out,
        events,
        nodes,
    })
}

fn doc_kind_is_nodes(kind: &Option<String>) -> bool {
    kind.as_deref() == Some("NodeList")
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
    incidents_with_nodes(settings, cluster, pods, &[], events, now, rules)
}

/// `incidents`, with the nodes' own incidents and the pod failures their
/// nodes cause attributed to them (as the daemon does).
pub fn incidents_with_nodes(
    settings: &Settings,
    cluster: &str,
    pods: &[PodRecord],
    nodes: &[NodeRecord],
    events: &Events,
    now: i64,
    rules: &RuleSet,
) -> Vec<(Incident, Diagnosis)> {
    diagnosed(settings, cluster, pods, nodes, events, now, rules)
        .into_iter()
        .map(|(i, d, _)| (i, d))
        .collect()
}

/// `incidents_with_nodes`, with where each incident's revision stands.
fn diagnosed(
    settings: &Settings,
    cluster: &str,
    pods: &[PodRecord],
    nodes: &[NodeRecord],
    events: &Events,
    now: i64,
    rules: &RuleSet,
) -> Vec<(Incident, Diagnosis, Rollout)> {
    let th = thresholds(&settings.detect);
    let mut engine = Engine::new(engine_config(cluster.to_string(), &settings.detect));
    let nth = NodeThresholds {
        not_ready_grace_secs: settings.detect.node_not_ready_grace_ms / 1000,
        unschedulable_grace_secs: settings.detect.node_unschedulable_grace_ms / 1000,
    };
    for n in nodes {
        let findings: Vec<_> = classify_node(n, &NodeSeen::default(), now, &nth)
            .into_iter()
            .filter(|f| f.kind != FailureType::NodeUnschedulable)
            .collect();
        engine.observe_revision(
            &node_key(&n.name),
            &node_workload(&n.name),
            None,
            n.healthy(),
            findings,
            now * 1000,
        );
    }
    let by_name: HashMap<&str, &NodeRecord> = nodes.iter().map(|n| (&*n.name, n)).collect();
    for pod in pods.iter().filter(|p| in_scope(settings, p)) {
        let findings = classify(pod, &NothingKnown, now, &th);
        let node = pod.node.as_deref().and_then(|n| by_name.get(n).copied());
        let cause = node.and_then(|n| node_cause(pod, &findings, n).map(|why| (&*n.name, why)));
        engine.observe_caused(
            &pod.key(),
            &workload_of(pod),
            revision_of(pod),
            is_healthy(pod),
            findings,
            cause.as_ref().map(|(n, w)| (*n, w.as_str())),
            now * 1000,
        );
    }
    let down: Vec<Box<str>> = nodes
        .iter()
        .filter(|n| n.not_ready() && engine.node_incident(&n.name).is_some())
        .map(|n| n.name.clone())
        .collect();
    if !down.is_empty() {
        let scoped = pods.iter().filter(|p| in_scope(settings, p));
        for (node, affected) in pods_on(scoped, &down) {
            engine.set_node_pods(&node, affected);
        }
    }
    engine.refresh_node_incidents(now * 1000);
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
            if i.is_node() {
                let d = diagnose_node(i, by_name.get(i.workload.name.as_str()).copied());
                return Some((i.clone(), d, Rollout::Steady));
            }
            let pod = pod_of(pods, i)?;
            let none = Vec::new();
            let ev = events
                .get(&(i.namespace.clone(), i.finding.pod.clone()))
                .unwrap_or(&none);
            let rollout = rollout_of_incident(i, pod, pods, &found);
            let mut d = rules.diagnose(&Context {
                finding: &i.finding,
                pod,
                workload: &i.workload,
                events: ev,
                logs: &[],
                rollout: &rollout,
            });
            if let Some((node, why)) = engine.attributed(i.id) {
                let id = engine.node_incident(node).map(|n| n.id);
                d = attribute(d, node, why, id);
            }
            if matches!(
                i.kind(),
                FailureType::Unschedulable | FailureType::PendingTooLong
            ) {
                let all: Vec<&NodeRecord> = nodes.iter().collect();
                d.evidence.extend(scheduling_facts(pod, &all, pods.iter()));
            }
            Some((i.clone(), d, rollout))
        })
        .collect();
    in_reading_order(&mut diagnosed);
    diagnosed
}

/// The nodes, cluster-wide; a namespaced scan, or one not allowed to list
/// nodes, goes on without them (said once).
fn list_nodes(settings: &Settings, client: &Client) -> Vec<NodeRecord> {
    if !matches!(settings.scope, Scope::Cluster { .. }) {
        return Vec::new();
    }
    let mut nodes = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let limit = settings.page_size.to_string();
        let mut q: Vec<(&str, &str)> = vec![("limit", &limit)];
        if let Some(t) = &token {
            q.push(("continue", t));
        }
        let page: NodeList = match client.list_nodes("/api/v1/nodes", &q) {
            Ok(p) => p,
            // Said only when the server refused (the pods were just listed,
            // so anything else is a passing fault).
            Err(e) if e.code().is_some() => {
                log::warn!("nodes cannot be listed ({e}): scanning without node incidents");
                return Vec::new();
            }
            Err(e) => {
                log::debug!("nodes: {e}");
                return Vec::new();
            }
        };
        nodes.extend(page.items.into_iter().map(NodeRecord::from));
        match page.metadata.continue_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => break,
        }
    }
    nodes
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
    // Node incidents and failures attributed to a node are diagnosed from
    // the node (the daemon does not enrich them either).
    for (i, d, rollout) in found
        .iter_mut()
        .filter(|(i, d, _)| !i.is_node() && d.node_incident.is_none())
    {
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
    let Dump {
        pods,
        events,
        nodes,
    } = match source {
        Source::Cluster(client) => Dump {
            pods: list_cluster(settings, client)?,
            events: Events::new(),
            nodes: list_nodes(settings, client),
        },
        Source::File(path) => {
            let name = if path == "-" { "stdin" } else { path };
            let text = read_dump(path).map_err(|e| format!("{name}: {e}"))?;
            dump_from_json(&text).map_err(|e| format!("{name}: {e}"))?
        }
    };
    let now = unix_now();
    let mut found = diagnosed(settings, cluster, &pods, &nodes, &events, now, rules);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: &str, ready: bool) -> Value {
        let rs = name.rsplit_once('-').map_or(name, |(a, _)| a);
        json!({"kind": "Pod", "metadata": {"name": name, "namespace": "shop", "uid": name,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "ownerReferences": [{"kind": "ReplicaSet", "name": rs, "controller": true}]},
          "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx:1.27"}]},
          "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "containerStatuses": [{"name": "app", "image": "nginx:1.27", "ready": ready,
                                   "restartCount": 0, "state": {"running": {}}}]}})
    }

    fn node(name: &str, ready: &str) -> Value {
        json!({"kind": "Node", "metadata": {"name": name},
          "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "NodeStatusUnknown",
                                     "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                     "images": [{"names": ["nginx:1.27"], "sizeBytes": 1}]}})
    }

    #[test]
    fn a_dump_with_nodes_gives_node_incidents_with_the_pods_they_cause_attributed() {
        let doc = json!({"kind": "List", "items": [
            node("pi-1", "Unknown"), node("pi-2", "True"),
            pod("web-5f6d8b9c4-aaaaa", "pi-1", false), pod("api-7c9d8b6f5-bbbbb", "pi-1", false),
            pod("db-6b8c9d7f4-ccccc", "pi-2", false),
        ]});
        let dump = dump_from_json(&doc.to_string()).unwrap();
        assert_eq!((dump.pods.len(), dump.nodes.len()), (3, 2));
        let now = 1_900_000_000;
        let found = incidents_with_nodes(
            &Settings::default(),
            "c",
            &dump.pods,
            &dump.nodes,
            &dump.events,
            now,
            &RuleSet::builtin(),
        );
        let (node, nd) = found.iter().find(|(i, _)| i.is_node()).unwrap();
        assert_eq!(node.workload.name, "pi-1");
        assert_eq!(nd.cause, "node_not_ready");
        assert_eq!(
            node.affected_summary().as_deref(),
            Some("2 pods of 2 workloads affected")
        );
        for (i, d) in found.iter().filter(|(i, _)| !i.is_node()) {
            if i.workload.name == "db" {
                assert_eq!(d.node_incident, None, "a healthy node's pod is its own");
            } else {
                assert_eq!(d.cause, "node_not_ready");
                assert_eq!(d.node_incident, Some(node.id));
            }
        }
        assert_eq!(found.len(), 4);
        // Without the nodes, as before: three pod incidents.
        let found = incidents(
            &Settings::default(),
            "c",
            &dump.pods,
            &dump.events,
            now,
            &RuleSet::builtin(),
        );
        assert_eq!(found.len(), 3);
        assert!(found.iter().all(|(_, d)| d.node_incident.is_none()));
    }

    #[test]
    fn a_node_list_alone_reads_as_nodes() {
        let doc = json!({"kind": "NodeList", "items": [{"metadata": {"name": "pi-1"}}]});
        let dump = dump_from_json(&doc.to_string()).unwrap();
        assert_eq!((dump.pods.len(), dump.nodes.len()), (0, 1));
    }
}
