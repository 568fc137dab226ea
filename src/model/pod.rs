/*!
The compact records the daemon keeps per pod and per namespace: enough for
detection and diagnosis, no more. `kube::types` decodes the API's objects
into them; everything above reads only these.
*/

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

impl Phase {
    /// `status.phase` as the API writes it; anything else is `Unknown`.
    pub fn from_wire(s: Option<&str>) -> Phase {
        match s {
            Some("Pending") => Phase::Pending,
            Some("Running") => Phase::Running,
            Some("Succeeded") => Phase::Succeeded,
            Some("Failed") => Phase::Failed,
            _ => Phase::Unknown,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub kind: Box<str>,
    pub name: Box<str>,
}

/// `True` / `False` / `Unknown` plus why and since when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub status: Option<bool>,
    pub reason: Option<Box<str>>,
    pub message: Option<Box<str>>,
    pub since: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terminated {
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub reason: Option<Box<str>>,
    pub message: Option<Box<str>>,
    pub finished: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerState {
    Unknown,
    Waiting {
        reason: Option<Box<str>>,
        message: Option<Box<str>>,
    },
    Running {
        started: Option<i64>,
    },
    Terminated(Terminated),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRecord {
    pub name: Box<str>,
    pub image: Box<str>,
    pub ready: bool,
    pub restart_count: u32,
    pub state: ContainerState,
    pub last_terminated: Option<Terminated>,
    pub memory_limit: Option<Box<str>>,
    pub cpu_limit: Option<Box<str>>,
    pub memory_request: Option<Box<str>>,
    pub cpu_request: Option<Box<str>>,
    /// Position in `spec.containers` (or `spec.initContainers`), for JSON
    /// patches; `None` when the status names a container the spec lacks.
    pub index: Option<u16>,
    /// Boxed: most containers have few or no probes, and records are kept per pod.
    pub liveness: Option<Box<Probe>>,
    pub readiness: Option<Box<Probe>>,
    pub startup: Option<Box<Probe>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    Http,
    Tcp,
    Exec,
    Grpc,
    /// No handler given (an invalid spec, or one this decoder does not know).
    Other,
}

impl ProbeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Http => "http",
            ProbeKind::Tcp => "tcp",
            ProbeKind::Exec => "exec",
            ProbeKind::Grpc => "grpc",
            ProbeKind::Other => "other",
        }
    }
}

/// A probe as the API server stores it; the timings carry Kubernetes'
/// defaults (1 s, 10 s, 3) when the spec leaves them out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub kind: ProbeKind,
    pub timeout_seconds: u32,
    pub period_seconds: u32,
    pub failure_threshold: u32,
    pub path: Option<Box<str>>,
    pub port: Option<Box<str>>,
}

/// What the daemon keeps per pod: enough for detection and diagnosis, no more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRecord {
    pub namespace: Box<str>,
    pub name: Box<str>,
    pub uid: Box<str>,
    pub created: Option<i64>,
    pub deleting: Option<i64>,
    pub owner: Option<Owner>,
    pub node: Option<Box<str>>,
    pub phase: Phase,
    pub reason: Option<Box<str>>,
    pub message: Option<Box<str>>,
    pub scheduled: Option<Condition>,
    pub ready: Option<Condition>,
    pub ignore: bool,
    /// `opsctrl.dev/silence-until`, when annotated.
    pub silence_until: Option<SilenceUntil>,
    /// `metadata.labels`, for routes and silences that match on them
    /// (capped: see `kube::types`).
    pub labels: Box<[(Box<str>, Box<str>)]>,
    pub containers: Box<[ContainerRecord]>,
    pub init_containers: Box<[ContainerRecord]>,
    /// `spec.serviceAccountName`, if set.
    pub service_account: Option<Box<str>>,
    /// Names from `spec.imagePullSecrets`.
    pub image_pull_secrets: Box<[Box<str>]>,
}

impl PodRecord {
    /// A pod with nothing but a name and phase (test values).
    #[cfg(test)]
    pub fn bare(namespace: &str, name: &str, phase: Phase) -> PodRecord {
        PodRecord {
            namespace: namespace.into(),
            name: name.into(),
            uid: format!("uid-{name}").into(),
            created: None,
            deleting: None,
            owner: None,
            node: None,
            phase,
            reason: None,
            message: None,
            scheduled: None,
            ready: None,
            ignore: false,
            silence_until: None,
            labels: Box::new([]),
            containers: Box::new([]),
            init_containers: Box::new([]),
            service_account: None,
            image_pull_secrets: Box::new([]),
        }
    }

    /// `namespace/name`, the store key.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// What the daemon keeps per namespace: whether it is to be ignored or silenced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceRecord {
    pub name: Box<str>,
    /// Annotated `opsctrl.dev/ignore: "true"`.
    pub ignore: bool,
    /// `opsctrl.dev/silence-until`, when annotated.
    pub silence_until: Option<SilenceUntil>,
}

/// The annotation, on a pod or a namespace, that silences notifications until a time.
pub const SILENCE_ANNOTATION: &str = "opsctrl.dev/silence-until";

/// The value of an `opsctrl.dev/silence-until` annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SilenceUntil {
    /// Unix milliseconds.
    At(i64),
    /// Not an RFC 3339 time: not a silence (and said so when it matters).
    Invalid,
}

impl SilenceUntil {
    /// Whether it silences at `now_ms`.
    pub fn active(self, now_ms: i64) -> bool {
        matches!(self, SilenceUntil::At(t) if now_ms < t)
    }
}
