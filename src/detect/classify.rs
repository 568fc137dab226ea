/*!
Classification: one `PodRecord` in, its findings out — what counts as a
failure, and which failure it is.

It owns the rules the original got wrong (it took the first match of a
fixed order, so a crash loop past the restart threshold was a mere
`high-restart-count`, and it never read `lastState`): the most
specific type wins (a crash loop is `CrashLoopBackOff`, not a restart count),
`lastState` is read (OOM kills are seen on the first one), pods being deleted
or that succeeded are never failures, a short `ErrImagePull` gets a grace
period, and Pending/NotReady are measured from the object's own condition
times rather than from when an event happened to arrive.

Terminations are events, not states: `last_terminated` explains a failure but
only keeps one open while it is recent and not yet counted (`Known`), so a
recovered crash loop goes quiet instead of turning into `HighRestartCount`.

Pure and cheap — it runs on every pod update: no I/O, no clock (`now` is
passed in), no allocation but the findings themselves.
*/

use crate::model::{ContainerRecord, ContainerState, Phase, PodRecord, Terminated};
use crate::model::{FailureType, Finding, Termination};

/// Thresholds, in seconds. Built from `tuning::Detect`; its `Default` (the
/// product defaults) is implemented in `tuning`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// `MIN_RESTART_THRESHOLD`: restarts at which a running container is flagged.
    pub min_restart: u32,
    /// How long a pod may stay Pending (or Unschedulable).
    pub max_pending_secs: i64,
    /// How long `ErrImagePull` may last before it is reported (pulls often fail once).
    pub image_pull_grace_secs: i64,
    /// How long a Running pod may stay unready (probes, slow start).
    pub not_ready_grace_secs: i64,
}

/// What the daemon knows beyond the pod itself.
pub trait Known {
    /// This termination already counted towards an incident.
    fn counted(&self, t: &Termination) -> bool;
    /// When the daemon itself first saw this container in ErrImagePull, if it did.
    fn err_image_pull_seen(&self, pod_uid: &str, container: &str) -> Option<i64>;
}

/// Knows nothing (scan: a one-off look with no history).
pub struct NothingKnown;

impl Known for NothingKnown {
    fn counted(&self, _: &Termination) -> bool {
        false
    }
    fn err_image_pull_seen(&self, _: &str, _: &str) -> Option<i64> {
        None
    }
}

/// A termination is recent when it finished less than this long ago (kubelet's back-off reset period).
pub const RECENT_SECS: i64 = 600;

/// The pod's findings, most specific type first: at most one per container
/// (init containers included), plus one pod-level finding only when no
/// container has one.
pub fn classify(pod: &PodRecord, known: &dyn Known, now: i64, th: &Thresholds) -> Vec<Finding> {
    let mut out = Vec::new();
    // A pod being deleted has its containers killed (137/143) and, since
    // kubelet 1.27, may end in phase Failed: that is shutdown, not failure.
    if pod.ignore || pod.deleting.is_some() || pod.phase == Phase::Succeeded {
        return out;
    }
    // Set when a container's problem is known but still within its grace
    // (ErrImagePull): it must not surface meanwhile as PendingTooLong.
    let mut held = false;
    let init = pod.init_containers.iter().map(|c| (c, true));
    let main = pod.containers.iter().map(|c| (c, false));
    for (c, is_init) in init.chain(main) {
        if let Some(f) = container_finding(pod, c, is_init, known, now, th, &mut held) {
            out.push(f);
        }
    }
    // Container-level types explain the pod better than its phase does.
    if out.is_empty() && !held {
        out.extend(pod_finding(pod, now, th));
    }
    // Stable, and insertion sort at these lengths: no allocation.
    out.sort_by_key(|f| f.kind);
    out
}

// ------------------------------------------------------------ container level

