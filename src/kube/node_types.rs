/*!
Wire types for nodes — only the fields `model::node::NodeRecord` keeps — and
their watch lines. A node object carries its image list (easily hundreds of
kilobytes on a busy node), addresses, daemon endpoints and heartbeat times:
serde skips them all without storing them. Decoding is as lenient as for
pods (`kube::types`): a field of the wrong JSON type reads as missing.
*/

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::types::{
    DecodeError, ListMeta, PodCondition, Status, WatchEvent, condition, list, object, opt_scalar,
    scalar, skip_seq, text,
};
use crate::model::node::{Allocatable, NodeRecord, Taint};

/// The label naming a node's zone.
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// `node-role.kubernetes.io/<role>` labels name its roles.
const ROLE_PREFIX: &str = "node-role.kubernetes.io/";

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NodeMeta {
    #[serde(deserialize_with = "scalar")]
    pub name: String,
    #[serde(deserialize_with = "scalar")]
    pub resource_version: String,
    #[serde(deserialize_with = "labels")]
    pub labels: Labels,
}

/// The only labels kept: roles and the zone.
#[derive(Debug, Default)]
pub struct Labels {
    pub roles: Vec<Box<str>>,
    pub zone: Option<Box<str>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TaintWire {
    #[serde(deserialize_with = "scalar")]
    pub key: String,
    #[serde(deserialize_with = "opt_scalar")]
    pub value: Option<String>,
    #[serde(deserialize_with = "scalar")]
    pub effect: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NodeSpec {
    #[serde(deserialize_with = "scalar")]
    pub unschedulable: bool,
    #[serde(deserialize_with = "list")]
    pub taints: Vec<TaintWire>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AllocatableWire {
    #[serde(deserialize_with = "opt_scalar")]
    pub cpu: Option<String>,
    #[serde(deserialize_with = "opt_scalar")]
    pub memory: Option<String>,
    #[serde(deserialize_with = "opt_scalar")]
    pub pods: Option<String>,
    #[serde(rename = "ephemeral-storage")]
    #[serde(deserialize_with = "opt_scalar")]
    pub ephemeral_storage: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NodeInfo {
    #[serde(deserialize_with = "opt_scalar")]
    pub kubelet_version: Option<String>,
}

/// `status`: `images`, `addresses`, `daemonEndpoints`, `volumesInUse`, …
/// are not named here, so serde skips them.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NodeStatus {
    #[serde(deserialize_with = "list")]
    pub conditions: Vec<PodCondition>,
    #[serde(deserialize_with = "object")]
    pub allocatable: AllocatableWire,
    #[serde(deserialize_with = "object")]
    pub node_info: NodeInfo,
}

/// A node as decoded from the wire (only the fields above).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Node {
    #[serde(deserialize_with = "object")]
    pub metadata: NodeMeta,
    #[serde(deserialize_with = "object")]
    pub spec: NodeSpec,
    #[serde(deserialize_with = "object")]
    pub status: NodeStatus,
}

/// One page of a node LIST.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NodeList {
    #[serde(deserialize_with = "object")]
    pub metadata: ListMeta,
    #[serde(deserialize_with = "list")]
    pub items: Vec<Node>,
}

/// The object of a node watch event: a node, a bookmark or a `Status`
/// (`status` is a string there; `object` reads it as an empty status).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WatchObject {
    #[serde(deserialize_with = "object")]
    metadata: NodeMeta,
    #[serde(deserialize_with = "object")]
    spec: NodeSpec,
    #[serde(deserialize_with = "object")]
    status: NodeStatus,
    #[serde(deserialize_with = "scalar")]
    code: u16,
    #[serde(deserialize_with = "scalar")]
    reason: String,
    #[serde(deserialize_with = "scalar")]
    message: String,
}

#[derive(Debug, Deserialize)]
struct WatchLine {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    object: WatchObject,
}

