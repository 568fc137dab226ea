/*!
Wire types for pods, lists, watch events and `Status` — only the fields the
daemon reads — and the compact `PodRecord` kept per pod.

Decoding ignores unknown fields and tolerates missing ones: a pod with no
status, an unknown container state or a 1 MB annotation must decode, never
fail. A field of the wrong JSON type (a number where a string belongs, a null
list item) reads as missing too, so only a line that is not JSON, or not a
watch event, fails to decode. `managedFields`, annotations (but ours), env
values and most of the spec are skipped by serde without being stored; the
labels are kept only when routes or silences match on them (`keep_labels`),
at most `MAX_LABELS`.
Free-text fields are capped at `MAX_TEXT` so one absurd pod cannot bloat
the store.
*/

pub use crate::model::pod::{
    Condition, ContainerRecord, ContainerState, NamespaceRecord, Owner, Phase, PodRecord, Probe,
    ProbeKind, SILENCE_ANNOTATION, SilenceUntil, Terminated,
};
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::util::time::parse_rfc3339;

/// Longest message or reason kept per field (bytes); the rest is cut with a marker.
pub const MAX_TEXT: usize = 4096;

/// The annotation that tells the daemon to ignore a pod.
pub const IGNORE_ANNOTATION: &str = "opsctrl.dev/ignore";

// ---------------------------------------------------------------- wire types

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(deserialize_with = "scalar")]
    pub name: String,
    #[serde(deserialize_with = "scalar")]
    pub namespace: String,
    #[serde(deserialize_with = "scalar")]
    pub uid: String,
    #[serde(deserialize_with = "scalar")]
    pub resource_version: String,
    #[serde(deserialize_with = "opt_scalar")]
    pub creation_timestamp: Option<String>,
    #[serde(deserialize_with = "opt_scalar")]
    pub deletion_timestamp: Option<String>,
    #[serde(deserialize_with = "list")]
    pub owner_references: Vec<OwnerReference>,
    #[serde(deserialize_with = "our_annotations")]
    pub annotations: Annotations,
    #[serde(deserialize_with = "label_map")]
    pub labels: Labels,
}

/// The annotations the daemon reads; the rest are skipped unstored.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Annotations {
    /// `opsctrl.dev/ignore: "true"`.
    pub ignore: bool,
    /// `opsctrl.dev/silence-until`.
    pub silence_until: Option<SilenceUntil>,
}

/// Whether pods' labels are kept: only when a route or a silence matches on
/// them (set once at start-up, before any watch); otherwise they are skipped
/// like any other unused field and cost nothing in the store.
static KEEP_LABELS: AtomicBool = AtomicBool::new(false);

/// Keep pods' labels from now on (`routing::Policy::uses_labels`).
pub fn keep_labels(on: bool) {
    KEEP_LABELS.store(on, Ordering::Relaxed);
}