fn container_finding(
    pod: &PodRecord,
    c: &ContainerRecord,
    init: bool,
    known: &dyn Known,
    now: i64,
    th: &Thresholds,
    held: &mut bool,
) -> Option<Finding> {
    let last = c.last_terminated.as_ref();
    match &c.state {
        ContainerState::Terminated(t) => {
            let kind = match t.reason.as_deref() {
                Some("OOMKilled") => FailureType::OOMKilled,
                // containerd reports a failed start as terminated, exit code 128.
                Some("StartError" | "ContainerCannotRun") => FailureType::ContainerStartError,
                // Exit 0 is normal; any other exit is either about to become
                // CrashLoopBackOff or is what makes the pod Failed (pod level).
                _ => return None,
            };
            let reason = t.reason.as_deref().unwrap_or_default();
            let mut f = for_container(pod, c, init, kind, reason, t.message.as_deref());
            rest_on(&mut f, pod, c, t);
            Some(f)
        }
        ContainerState::Waiting { reason, message } => {
            let reason = reason.as_deref()?;
            let message = message.as_deref();
            let kind = match reason {
                "CrashLoopBackOff" => return Some(crash_loop(pod, c, init, message)),
                "ImagePullBackOff" => FailureType::ImagePullBackOff,
                "ErrImagePull" => {
                    // Often one failed pull before a retry succeeds: wait a little.
                    let start = known
                        .err_image_pull_seen(&pod.uid, &c.name)
                        .or_else(|| pod.ready.as_ref().and_then(|r| r.since))
                        .or(pod.created);
                    if !over(now, start, th.image_pull_grace_secs) {
                        *held = true;
                        return None;
                    }
                    FailureType::ImagePullBackOff
                }
                "InvalidImageName" => FailureType::InvalidImageName,
                "CreateContainerConfigError" => FailureType::CreateContainerConfigError,
                "CreateContainerError"
                | "RunContainerError"
                | "StartError"
                | "ContainerCannotRun" => {
                    let mut f = for_container(
                        pod,
                        c,
                        init,
                        FailureType::ContainerStartError,
                        reason,
                        message,
                    );
                    f.since = unready_since(pod);
                    // The failed start usually left a terminated state (exit 128).
                    if let Some(l) = last {
                        if f.message.is_empty() {
                            l.message
                                .as_deref()
                                .unwrap_or_default()
                                .clone_into(&mut f.message);
                        }
                        rest_on(&mut f, pod, c, l);
                    }
                    return Some(f);
                }
                // ContainerCreating, PodInitializing and the like: not failures.
                _ => return None,
            };
            let mut f = for_container(pod, c, init, kind, reason, message);
            f.since = unready_since(pod);
            Some(f)
        }
        ContainerState::Running { .. } => {
            // Running again: only a recent termination not yet counted says anything.
            let l = last?;
            let oom = is_oom(l);
            if !oom && c.restart_count < th.min_restart {
                return None;
            }
            let term = fresh(pod, c, l, known, now)?;
            let (kind, reason) = if oom {
                (FailureType::OOMKilled, "OOMKilled")
            } else {
                let r = l.reason.as_deref().filter(|r| !r.is_empty());
                let fallback = if l.exit_code == 0 {
                    "Completed"
                } else {
                    "Error"
                };
                (FailureType::HighRestartCount, r.unwrap_or(fallback))
            };
            let mut f = for_container(pod, c, init, kind, reason, l.message.as_deref());
            f.exit_code = Some(l.exit_code);
            f.signal = l.signal;
            f.since = Some(term.finished);
            f.termination = Some(term);
            Some(f)
        }
        ContainerState::Unknown => None,
    }
}

/// Waiting in CrashLoopBackOff: OOMKilled if the last run was OOM-killed.
fn crash_loop(pod: &PodRecord, c: &ContainerRecord, init: bool, waiting: Option<&str>) -> Finding {
    let last = c.last_terminated.as_ref();
    let (kind, reason) = match last {
        Some(l) if is_oom(l) => (FailureType::OOMKilled, "OOMKilled"),
        _ => (FailureType::CrashLoopBackOff, "CrashLoopBackOff"),
    };
    // The crashed run's own message says more than "back-off 40s restarting…".
    let message = last
        .and_then(|l| nonempty(l.message.as_deref()))
        .or(waiting);
    let mut f = for_container(pod, c, init, kind, reason, message);
    f.since = unready_since(pod);
    if let Some(l) = last {
        rest_on(&mut f, pod, c, l);
    }
    f
}

fn is_oom(t: &Terminated) -> bool {
    t.reason.as_deref() == Some("OOMKilled")
}

/// The termination as an event, if it finished recently and was not yet counted.
fn fresh(
    pod: &PodRecord,
    c: &ContainerRecord,
    t: &Terminated,
    known: &dyn Known,
    now: i64,
) -> Option<Termination> {
    let finished = t.finished?;
    if now.saturating_sub(finished) >= RECENT_SECS {
        return None;
    }
    let term = Termination {
        pod_uid: pod.uid.to_string(),
        container: c.name.to_string(),
        finished,
    };
    (!known.counted(&term)).then_some(term)
}

/// Carries a termination's exit code, signal and finish time, and names it
/// as what the finding rests on (so it is counted once).
fn rest_on(f: &mut Finding, pod: &PodRecord, c: &ContainerRecord, t: &Terminated) {
    f.exit_code = Some(t.exit_code);
    f.signal = t.signal;
    f.since = t.finished.or(f.since);
    f.termination = t.finished.map(|finished| Termination {
        pod_uid: pod.uid.to_string(),
        container: c.name.to_string(),
        finished,
    });
}

// ------------------------------------------------------------------ pod level

fn pod_finding(pod: &PodRecord, now: i64, th: &Thresholds) -> Option<Finding> {
    match pod.phase {
        Phase::Pending => pending(pod, now, th),
        Phase::Failed => failed(pod),
        Phase::Running => not_ready(pod, now, th),
        Phase::Succeeded | Phase::Unknown => None,
    }
}

