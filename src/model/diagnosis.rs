/*!
A diagnosis: the likely cause from a closed vocabulary (`Cause`), the
evidence for it and a fix with concrete commands. The rules in `diagnose`
produce it; renderers and sinks only read it.
*/

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// The closed vocabulary of `Diagnosis::cause`, serialised as its
/// snake_case name (`oom_killed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause {
    OomKilled,
    AppErrorExit,
    CommandNotFound,
    NotExecutable,
    Segfault,
    KilledSigkill,
    LivenessProbeFailed,
    ReadinessProbeFailed,
    StartupProbeFailed,
    ImageNotFound,
    ImagePullUnauthorized,
    ImagePullNetwork,
    InvalidImageName,
    MissingConfigmap,
    MissingSecret,
    MissingConfigKey,
    InsufficientCpu,
    InsufficientMemory,
    NodeSelectorMismatch,
    UntoleratedTaint,
    UnboundPvc,
    VolumeMountFailed,
    EvictedMemory,
    EvictedDisk,
    EvictedEphemeralStorage,
    DeadlineExceeded,
    DnsResolutionFailed,
    ConnectionRefused,
    PermissionDenied,
    PortInUse,
    TlsCertificateError,
    DiskFull,
    NodeNotReady,
    NodeMemoryPressure,
    NodeDiskPressure,
    NodePidPressure,
    NodeCordoned,
    SystemOom,
    MissingEnvVar,
    MissingConfigFile,
    AppPanic,
    MigrationFailed,
    RuntimeOutOfMemory,
    Unknown,
}

impl Cause {
    pub const ALL: [Cause; 44] = [
        Cause::OomKilled,
        Cause::AppErrorExit,
        Cause::CommandNotFound,
        Cause::NotExecutable,
        Cause::Segfault,
        Cause::KilledSigkill,
        Cause::LivenessProbeFailed,
        Cause::ReadinessProbeFailed,
        Cause::StartupProbeFailed,
        Cause::ImageNotFound,
        Cause::ImagePullUnauthorized,
        Cause::ImagePullNetwork,
        Cause::InvalidImageName,
        Cause::MissingConfigmap,
        Cause::MissingSecret,
        Cause::MissingConfigKey,
        Cause::InsufficientCpu,
        Cause::InsufficientMemory,
        Cause::NodeSelectorMismatch,
        Cause::UntoleratedTaint,
        Cause::UnboundPvc,
        Cause::VolumeMountFailed,
        Cause::EvictedMemory,
        Cause::EvictedDisk,
        Cause::EvictedEphemeralStorage,
        Cause::DeadlineExceeded,
        Cause::DnsResolutionFailed,
        Cause::ConnectionRefused,
        Cause::PermissionDenied,
        Cause::PortInUse,
        Cause::TlsCertificateError,
        Cause::DiskFull,
        Cause::NodeNotReady,
        Cause::NodeMemoryPressure,
        Cause::NodeDiskPressure,
        Cause::NodePidPressure,
        Cause::NodeCordoned,
        Cause::SystemOom,
        Cause::MissingEnvVar,
        Cause::MissingConfigFile,
        Cause::AppPanic,
        Cause::MigrationFailed,
        Cause::RuntimeOutOfMemory,
        Cause::Unknown,
    ];

