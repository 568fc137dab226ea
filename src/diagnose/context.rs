/*!
What the rules look at (`Context`) and which probe a rule is about
(`ProbeSlot`): the vocabulary that both the rule table (`rules`) and the
template variables (`vars`) read, kept apart so neither imports the other's
internals.
*/

use crate::model::{Finding, PodRecord, Rollout, Workload};

/// Everything the rules look at. `events` are formatted lines
/// (`Warning BackOff: Back-off restarting failed container`), `logs` are log
/// lines; either may be empty.
pub struct Context<'a> {
    pub finding: &'a Finding,
    pub pod: &'a PodRecord,
    pub workload: &'a Workload,
    pub events: &'a [String],
    pub logs: &'a [String],
    /// Where the pod's revision stands in its workload's rollout.
    pub rollout: &'a Rollout,
}

/// Which probe a rule is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeSlot {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeSlot {
    pub fn name(self) -> &'static str {
        match self {
            ProbeSlot::Liveness => "liveness",
            ProbeSlot::Readiness => "readiness",
            ProbeSlot::Startup => "startup",
        }
    }

    /// The container field, as in a JSON-patch path.
    pub fn field(self) -> &'static str {
        match self {
            ProbeSlot::Liveness => "livenessProbe",
            ProbeSlot::Readiness => "readinessProbe",
            ProbeSlot::Startup => "startupProbe",
        }
    }
}
