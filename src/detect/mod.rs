/*!
Failure detection: what counts as a failure (`classify`), which workload a pod
belongs to (`workload`), and how findings become incidents (`incident`).
Everything here is pure: values in, values out, the clock passed in as `now`
(Unix seconds), so it is tested with plain values and a fake clock.
*/

pub mod classify;
pub mod incident;
pub mod workload;
