/*!
opsctrl-daemon: a synchronous Kubernetes pod-failure daemon.

The binary (`src/main.rs`) only wires these modules together. Pure decisions
(watch state transitions, settings validation) live apart from the threads
that do I/O, so they can be tested with plain values.
*/

pub mod backend;
pub mod check;
pub mod cli;
pub mod daemon;
pub mod detect;
pub mod diagnose;
pub mod enrich;
pub mod kube;
pub mod leader;
pub mod metrics;
pub mod model;
pub mod net;
pub mod notify;
pub mod output;
pub mod scan;
pub mod secret;
pub mod serve;
pub mod settings;
pub mod shutdown;
pub mod util;