/// Decodes one line of a node watch stream.
pub fn decode_node_watch_line(line: &[u8]) -> Result<WatchEvent<Node>, DecodeError> {
    let wl: WatchLine = serde_json::from_slice(line).map_err(|e| DecodeError(e.to_string()))?;
    let o = wl.object;
    let node = |o: WatchObject| Node {
        metadata: o.metadata,
        spec: o.spec,
        status: o.status,
    };
    match wl.kind.as_str() {
        "ADDED" => Ok(WatchEvent::Added(node(o))),
        "MODIFIED" => Ok(WatchEvent::Modified(node(o))),
        "DELETED" => Ok(WatchEvent::Deleted(node(o))),
        "BOOKMARK" => Ok(WatchEvent::Bookmark {
            resource_version: o.metadata.resource_version,
        }),
        "ERROR" => Ok(WatchEvent::Error(Status {
            code: o.code,
            reason: o.reason,
            message: o.message,
        })),
        other => Err(DecodeError(format!("unknown watch event type {other:?}"))),
    }
}

impl From<Node> for NodeRecord {
    fn from(n: Node) -> NodeRecord {
        let mut r = NodeRecord {
            name: n.metadata.name.into_boxed_str(),
            unschedulable: n.spec.unschedulable,
            taints: n
                .spec
                .taints
                .into_iter()
                .filter(|t| !t.key.is_empty())
                .map(|t| Taint {
                    key: t.key.into_boxed_str(),
                    value: t.value.map(String::into_boxed_str),
                    effect: t.effect.into_boxed_str(),
                })
                .collect(),
            allocatable: {
                let a = n.status.allocatable;
                Allocatable {
                    cpu: a.cpu.map(String::into_boxed_str),
                    memory: a.memory.map(String::into_boxed_str),
                    pods: a.pods.map(String::into_boxed_str),
                    ephemeral_storage: a.ephemeral_storage.map(String::into_boxed_str),
                }
            },
            kubelet_version: text(n.status.node_info.kubelet_version),
            roles: n.metadata.labels.roles.into_boxed_slice(),
            zone: n.metadata.labels.zone,
            ..NodeRecord::default()
        };
        for c in n.status.conditions {
            let slot = match c.kind.as_str() {
                "Ready" => &mut r.ready,
                "MemoryPressure" => &mut r.memory_pressure,
                "DiskPressure" => &mut r.disk_pressure,
                "PIDPressure" => &mut r.pid_pressure,
                "NetworkUnavailable" => &mut r.network_unavailable,
                _ => continue,
            };
            *slot = Some(condition(c));
        }
        r
    }
}

