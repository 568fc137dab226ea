//! The classification step driven with plain values and a fake clock.

use super::*;
use crate::kube::types::Pod;
use crate::model::Owner;

const T0: i64 = 1_900_000_000_000;
const SEC: i64 = 1000;
const MIN: i64 = 60 * SEC;

fn classifier(namespaces_watched: bool) -> Classifier {
    Classifier::new(Config {
        cluster: "edge-1".into(),
        detect: Detect::default(),
        rules: Arc::new(RuleSet::builtin()),
        stream_names: vec!["all namespaces".into()],
        namespaces_watched,
        nodes_watched: false,
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
