/*!
The vocabulary every layer speaks, at the bottom of the crate: it imports
nothing from the rest of it.

- `pod`: the compact pod and namespace records the store keeps.
- `node`: the compact node record (conditions, cordon, taints, allocatable).
- `finding`: failure types (a closed list, most specific first), severities,
  findings, workloads, terminations and where a revision stands in a rollout.
- `incident`: incidents and their lifecycle, transitions and notifications.
- `diagnosis`: the cause vocabulary (`Cause`), diagnoses and fixes.
- `alert`: what the delivery side is handed (`Item`, `Alert`, `Job`) and why
  an attempt failed (`Failure`).
*/

pub mod alert;
pub mod diagnosis;
pub mod finding;
pub mod incident;
pub mod node;
pub mod pod;

pub use alert::{Alert, Failure, Item, Job, Rediagnosis, Subject};
pub use diagnosis::{Cause, Diagnosis, Fix};
pub use finding::{FailureType, Family, Finding, Rollout, Severity, Termination, Workload};
pub use incident::{Affected, Incident, Notification, State, Transition};
pub use node::{Allocatable, NodeRecord, Pressure, Taint};
pub use pod::{
    Condition, ContainerRecord, ContainerState, NamespaceRecord, Owner, Phase, PodRecord, Probe,
    ProbeKind, SilenceUntil, Terminated,
};
