//! The object store: pods, namespaces, nodes, events and leases under one global resourceVersion, with
//! the bounded change history that watches replay and snapshot lists read.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use serde_json::{Value, json};

use super::faults::WatchAction;
use super::ids::{new_uid, rfc3339_now};
use super::selectors::Filter;

/// The store starts here rather than at 0, like a real cluster, and so that no list ever
/// reports the special value "0" (which means "any" when sent back in a watch).
const START_RV: u64 = 1000;
pub(super) fn validate_pod(mut pod: Value) -> Value {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    assert!(
        !name.is_empty(),
        "fake apiserver: pod without metadata.name: {pod}"
    );
    if pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        pod["metadata"]["namespace"] = json!("default");
    }
    pod
}

pub(super) type Key = (String, String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Pod,
    Event,
    Namespace,
    Node,
}

impl Kind {
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Event => "Event",
            Kind::Namespace => "Namespace",
            Kind::Node => "Node",
        }
    }
    /// The resource (RBAC and URL) name.
    pub(super) fn resource(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::Event => "events",
            Kind::Namespace => "namespaces",
            Kind::Node => "nodes",
        }
    }
}

/// A stored object, serialized once. `item` is the list-item form (no kind/apiVersion, as the
/// apiserver omits them inside lists); `full_json` adds them for GET and watch events.
pub(super) struct Obj {
    /// (namespace, name): the store's sort key.
    pub(super) key: Key,
    pub(super) uid: String,
    pub(super) created: String,
    pub(super) rv: u64,
    pub(super) item: Vec<u8>,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) fields: Vec<(&'static str, String)>,
}

impl Obj {
    pub(super) fn new(mut v: Value, kind: Kind) -> Obj {
        if let Some(m) = v.as_object_mut() {
            m.remove("kind");
            m.remove("apiVersion");
        }
        let s = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let labels = v
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, x)| (k.clone(), x.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Obj {
            key: (s("/metadata/namespace"), s("/metadata/name")),
            uid: s("/metadata/uid"),
            created: s("/metadata/creationTimestamp"),
            rv: s("/metadata/resourceVersion").parse().unwrap_or(0),
            fields: field_values(&v, kind),
            labels,
            item: serde_json::to_vec(&v).unwrap_or_else(|_| b"{}".to_vec()),
        }
    }

    pub(super) fn ns(&self) -> &str {
        &self.key.0
    }

    pub(super) fn full_json(&self, kind: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.item.len() + 48);
        self.write_full(kind, &mut out);
        out
    }

    pub(super) fn write_full(&self, kind: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"kind\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"apiVersion\":\"v1\"");
        if self.item.len() > 2 {
            out.push(b',');
        }
        out.extend_from_slice(&self.item[1..]);
    }

    /// The object at another resourceVersion (DELETED events, selector-exit DELETED).
    pub(super) fn with_rv(&self, rv: u64, kind: Kind) -> Obj {
        let mut v: Value = serde_json::from_slice(&self.item).unwrap_or_else(|_| json!({}));
        v["metadata"]["resourceVersion"] = json!(rv.to_string());
        Obj::new(v, kind)
    }
}

pub(super) const POD_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
];

pub(super) const EVENT_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

pub(super) const NAMESPACE_FIELDS: &[&str] = &["metadata.name", "status.phase"];

pub(super) const NODE_FIELDS: &[&str] = &["metadata.name", "spec.unschedulable"];