fn pending(pod: &PodRecord, now: i64, th: &Thresholds) -> Option<Finding> {
    if let Some(s) = pod
        .scheduled
        .as_ref()
        .filter(|s| s.status == Some(false) && s.reason.as_deref() == Some("Unschedulable"))
    {
        // Measured from the condition, so a pod that became unschedulable
        // late (node drained, preempted) gets its full grace too.
        let since = s.since.or(pod.created);
        if !over(now, since, th.max_pending_secs) {
            return None;
        }
        let mut f = for_pod(
            pod,
            FailureType::Unschedulable,
            "Unschedulable",
            s.message.as_deref(),
        );
        f.since = since;
        return Some(f);
    }
    if !over(now, pod.created, th.max_pending_secs) {
        return None;
    }
    // The first waiting reason (ContainerCreating, PodInitializing) tells
    // where it is stuck; the cause itself (a volume) is in the events.
    let waiting = pod
        .init_containers
        .iter()
        .chain(pod.containers.iter())
        .find_map(|c| match &c.state {
            ContainerState::Waiting {
                reason: Some(r),
                message,
            } => Some((&**r, message.as_deref())),
            _ => None,
        });
    let reason = waiting
        .map(|w| w.0)
        .or(pod.reason.as_deref())
        .unwrap_or("Pending");
    let message = waiting
        .and_then(|w| nonempty(w.1))
        .or_else(|| nonempty(pod.message.as_deref()))
        .or_else(|| pod.ready.as_ref().and_then(|r| r.message.as_deref()));
    let mut f = for_pod(pod, FailureType::PendingTooLong, reason, message);
    f.since = pod.created;
    Some(f)
}

fn failed(pod: &PodRecord) -> Option<Finding> {
    if pod.reason.as_deref() == Some("Evicted") {
        let mut f = for_pod(pod, FailureType::Evicted, "Evicted", pod.message.as_deref());
        f.since = unready_since(pod);
        return Some(f);
    }
    // The container whose non-zero exit failed the pod (init first: it ran first).
    let failing = pod
        .init_containers
        .iter()
        .map(|c| (c, true))
        .chain(pod.containers.iter().map(|c| (c, false)))
        .find_map(|(c, init)| match &c.state {
            ContainerState::Terminated(t) if t.exit_code != 0 => Some((c, init, t)),
            _ => None,
        });
    let Some((c, init, t)) = failing else {
        let reason = pod.reason.as_deref().unwrap_or("Failed");
        let mut f = for_pod(pod, FailureType::Failed, reason, pod.message.as_deref());
        f.since = unready_since(pod);
        return Some(f);
    };
    let reason = nonempty(pod.reason.as_deref())
        .or(nonempty(t.reason.as_deref()))
        .unwrap_or("Error");
    let message = nonempty(pod.message.as_deref()).or(t.message.as_deref());
    let mut f = for_container(pod, c, init, FailureType::Failed, reason, message);
    f.since = unready_since(pod);
    rest_on(&mut f, pod, c, t);
    Some(f)
}

fn not_ready(pod: &PodRecord, now: i64, th: &Thresholds) -> Option<Finding> {
    let r = pod.ready.as_ref().filter(|r| r.status == Some(false))?;
    let since = r.since.or(pod.created);
    if !over(now, since, th.not_ready_grace_secs) {
        return None;
    }
    let reason = r.reason.as_deref().unwrap_or("NotReady");
    // Name the first unready container: usually the one whose probe fails.
    let mut f = match pod.containers.iter().find(|c| !c.ready) {
        Some(c) => {
            let mut f = for_container(pod, c, false, FailureType::NotReady, reason, None);
            if let ContainerState::Terminated(t) = &c.state {
                f.exit_code = Some(t.exit_code);
                f.signal = t.signal;
            }
            f
        }
        None => for_pod(pod, FailureType::NotReady, reason, None),
    };
    r.message
        .as_deref()
        .unwrap_or_default()
        .clone_into(&mut f.message);
    f.since = since;
    Some(f)
}

// -------------------------------------------------------------------- helpers

/// Whether more than `limit` seconds passed since `since`. An unknown start
/// has not run out: the daemon sees the pod again (and records ErrImagePull).
fn over(now: i64, since: Option<i64>, limit: i64) -> bool {
    since.is_some_and(|s| now.saturating_sub(s) > limit)
}

/// When the pod became unready, else when it was created.
fn unready_since(pod: &PodRecord) -> Option<i64> {
    pod.ready
        .as_ref()
        .filter(|r| r.status != Some(true))
        .and_then(|r| r.since)
        .or(pod.created)
}

fn nonempty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.trim().is_empty())
}

fn for_pod(pod: &PodRecord, kind: FailureType, reason: &str, message: Option<&str>) -> Finding {
    Finding {
        kind,
        namespace: pod.namespace.to_string(),
        pod: pod.name.to_string(),
        container: None,
        init_container: false,
        reason: reason.to_owned(),
        message: message.unwrap_or_default().to_owned(),
        exit_code: None,
        signal: None,
        restart_count: None,
        node: pod.node.as_deref().map(str::to_owned),
        image: None,
        since: None,
        termination: None,
    }
}