/// Labels kept per pod at most, and longest key or value kept (Kubernetes
/// allows 317 and 63): a pod with thousands of labels must not bloat the store.
pub const MAX_LABELS: usize = 64;
const MAX_LABEL_TEXT: usize = 320;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OwnerReference {
    #[serde(deserialize_with = "scalar")]
    pub kind: String,
    #[serde(deserialize_with = "scalar")]
    pub name: String,
    #[serde(deserialize_with = "opt_scalar")]
    pub controller: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(deserialize_with = "opt_scalar")]
    pub node_name: Option<String>,
    #[serde(deserialize_with = "opt_scalar")]
    pub service_account_name: Option<String>,
    #[serde(deserialize_with = "list")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    #[serde(deserialize_with = "list")]
    pub containers: Vec<ContainerSpec>,
    #[serde(deserialize_with = "list")]
    pub init_containers: Vec<ContainerSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LocalObjectReference {
    #[serde(deserialize_with = "scalar")]
    pub name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerSpec {
    #[serde(deserialize_with = "scalar")]
    pub name: String,
    #[serde(deserialize_with = "scalar")]
    pub image: String,
    #[serde(deserialize_with = "object")]
    pub resources: Resources,
    #[serde(deserialize_with = "opt_object")]
    pub liveness_probe: Option<ProbeWire>,
    #[serde(deserialize_with = "opt_object")]
    pub readiness_probe: Option<ProbeWire>,
    #[serde(deserialize_with = "opt_object")]
    pub startup_probe: Option<ProbeWire>,
}

/// A probe: its handler (only the fields a fix names) and its timings.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProbeWire {
    #[serde(deserialize_with = "opt_object")]
    pub http_get: Option<PortPath>,
    #[serde(deserialize_with = "opt_object")]
    pub tcp_socket: Option<PortPath>,
    #[serde(deserialize_with = "opt_object")]
    pub grpc: Option<PortPath>,
    pub exec: Option<IgnoredAny>,
    #[serde(deserialize_with = "opt_scalar")]
    pub timeout_seconds: Option<u32>,
    #[serde(deserialize_with = "opt_scalar")]
    pub period_seconds: Option<u32>,
    #[serde(deserialize_with = "opt_scalar")]
    pub failure_threshold: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PortPath {
    #[serde(deserialize_with = "opt_scalar")]
    pub path: Option<String>,
    /// A number or a named port (`http`).
    #[serde(deserialize_with = "int_or_string")]
    pub port: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Resources {
    #[serde(deserialize_with = "object")]
    pub limits: ResourceList,
    #[serde(deserialize_with = "object")]
    pub requests: ResourceList,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResourceList {
    #[serde(deserialize_with = "opt_scalar")]
    pub cpu: Option<String>,
    #[serde(deserialize_with = "opt_scalar")]
    pub memory: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodStatus {
    #[serde(deserialize_with = "opt_scalar")]
    pub phase: Option<String>,
    #[serde(deserialize_with = "opt_scalar")]
    pub reason: Option<String>,
    #[serde(deserialize_with = "opt_scalar")]
    pub message: Option<String>,
    #[serde(deserialize_with = "list")]
    pub conditions: Vec<PodCondition>,
    #[serde(deserialize_with = "list")]
    pub container_statuses: Vec<ContainerStatus>,
    #[serde(deserialize_with = "list")]
    pub init_container_statuses: Vec<ContainerStatus>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodCondition {
    #[serde(rename = "type")]
    #[serde(deserialize_with = "scalar")]
    pub kind: String,
    #[serde(deserialize_with = "scalar")]
    pub status: String,
    #[serde(deserialize_with = "opt_scalar")]
    pub reason: Option<String>,
    #[serde(deserialize_with = "opt_scalar")]
    pub message: Option<String>,
    #[serde(deserialize_with = "opt_scalar")]
    pub last_transition_time: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerStatus {
    #[serde(deserialize_with = "scalar")]
    pub name: String,
    #[serde(deserialize_with = "scalar")]
    pub image: String,
    #[serde(deserialize_with = "scalar")]
    pub ready: bool,
    #[serde(deserialize_with = "scalar")]
    pub restart_count: u32,
    #[serde(deserialize_with = "object")]
    pub state: ContainerStateWire,
    #[serde(deserialize_with = "object")]
    pub last_state: ContainerStateWire,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ContainerStateWire {
    #[serde(deserialize_with = "opt_object")]
    pub waiting: Option<StateDetail>,
    #[serde(deserialize_with = "opt_object")]
    pub running: Option<StateDetail>,
    #[serde(deserialize_with = "opt_object")]
    pub terminated: Option<StateDetail>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct StateDetail {
    #[serde(deserialize_with = "opt_scalar")]
    pub reason: Option<String>,
    #[serde(deserialize_with = "opt_scalar")]
    pub message: Option<String>,
    #[serde(deserialize_with = "opt_scalar")]
    pub exit_code: Option<i32>,
    #[serde(deserialize_with = "opt_scalar")]
    pub signal: Option<i32>,
    #[serde(deserialize_with = "opt_scalar")]
    pub started_at: Option<String>,
    #[serde(deserialize_with = "opt_scalar")]
    pub finished_at: Option<String>,
}

/// A pod as decoded from the wire (only the fields above).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Pod {
    #[serde(deserialize_with = "object")]
    pub metadata: ObjectMeta,
    #[serde(deserialize_with = "object")]
    pub spec: PodSpec,
    #[serde(deserialize_with = "object")]
    pub status: PodStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ListMeta {
    #[serde(deserialize_with = "scalar")]
    pub resource_version: String,
    #[serde(rename = "continue")]
    #[serde(deserialize_with = "opt_scalar")]
    pub continue_token: Option<String>,
}

/// One page of a pod LIST, decoded item by item straight into compact
/// records: the wire form of a whole page is never held in memory.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PodList {
    #[serde(deserialize_with = "object")]
    pub metadata: ListMeta,
    #[serde(deserialize_with = "records")]
    pub items: Vec<PodRecord>,
}

fn records<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PodRecord>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<PodRecord>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of pods")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<PodRecord>, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<PodRecord>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(10_000));
            // An item that is not an object cannot be a pod; it is skipped like
            // a null list item elsewhere (see `list`).
            while let Some(Item(pod)) = seq.next_element::<Item<Pod>>()? {
                out.extend(pod.map(PodRecord::from));
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// A LIST page of objects other than pods (namespaces), decoded with the
/// same shared wire shape; only their metadata matters.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ObjectList {
    pub metadata: ListMeta,
    #[serde(deserialize_with = "list")]
    pub items: Vec<Pod>,
}

impl From<Pod> for NamespaceRecord {
    fn from(p: Pod) -> NamespaceRecord {
        NamespaceRecord {
            name: p.metadata.name.into_boxed_str(),
            ignore: p.metadata.annotations.ignore,
            silence_until: p.metadata.annotations.silence_until,
        }
    }
}

/// An API `Status` (error bodies, and the object of a watch `ERROR` event).
#[derive(Debug, Default, Deserialize, Clone, PartialEq, Eq)]
#[serde(default)]
pub struct Status {
    pub code: u16,
    pub reason: String,
    pub message: String,
}

/// The object of a watch event decoded in one pass: a pod (ADDED, MODIFIED,
/// DELETED), a bare object carrying only a resourceVersion (BOOKMARK) or a
/// Status (ERROR). `status` is an object for pods and a string for Status, so
/// it goes through `pod_status_or_string`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WatchObject {
    #[serde(deserialize_with = "object")]
    metadata: ObjectMeta,
    #[serde(deserialize_with = "object")]
    spec: PodSpec,
    #[serde(deserialize_with = "pod_status_or_string")]
    status: PodStatus,
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

/// A decoded watch event.
#[derive(Debug)]
pub enum WatchEvent<O = Pod> {
    Added(O),
    Modified(O),
    Deleted(O),
    Bookmark { resource_version: String },
    Error(Status),
}

#[derive(Debug)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes one line of a watch stream.
pub fn decode_watch_line(line: &[u8]) -> Result<WatchEvent, DecodeError> {
    let wl: WatchLine = serde_json::from_slice(line).map_err(|e| DecodeError(e.to_string()))?;
    let o = wl.object;
    let pod = |o: WatchObject| Pod {
        metadata: o.metadata,
        spec: o.spec,
        status: o.status,
    };
    match wl.kind.as_str() {
        "ADDED" => Ok(WatchEvent::Added(pod(o))),
        "MODIFIED" => Ok(WatchEvent::Modified(pod(o))),
        "DELETED" => Ok(WatchEvent::Deleted(pod(o))),
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

// ----------------------------------------------------- lenient field decoding
//
// The API server validates pods, but the decoder does not rely on it: a field
// of an unexpected JSON type (a number where a string belongs, a list where an
// object does, a null list item, a number out of range) reads as missing, like
// `null`, instead of failing the whole object. A failed object is not a local
// problem: a LIST page fails whole and is retried forever, and a watch reopens
// from the last good resourceVersion and meets the same event again, so one odd
// pod would blind the daemon. Each helper decides from the JSON type the parser
// reports, without buffering, so well-formed pods cost what they did.

/// The error type of the throwaway deserializers a scalar is re-read with.
type ScalarError = de::value::Error;

/// Skips the rest of a map or list the field cannot use.
pub(super) fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

pub(super) fn skip_seq<'de, A: de::SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A string, number or bool field: `Some` when the JSON value converts to `T`.
struct Scalar<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Scalar<T> {
    fn read<X: de::IntoDeserializer<'de, ScalarError>>(v: X) -> Option<T> {
        T::deserialize(v.into_deserializer()).ok()
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Scalar<T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<T>, E> {
        Ok(Self::read(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<T>, E> {
        Ok(Self::read(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<T>, E> {
        Ok(Self::read(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<T>, E> {
        Ok(Self::read(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<T>, E> {
        Ok(Self::read(v))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Option<T>, E> {
        Ok(Self::read(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
        skip_map(map).map(|()| None)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Option<T>, A::Error> {
        skip_seq(seq).map(|()| None)
    }
}

pub(super) fn scalar<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(d.deserialize_any(Scalar(PhantomData))?.unwrap_or_default())
}

pub(super) fn opt_scalar<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    d.deserialize_any(Scalar(PhantomData))
}

/// An object field: decoded when it is a JSON object, `None` when it is anything else.
struct Object<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for Object<T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Option<T>, A::Error> {
        skip_seq(seq).map(|()| None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_any(self)
    }
}

pub(super) fn object<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(d.deserialize_any(Object(PhantomData))?.unwrap_or_default())
}

pub(super) fn opt_object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    d.deserialize_any(Object(PhantomData))
}

/// A list item that is an object, or `None` (and skipped) when it is anything else.
struct Item<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Item<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Object(PhantomData)).map(Item)
    }
}

/// A list of objects; items that are not objects are dropped, and a field that
/// is not a list at all reads as empty.
pub(super) fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
            while let Some(Item(item)) = seq.next_element::<Item<T>>()? {
                out.extend(item);
            }
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Vec<T>, A::Error> {
            skip_map(map).map(|()| Vec::new())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
            d.deserialize_any(self)
        }
    }
    d.deserialize_any(V(PhantomData))
}

fn pod_status_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<PodStatus, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = PodStatus;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a pod status object or a Status string")
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<PodStatus, E> {
            Ok(PodStatus::default())
        }
        fn visit_unit<E: de::Error>(self) -> Result<PodStatus, E> {
            Ok(PodStatus::default())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<PodStatus, E> {
            Ok(PodStatus::default())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<PodStatus, E> {
            Ok(PodStatus::default())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<PodStatus, E> {
            Ok(PodStatus::default())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<PodStatus, E> {
            Ok(PodStatus::default())
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<PodStatus, A::Error> {
            skip_seq(seq).map(|()| PodStatus::default())
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PodStatus, A::Error> {
            PodStatus::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_any(V)
}

/// An IntOrString (`8080` or `"http"`) as text; anything else is dropped.
fn int_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a port number or name")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<String>, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<String>, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<String>, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<String>, E> {
            Ok(None)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<String>, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<String>, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<String>, A::Error> {
            skip_map(map).map(|()| None)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Option<String>, A::Error> {
            skip_seq(seq).map(|()| None)
        }
    }
    d.deserialize_any(V)
}

/// Reads annotations without storing them: only ours.
fn our_annotations<'de, D: Deserializer<'de>>(d: D) -> Result<Annotations, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Annotations;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an annotations map")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Annotations, E> {
            Ok(Annotations::default())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Annotations, A::Error> {
            let mut a = Annotations::default();
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == IGNORE_ANNOTATION {
                    let v: Option<String> = map.next_value_seed(ScalarSeed(PhantomData))?;
                    a.ignore = v.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
                } else if key == SILENCE_ANNOTATION {
                    let v: Option<String> = map.next_value_seed(ScalarSeed(PhantomData))?;
                    a.silence_until = Some(
                        v.as_deref()
                            .and_then(|v| parse_rfc3339(v.trim()))
                            .map_or(SilenceUntil::Invalid, |s| {
                                SilenceUntil::At(s.saturating_mul(1000))
                            }),
                    );
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(a)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Annotations, A::Error> {
            skip_seq(seq).map(|()| Annotations::default())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Annotations, E> {
            Ok(Annotations::default())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Annotations, E> {
            Ok(Annotations::default())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Annotations, E> {
            Ok(Annotations::default())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Annotations, E> {
            Ok(Annotations::default())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Annotations, E> {
            Ok(Annotations::default())
        }
    }
    d.deserialize_any(V)
}

/// Labels with string values, at most `MAX_LABELS`, oversized ones skipped;
/// anything that is not a map reads as none; none unless `keep_labels`.
type Labels = Vec<(Box<str>, Box<str>)>;

fn label_map<'de, D: Deserializer<'de>>(d: D) -> Result<Labels, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Labels;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a labels map")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Labels, E> {
            Ok(Vec::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
            let mut out = Vec::new();
            if !KEEP_LABELS.load(Ordering::Relaxed) {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                return Ok(out);
            }
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                let v: Option<String> = map.next_value_seed(ScalarSeed(PhantomData))?;
                let Some(v) = v else { continue };
                if out.len() < MAX_LABELS
                    && key.len() <= MAX_LABEL_TEXT
                    && v.len() <= MAX_LABEL_TEXT
                {
                    out.push((key.into(), v.into_boxed_str()));
                }
            }
            Ok(out)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Labels, A::Error> {
            skip_seq(seq).map(|()| Vec::new())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Labels, E> {
            Ok(Vec::new())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Labels, E> {
            Ok(Vec::new())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Labels, E> {
            Ok(Vec::new())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Labels, E> {
            Ok(Vec::new())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Labels, E> {
            Ok(Vec::new())
        }
    }
    d.deserialize_any(V)
}

/// `Scalar` as a seed, for map values read by hand.
pub(super) struct ScalarSeed<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> de::DeserializeSeed<'de> for ScalarSeed<T> {
    type Value = Option<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_any(Scalar(PhantomData))
    }
}

/// Cuts `s` to `MAX_TEXT` bytes on a char boundary, with a visible marker.
pub(super) fn text(s: Option<String>) -> Option<Box<str>> {
    let mut s = s?;
    if s.len() > MAX_TEXT {
        let mut cut = MAX_TEXT;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("…[truncated]");
    }
    Some(s.into_boxed_str())
}

pub(super) fn condition(c: PodCondition) -> Condition {
    Condition {
        status: match c.status.as_str() {
            "True" => Some(true),
            "False" => Some(false),
            _ => None,
        },
        reason: text(c.reason),
        message: text(c.message),
        since: c.last_transition_time.as_deref().and_then(parse_rfc3339),
    }
}

fn terminated(d: StateDetail) -> Terminated {
    Terminated {
        exit_code: d.exit_code.unwrap_or(0),
        signal: d.signal,
        reason: text(d.reason),
        message: text(d.message),
        finished: d.finished_at.as_deref().and_then(parse_rfc3339),
    }
}

fn state(s: ContainerStateWire) -> ContainerState {
    // kubelet sets exactly one; if several appear, the most final one wins.
    if let Some(t) = s.terminated {
        ContainerState::Terminated(terminated(t))
    } else if let Some(w) = s.waiting {
        ContainerState::Waiting {
            reason: text(w.reason),
            // Kubelet's `container=… pod=…_ns(uid)` tail is noise wherever it is shown.
            message: text(w.message).map(|m| crate::util::text::strip_kubelet_noise(&m).into()),
        }
    } else if let Some(r) = s.running {
        ContainerState::Running {
            started: r.started_at.as_deref().and_then(parse_rfc3339),
        }
    } else {
        ContainerState::Unknown
    }
}

fn containers(
    statuses: Vec<ContainerStatus>,
    specs: &mut Vec<ContainerSpec>,
) -> Box<[ContainerRecord]> {
    let mut out: Vec<ContainerRecord> = Vec::with_capacity(statuses.len().max(specs.len()));
    // Numbered before matching: swap_remove reorders, and patches need spec positions.
    let mut specs: Vec<(Option<u16>, ContainerSpec)> = specs
        .drain(..)
        .enumerate()
        .map(|(i, c)| (u16::try_from(i).ok(), c))
        .collect();
    for st in statuses {
        let (index, spec) = specs
            .iter()
            .position(|(_, c)| c.name == st.name)
            .map(|i| specs.swap_remove(i))
            .unwrap_or_default();
        out.push(container(st, spec, index));
    }
    // Containers with no status yet (a pod not scheduled, or just created),
    // in spec order.
    specs.sort_by_key(|(i, _)| *i);
    for (index, spec) in specs {
        let st = ContainerStatus {
            name: spec.name.clone(),
            ..ContainerStatus::default()
        };
        out.push(container(st, spec, index));
    }
    out.into_boxed_slice()
}

fn probe(p: ProbeWire) -> Box<Probe> {
    let (kind, handler) = if let Some(h) = p.http_get {
        (ProbeKind::Http, Some(h))
    } else if let Some(h) = p.tcp_socket {
        (ProbeKind::Tcp, Some(h))
    } else if let Some(h) = p.grpc {
        (ProbeKind::Grpc, Some(h))
    } else if p.exec.is_some() {
        (ProbeKind::Exec, None)
    } else {
        (ProbeKind::Other, None)
    };
    let (path, port) = handler.map_or((None, None), |h| (h.path, h.port));
    Box::new(Probe {
        kind,
        timeout_seconds: p.timeout_seconds.unwrap_or(1),
        period_seconds: p.period_seconds.unwrap_or(10),
        failure_threshold: p.failure_threshold.unwrap_or(3),
        path: text(path),
        port: text(port),
    })
}

fn container(st: ContainerStatus, spec: ContainerSpec, index: Option<u16>) -> ContainerRecord {
    let image = if st.image.is_empty() {
        spec.image
    } else {
        st.image
    };
    let lim = spec.resources.limits;
    let req = spec.resources.requests;
    ContainerRecord {
        name: st.name.into_boxed_str(),
        image: image.into_boxed_str(),
        ready: st.ready,
        restart_count: st.restart_count,
        state: state(st.state),
        last_terminated: st.last_state.terminated.map(terminated),
        memory_limit: lim.memory.map(String::into_boxed_str),
        cpu_limit: lim.cpu.map(String::into_boxed_str),
        memory_request: req.memory.map(String::into_boxed_str),
        cpu_request: req.cpu.map(String::into_boxed_str),
        index,
        liveness: spec.liveness_probe.map(probe),
        readiness: spec.readiness_probe.map(probe),
        startup: spec.startup_probe.map(probe),
    }
}

impl From<Pod> for PodRecord {
    fn from(p: Pod) -> PodRecord {
        let Pod {
            metadata: m,
            mut spec,
            status: s,
        } = p;
        let owner = {
            let mut refs = m.owner_references;
            let i = refs
                .iter()
                .position(|r| r.controller == Some(true))
                .unwrap_or(0);
            (i < refs.len()).then(|| {
                let r = refs.swap_remove(i);
                Owner {
                    kind: r.kind.into_boxed_str(),
                    name: r.name.into_boxed_str(),
                }
            })
        };
        let mut scheduled = None;
        let mut ready = None;
        for c in s.conditions {
            match c.kind.as_str() {
                "PodScheduled" => scheduled = Some(condition(c)),
                "Ready" => ready = Some(condition(c)),
                _ => {}
            }
        }
        PodRecord {
            namespace: m.namespace.into_boxed_str(),
            name: m.name.into_boxed_str(),
            uid: m.uid.into_boxed_str(),
            created: m.creation_timestamp.as_deref().and_then(parse_rfc3339),
            deleting: m.deletion_timestamp.as_deref().and_then(parse_rfc3339),
            owner,
            node: spec.node_name.take().map(String::into_boxed_str),
            phase: Phase::from_wire(s.phase.as_deref()),
            reason: text(s.reason),
            message: text(s.message),
            scheduled,
            ready,
            ignore: m.annotations.ignore,
            silence_until: m.annotations.silence_until,
            labels: m.labels.into_boxed_slice(),
            containers: containers(s.container_statuses, &mut spec.containers),
            init_containers: containers(s.init_container_statuses, &mut spec.init_containers),
            service_account: spec.service_account_name.map(String::into_boxed_str),
            image_pull_secrets: spec
                .image_pull_secrets
                .into_iter()
                .filter(|r| !r.name.is_empty())
                .map(|r| r.name.into_boxed_str())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRASHLOOP: &str = r#"{"type":"MODIFIED","object":{"kind":"Pod","apiVersion":"v1",
      "metadata":{"name":"web-7d4b9c-x2x","namespace":"shop","uid":"u1","resourceVersion":"42",
        "creationTimestamp":"2024-03-01T12:00:00Z",
        "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"huge\":1}","opsctrl.dev/ignore":"true"},
        "managedFields":[{"manager":"kubelet","fieldsV1":{"f:status":{}}}],
        "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7d4b9c","uid":"r","controller":true}]},
      "spec":{"nodeName":"node-1","containers":[{"name":"app","image":"shop/web:1.2",
        "resources":{"limits":{"memory":"128Mi","cpu":"500m"},"requests":{"memory":"64Mi"}},
        "env":[{"name":"PASSWORD","value":"s3cret"}]}]},
      "status":{"phase":"Running","conditions":[
          {"type":"Ready","status":"False","reason":"ContainersNotReady","lastTransitionTime":"2024-03-01T12:01:00Z"},
          {"type":"PodScheduled","status":"True","lastTransitionTime":"2024-03-01T12:00:00Z"}],
        "containerStatuses":[{"name":"app","image":"shop/web:1.2","ready":false,"restartCount":4,
          "state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off 1m20s restarting failed container"}},
          "lastState":{"terminated":{"exitCode":137,"reason":"OOMKilled","startedAt":"2024-03-01T12:04:00Z","finishedAt":"2024-03-01T12:05:00Z"}}}]}}}"#;

    #[test]
    fn labels_and_the_silence_annotation_are_kept_capped() {
        // Other tests only ever turn it on, so this one cannot race them.
        keep_labels(true);
        let line = |meta: &str| {
            format!(
                r#"{{"type":"ADDED","object":{{"metadata":{{"name":"a","namespace":"n",{meta}}}}}}}"#
            )
        };
        let decode = |meta: &str| {
            let WatchEvent::Added(pod) = decode_watch_line(line(meta).as_bytes()).unwrap() else {
                panic!("not ADDED")
            };
            PodRecord::from(pod)
        };
        let r = decode(
            r#""labels":{"app":"web","team":"pay","n":1},"annotations":{"opsctrl.dev/silence-until":"2026-12-03T02:00:00Z"}"#,
        );
        let labels: Vec<(&str, &str)> = r.labels.iter().map(|(k, v)| (&**k, &**v)).collect();
        assert_eq!(labels, [("app", "web"), ("team", "pay")], "strings only");
        assert_eq!(r.silence_until, Some(SilenceUntil::At(1_796_263_200_000)));
        let r = decode(r#""labels":[1],"annotations":{"opsctrl.dev/silence-until":"Friday"}"#);
        assert!(r.labels.is_empty());
        assert_eq!(r.silence_until, Some(SilenceUntil::Invalid));
        let many: Vec<String> = (0..100).map(|i| format!(r#""k{i}":"v""#)).collect();
        let huge = "x".repeat(1000);
        let r = decode(&format!(
            r#""labels":{{"big":"{huge}",{}}}"#,
            many.join(",")
        ));
        assert_eq!(r.labels.len(), MAX_LABELS);
        assert_eq!(&*r.labels[0].0, "k0", "oversized values are skipped");
        assert_eq!(decode(r#""labels":null"#).silence_until, None);
    }

    #[test]
    fn a_crash_looping_pod_decodes_into_a_compact_record() {
        let WatchEvent::Modified(pod) = decode_watch_line(CRASHLOOP.as_bytes()).unwrap() else {
            panic!("not MODIFIED")
        };
        assert_eq!(pod.metadata.resource_version, "42");
        let r = PodRecord::from(pod);
        assert_eq!(r.key(), "shop/web-7d4b9c-x2x");
        assert!(r.ignore);
        assert_eq!(r.owner.as_ref().map(|o| &*o.kind), Some("ReplicaSet"));
        assert_eq!(r.node.as_deref(), Some("node-1"));
        assert_eq!(r.phase, Phase::Running);
        assert_eq!(r.ready.as_ref().and_then(|c| c.status), Some(false));
        assert_eq!(
            r.ready.as_ref().and_then(|c| c.since),
            parse_rfc3339("2024-03-01T12:01:00Z")
        );
        let c = &r.containers[0];
        assert_eq!(c.restart_count, 4);
        assert_eq!(c.memory_limit.as_deref(), Some("128Mi"));
        assert!(
            matches!(&c.state, ContainerState::Waiting { reason: Some(r), .. } if &**r == "CrashLoopBackOff")
        );
        let last = c.last_terminated.as_ref().unwrap();
        assert_eq!(
            (last.exit_code, last.reason.as_deref()),
            (137, Some("OOMKilled"))
        );
    }

    #[test]
    fn probes_spec_positions_and_pull_secrets_are_kept() {
        let pod = br#"{"metadata":{"name":"a","namespace":"n"},
          "spec":{"serviceAccountName":"web","imagePullSecrets":[{"name":"regcred"},{"name":""}],
            "initContainers":[{"name":"init","image":"busybox"}],
            "containers":[
              {"name":"sidecar","image":"envoy","readinessProbe":{"tcpSocket":{"port":"admin"},"timeoutSeconds":null}},
              {"name":"app","image":"web","livenessProbe":{"httpGet":{"path":"/healthz","port":8080},
                 "timeoutSeconds":2,"periodSeconds":5,"failureThreshold":6},
               "startupProbe":{"exec":{"command":["true"]}}}]},
          "status":{"containerStatuses":[{"name":"app","ready":false},{"name":"sidecar","ready":true}]}}"#;
        let r = PodRecord::from(serde_json::from_slice::<Pod>(pod).unwrap());
        assert_eq!(r.service_account.as_deref(), Some("web"));
        assert_eq!(&*r.image_pull_secrets, [Box::<str>::from("regcred")]);
        let app = r.containers.iter().find(|c| &*c.name == "app").unwrap();
        assert_eq!(app.index, Some(1));
        let live = app.liveness.as_deref().unwrap();
        assert_eq!(
            (
                live.kind,
                live.timeout_seconds,
                live.period_seconds,
                live.failure_threshold
            ),
            (ProbeKind::Http, 2, 5, 6)
        );
        assert_eq!(
            (live.path.as_deref(), live.port.as_deref()),
            (Some("/healthz"), Some("8080"))
        );
        assert_eq!(
            app.startup.as_deref().map(|p| p.kind),
            Some(ProbeKind::Exec)
        );
        let side = r.containers.iter().find(|c| &*c.name == "sidecar").unwrap();
        assert_eq!(side.index, Some(0));
        let ready = side.readiness.as_deref().unwrap();
        assert_eq!(
            (ready.kind, ready.timeout_seconds, ready.port.as_deref()),
            (ProbeKind::Tcp, 1, Some("admin"))
        );
        assert_eq!(r.init_containers[0].index, Some(0));
    }

    #[test]
    fn bookmarks_and_errors_decode() {
        let b = br#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"99","annotations":{"k8s.io/initial-events-end":"true"}}}}"#;
        assert!(
            matches!(decode_watch_line(b).unwrap(), WatchEvent::Bookmark { resource_version } if resource_version == "99")
        );
        let e = br#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}}"#;
        let WatchEvent::Error(s) = decode_watch_line(e).unwrap() else {
            panic!()
        };
        assert_eq!((s.code, s.reason.as_str()), (410, "Expired"));
    }

    #[test]
    fn odd_pods_decode_without_failing() {
        // No status, no spec, unknown container state, null fields.
        let lines: [&[u8]; 4] = [
            br#"{"type":"ADDED","object":{"metadata":{"name":"a","namespace":"n"}}}"#,
            br#"{"type":"ADDED","object":{"metadata":{"name":"a","namespace":"n","annotations":null},"status":null,"spec":{"containers":null}}}"#,
            br#"{"type":"ADDED","object":{"metadata":{"name":"a","namespace":"n"},"status":{"containerStatuses":[{"name":"c","state":{"paused":{}}}]}}}"#,
            br#"{"type":"ADDED","object":{"metadata":{"name":"a","namespace":"n"},"status":{"phase":"Weird","conditions":[{"type":"Ready"}]}}}"#,
        ];
        for l in lines {
            let WatchEvent::Added(p) = decode_watch_line(l)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(l)))
            else {
                panic!()
            };
            let _ = PodRecord::from(p);
        }
    }

    #[test]
    fn fields_of_the_wrong_type_read_as_missing_instead_of_failing_the_pod() {
        // Regression: any of these failed the whole line, and a LIST page or a
        // watch event that fails is met again forever, so one odd pod blinded
        // the daemon to every pod after it.
        let line = br#"{"type":"MODIFIED","object":{"metadata":{"name":"a","namespace":"n",
            "creationTimestamp":12345,"ownerReferences":"none","annotations":{"opsctrl.dev/ignore":true}},
          "spec":{"nodeName":false,"containers":[7,null,{"name":"app","image":7,
            "resources":{"limits":{"memory":268435456}},
            "livenessProbe":{"httpGet":{"path":8080,"port":{"name":"http"}},"timeoutSeconds":"5","periodSeconds":-3}}]},
          "status":{"phase":5,"reason":["a"],"conditions":[null,{"type":null,"status":true}],
            "containerStatuses":[null,{"name":"app","ready":"yes","restartCount":-1,"image":{"a":1},
              "state":{"waiting":{"reason":"CrashLoopBackOff","message":42}},
              "lastState":{"terminated":{"exitCode":99999999999,"signal":1.5,"reason":"Error"}}}]}}}"#;
        let WatchEvent::Modified(p) = decode_watch_line(line).unwrap() else {
            panic!()
        };
        let r = PodRecord::from(p);
        assert_eq!(r.key(), "n/a");
        assert_eq!(
            (r.phase, r.created, r.owner.as_ref(), r.node.as_deref()),
            (Phase::Unknown, None, None, None)
        );
        assert!(!r.ignore);
        let c = &r.containers[0];
        assert_eq!(
            (&*c.name, c.restart_count, c.ready, c.index),
            ("app", 0, false, Some(0))
        );
        assert_eq!((&*c.image, c.memory_limit.as_deref()), ("", None));
        assert!(
            matches!(&c.state, ContainerState::Waiting { reason: Some(r), message: None } if &**r == "CrashLoopBackOff")
        );
        let last = c.last_terminated.as_ref().unwrap();
        assert_eq!(
            (last.exit_code, last.signal, last.reason.as_deref()),
            (0, None, Some("Error"))
        );
        let live = c.liveness.as_deref().unwrap();
        assert_eq!(
            (
                live.kind,
                live.path.as_deref(),
                live.port.as_deref(),
                live.timeout_seconds,
                live.period_seconds
            ),
            (ProbeKind::Http, None, None, 1, 10)
        );
        // Whole sections of the wrong type, and a status that is a list.
        for odd in [
            &br#"{"type":"ADDED","object":{"metadata":"x","spec":[1],"status":[{}]}}"#[..],
            br#"{"type":"ADDED","object":{"metadata":{"name":"a","annotations":"x"},"status":7}}"#,
            br#"{"type":"ADDED","object":{"metadata":{"name":"a","annotations":[1]},"spec":{"containers":{"a":1}}}}"#,
        ] {
            assert!(decode_watch_line(odd).is_ok(), "{}", String::from_utf8_lossy(odd));
        }
        // A LIST page: items that are not objects are skipped, the others kept.
        let page = br#"{"metadata":{"resourceVersion":"9"},"items":[5,null,{"metadata":{"name":"b"},"status":{"phase":[]}}]}"#;
        let l: PodList = serde_json::from_slice(page).unwrap();
        assert_eq!(l.items.len(), 1);
        assert_eq!(&*l.items[0].name, "b");
    }

    #[test]
    fn huge_messages_are_capped() {
        let msg = "é".repeat(10_000);
        let line = format!(
            r#"{{"type":"ADDED","object":{{"metadata":{{"name":"a","namespace":"n"}},"status":{{"phase":"Failed","message":"{msg}"}}}}}}"#
        );
        let WatchEvent::Added(p) = decode_watch_line(line.as_bytes()).unwrap() else {
            panic!()
        };
        let r = PodRecord::from(p);
        let m = r.message.unwrap();
        assert!(m.len() <= MAX_TEXT + 20 && m.ends_with("[truncated]"));
    }

    #[test]
    fn garbage_and_unknown_types_are_errors_not_panics() {
        for l in [
            &b"not json"[..],
            b"{\"type\":\"SYNC\",\"object\":{}}",
            b"{\"type\":",
            b"",
        ] {
            assert!(decode_watch_line(l).is_err());
        }
    }

    #[test]
    fn a_list_page_decodes_into_records() {
        let page = br#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"77","continue":"abc"},
            "items":[{"metadata":{"name":"a","namespace":"n"},"status":{"phase":"Running"}},
                     {"metadata":{"name":"b","namespace":"n"}}]}"#;
        let l: PodList = serde_json::from_slice(page).unwrap();
        assert_eq!(l.metadata.resource_version, "77");
        assert_eq!(l.metadata.continue_token.as_deref(), Some("abc"));
        let names: Vec<&str> = l.items.iter().map(|p| &*p.name).collect();
        assert_eq!(names, ["a", "b"]);
        let empty: PodList =
            serde_json::from_slice(br#"{"metadata":{"resourceVersion":"1"},"items":null}"#)
                .unwrap();
        assert!(empty.items.is_empty());
    }
}