    /// A node's cause: given by the node diagnoses (`diagnose::node`), not
    /// by the pod rule table.
    pub fn is_node(self) -> bool {
        matches!(
            self,
            Cause::NodeNotReady
                | Cause::NodeMemoryPressure
                | Cause::NodeDiskPressure
                | Cause::NodePidPressure
                | Cause::NodeCordoned
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::OomKilled => "oom_killed",
            Cause::AppErrorExit => "app_error_exit",
            Cause::CommandNotFound => "command_not_found",
            Cause::NotExecutable => "not_executable",
            Cause::Segfault => "segfault",
            Cause::KilledSigkill => "killed_sigkill",
            Cause::LivenessProbeFailed => "liveness_probe_failed",
            Cause::ReadinessProbeFailed => "readiness_probe_failed",
            Cause::StartupProbeFailed => "startup_probe_failed",
            Cause::ImageNotFound => "image_not_found",
            Cause::ImagePullUnauthorized => "image_pull_unauthorized",
            Cause::ImagePullNetwork => "image_pull_network",
            Cause::InvalidImageName => "invalid_image_name",
            Cause::MissingConfigmap => "missing_configmap",
            Cause::MissingSecret => "missing_secret",
            Cause::MissingConfigKey => "missing_config_key",
            Cause::InsufficientCpu => "insufficient_cpu",
            Cause::InsufficientMemory => "insufficient_memory",
            Cause::NodeSelectorMismatch => "node_selector_mismatch",
            Cause::UntoleratedTaint => "untolerated_taint",
            Cause::UnboundPvc => "unbound_pvc",
            Cause::VolumeMountFailed => "volume_mount_failed",
            Cause::EvictedMemory => "evicted_memory",
            Cause::EvictedDisk => "evicted_disk",
            Cause::EvictedEphemeralStorage => "evicted_ephemeral_storage",
            Cause::DeadlineExceeded => "deadline_exceeded",
            Cause::DnsResolutionFailed => "dns_resolution_failed",
            Cause::ConnectionRefused => "connection_refused",
            Cause::PermissionDenied => "permission_denied",
            Cause::PortInUse => "port_in_use",
            Cause::TlsCertificateError => "tls_certificate_error",
            Cause::DiskFull => "disk_full",
            Cause::NodeNotReady => "node_not_ready",
            Cause::NodeMemoryPressure => "node_memory_pressure",
            Cause::NodeDiskPressure => "node_disk_pressure",
            Cause::NodePidPressure => "node_pid_pressure",
            Cause::NodeCordoned => "node_cordoned",
            Cause::SystemOom => "system_oom",
            Cause::MissingEnvVar => "missing_env_var",
            Cause::MissingConfigFile => "missing_config_file",
            Cause::AppPanic => "app_panic",
            Cause::MigrationFailed => "migration_failed",
            Cause::RuntimeOutOfMemory => "runtime_out_of_memory",
            Cause::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown cause name; `Display` lists the allowed ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownCause(pub String);

impl fmt::Display for UnknownCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let allowed: Vec<&str> = Cause::ALL.iter().map(|c| c.as_str()).collect();
        write!(
            f,
            "unknown cause {:?} (allowed: {})",
            self.0,
            allowed.join(", ")
        )
    }
}

impl FromStr for Cause {
    type Err = UnknownCause;
    fn from_str(s: &str) -> Result<Cause, UnknownCause> {
        Cause::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCause(s.to_string()))
    }
}

impl Serialize for Cause {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Tests and callers compare with the wire name (`d.cause == "oom_killed"`).
impl PartialEq<&str> for Cause {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fix {
    pub text: String,
    pub commands: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnosis {
    pub cause: Cause,
    pub summary: String,
    /// 0..1: how sure the matching rule is of its cause.
    pub confidence: f64,
    /// Short quotes of what matched.
    pub evidence: Vec<String>,
    pub fix: Fix,
    /// The id of the rule that matched.
    pub rule: &'static str,
    /// The LLM's answer (`{"model", "answer"}`), when an LLM is configured and answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ai: Option<serde_json::Value>,
    /// The OpsCtrl backend's analysis, when the backend is on and answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<serde_json::Value>,
    /// The node incident this failure is attributed to (its node is the cause).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_incident: Option<u64>,
}

impl Diagnosis {
    /// The same verdict for a reader: cause, summary and fix (the evidence
    /// and second opinions may differ).
    pub fn says_the_same(&self, other: &Diagnosis) -> bool {
        self.cause == other.cause && self.summary == other.summary && self.fix == other.fix
    }

    /// Runs `redact` over the parts that quote pod output: the summary, the
    /// evidence and the fix's text. The commands are built from names and
    /// stay usable.
    pub fn redact_with(&mut self, redact: fn(&str) -> String) {
        self.summary = redact(&self.summary);
        self.fix.text = redact(&self.fix.text);
        for e in &mut self.evidence {
            *e = redact(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_round_trips_through_its_name() {
        for c in Cause::ALL {
            assert_eq!(c.as_str().parse::<Cause>(), Ok(c));
            assert_eq!(
                serde_json::to_value(c).ok(),
                Some(serde_json::json!(c.as_str()))
            );
        }
        let err = "oom".parse::<Cause>().unwrap_err().to_string();
        assert!(
            err.contains("\"oom\"") && err.contains("oom_killed"),
            "{err}"
        );
    }
}
