//! The classification step driven with plain values and a fake clock.

use super::*;
use crate::kube::types::Pod;
use crate::model::{Owner, PodRecord};

const T0: i64 = 1_900_000_000_000;
const SEC: i64 = 1000;
const MIN: i64 = 60 * SEC;

fn classifier(namespaces_watched: bool) -> Classifier {
    classifier_with(namespaces_watched, Silences::default())
}

fn classifier_with(namespaces_watched: bool, silences: Silences) -> Classifier {
    Classifier::new(Config {
        cluster: "edge-1".into(),
        detect: Detect::default(),
        rules: Arc::new(RuleSet::builtin()),
        stream_names: vec!["all namespaces".into()],
        namespaces_watched,
        nodes_watched: false,
        silences,
    })
}

fn fixture(name: &str) -> PodRecord {
    let path = format!(
        "{}/tests/fixtures/pods/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let pod: Pod = serde_json::from_str(&text).unwrap();
    PodRecord::from(pod)
}

/// A pod of Deployment `deploy` in `ns`, named with `suffix`.
fn pod_of(mut p: PodRecord, ns: &str, deploy: &str, suffix: &str) -> PodRecord {
    p.namespace = ns.into();
    p.name = format!("{deploy}-5f6d8b9c4-{suffix}").into();
    p.uid = format!("uid-{ns}-{deploy}-{suffix}").into();
    p.owner = Some(Owner {
        kind: "ReplicaSet".into(),
        name: format!("{deploy}-5f6d8b9c4").into(),
    });
    p
}

fn crashing(ns: &str, deploy: &str, suffix: &str) -> PodRecord {
    pod_of(fixture("crashloop-error"), ns, deploy, suffix)
}

fn healthy(ns: &str, deploy: &str, suffix: &str) -> PodRecord {
    pod_of(fixture("healthy-running"), ns, deploy, suffix)
}

fn list(cl: &mut Classifier, pods: Vec<PodRecord>, now: i64) -> Effects {
    let mut fx = cl.handle(
        Input::Store {
            stream: 0,
            event: Event::Init,
        },
        now,
    );
    fx.extend(cl.handle(
        Input::Store {
            stream: 0,
            event: Event::Page(pods),
        },
        now,
    ));
    fx.extend(cl.handle(
        Input::Store {
            stream: 0,
            event: Event::InitDone,
        },
        now,
    ));
    fx
}

fn apply(cl: &mut Classifier, pod: PodRecord, now: i64) -> Effects {
    cl.handle(
        Input::Store {
            stream: 0,
            event: Event::Apply(Box::new(pod)),
        },
        now,
    )
}

fn delete(cl: &mut Classifier, pod: PodRecord, now: i64) -> Effects {
    cl.handle(
        Input::Store {
            stream: 0,
            event: Event::Delete(Box::new(pod)),
        },
        now,
    )
}

/// Ticks once a second from `from` to `to` (inclusive), collecting effects.
fn ticks(cl: &mut Classifier, from: i64, to: i64) -> Effects {
    let mut fx = Effects::default();
    let mut t = from;
    while t <= to {
        fx.extend(cl.handle(Input::Tick, t));
        t += SEC;
    }
    fx
}

/// `state workload` per record.
fn records(fx: &Effects) -> Vec<String> {
    fx.records
        .iter()
        .map(|(t, _)| format!("{} {}", t.incident.state.as_str(), t.incident.workload.name))
        .collect()
}

/// One word per job: `startup:N`, `storm:N`, `open web`, `reminder web`.
fn jobs(fx: &Effects) -> Vec<String> {
    fx.jobs
        .iter()
        .map(|j| match &j.alert {
            Alert::StartupSummary { items } => format!("startup:{}", items.len()),
            Alert::Storm { items, .. } => format!("storm:{}", items.len()),
            Alert::Incident { item, reminder } => format!(
                "{} {}",
                if *reminder {
                    "reminder"
                } else {
                    item.incident.state.as_str()
                },
                item.incident.workload.name
            ),
        })
        .collect()
}

/// A classifier past start-up with nothing failing.
fn started() -> Classifier {
    let mut cl = classifier(false);
    let fx = list(&mut cl, vec![healthy("shop", "web", "aaaaa")], T0);
    assert!(fx.is_empty(), "{:?}", records(&fx));
    cl
}

#[test]
fn what_is_broken_at_start_up_goes_out_as_one_summary_with_its_records() {
    let mut cl = classifier(false);
    let fx = list(
        &mut cl,
        vec![
            crashing("shop", "api", "aaaaa"),
            crashing("shop", "worker", "bbbbb"),
            healthy("shop", "web", "ccccc"),
        ],
        T0,
    );
    let mut r = records(&fx);
    r.sort();
    assert_eq!(r, ["open api", "open worker"]);
    assert_eq!(jobs(&fx), ["startup:2"]);
    assert_eq!(fx.events_applied, 3);
    assert_eq!((cl.pods_tracked(), cl.open_incidents()), (3, 2));
    // Each record carries the rules' diagnosis, and the job its pods.
    assert!(fx.records.iter().all(|(_, d)| d.is_some()));
    assert!(fx.jobs[0].pods.iter().all(Option::is_some));
    // Nothing more at the next ticks: no OPEN then UPDATED for the same incident.
    let later = ticks(&mut cl, T0 + SEC, T0 + 30 * SEC);
    assert!(later.is_empty(), "{:?} {:?}", records(&later), jobs(&later));
}

#[test]
fn a_workload_failing_in_several_pods_at_start_up_is_one_open_record() {
    let mut cl = classifier(false);
    // Its pods arrive on two LIST pages: the second adds pods to the
    // incident the first opened, which is not news to anyone yet.
    let mut fx = cl.handle(
        Input::Store {
            stream: 0,
            event: Event::Init,
        },
        T0,
    );
    for suffix in ["aaaaa", "bbbbb"] {
        fx.extend(cl.handle(
            Input::Store {
                stream: 0,
                event: Event::Page(vec![crashing("shop", "api", suffix)]),
            },
            T0,
        ));
    }
    assert!(fx.records.is_empty(), "held until the summary");
    fx.extend(cl.handle(
        Input::Store {
            stream: 0,
            event: Event::InitDone,
        },
        T0,
    ));
    assert_eq!(records(&fx), ["open api"]);
    assert_eq!(fx.records[0].0.incident.pods.len(), 2);
    assert_eq!(jobs(&fx), ["startup:1"]);
}

#[test]
fn an_opened_and_updated_incident_in_one_step_is_one_record_but_a_resolution_stands() {
    let mut cl = started();
    let ts: Vec<Transition> = {
        let a = apply(&mut cl, crashing("shop", "api", "aaaaa"), T0 + SEC);
        let b = apply(&mut cl, crashing("shop", "api", "bbbbb"), T0 + SEC);
        a.records
            .into_iter()
            .chain(b.records)
            .map(|(t, _)| t)
            .collect()
    };
    let states: Vec<State> = ts.iter().map(|t| t.incident.state).collect();
    assert_eq!(states, [State::Open, State::Updated]);
    let merged = coalesce(ts.clone());
    assert_eq!(merged.len(), 1);
    assert_eq!(merged[0].incident.state, State::Open);
    assert_eq!(merged[0].incident.pods.len(), 2);
    let mut resolved = ts[1].clone();
    resolved.incident.state = State::Resolved;
    let kept = coalesce(vec![ts[0].clone(), resolved]);
    assert_eq!(kept.len(), 2);
}

#[test]
fn a_new_failure_waits_for_its_batch_then_goes_out_alone() {
    let mut cl = started();
    let fx = apply(&mut cl, crashing("shop", "api", "aaaaa"), T0 + SEC);
    assert_eq!(records(&fx), ["open api"]);
    assert!(fx.jobs.is_empty(), "held for the batch");
    let fx = ticks(&mut cl, T0 + 2 * SEC, T0 + 4 * SEC);
    assert!(fx.jobs.is_empty(), "{:?}", jobs(&fx));
    let fx = ticks(&mut cl, T0 + 5 * SEC, T0 + 7 * SEC);
    assert_eq!(jobs(&fx), ["open api"]);
}

#[test]
fn many_new_failures_in_one_batch_are_one_storm() {
    let mut cl = started();
    let mut opened = 0;
    for i in 0..12 {
        let fx = apply(
            &mut cl,
            crashing("shop", &format!("svc{i}"), "aaaaa"),
            T0 + SEC,
        );
        opened += fx.records.len();
        assert!(fx.jobs.is_empty());
    }
    assert_eq!(opened, 12, "every incident has its record");
    let fx = ticks(&mut cl, T0 + 2 * SEC, T0 + 10 * SEC);
    assert_eq!(jobs(&fx), ["storm:12"]);
}

#[test]
fn updates_inside_the_rate_limit_window_wait_for_it() {
    let mut cl = started();
    apply(&mut cl, crashing("shop", "api", "aaaaa"), T0 + SEC);
    let fx = ticks(&mut cl, T0 + 2 * SEC, T0 + 10 * SEC);
    assert_eq!(jobs(&fx), ["open api"]);
    // A second pod of the workload fails the same way: a material change.
    let fx = apply(&mut cl, crashing("shop", "api", "bbbbb"), T0 + 20 * SEC);
    assert_eq!(records(&fx), ["updated api"]);
    let fx = ticks(&mut cl, T0 + 21 * SEC, T0 + 5 * MIN);
    assert!(fx.jobs.is_empty(), "inside the window: {:?}", jobs(&fx));
    let fx = ticks(&mut cl, T0 + 5 * MIN + SEC, T0 + 5 * MIN + 15 * SEC);
    assert_eq!(jobs(&fx), ["updated api"]);
}

#[test]
fn an_incident_still_open_is_announced_again_after_the_renotify_interval() {
    let mut cl = started();
    apply(&mut cl, crashing("shop", "api", "aaaaa"), T0 + SEC);
    let fx = ticks(&mut cl, T0 + 2 * SEC, T0 + 10 * SEC);
    assert_eq!(jobs(&fx), ["open api"]);
    let renotify = Detect::default().renotify_ms;
    // Ticks are the only input; step in minutes to keep the test quick.
    let mut fx = Effects::default();
    let mut t = T0 + MIN;
    while t < T0 + renotify - MIN {
        fx.extend(cl.handle(Input::Tick, t));
        t += MIN;
    }
    assert!(fx.jobs.is_empty(), "{:?}", jobs(&fx));
    let fx = ticks(&mut cl, T0 + renotify, T0 + renotify + 20 * SEC);
    assert_eq!(jobs(&fx), ["reminder api"]);
}

#[test]
fn recovery_resolves_only_after_the_hold_down() {
    let mut cl = started();
    apply(&mut cl, crashing("shop", "api", "aaaaa"), T0 + SEC);
    ticks(&mut cl, T0 + 2 * SEC, T0 + 10 * SEC);
    let fx = apply(&mut cl, healthy("shop", "api", "aaaaa"), T0 + 20 * SEC);
    assert!(fx.is_empty(), "{:?}", records(&fx));
    let hold = Detect::default().resolve_after_ms;
    let fx = ticks(&mut cl, T0 + 21 * SEC, T0 + 20 * SEC + hold - SEC);
    assert!(fx.is_empty(), "{:?}", records(&fx));
    let fx = ticks(
        &mut cl,
        T0 + 20 * SEC + hold,
        T0 + 20 * SEC + hold + 2 * SEC,
    );
    assert_eq!(records(&fx), ["resolved api"]);
    assert_eq!(jobs(&fx), ["resolved api"], "resolutions are not held back");
    // The resolution keeps the diagnosis the incident had.
    assert!(fx.records[0].1.is_some());
    assert_eq!(cl.open_incidents(), 0);
}

#[test]
fn an_ignored_namespace_opens_nothing_even_at_start_up() {
    let mut cl = classifier(true);
    // The pods list first; detection waits for the namespaces.
    let fx = list(
        &mut cl,
        vec![
            crashing("lab", "api", "aaaaa"),
            crashing("shop", "api", "bbbbb"),
        ],
        T0,
    );
    assert!(fx.is_empty(), "{:?}", records(&fx));
    let ns = |name: &str, ignore| NamespaceRecord {
        silence_until: None,
        name: name.into(),
        ignore,
    };
    let mut fx = cl.handle(Input::Namespaces { event: Event::Init }, T0 + SEC);
    fx.extend(cl.handle(
        Input::Namespaces {
            event: Event::Page(vec![ns("lab", true), ns("shop", false)]),
        },
        T0 + SEC,
    ));
    fx.extend(cl.handle(
        Input::Namespaces {
            event: Event::InitDone,
        },
        T0 + SEC,
    ));
    assert_eq!(records(&fx), ["open api"]);
    assert_eq!(fx.records[0].0.incident.namespace, "shop");
    assert_eq!(jobs(&fx), ["startup:1"]);
}

#[test]
fn without_the_namespace_list_detection_starts_after_the_wait() {
    let mut cl = classifier(true);
    let fx = list(&mut cl, vec![crashing("shop", "api", "aaaaa")], T0);
    assert!(fx.is_empty());
    let fx = ticks(&mut cl, T0 + SEC, T0 + NAMESPACE_WAIT_MS - SEC);
    assert!(fx.is_empty(), "{:?}", records(&fx));
    let fx = ticks(&mut cl, T0 + NAMESPACE_WAIT_MS, T0 + NAMESPACE_WAIT_MS);
    assert_eq!(records(&fx), ["open api"]);
    assert_eq!(jobs(&fx), ["startup:1"]);
}

#[test]
fn a_relist_reports_what_changed_while_the_watch_was_down() {
    let mut cl = started();
    let gone = crashing("shop", "api", "aaaaa");
    apply(&mut cl, gone.clone(), T0 + SEC);
    ticks(&mut cl, T0 + 2 * SEC, T0 + 10 * SEC);
    // Relisted after a 410: the crashing pod is gone, a new workload fails,
    // the healthy one is unchanged.
    let fx = list(
        &mut cl,
        vec![
            healthy("shop", "web", "aaaaa"),
            crashing("shop", "worker", "bbbbb"),
        ],
        T0 + 20 * SEC,
    );
    // The new failure opens; the vanished pod's incident is not a
    // recovery yet: it resolves after the hold-down, once.
    assert_eq!(records(&fx), ["open worker"]);
    assert_eq!(cl.pods_tracked(), 2);
    assert!(cl.store().get(&gone.key()).is_none());
    let hold = Detect::default().resolve_after_ms;
    let fx = ticks(&mut cl, T0 + 21 * SEC, T0 + 20 * SEC + hold - SEC);
    assert!(fx.records.is_empty(), "{:?}", records(&fx));
    assert_eq!(jobs(&fx), ["open worker"]);
    let fx = ticks(&mut cl, T0 + 20 * SEC + hold, T0 + 30 * SEC + hold);
    assert_eq!(records(&fx), ["resolved api"]);
    assert_eq!(jobs(&fx), ["resolved api"]);
}

#[test]
fn a_deleted_pod_is_forgotten_by_the_store_and_the_timers() {
    let mut cl = started();
    let p = crashing("shop", "api", "aaaaa");
    apply(&mut cl, p.clone(), T0 + SEC);
    let fx = delete(&mut cl, p, T0 + 2 * SEC);
    assert_eq!(fx.events_applied, 1);
    assert_eq!(cl.pods_tracked(), 1);
}

#[test]
fn shutting_down_flushes_what_the_batch_holds() {
    let mut cl = started();
    apply(&mut cl, crashing("shop", "api", "aaaaa"), T0 + SEC);
    let fx = cl.finish(T0 + 2 * SEC);
    assert_eq!(jobs(&fx), ["open api"]);
}

#[test]
fn the_step_is_the_same_for_a_leader_and_a_standby() {
    // Leadership gates sending in the pool, never classification: a standby
    // must hold the same incidents so that it can take over without
    // re-announcing them. The step has no leadership input at all, so two
    // classifiers fed the same inputs produce the same effects.
    let run = || {
        let mut cl = started();
        let mut out = records(&apply(&mut cl, crashing("shop", "api", "aaaaa"), T0 + SEC));
        out.extend(jobs(&ticks(&mut cl, T0 + 2 * SEC, T0 + 10 * SEC)));
        out
    };
    assert_eq!(run(), run());
    assert_eq!(run(), ["open api", "open api"]);
}

/// What enrichment would send back for the incident of `fx`'s first record.
fn better(fx: &Effects, cause: crate::model::Cause) -> Box<Rediagnosis> {
    let (t, d) = &fx.records[0];
    let mut d = d.clone().unwrap();
    d.cause = cause;
    d.summary = format!("{} (from the events)", d.summary);
    Box::new(Rediagnosis {
        incident: t.incident.id,
        finding: t.incident.finding.clone(),
        diagnosis: d,
    })
}

#[test]
fn a_better_diagnosis_from_enrichment_is_an_updated_record_and_stays() {
    use crate::model::Cause;
    let mut cl = started();
    let fx = apply(&mut cl, crashing("shop", "api", "aaaaa"), T0 + SEC);
    assert_eq!(records(&fx), ["open api"]);
    let first = fx.records[0].1.clone().unwrap().cause;
    let r = better(&fx, Cause::LivenessProbeFailed);
    assert_ne!(first, Cause::LivenessProbeFailed);

    // The record says what the notification said: one `updated` record.
    let up = cl.handle(Input::Rediagnosed(r.clone()), T0 + 2 * SEC);
    assert_eq!(records(&up), ["updated api"]);
    assert_eq!(
        up.records[0].1.as_ref().unwrap().cause,
        Cause::LivenessProbeFailed
    );
    assert!(up.jobs.is_empty(), "a record, not a notification");
    // The same answer again (a retry, a reminder's enrichment): nothing new.
    assert!(
        cl.handle(Input::Rediagnosed(r.clone()), T0 + 3 * SEC)
            .is_empty()
    );
    // Notifications from now on carry it, and so does the resolution.
    let fx = ticks(&mut cl, T0 + 4 * SEC, T0 + 8 * SEC);
    let items: Vec<_> = fx
        .jobs
        .iter()
        .flat_map(|j| j.alert.items().to_vec())
        .collect();
    assert!(
        items
            .iter()
            .all(|i| i.diagnosis.as_ref().unwrap().cause == Cause::LivenessProbeFailed)
    );
    apply(&mut cl, healthy("shop", "api", "aaaaa"), T0 + 20 * SEC);
    let hold = Detect::default().resolve_after_ms;
    let fx = ticks(&mut cl, T0 + 20 * SEC + hold, T0 + 22 * SEC + hold);
    assert_eq!(records(&fx), ["resolved api"]);
    assert_eq!(
        fx.records[0].1.as_ref().unwrap().cause,
        Cause::LivenessProbeFailed
    );
}

#[test]
fn a_stale_diagnosis_from_enrichment_changes_nothing() {
    use crate::model::Cause;
    let mut cl = started();
    let fx = apply(&mut cl, crashing("shop", "api", "aaaaa"), T0 + SEC);
    // Made for another finding (the incident has moved on since).
    let mut r = better(&fx, Cause::LivenessProbeFailed);
    r.finding.reason = "Completed".into();
    assert!(cl.handle(Input::Rediagnosed(r), T0 + 2 * SEC).is_empty());
    // For an incident that is no longer open.
    let mut r = better(&fx, Cause::LivenessProbeFailed);
    r.incident += 100;
    assert!(cl.handle(Input::Rediagnosed(r), T0 + 3 * SEC).is_empty());
}

fn evicted(ns: &str, deploy: &str, suffix: &str) -> PodRecord {
    pod_of(fixture("evicted-memory"), ns, deploy, suffix)
}

#[test]
fn an_eviction_resolves_once_a_healthy_replacement_runs() {
    let mut cl = started();
    let fx = apply(&mut cl, evicted("shop", "worker", "eeeee"), T0 + SEC);
    assert_eq!(records(&fx), ["open worker"]);
    let hold = Detect::default().resolve_after_ms;
    // The evicted pod object stays, Failed, with no replacement: open.
    let fx = ticks(&mut cl, T0 + 2 * SEC, T0 + 2 * SEC + hold);
    assert!(!records(&fx).iter().any(|r| r.starts_with("resolved")));
    // The ReplicaSet's replacement runs and is Ready.
    let at = T0 + 3 * SEC + hold;
    let fx = apply(&mut cl, healthy("shop", "worker", "rrrrr"), at);
    assert!(fx.records.is_empty(), "{:?}", records(&fx));
    let fx = ticks(&mut cl, at + SEC, at + hold + SEC);
    assert_eq!(records(&fx), ["resolved worker"]);
    // Another workload's healthy pod would not have done it.
    assert_eq!(cl.open_incidents(), 0);
}

#[test]
fn an_eviction_whose_replacement_already_runs_resolves_too() {
    let mut cl = classifier(false);
    // At start-up the replacement is listed before the evicted pod.
    list(
        &mut cl,
        vec![
            healthy("shop", "worker", "rrrrr"),
            healthy("shop", "other", "ooooo"),
            evicted("shop", "worker", "eeeee"),
            evicted("shop", "lonely", "lllll"),
        ],
        T0,
    );
    assert_eq!(cl.open_incidents(), 2);
    let hold = Detect::default().resolve_after_ms;
    let fx = ticks(&mut cl, T0 + SEC, T0 + hold + 2 * SEC);
    assert_eq!(records(&fx), ["resolved worker"]);
    // `lonely` has no healthy pod of its own: it stays open.
    assert_eq!(cl.open_incidents(), 1);
}

// ------------------------------------------------------------------ silences

fn silenced_until(mut p: PodRecord, until: SilenceUntil) -> PodRecord {
    p.silence_until = Some(until);
    p
}

#[test]
fn a_silenced_pod_is_recorded_but_notified_only_when_its_silence_ends() {
    let mut cl = started();
    let until = T0 + 2 * MIN;
    let pod = silenced_until(crashing("shop", "api", "aaaaa"), SilenceUntil::At(until));
    let fx = apply(&mut cl, pod, T0 + SEC);
    assert_eq!(records(&fx), ["open api"], "still on the record");
    let fx = ticks(&mut cl, T0 + 2 * SEC, until - SEC);
    assert!(fx.jobs.is_empty(), "{:?}", jobs(&fx));
    assert_eq!((fx.silenced, cl.silenced_incidents()), (1, 1));
    assert_eq!(cl.open_incidents(), 1, "still open, still counted");
    let fx = ticks(&mut cl, until, until + 5 * SEC);
    assert_eq!(
        jobs(&fx),
        ["open api"],
        "as new: the sinks never heard of it"
    );
    assert_eq!((fx.silenced, cl.silenced_incidents()), (0, 0));
}

#[test]
fn removing_the_annotation_ends_the_silence_and_a_resolution_unheard_of_stays_unheard() {
    let mut cl = started();
    let far = SilenceUntil::At(T0 + 60 * MIN);
    apply(
        &mut cl,
        silenced_until(crashing("shop", "api", "aaaaa"), far),
        T0 + SEC,
    );
    assert!(ticks(&mut cl, T0 + 2 * SEC, T0 + 10 * SEC).jobs.is_empty());
    let fx = apply(&mut cl, crashing("shop", "api", "aaaaa"), T0 + 20 * SEC);
    assert!(fx.jobs.is_empty());
    let fx = ticks(&mut cl, T0 + 21 * SEC, T0 + 21 * SEC);
    assert_eq!(
        jobs(&fx),
        ["open api"],
        "annotation gone: notified at the next tick"
    );

    // Another workload, silenced, recovers while silenced: nobody is told.
    apply(
        &mut cl,
        silenced_until(crashing("shop", "db", "bbbbb"), far),
        T0 + 30 * SEC,
    );
    let fx = ticks(&mut cl, T0 + 31 * SEC, T0 + 40 * SEC);
    assert_eq!((jobs(&fx).len(), fx.silenced), (0, 1));
    apply(
        &mut cl,
        silenced_until(healthy("shop", "db", "bbbbb"), far),
        T0 + 50 * SEC,
    );
    let hold = Detect::default().resolve_after_ms;
    let fx = ticks(&mut cl, T0 + 51 * SEC, T0 + 50 * SEC + hold + 10 * SEC);
    assert_eq!(records(&fx), ["resolved db"]);
    assert!(fx.jobs.is_empty(), "{:?}", jobs(&fx));
    assert_eq!(cl.silenced_incidents(), 0);
}

#[test]
fn a_told_incident_silenced_later_still_has_its_resolution_sent() {
    let mut cl = started();
    apply(&mut cl, crashing("shop", "api", "aaaaa"), T0 + SEC);
    assert_eq!(
        jobs(&ticks(&mut cl, T0 + 2 * SEC, T0 + 10 * SEC)),
        ["open api"]
    );
    let far = SilenceUntil::At(T0 + 60 * MIN);
    let fx = apply(
        &mut cl,
        silenced_until(healthy("shop", "api", "aaaaa"), far),
        T0 + 20 * SEC,
    );
    assert!(fx.is_empty());
    let hold = Detect::default().resolve_after_ms;
    let fx = ticks(&mut cl, T0 + 21 * SEC, T0 + 20 * SEC + hold + 10 * SEC);
    assert_eq!(jobs(&fx), ["resolved api"], "its thread is closed");
}

#[test]
fn an_annotation_that_is_not_a_time_silences_nothing() {
    let mut cl = started();
    apply(
        &mut cl,
        silenced_until(crashing("shop", "api", "aaaaa"), SilenceUntil::Invalid),
        T0 + SEC,
    );
    let fx = ticks(&mut cl, T0 + 2 * SEC, T0 + 10 * SEC);
    assert_eq!((jobs(&fx), fx.silenced), (vec!["open api".to_string()], 0));
}

#[test]
fn a_silenced_namespace_and_a_maintenance_window_hold_back_their_share_of_a_summary() {
    let window = Silences::parse(&serde_json::json!([{
        "match": {"namespace": "pay", "labels": {"app": "*"}},
        "starts_at": "2030-03-17T17:46:40Z",
        "ends_at": "2030-03-17T18:00:00Z",
        "comment": "payments maintenance"
    }]))
    .unwrap();
    let mut cl = classifier_with(true, window);
    let mut pay = crashing("pay", "api", "ccccc");
    pay.labels = Box::new([("app".into(), "api".into())]);
    list(
        &mut cl,
        vec![
            crashing("lab", "api", "aaaaa"),
            crashing("shop", "api", "bbbbb"),
            pay,
        ],
        T0,
    );
    let ns = |name: &str, until| NamespaceRecord {
        name: name.into(),
        ignore: false,
        silence_until: until,
    };
    let mut fx = cl.handle(Input::Namespaces { event: Event::Init }, T0 + SEC);
    fx.extend(cl.handle(
        Input::Namespaces {
            event: Event::Page(vec![
                ns("lab", Some(SilenceUntil::At(T0 + 20 * MIN))),
                ns("shop", None),
                ns("pay", None),
            ]),
        },
        T0 + SEC,
    ));
    fx.extend(cl.handle(
        Input::Namespaces {
            event: Event::InitDone,
        },
        T0 + SEC,
    ));
    assert_eq!(fx.records.len(), 3, "every incident is on the record");
    assert_eq!(jobs(&fx), ["startup:1"]);
    assert_eq!(fx.jobs[0].alert.items()[0].incident.namespace, "shop");
    assert_eq!(fx.silenced, 2);
    // The window ends at T0 + 800 s (18:00:00Z): pay is notified then.
    let end = T0 + 800 * SEC;
    let fx = ticks(&mut cl, T0 + 2 * SEC, end - SEC);
    assert!(fx.jobs.is_empty(), "{:?}", jobs(&fx));
    let fx = ticks(&mut cl, end, end);
    assert_eq!(jobs(&fx), ["open api"]);
    assert_eq!(fx.jobs[0].alert.items()[0].incident.namespace, "pay");
    // The namespace's annotation is removed: lab is notified at the next tick.
    let fx = cl.handle(
        Input::Namespaces {
            event: Event::Apply(Box::new(ns("lab", None))),
        },
        end + SEC,
    );
    assert!(fx.jobs.is_empty());
    let fx = ticks(&mut cl, end + 2 * SEC, end + 2 * SEC);
    assert_eq!(jobs(&fx), ["open api"]);
    assert_eq!(fx.jobs[0].alert.items()[0].incident.namespace, "lab");
}

/// Nodes: node incidents, and pod failures attached to their node's incident.
mod nodes {
    use super::*;
    use crate::model::{Condition, FailureType};

    const NODE: &str = "ip-10-0-12-34.eu-west-1.compute.internal";

    fn with_nodes() -> Classifier {
        Classifier::new(Config {
            cluster: "edge-1".into(),
            detect: Detect::default(),
            rules: Arc::new(RuleSet::builtin()),
            stream_names: vec!["all namespaces".into()],
            namespaces_watched: false,
            nodes_watched: true,
            silences: Default::default(),
        })
    }

    fn cond(status: Option<bool>, reason: &str, message: &str, since_ms: i64) -> Option<Condition> {
        Some(Condition {
            status,
            reason: Some(reason.into()),
            message: Some(message.into()),
            since: Some(since_ms / 1000),
        })
    }

    fn node_ready() -> NodeRecord {
        NodeRecord::bare(NODE)
    }

    fn node_unknown(since_ms: i64) -> NodeRecord {
        let mut n = node_ready();
        n.ready = cond(
            None,
            "NodeStatusUnknown",
            "Kubelet stopped posting node status.",
            since_ms,
        );
        n
    }

    fn nodes(cl: &mut Classifier, event: Event<NodeRecord>, now: i64) -> Effects {
        cl.handle(Input::Nodes { event }, now)
    }

    fn list_nodes(cl: &mut Classifier, list: Vec<NodeRecord>, now: i64) -> Effects {
        let mut fx = nodes(cl, Event::Init, now);
        fx.extend(nodes(cl, Event::Page(list), now));
        fx.extend(nodes(cl, Event::InitDone, now));
        fx
    }

    /// Ten Deployments with one healthy pod each on `NODE`.
    fn ten() -> Vec<PodRecord> {
        (0..10)
            .map(|i| healthy("shop", &format!("app{i}"), "aaaaa"))
            .collect()
    }

    /// The node controller marks the pods of an unreachable node not Ready.
    fn unready(mut p: PodRecord, since_ms: i64) -> PodRecord {
        p.ready = cond(Some(false), "NodeNotReady", "", since_ms);
        p
    }

    fn started_with(pods: Vec<PodRecord>) -> Classifier {
        let mut cl = with_nodes();
        let mut fx = list(&mut cl, pods, T0);
        assert!(fx.is_empty(), "detection waits for the nodes");
        fx.extend(list_nodes(&mut cl, vec![node_ready()], T0));
        assert!(
            fx.records.is_empty() && fx.jobs.is_empty(),
            "{:?}",
            records(&fx)
        );
        cl
    }

    #[test]
    fn a_heartbeat_that_changes_nothing_kept_is_no_work() {
        let mut cl = started_with(ten());
        let fx = nodes(&mut cl, Event::Apply(Box::new(node_ready())), T0 + SEC);
        assert!(fx.is_empty());
        assert_eq!(cl.nodes_tracked(), 1);
    }

    #[test]
    fn a_node_down_with_ten_workloads_is_one_notification_and_one_resolution() {
        let mut cl = started_with(ten());
        let t1 = T0 + MIN;
        let mut fx = nodes(&mut cl, Event::Apply(Box::new(node_unknown(t1))), t1);
        fx.extend(ticks(&mut cl, t1, t1 + 40 * SEC));
        assert!(fx.jobs.is_empty(), "within the grace: {:?}", jobs(&fx));
        // 40 s later the node controller marks every pod not Ready.
        for p in ten() {
            fx.extend(apply(&mut cl, unready(p, t1 + 40 * SEC), t1 + 40 * SEC));
        }
        // Past both graces (node 60 s, pods 300 s): the pods' incidents open too.
        fx.extend(ticks(&mut cl, t1 + 41 * SEC, t1 + 400 * SEC));
        assert_eq!(jobs(&fx), [format!("open {NODE}")]);
        let Alert::Incident { item, .. } = &fx.jobs[0].alert else {
            panic!("a single incident");
        };
        assert_eq!(item.incident.workload.kind, "Node");
        assert_eq!(item.incident.kind(), FailureType::NodeNotReady);
        assert_eq!(item.incident.affected.len(), 10);
        assert_eq!(
            item.incident.affected_summary().as_deref(),
            Some("10 pods of 10 workloads affected")
        );
        let node_id = item.incident.id;
        // The pods' own records exist, naming the node's cause and incident.
        let pod_opens: Vec<_> = fx
            .records
            .iter()
            .filter(|(t, _)| t.incident.state == State::Open && !t.incident.is_node())
            .collect();
        assert_eq!(pod_opens.len(), 10, "{:?}", records(&fx));
        for (_, d) in &pod_opens {
            let d = d.as_ref().unwrap();
            assert_eq!(d.cause, "node_not_ready");
            assert_eq!(d.node_incident, Some(node_id));
        }
        // Back: Ready again, pods Ready again.
        let t2 = t1 + 500 * SEC;
        let mut fx = nodes(&mut cl, Event::Apply(Box::new(node_ready())), t2);
        for p in ten() {
            fx.extend(apply(&mut cl, p, t2));
        }
        fx.extend(ticks(&mut cl, t2, t2 + 200 * SEC));
        assert_eq!(jobs(&fx), [format!("resolved {NODE}")]);
        let resolved = fx
            .records
            .iter()
            .filter(|(t, _)| t.incident.state == State::Resolved)
            .count();
        assert_eq!(resolved, 11, "the node and its ten workloads");
        assert_eq!(cl.open_incidents(), 0);
    }

    #[test]
    fn a_pod_still_failing_after_its_node_recovers_is_announced_on_its_own() {
        let mut cl = started_with(vec![healthy("shop", "web", "aaaaa")]);
        let t1 = T0 + MIN;
        let mut fx = nodes(&mut cl, Event::Apply(Box::new(node_unknown(t1))), t1);
        fx.extend(apply(
            &mut cl,
            unready(healthy("shop", "web", "aaaaa"), t1),
            t1,
        ));
        fx.extend(ticks(&mut cl, t1, t1 + 310 * SEC));
        assert_eq!(jobs(&fx), [format!("open {NODE}")]);
        // The node comes back; the pod keeps failing (now on its own).
        let t2 = t1 + 320 * SEC;
        let mut fx = nodes(&mut cl, Event::Apply(Box::new(node_ready())), t2);
        fx.extend(ticks(&mut cl, t2, t2 + 200 * SEC));
        assert_eq!(
            jobs(&fx),
            [format!("resolved {NODE}"), "open web".to_string()]
        );
    }

    #[test]
    fn pods_seen_failing_before_their_node_are_attributed_by_an_update_and_not_notified() {
        let mut cl = started_with(vec![healthy("shop", "web", "aaaaa")]);
        let t1 = T0 + MIN;
        // The pod stream is ahead of the node stream: the pod's incident opens first.
        let mut fx = apply(
            &mut cl,
            unready(healthy("shop", "web", "aaaaa"), t1 - 10 * MIN),
            t1,
        );
        assert_eq!(records(&fx), ["open web"]);
        assert_ne!(fx.records[0].1.as_ref().unwrap().cause, "node_not_ready");
        fx = nodes(&mut cl, Event::Apply(Box::new(node_unknown(t1))), t1 + SEC);
        assert_eq!(records(&fx), ["updated web"]);
        assert_eq!(fx.records[0].1.as_ref().unwrap().cause, "node_not_ready");
        let fx = ticks(&mut cl, t1 + SEC, t1 + 90 * SEC);
        assert_eq!(jobs(&fx), [format!("open {NODE}")]);
    }

    #[test]
    fn a_node_back_within_its_grace_opens_nothing_and_holds_nothing() {
        let mut cl = started_with(vec![healthy("shop", "web", "aaaaa")]);
        let t1 = T0 + MIN;
        let mut fx = nodes(&mut cl, Event::Apply(Box::new(node_unknown(t1))), t1);
        fx.extend(ticks(&mut cl, t1, t1 + 30 * SEC));
        fx.extend(nodes(
            &mut cl,
            Event::Apply(Box::new(node_ready())),
            t1 + 31 * SEC,
        ));
        fx.extend(ticks(&mut cl, t1 + 31 * SEC, t1 + 200 * SEC));
        assert!(fx.records.is_empty() && fx.jobs.is_empty());
    }

    fn evicted(deploy: &str, now_ms: i64) -> PodRecord {
        let mut p = pod_of(fixture("evicted-memory"), "shop", deploy, "bbbbb");
        p.message = Some("The node was low on resource: ephemeral-storage.".into());
        if let Some(r) = p.ready.as_mut() {
            r.since = Some(now_ms / 1000);
        }
        p
    }

    #[test]
    fn disk_pressure_evictions_are_one_node_incident_listing_the_evicted_pods() {
        let mut cl = started_with(vec![]);
        let t1 = T0 + MIN;
        let mut n = node_ready();
        n.disk_pressure = cond(
            Some(true),
            "KubeletHasDiskPressure",
            "kubelet has disk pressure",
            t1,
        );
        let mut fx = nodes(&mut cl, Event::Apply(Box::new(n)), t1);
        for d in ["api", "worker", "cache"] {
            fx.extend(apply(&mut cl, evicted(d, t1 + SEC), t1 + SEC));
        }
        fx.extend(ticks(&mut cl, t1, t1 + 30 * SEC));
        assert_eq!(jobs(&fx), [format!("open {NODE}")]);
        let Alert::Incident { item, .. } = &fx.jobs[0].alert else {
            panic!("a single incident");
        };
        assert_eq!(item.incident.kind(), FailureType::NodePressure);
        let listed: Vec<&str> = item
            .incident
            .affected
            .iter()
            .map(|a| a.workload.name.as_str())
            .collect();
        assert_eq!(listed, ["api", "cache", "worker"]);
        assert!(item.incident.affected.iter().all(|a| a.incident.is_some()));
        let d = item.diagnosis.as_ref().unwrap();
        assert_eq!(d.cause, "node_disk_pressure");
        assert!(
            d.evidence[0].contains("kubelet has disk pressure"),
            "{:?}",
            d.evidence
        );
        let pods = fx
            .records
            .iter()
            .filter(|(t, _)| t.incident.kind() == FailureType::Evicted)
            .count();
        assert_eq!(pods, 3, "each evicted workload keeps its record");
    }

    #[test]
    fn an_oom_over_its_limit_on_a_healthy_node_is_its_own_incident() {
        let mut cl = started_with(vec![]);
        let mut fx = apply(
            &mut cl,
            pod_of(fixture("crashloop-oom-lastState"), "shop", "api", "ccccc"),
            T0 + SEC,
        );
        fx.extend(ticks(&mut cl, T0 + SEC, T0 + 10 * SEC));
        assert_eq!(jobs(&fx), ["open api"]);
        let d = fx.records[0].1.as_ref().unwrap();
        assert_eq!(d.cause, "oom_killed");
        assert_eq!(d.node_incident, None);
    }

    #[test]
    fn a_cordon_past_its_grace_is_informational_and_resolves_on_uncordon() {
        let mut cl = started_with(vec![]);
        let t1 = T0 + MIN;
        let mut n = node_ready();
        n.unschedulable = true;
        let mut fx = nodes(&mut cl, Event::Apply(Box::new(n)), t1);
        fx.extend(ticks(&mut cl, t1, t1 + 29 * MIN));
        assert!(fx.jobs.is_empty());
        fx.extend(ticks(&mut cl, t1 + 29 * MIN + SEC, t1 + 31 * MIN));
        assert_eq!(jobs(&fx), [format!("open {NODE}")]);
        assert_eq!(
            fx.records[0].0.incident.severity(),
            crate::model::Severity::Informational
        );
        let t2 = t1 + 40 * MIN;
        let mut fx = nodes(&mut cl, Event::Apply(Box::new(node_ready())), t2);
        fx.extend(ticks(&mut cl, t2, t2 + 3 * MIN));
        assert_eq!(jobs(&fx), [format!("resolved {NODE}")]);
    }

    #[test]
    fn an_unschedulable_diagnosis_names_the_request_no_node_has_room_for() {
        let mut cl = with_nodes();
        let mut small = node_ready();
        small.allocatable.cpu = Some("2".into());
        small.allocatable.memory = Some("8Gi".into());
        let fx = list(&mut cl, vec![], T0);
        assert!(fx.is_empty());
        list_nodes(&mut cl, vec![small], T0);
        let p = pod_of(
            fixture("unschedulable-insufficient-cpu"),
            "shop",
            "big",
            "ddddd",
        );
        let mut fx = apply(&mut cl, p, T0 + SEC);
        fx.extend(ticks(&mut cl, T0 + SEC, T0 + 3 * SEC));
        let (t, d) = &fx.records[0];
        assert_eq!(t.incident.kind(), FailureType::Unschedulable);
        let d = d.as_ref().unwrap();
        assert_eq!(d.cause, "insufficient_cpu");
        assert!(
            d.evidence.iter().any(|e| e
                == &format!("nodes: the pod requests cpu 4; 0 of 1 schedulable nodes have that free (most: 2 on {NODE})")),
            "{:?}",
            d.evidence
        );
    }

    #[test]
    fn a_node_already_down_at_start_up_is_in_the_summary_without_its_pods() {
        let mut cl = with_nodes();
        let t1 = T0 - 10 * MIN;
        let pods: Vec<PodRecord> = ten().into_iter().map(|p| unready(p, t1)).collect();
        let mut fx = list(&mut cl, pods, T0);
        fx.extend(list_nodes(&mut cl, vec![node_unknown(t1)], T0));
        assert_eq!(jobs(&fx), ["startup:1"]);
        let Alert::StartupSummary { items } = &fx.jobs[0].alert else {
            panic!("a summary");
        };
        assert!(items[0].incident.is_node());
        assert_eq!(items[0].incident.affected.len(), 10);
        // One record per incident: the node (listing its pods) and its ten workloads.
        assert_eq!(fx.records.len(), 11, "{:?}", records(&fx));
        let node = fx
            .records
            .iter()
            .find(|(t, _)| t.incident.is_node())
            .unwrap();
        assert_eq!(node.0.incident.state, State::Open);
        assert_eq!(node.0.incident.affected.len(), 10);
    }
}