fn field_values(v: &Value, kind: Kind) -> Vec<(&'static str, String)> {
    let names = match kind {
        Kind::Pod => POD_FIELDS,
        Kind::Event => EVENT_FIELDS,
        Kind::Namespace => NAMESPACE_FIELDS,
        Kind::Node => NODE_FIELDS,
    };
    names
        .iter()
        .map(|&f| {
            let val = match f {
                "spec.hostNetwork" => v
                    .pointer("/spec/hostNetwork")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                    .to_string(),
                "status.podIPs" => v
                    .pointer("/status/podIPs")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x["ip"].as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default(),
                "source" => v
                    .pointer("/source/component")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                other => {
                    let ptr = format!("/{}", other.replace('.', "/"));
                    v.pointer(&ptr)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                }
            };
            (f, val)
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One pod (or namespace) change in a history window: `prev` is the state before it (None for ADDED).
pub(super) struct Change {
    pub(super) rv: u64,
    pub(super) typ: EventType,
    pub(super) obj: Arc<Obj>,
    pub(super) prev: Option<Arc<Obj>>,
}

pub(super) struct Store {
    pub(super) rv: u64,
    /// Watches and snapshot lists from a resourceVersion below this get 410.
    pub(super) compact_rv: u64,
    pub(super) history_limit: usize,
    pub(super) pods: BTreeMap<Key, Arc<Obj>>,
    /// Pod changes with rv in (compact_rv, rv], oldest first. Not contiguous: events and
    /// namespaces bump the global version too.
    pub(super) history: VecDeque<Arc<Change>>,
    pub(super) events: BTreeMap<Key, Arc<Obj>>,
    /// Leases (list-item form: no kind/apiVersion), by (namespace, name).
    pub(super) leases: BTreeMap<Key, Value>,
    /// Namespace objects by name (key `("", name)`).
    pub(super) namespaces: BTreeMap<String, Arc<Obj>>,
    /// Namespace changes, kept apart from pod history like the per-resource watch cache, so
    /// namespaces never eat into the pods' window. Same limit, own compaction point.
    pub(super) ns_history: VecDeque<Arc<Change>>,
    pub(super) ns_compact_rv: u64,
    /// Node objects by name (key `("", name)`), with their own history window.
    pub(super) nodes: BTreeMap<String, Arc<Obj>>,
    pub(super) node_history: VecDeque<Arc<Change>>,
    pub(super) node_compact_rv: u64,
    /// Open watches → actions (faults) waiting to be carried out by their thread.
    pub(super) watches: HashMap<u64, Vec<WatchAction>>,
}

impl Store {
    pub(super) fn new(history_limit: usize) -> Store {
        let mut st = Store {
            rv: START_RV,
            compact_rv: START_RV,
            history_limit,
            pods: BTreeMap::new(),
            history: VecDeque::new(),
            events: BTreeMap::new(),
            leases: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            ns_history: VecDeque::new(),
            ns_compact_rv: START_RV,
            nodes: BTreeMap::new(),
            node_history: VecDeque::new(),
            node_compact_rv: START_RV,
            watches: HashMap::new(),
        };
        for ns in ["default", "kube-node-lease", "kube-public", "kube-system"] {
            st.ensure_ns(ns, START_RV);
        }
        st
    }

    /// Create namespace `ns` at `rv` (ADDED) unless it exists. Namespaces a pod creates
    /// implicitly share the pod's resourceVersion (the fake has no namespace admission).
    pub(super) fn ensure_ns(&mut self, ns: &str, rv: u64) {
        if !self.namespaces.contains_key(ns) {
            let v = json!({
                "metadata": {"name": ns, "uid": new_uid(), "resourceVersion": rv.to_string(),
                             "creationTimestamp": rfc3339_now(),
                             "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"}
            });
            let obj = Arc::new(Obj::new(v, Kind::Namespace));
            self.namespaces.insert(ns.to_string(), obj.clone());
            self.record_ns(Change {
                rv,
                typ: EventType::Added,
                obj,
                prev: None,
            });
        }
    }

    /// Set (`Some`) or remove (`None`) one annotation of namespace `name`, creating the
    /// namespace if missing. A real update bumps the version and emits MODIFIED; a no-op
    /// update (value already so) changes nothing, as on the real server. Returns the
    /// namespace's resourceVersion afterwards.
    pub(super) fn set_ns_annotation(&mut self, name: &str, key: &str, value: Option<&str>) -> u64 {
        let Some(prev) = self.namespaces.get(name).cloned() else {
            self.rv += 1;
            let rv = self.rv;
            self.ensure_ns(name, rv);
            if value.is_none() {
                return rv;
            }
            // Created with the annotation in one go: a single ADDED.
            let obj = self.namespaces[name].clone();
            let mut v: Value = serde_json::from_slice(&obj.item).unwrap_or_else(|_| json!({}));
            v["metadata"]["annotations"] = json!({key: value});
            let obj = Arc::new(Obj::new(v, Kind::Namespace));
            self.namespaces.insert(name.to_string(), obj.clone());
            if let Some(last) = self.ns_history.back_mut() {
                *last = Arc::new(Change {
                    rv,
                    typ: EventType::Added,
                    obj,
                    prev: None,
                });
            }
            return rv;
        };
        let mut v: Value = serde_json::from_slice(&prev.item).unwrap_or_else(|_| json!({}));
        let cur = v
            .pointer(&format!(
                "/metadata/annotations/{}",
                key.replace('~', "~0").replace('/', "~1")
            ))
            .and_then(Value::as_str);
        if cur == value {
            return prev.rv;
        }
        let meta = v["metadata"].as_object_mut().expect("namespace metadata");
        let ann = meta
            .entry("annotations")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("annotations object");
        match value {
            Some(x) => {
                ann.insert(key.to_string(), json!(x));
            }
            None => {
                ann.remove(key);
            }
        }
        if ann.is_empty() {
            meta.remove("annotations");
        }
        self.rv += 1;
        let rv = self.rv;
        v["metadata"]["resourceVersion"] = json!(rv.to_string());
        let obj = Arc::new(Obj::new(v, Kind::Namespace));
        self.namespaces.insert(name.to_string(), obj.clone());
        self.record_ns(Change {
            rv,
            typ: EventType::Modified,
            obj,
            prev: Some(prev),
        });
        rv
    }

    fn record_ns(&mut self, c: Change) {
        self.ns_history.push_back(Arc::new(c));
        while self.ns_history.len() > self.history_limit {
            if let Some(old) = self.ns_history.pop_front() {
                self.ns_compact_rv = old.rv;
            }
        }
    }

    /// Watches of `kind` from a resourceVersion below this get 410.
    pub(super) fn compact_rv_of(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Namespace => self.ns_compact_rv,
            Kind::Node => self.node_compact_rv,
            _ => self.compact_rv,
        }
    }

    /// Current objects of a watchable kind, in key order.
    pub(super) fn objects(&self, kind: Kind) -> Vec<Arc<Obj>> {
        match kind {
            Kind::Namespace => self.namespaces.values().cloned().collect(),
            Kind::Node => self.nodes.values().cloned().collect(),
            _ => self.pods.values().cloned().collect(),
        }
    }

    /// Create or replace node `metadata.name`: ADDED or MODIFIED at a new resourceVersion,
    /// keeping its uid and creationTimestamp. Returns the new resourceVersion.
    pub(super) fn upsert_node(&mut self, mut v: Value) -> u64 {
        let name = v
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        assert!(
            !name.is_empty(),
            "fake apiserver: node without metadata.name"
        );
        let prev = self.nodes.get(&name).cloned();
        self.rv += 1;
        let rv = self.rv;
        let meta = &mut v["metadata"];
        meta["resourceVersion"] = json!(rv.to_string());
        if meta["uid"].as_str().unwrap_or("").is_empty() {
            meta["uid"] = json!(prev.as_ref().map(|p| p.uid.clone()).unwrap_or_else(new_uid));
        }
        if meta["creationTimestamp"].as_str().unwrap_or("").is_empty() {
            meta["creationTimestamp"] = json!(
                prev.as_ref()
                    .map(|p| p.created.clone())
                    .unwrap_or_else(rfc3339_now)
            );
        }
        let obj = Arc::new(Obj::new(v, Kind::Node));
        self.nodes.insert(name, obj.clone());
        let typ = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record_node(Change { rv, typ, obj, prev });
        rv
    }

    pub(super) fn delete_node(&mut self, name: &str) -> Option<u64> {
        let prev = self.nodes.remove(name)?;
        self.rv += 1;
        let rv = self.rv;
        let obj = Arc::new(prev.with_rv(rv, Kind::Node));
        self.record_node(Change {
            rv,
            typ: EventType::Deleted,
            obj,
            prev: Some(prev),
        });
        Some(rv)
    }

    fn record_node(&mut self, c: Change) {
        self.node_history.push_back(Arc::new(c));
        while self.node_history.len() > self.history_limit {
            if let Some(old) = self.node_history.pop_front() {
                self.node_compact_rv = old.rv;
            }
        }
    }

    pub(super) fn upsert_pod(&mut self, mut v: Value) -> u64 {
        let ns = v
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        let name = v
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let key = (ns.clone(), name);
        let prev = self.pods.get(&key).cloned();
        self.rv += 1;
        let rv = self.rv;
        let meta = &mut v["metadata"];
        meta["resourceVersion"] = json!(rv.to_string());
        if meta["uid"].as_str().unwrap_or("").is_empty() {
            meta["uid"] = json!(prev.as_ref().map(|p| p.uid.clone()).unwrap_or_else(new_uid));
        }
        if meta["creationTimestamp"].as_str().unwrap_or("").is_empty() {
            meta["creationTimestamp"] = json!(
                prev.as_ref()
                    .map(|p| p.created.clone())
                    .unwrap_or_else(rfc3339_now)
            );
        }
        let obj = Arc::new(Obj::new(v, Kind::Pod));
        self.pods.insert(key, obj.clone());
        self.ensure_ns(&ns, rv);
        let typ = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(Change { rv, typ, obj, prev });
        rv
    }

    pub(super) fn delete_pod(&mut self, ns: &str, name: &str) -> Option<u64> {
        let prev = self.pods.remove(&(ns.to_string(), name.to_string()))?;
        self.rv += 1;
        let rv = self.rv;
        let obj = Arc::new(prev.with_rv(rv, Kind::Pod));
        self.record(Change {
            rv,
            typ: EventType::Deleted,
            obj,
            prev: Some(prev),
        });
        Some(rv)
    }

    fn record(&mut self, c: Change) {
        self.history.push_back(Arc::new(c));
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.compact_rv = old.rv;
            }
        }
    }

    /// Changes of `kind` (pods or namespaces) with rv > `after` (caller checked
    /// `after >= compact_rv_of(kind)`).
    pub(super) fn changes_after(&self, kind: Kind, after: u64) -> Vec<Arc<Change>> {
        let h = match kind {
            Kind::Namespace => &self.ns_history,
            Kind::Node => &self.node_history,
            _ => &self.history,
        };
        let i = h.partition_point(|c| c.rv <= after);
        h.range(i..).cloned().collect()
    }

    /// One page of pods as of resourceVersion `at` (compact_rv <= at <= rv), keys after
    /// `start_after`, matching `filter`; `limit` 0 = all. Past states are rebuilt by undoing
    /// the history after `at`, which is what makes continue tokens consistent snapshots.
    /// Like etcd, `more` says whether any key (matching or not) follows the page.
    pub(super) fn list_pods_at(
        &self,
        at: u64,
        start_after: Option<&Key>,
        filter: &Filter,
        limit: usize,
    ) -> Page {
        // Keys changed after `at` → their state at `at` (None = did not exist then).
        let mut overlay: BTreeMap<&Key, Option<&Arc<Obj>>> = BTreeMap::new();
        if at < self.rv {
            let i = self.history.partition_point(|c| c.rv <= at);
            for c in self.history.range(i..) {
                overlay.entry(&c.obj.key).or_insert(c.prev.as_ref());
            }
        }
        let ns_start: Option<Key> = filter
            .namespace
            .as_ref()
            .map(|ns| (ns.clone(), String::new()));
        let lower: Bound<&Key> = match (start_after, ns_start.as_ref()) {
            (Some(k), Some(n)) if k < n => Bound::Included(n),
            (Some(k), _) => Bound::Excluded(k),
            (None, Some(n)) => Bound::Included(n),
            (None, None) => Bound::Unbounded,
        };
        let cur = self
            .pods
            .range::<Key, _>((lower, Bound::Unbounded))
            .map(|(k, o)| (k, Some(o)));
        let past = overlay
            .range::<&Key, _>((lower.map(|k| k), Bound::Unbounded))
            .map(|(k, o)| (*k, *o));
        let mut page = Page {
            items: Vec::new(),
            more: false,
            last: None,
            remaining: 0,
        };
        for (k, o) in merge_sorted(cur, past) {
            if let Some(ns) = &filter.namespace {
                if &k.0 != ns {
                    break;
                }
            }
            if limit > 0 && page.items.len() >= limit {
                page.more = true;
                page.remaining += 1;
                continue;
            }
            if filter.matches(o) {
                page.items.push(o.clone());
                page.last = Some(k.clone());
            }
        }
        page
    }
}

/// Merge the live map with the overlay of past states: on equal keys the overlay wins, and a
/// `None` state (object did not exist at the snapshot) drops the key.
fn merge_sorted<'a>(
    cur: impl Iterator<Item = (&'a Key, Option<&'a Arc<Obj>>)>,
    past: impl Iterator<Item = (&'a Key, Option<&'a Arc<Obj>>)>,
) -> impl Iterator<Item = (&'a Key, &'a Arc<Obj>)> {
    let mut cur = cur.peekable();
    let mut past = past.peekable();
    std::iter::from_fn(move || {
        loop {
            let next = match (cur.peek(), past.peek()) {
                (None, None) => return None,
                (Some(_), None) => cur.next(),
                (None, Some(_)) => past.next(),
                (Some(c), Some(p)) => {
                    if c.0 < p.0 {
                        cur.next()
                    } else {
                        if c.0 == p.0 {
                            cur.next();
                        }
                        past.next()
                    }
                }
            };
            if let Some((k, Some(o))) = next {
                return Some((k, o));
            }
        }
    })
}

pub(super) struct Page {
    pub(super) items: Vec<Arc<Obj>>,
    pub(super) more: bool,
    pub(super) last: Option<Key>,
    pub(super) remaining: u64,
}