/// Reads labels without storing them: only roles and the zone.
fn labels<'de, D: Deserializer<'de>>(d: D) -> Result<Labels, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Labels;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a labels map")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
            let mut out = Labels::default();
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == ZONE_LABEL {
                    let v: Option<String> = map.next_value_seed(ScalarValue)?;
                    out.zone = text(v.filter(|v| !v.is_empty()));
                } else if let Some(role) = key.strip_prefix(ROLE_PREFIX) {
                    map.next_value::<IgnoredAny>()?;
                    if !role.is_empty() {
                        out.roles.push(role.into());
                    }
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            out.roles.sort();
            Ok(out)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Labels, A::Error> {
            skip_seq(seq).map(|()| Labels::default())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Labels, E> {
            Ok(Labels::default())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Labels, E> {
            Ok(Labels::default())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Labels, E> {
            Ok(Labels::default())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Labels, E> {
            Ok(Labels::default())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Labels, E> {
            Ok(Labels::default())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Labels, E> {
            Ok(Labels::default())
        }
    }
    d.deserialize_any(V)
}

/// A label value read leniently (a string; anything else is dropped).
struct ScalarValue;

impl<'de> de::DeserializeSeed<'de> for ScalarValue {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        opt_scalar(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = r#"{"type":"MODIFIED","object":{"kind":"Node","apiVersion":"v1",
      "metadata":{"name":"pi-3","resourceVersion":"77","labels":{
        "kubernetes.io/hostname":"pi-3","node-role.kubernetes.io/worker":"",
        "node-role.kubernetes.io/edge":"true","topology.kubernetes.io/zone":"shelf-2"}},
      "spec":{"unschedulable":true,"taints":[{"key":"node.kubernetes.io/disk-pressure","effect":"NoSchedule","timeAdded":"2026-01-01T00:00:00Z"},{"effect":"NoSchedule"}]},
      "status":{"conditions":[
        {"type":"MemoryPressure","status":"False","reason":"KubeletHasSufficientMemory","lastHeartbeatTime":"2026-01-01T00:00:10Z","lastTransitionTime":"2026-01-01T00:00:00Z"},
        {"type":"DiskPressure","status":"True","reason":"KubeletHasDiskPressure","message":"kubelet has disk pressure","lastHeartbeatTime":"2026-01-01T00:00:10Z","lastTransitionTime":"2026-01-01T00:00:05Z"},
        {"type":"Ready","status":"True","reason":"KubeletReady"},
        {"type":"SomethingElse","status":"True"}],
       "allocatable":{"cpu":"4","memory":"3791Mi","pods":"110","ephemeral-storage":"28Gi","hugepages-2Mi":"0"},
       "nodeInfo":{"kubeletVersion":"v1.31.4+k3s1","osImage":"Debian"},
       "images":[{"names":["docker.io/library/nginx:1.27"],"sizeBytes":70000000}]}}}"#;

    fn record(line: &str) -> NodeRecord {
        match decode_node_watch_line(line.as_bytes()).unwrap() {
            WatchEvent::Modified(n) | WatchEvent::Added(n) => NodeRecord::from(n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_node_decodes_into_its_compact_record() {
        let n = record(NODE);
        assert_eq!(&*n.name, "pi-3");
        assert!(n.unschedulable);
        assert_eq!(n.taints.len(), 1, "a taint without a key is dropped");
        assert_eq!(
            n.taints[0].display(),
            "node.kubernetes.io/disk-pressure:NoSchedule"
        );
        let disk = n.disk_pressure.as_ref().unwrap();
        assert_eq!(disk.status, Some(true));
        assert_eq!(disk.message.as_deref(), Some("kubelet has disk pressure"));
        assert!(disk.since.is_some());
        assert_eq!(n.memory_pressure.as_ref().unwrap().status, Some(false));
        assert!(n.pid_pressure.is_none() && n.network_unavailable.is_none());
        assert_eq!(n.allocatable.memory.as_deref(), Some("3791Mi"));
        assert_eq!(n.allocatable.ephemeral_storage.as_deref(), Some("28Gi"));
        assert_eq!(n.kubelet_version.as_deref(), Some("v1.31.4+k3s1"));
        let roles: Vec<&str> = n.roles.iter().map(|r| &**r).collect();
        assert_eq!(roles, ["edge", "worker"]);
        assert_eq!(n.zone.as_deref(), Some("shelf-2"));
    }

    #[test]
    fn a_heartbeat_that_moves_only_heartbeat_times_gives_an_equal_record() {
        let later = NODE
            .replace("00:00:10Z", "00:00:20Z")
            .replace("\"77\"", "\"78\"");
        assert_eq!(record(NODE), record(&later));
    }

    #[test]
    fn odd_types_read_as_missing_and_errors_and_bookmarks_decode() {
        let n = record(
            r#"{"type":"ADDED","object":{"metadata":{"name":"x","labels":[1]},"spec":{"unschedulable":"yes","taints":{}},"status":{"conditions":[null,{"type":"Ready","status":"Unknown"}],"allocatable":7}}}"#,
        );
        assert!(!n.unschedulable && n.taints.is_empty() && n.roles.is_empty());
        assert!(n.not_ready());
        let e = decode_node_watch_line(
            br#"{"type":"ERROR","object":{"kind":"Status","status":"Failure","code":410,"reason":"Expired","message":"too old"}}"#,
        )
        .unwrap();
        assert!(matches!(e, WatchEvent::Error(s) if s.code == 410));
        let b = decode_node_watch_line(
            br#"{"type":"BOOKMARK","object":{"kind":"Node","metadata":{"resourceVersion":"99"}}}"#,
        )
        .unwrap();
        assert!(matches!(b, WatchEvent::Bookmark { resource_version } if resource_version == "99"));
    }
}
