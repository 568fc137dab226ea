/*!
Failure detection: what counts as a failure (`classify`), which workload a pod
belongs to (`workload`), and how findings become incidents (`incident`), tuned by `tuning::Detect`.
Everything here is pure: values in, values out, the clock passed in (Unix
milliseconds, `now_ms`, for the detector and the incident engine; `classify`
gets it in seconds, the resolution of pod timestamps), so it is tested with
plain values and a fake clock.
*/

pub mod classify;
pub mod incident;
pub mod node;
pub mod tuning;
pub mod workload;