fn for_container(
    pod: &PodRecord,
    c: &ContainerRecord,
    init: bool,
    kind: FailureType,
    reason: &str,
    message: Option<&str>,
) -> Finding {
    let mut f = for_pod(pod, kind, reason, message);
    f.container = Some(c.name.to_string());
    f.init_container = init;
    f.restart_count = Some(c.restart_count);
    f.image = (!c.image.is_empty()).then(|| c.image.to_string());
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::types::Pod;
    use crate::util::time::parse_rfc3339;

    use FailureType::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../tests/fixtures/pods/", $name, ".json"))
        };
    }

    fn record(json: &str) -> PodRecord {
        PodRecord::from(serde_json::from_str::<Pod>(json).unwrap())
    }

    /// Every fixture is dated 2024-05-14 (UTC); `hms` is the time of day.
    fn at(hms: &str) -> i64 {
        parse_rfc3339(&format!("2024-05-14T{hms}Z")).unwrap()
    }

    /// Counts the terminations that finished at the listed times; knows
    /// when the daemon first saw ErrImagePull, if told.
    #[derive(Default)]
    struct FakeKnown {
        counted: &'static [&'static str],
        pull_seen: Option<&'static str>,
    }

    impl Known for FakeKnown {
        fn counted(&self, t: &Termination) -> bool {
            self.counted.iter().any(|hms| at(hms) == t.finished)
        }
        fn err_image_pull_seen(&self, _: &str, _: &str) -> Option<i64> {
            self.pull_seen.map(at)
        }
    }

    struct Case {
        name: &'static str,
        pod: &'static str,
        now: &'static str,
        /// `None`: a scan, `NothingKnown`.
        known: Option<FakeKnown>,
        th: Thresholds,
        edit: fn(&mut PodRecord),
        expect: &'static [(FailureType, Option<&'static str>, &'static str)],
    }

    fn case(name: &'static str, pod: &'static str, now: &'static str) -> Case {
        Case {
            name,
            pod,
            now,
            known: None,
            th: Thresholds::default(),
            edit: |_| {},
            expect: &[],
        }
    }

    impl Case {
        fn known(mut self, k: FakeKnown) -> Case {
            self.known = Some(k);
            self
        }
        fn th(mut self, th: Thresholds) -> Case {
            self.th = th;
            self
        }
        fn edit(mut self, edit: fn(&mut PodRecord)) -> Case {
            self.edit = edit;
            self
        }
        fn expect(
            mut self,
            e: &'static [(FailureType, Option<&'static str>, &'static str)],
        ) -> Case {
            self.expect = e;
            self
        }
    }

    fn run(c: &Case) -> Vec<Finding> {
        let mut pod = record(c.pod);
        (c.edit)(&mut pod);
        let known: &dyn Known = match &c.known {
            Some(k) => k,
            None => &NothingKnown,
        };
        classify(&pod, known, at(c.now), &c.th)
    }

    fn check(table: Vec<Case>) {
        for c in &table {
            let got = run(c);
            let got: Vec<_> = got
                .iter()
                .map(|f| (f.kind, f.container.as_deref(), f.reason.as_str()))
                .collect();
            assert_eq!(got, c.expect, "{}", c.name);
        }
    }

    /// The single finding of one fixture, scanned at `now`.
    fn one(pod: &str, now: &str) -> Finding {
        let mut v = classify(&record(pod), &NothingKnown, at(now), &Thresholds::default());
        assert_eq!(v.len(), 1, "{v:?}");
        v.remove(0)
    }

    fn set_waiting(p: &mut PodRecord, reason: &str) {
        p.containers[0].state = ContainerState::Waiting {
            reason: Some(reason.into()),
            message: None,
        };
    }

    #[test]
    fn each_failure_type_is_recognised_in_pods_as_kubelets_write_them() {
        check(vec![
            case(
                "an OOM kill in a crash loop is OOMKilled",
                fixture!("crashloop-oom-lastState"),
                "09:14:00",
            )
            .expect(&[(OOMKilled, Some("web"), "OOMKilled")]),
            case(
                "the first OOM kill is reported, whatever the restart count",
                fixture!("oomkilled-running-first-restart"),
                "10:02:00",
            )
            .expect(&[(OOMKilled, Some("web"), "OOMKilled")]),
            case(
                "a Job pod OOM-killed is OOMKilled",
                fixture!("job-oomkilled-phase-failed"),
                "09:05:00",
            )
            .expect(&[(OOMKilled, Some("report"), "OOMKilled")]),
            case(
                "a crash loop on exit 2 is CrashLoopBackOff",
                fixture!("crashloop-error"),
                "10:00:00",
            )
            .expect(&[(CrashLoopBackOff, Some("api"), "CrashLoopBackOff")]),
            case(
                "a crash loop on exit 0 is still CrashLoopBackOff",
                fixture!("crashloop-exit-0"),
                "09:04:00",
            )
            .expect(&[(CrashLoopBackOff, Some("shim"), "CrashLoopBackOff")]),
            case(
                "ImagePullBackOff is reported at once",
                fixture!("imagepullbackoff"),
                "09:00:30",
            )
            .expect(&[(ImagePullBackOff, Some("web"), "ImagePullBackOff")]),
            case(
                "ErrImagePull past its grace is ImagePullBackOff keeping its reason",
                fixture!("errimagepull"),
                "09:05:00",
            )
            .expect(&[(ImagePullBackOff, Some("web"), "ErrImagePull")]),
            case(
                "an invalid image name is InvalidImageName",
                fixture!("invalidimagename"),
                "09:00:30",
            )
            .expect(&[(InvalidImageName, Some("web"), "InvalidImageName")]),
            case(
                "a missing ConfigMap is CreateContainerConfigError",
                fixture!("createcontainerconfigerror-missing-configmap"),
                "09:00:30",
            )
            .expect(&[(
                CreateContainerConfigError,
                Some("checkout"),
                "CreateContainerConfigError",
            )]),
            case(
                "RunContainerError is ContainerStartError",
                fixture!("runcontainererror"),
                "09:01:00",
            )
            .expect(&[(ContainerStartError, Some("worker"), "RunContainerError")]),
            case(
                "CreateContainerError is ContainerStartError",
                fixture!("runcontainererror"),
                "09:01:00",
            )
            .edit(|p| set_waiting(p, "CreateContainerError"))
            .expect(&[(ContainerStartError, Some("worker"), "CreateContainerError")]),
            case(
                "a waiting StartError is ContainerStartError",
                fixture!("runcontainererror"),
                "09:01:00",
            )
            .edit(|p| set_waiting(p, "StartError"))
            .expect(&[(ContainerStartError, Some("worker"), "StartError")]),
            case(
                "ContainerCannotRun is ContainerStartError",
                fixture!("runcontainererror"),
                "09:01:00",
            )
            .edit(|p| set_waiting(p, "ContainerCannotRun"))
            .expect(&[(ContainerStartError, Some("worker"), "ContainerCannotRun")]),
            case(
                "a terminated StartError (containerd, exit 128) is ContainerStartError",
                fixture!("starterror-terminated-job"),
                "09:01:00",
            )
            .expect(&[(ContainerStartError, Some("migrate"), "StartError")]),
            case(
                "a pod unschedulable too long is Unschedulable",
                fixture!("unschedulable-insufficient-cpu"),
                "09:30:00",
            )
            .expect(&[(Unschedulable, None, "Unschedulable")]),
            case(
                "a pod stuck in ContainerCreating is PendingTooLong",
                fixture!("pending-containercreating-volume"),
                "09:30:00",
            )
            .expect(&[(PendingTooLong, None, "ContainerCreating")]),
            case(
                "an evicted pod is Evicted",
                fixture!("evicted-memory"),
                "09:45:00",
            )
            .expect(&[(Evicted, None, "Evicted")]),
            case(
                "a Job pod past its deadline is Failed",
                fixture!("deadline-exceeded"),
                "09:15:00",
            )
            .expect(&[(Failed, Some("export"), "DeadlineExceeded")]),
            case(
                "a Job pod that exited 2 is Failed",
                fixture!("job-failed-error"),
                "09:01:00",
            )
            .expect(&[(Failed, Some("migrate"), "Error")]),
            case(
                "a pod unready past its grace is NotReady",
                fixture!("not-ready"),
                "09:40:00",
            )
            .expect(&[(NotReady, Some("api"), "ContainersNotReady")]),
            case(
                "three restarts, the last one fresh, is HighRestartCount",
                fixture!("high-restart-count"),
                "10:00:00",
            )
            .expect(&[(HighRestartCount, Some("api"), "Error")]),
            case(
                "a crash-looping init container is CrashLoopBackOff",
                fixture!("init-crashloop"),
                "10:00:00",
            )
            .expect(&[(CrashLoopBackOff, Some("wait-for-db"), "CrashLoopBackOff")]),
            case(
                "a container problem is reported in phase Unknown",
                fixture!("crashloop-error"),
                "10:00:00",
            )
            .edit(|p| p.phase = Phase::Unknown)
            .expect(&[(CrashLoopBackOff, Some("api"), "CrashLoopBackOff")]),
            case(
                "two failing containers give two findings, most specific first",
                fixture!("two-containers-crashloop-and-oom"),
                "09:03:00",
            )
            .expect(&[
                (OOMKilled, Some("web"), "OOMKilled"),
                (CrashLoopBackOff, Some("log-shipper"), "CrashLoopBackOff"),
            ]),
        ]);
    }

    #[test]
    fn pods_that_are_not_failing_yield_no_finding() {
        check(vec![
            case(
                "a pod being deleted, its containers killed 137/143",
                fixture!("terminating-137"),
                "10:00:40",
            ),
            case(
                "a deleted pod that kubelet 1.27+ moved to Failed",
                fixture!("deleted-phase-failed-kubelet-1.27"),
                "10:00:40",
            ),
            case(
                "a Job pod that succeeded",
                fixture!("succeeded-job"),
                "10:00:00",
            ),
            case(
                "a running pod whose init container completed",
                fixture!("init-completed-running"),
                "10:00:00",
            ),
            case("a healthy pod", fixture!("healthy-running"), "10:00:00"),
            case(
                "a crash loop on an ignored pod",
                fixture!("ignored-crashloop"),
                "10:00:00",
            ),
            case(
                "phase Unknown with no container problem",
                fixture!("phase-unknown"),
                "10:00:00",
            ),
            case(
                "a crash loop that recovered 40 minutes ago",
                fixture!("running-recovered-after-crashloop"),
                "10:00:00",
            ),
            case(
                "ErrImagePull within its grace",
                fixture!("errimagepull"),
                "09:00:30",
            ),
            case(
                "Unschedulable within the pending limit",
                fixture!("unschedulable-insufficient-cpu"),
                "09:05:00",
            ),
            case(
                "ContainerCreating within the pending limit",
                fixture!("pending-containercreating-volume"),
                "09:05:00",
            ),
            case(
                "unready within its grace",
                fixture!("not-ready"),
                "09:32:00",
            ),
            case(
                "restarts below the threshold",
                fixture!("high-restart-count"),
                "10:00:00",
            )
            .edit(|p| p.containers[0].restart_count = 2),
            case(
                "an OOM kill that is no longer recent",
                fixture!("oomkilled-running-first-restart"),
                "10:30:00",
            ),
        ]);
    }

    #[test]
    fn grace_periods_and_thresholds_end_exactly_at_their_limit() {
        const PULL: &[(FailureType, Option<&str>, &str)] =
            &[(ImagePullBackOff, Some("web"), "ErrImagePull")];
        check(vec![
            // Scan: measured from the Ready condition (09:00:04).
            case(
                "ErrImagePull at 60 s after Ready turned False",
                fixture!("errimagepull"),
                "09:01:04",
            ),
            case(
                "ErrImagePull at 61 s after Ready turned False",
                fixture!("errimagepull"),
                "09:01:05",
            )
            .expect(PULL),
            // No Ready condition: measured from creation (09:00:00).
            case(
                "ErrImagePull at 60 s after creation",
                fixture!("errimagepull"),
                "09:01:00",
            )
            .edit(|p| p.ready = None),
            case(
                "ErrImagePull at 61 s after creation",
                fixture!("errimagepull"),
                "09:01:01",
            )
            .edit(|p| p.ready = None)
            .expect(PULL),
            // Watch: measured from when the daemon first saw it.
            case(
                "ErrImagePull 60 s after the daemon saw it, pod pending 31 min",
                fixture!("errimagepull"),
                "09:31:00",
            )
            .known(FakeKnown {
                pull_seen: Some("09:30:00"),
                ..FakeKnown::default()
            }),
            case(
                "ErrImagePull 61 s after the daemon saw it",
                fixture!("errimagepull"),
                "09:31:01",
            )
            .known(FakeKnown {
                pull_seen: Some("09:30:00"),
                ..FakeKnown::default()
            })
            .expect(PULL),
            // Unschedulable since 09:00:05 (created 09:00:00).
            case(
                "Unschedulable for exactly 600 s",
                fixture!("unschedulable-insufficient-cpu"),
                "09:10:05",
            ),
            case(
                "Unschedulable for 601 s",
                fixture!("unschedulable-insufficient-cpu"),
                "09:10:06",
            )
            .expect(&[(Unschedulable, None, "Unschedulable")]),
            case(
                "created 601 s ago but Unschedulable for 596 s is not PendingTooLong",
                fixture!("unschedulable-insufficient-cpu"),
                "09:10:01",
            ),
            // Created 09:00:00.
            case(
                "Pending for exactly 600 s",
                fixture!("pending-containercreating-volume"),
                "09:10:00",
            ),
            case(
                "Pending for 601 s",
                fixture!("pending-containercreating-volume"),
                "09:10:01",
            )
            .expect(&[(PendingTooLong, None, "ContainerCreating")]),
            case(
                "Pending for 601 s with a 20 min limit",
                fixture!("pending-containercreating-volume"),
                "09:10:01",
            )
            .th(Thresholds {
                max_pending_secs: 1200,
                ..Thresholds::default()
            }),
            // Ready False since 09:30:00.
            case(
                "unready for exactly 300 s",
                fixture!("not-ready"),
                "09:35:00",
            ),
            case("unready for 301 s", fixture!("not-ready"), "09:35:01").expect(&[(
                NotReady,
                Some("api"),
                "ContainersNotReady",
            )]),
            // Three restarts, the last finished 09:55:00.
            case(
                "3 restarts with the threshold at 4",
                fixture!("high-restart-count"),
                "10:00:00",
            )
            .th(Thresholds {
                min_restart: 4,
                ..Thresholds::default()
            }),
            case(
                "a restart 599 s ago is recent",
                fixture!("high-restart-count"),
                "10:04:59",
            )
            .expect(&[(HighRestartCount, Some("api"), "Error")]),
            case(
                "a restart 600 s ago is not",
                fixture!("high-restart-count"),
                "10:05:00",
            ),
            // OOM kill finished 10:00:05.
            case(
                "an OOM kill 599 s ago is recent",
                fixture!("oomkilled-running-first-restart"),
                "10:10:04",
            )
            .expect(&[(OOMKilled, Some("web"), "OOMKilled")]),
            case(
                "an OOM kill 600 s ago is not",
                fixture!("oomkilled-running-first-restart"),
                "10:10:05",
            ),
        ]);
    }

    #[test]
    fn a_termination_counts_once_but_current_states_always_report() {
        check(vec![
            case(
                "a counted OOM kill after recovery",
                fixture!("oomkilled-running-first-restart"),
                "10:02:00",
            )
            .known(FakeKnown {
                counted: &["10:00:05"],
                ..FakeKnown::default()
            }),
            case(
                "a counted restart",
                fixture!("high-restart-count"),
                "10:00:00",
            )
            .known(FakeKnown {
                counted: &["09:55:00"],
                ..FakeKnown::default()
            }),
            case(
                "a recovered crash loop whose last crash was counted",
                fixture!("running-recovered-after-crashloop"),
                "09:25:00",
            )
            .known(FakeKnown {
                counted: &["09:20:00"],
                ..FakeKnown::default()
            }),
            case(
                "a recent uncounted crash after recovery",
                fixture!("running-recovered-after-crashloop"),
                "09:25:00",
            )
            .known(FakeKnown {
                counted: &["09:10:00"],
                ..FakeKnown::default()
            })
            .expect(&[(HighRestartCount, Some("api"), "Error")]),
            case(
                "a crash loop whose last crash was counted is still a crash loop",
                fixture!("crashloop-error"),
                "10:00:00",
            )
            .known(FakeKnown {
                counted: &["09:58:10"],
                ..FakeKnown::default()
            })
            .expect(&[(CrashLoopBackOff, Some("api"), "CrashLoopBackOff")]),
            case(
                "an OOM crash loop whose kill was counted is still OOMKilled",
                fixture!("crashloop-oom-lastState"),
                "09:14:00",
            )
            .known(FakeKnown {
                counted: &["09:12:58"],
                ..FakeKnown::default()
            })
            .expect(&[(OOMKilled, Some("web"), "OOMKilled")]),
        ]);
    }

    #[test]
    fn container_level_findings_beat_pod_level_ones() {
        check(vec![
            case(
                "an OOM-killed Job pod is not Failed",
                fixture!("job-oomkilled-phase-failed"),
                "09:05:00",
            )
            .expect(&[(OOMKilled, Some("report"), "OOMKilled")]),
            case(
                "a failed start in a Failed Job pod is not Failed",
                fixture!("starterror-terminated-job"),
                "09:05:00",
            )
            .expect(&[(ContainerStartError, Some("migrate"), "StartError")]),
            case(
                "a crash loop unready for an hour is not NotReady",
                fixture!("crashloop-error"),
                "10:00:00",
            )
            .expect(&[(CrashLoopBackOff, Some("api"), "CrashLoopBackOff")]),
            case(
                "an init crash loop pending for an hour is not PendingTooLong",
                fixture!("init-crashloop"),
                "10:00:00",
            )
            .expect(&[(CrashLoopBackOff, Some("wait-for-db"), "CrashLoopBackOff")]),
            case(
                "an image pull failing for an hour is not PendingTooLong",
                fixture!("imagepullbackoff"),
                "10:00:00",
            )
            .expect(&[(ImagePullBackOff, Some("web"), "ImagePullBackOff")]),
        ]);
    }

    #[test]
    fn a_crash_loop_carries_its_last_termination() {
        let f = one(fixture!("crashloop-error"), "10:00:00");
        let t = at("09:58:10");
        assert_eq!(
            (f.namespace.as_str(), f.pod.as_str()),
            ("shop", "api-5f6d8b9c4-q7w2z")
        );
        assert!(
            f.message.starts_with("panic: open /etc/api/config.yaml"),
            "{}",
            f.message
        );
        assert_eq!(
            (f.exit_code, f.signal, f.restart_count),
            (Some(2), None, Some(14))
        );
        assert_eq!(
            f.node.as_deref(),
            Some("ip-10-0-12-34.eu-west-1.compute.internal")
        );
        assert_eq!(
            f.image.as_deref(),
            Some("registry.example.com/shop/api:2.8.0")
        );
        assert_eq!(f.since, Some(t));
        assert!(!f.init_container);
        let term = f.termination.unwrap();
        assert_eq!((term.container.as_str(), term.finished), ("api", t));
        assert_eq!(*term.pod_uid, *record(fixture!("crashloop-error")).uid);

        // No termination message: the waiting message stands, without kubelet's
        // `container=… pod=…_ns(uid)` tail.
        let f = one(fixture!("crashloop-exit-0"), "09:04:00");
        assert_eq!(f.message, "back-off 1m20s restarting failed container");
        assert_eq!(f.exit_code, Some(0));
    }

    #[test]
    fn oom_kills_rest_on_the_termination_to_count() {
        let f = one(fixture!("crashloop-oom-lastState"), "09:14:00");
        assert_eq!((f.exit_code, f.restart_count), (Some(137), Some(5)));
        assert_eq!(f.termination.map(|t| t.finished), Some(at("09:12:58")));
        assert!(f.message.starts_with("back-off 2m40s"), "{}", f.message);

        let f = one(fixture!("oomkilled-running-first-restart"), "10:02:00");
        assert_eq!((f.exit_code, f.restart_count), (Some(137), Some(1)));
        assert_eq!(f.since, Some(at("10:00:05")));
        assert_eq!(f.termination.map(|t| t.finished), Some(at("10:00:05")));

        let f = one(fixture!("job-oomkilled-phase-failed"), "09:05:00");
        assert_eq!(f.termination.map(|t| t.finished), Some(at("09:03:51")));
    }

    #[test]
    fn waiting_reasons_keep_the_kubelet_message() {
        let f = one(
            fixture!("createcontainerconfigerror-missing-configmap"),
            "09:00:30",
        );
        assert_eq!(f.message, r#"configmap "app-config" not found"#);
        assert_eq!(f.termination, None);
        assert_eq!(f.since, Some(at("09:00:00")));

        let f = one(fixture!("errimagepull"), "09:05:00");
        assert!(
            f.message
                .contains("registry.example.com/shop/web:1.4.4: not found"),
            "{}",
            f.message
        );
        assert_eq!(
            f.image.as_deref(),
            Some("registry.example.com/shop/web:1.4.4")
        );
        assert_eq!(f.since, Some(at("09:00:04")));

        let f = one(fixture!("imagepullbackoff"), "09:00:30");
        assert_eq!(
            f.message,
            r#"Back-off pulling image "registry.example.com/shop/web:1.4.4""#
        );

        let f = one(fixture!("invalidimagename"), "09:00:30");
        assert!(
            f.message.contains("repository name must be lowercase"),
            "{}",
            f.message
        );
    }

    #[test]
    fn a_failed_start_carries_exit_code_128_and_its_termination() {
        let f = one(fixture!("runcontainererror"), "09:01:00");
        assert!(
            f.message.contains(r#"exec: "/app/server""#),
            "{}",
            f.message
        );
        assert_eq!((f.exit_code, f.restart_count), (Some(128), Some(1)));
        assert_eq!(f.termination.map(|t| t.finished), Some(at("09:00:31")));

        // No waiting message: the terminated one explains it.
        let mut pod = record(fixture!("runcontainererror"));
        set_waiting(&mut pod, "CreateContainerError");
        let f = &classify(&pod, &NothingKnown, at("09:01:00"), &Thresholds::default())[0];
        assert!(
            f.message.starts_with("failed to create containerd task"),
            "{}",
            f.message
        );

        let f = one(fixture!("starterror-terminated-job"), "09:01:00");
        assert_eq!(f.exit_code, Some(128));
        assert!(
            f.message.contains("executable file not found"),
            "{}",
            f.message
        );
    }

    #[test]
    fn pod_level_findings_keep_the_scheduler_and_kubelet_words() {
        let f = one(fixture!("unschedulable-insufficient-cpu"), "09:30:00");
        assert!(
            f.message
                .starts_with("0/3 nodes are available: 3 Insufficient cpu."),
            "{}",
            f.message
        );
        assert_eq!(
            (f.container, f.node, f.since),
            (None, None, Some(at("09:00:05")))
        );

        let f = one(fixture!("pending-containercreating-volume"), "09:30:00");
        assert_eq!(f.message, "containers with unready status: [db]");
        assert_eq!((f.container, f.since), (None, Some(at("09:00:00"))));
        assert!(f.node.is_some());

        let f = one(fixture!("evicted-memory"), "09:45:00");
        assert!(
            f.message
                .starts_with("The node was low on resource: memory."),
            "{}",
            f.message
        );
        assert_eq!((f.container, f.exit_code), (None, None));

        let f = one(fixture!("not-ready"), "09:40:00");
        assert_eq!(f.message, "containers with unready status: [api]");
        assert_eq!((f.since, f.restart_count), (Some(at("09:30:00")), Some(0)));
    }

    #[test]
    fn a_failed_pod_names_the_container_that_failed_it() {
        let f = one(fixture!("job-failed-error"), "09:01:00");
        assert_eq!((f.exit_code, f.restart_count), (Some(2), Some(0)));
        assert_eq!(f.termination.map(|t| t.finished), Some(at("09:00:09")));

        let f = one(fixture!("deadline-exceeded"), "09:15:00");
        assert_eq!(
            f.message,
            "Pod was active on the node longer than the specified deadline"
        );
        assert_eq!(f.exit_code, Some(143));

        // A Failed pod with neither reason nor a failing container.
        let mut pod = record(fixture!("job-failed-error"));
        pod.containers = Box::new([]);
        let v = classify(&pod, &NothingKnown, at("09:01:00"), &Thresholds::default());
        assert_eq!(
            (v[0].kind, v[0].reason.as_str(), v[0].exit_code),
            (Failed, "Failed", None)
        );
    }

    #[test]
    fn init_containers_are_flagged_as_such() {
        let f = one(fixture!("init-crashloop"), "10:00:00");
        assert!(f.init_container);
        assert_eq!((f.exit_code, f.restart_count), (Some(1), Some(12)));
        assert_eq!(f.image.as_deref(), Some("docker.io/library/busybox:1.36"));
    }

    #[test]
    fn high_restart_count_rests_on_the_fresh_termination() {
        let f = one(fixture!("high-restart-count"), "10:00:00");
        assert_eq!((f.exit_code, f.restart_count), (Some(1), Some(3)));
        assert_eq!(f.since, Some(at("09:55:00")));
        assert_eq!(
            f.termination.map(|t| (t.container, t.finished)),
            Some(("api".to_owned(), at("09:55:00")))
        );
    }
}
