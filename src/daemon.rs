/*!
`run`: wires the threads together.

- the HTTP endpoint starts first, so probes answer while the rest starts;
- one blocking reader thread per watch stream (`kube::watch::Stream`);
- this thread becomes the classification thread: it alone owns the pod
  store and applies what the readers send, ticking once a second so time-based
  checks do not depend on events arriving.

Shutdown: the signal thread sets the flag and wakes this loop; readers stop
at their next check or are simply left behind when the process exits.
*/

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::thread;
use std::time::Duration;

use crate::kube::client::Client;
use crate::kube::config::ClusterConfig;
use crate::kube::store::{Change, Event, Store};
use crate::kube::watch::{Msg, Stream, StreamSpec};
use crate::metrics::Metrics;
use crate::serve;
use crate::settings::{Scope, Settings};
use crate::shutdown;

/// Events buffered between the readers and the classification thread; a
/// slow classifier makes readers wait (back-pressure) instead of growing memory.
const CHANNEL_CAPACITY: usize = 1024;
const TICK: Duration = Duration::from_secs(1);

/// The streams the settings ask for.
pub fn plan_streams(settings: &Settings) -> Vec<StreamSpec> {
    let spec = |id: usize, name: String, path: String, field_selector: Option<String>| StreamSpec {
        id: id as u16,
        name,
        path,
        field_selector,
        label_selector: settings.label_selector.clone(),
        page_size: settings.page_size,
    };
    match &settings.scope {
        Scope::Cluster { exclude } => {
            let fs = (!exclude.is_empty()).then(|| {
                exclude
                    .iter()
                    .map(|n| format!("metadata.namespace!={n}"))
                    .collect::<Vec<_>>()
                    .join(",")
            });
            vec![spec(0, "all namespaces".into(), "/api/v1/pods".into(), fs)]
        }
        Scope::Namespaces(list) => list
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                spec(
                    i,
                    format!("namespace {ns}"),
                    format!("/api/v1/namespaces/{ns}/pods"),
                    None,
                )
            })
            .collect(),
    }
}

/// How `run` ended.
pub enum Exit {
    /// SIGTERM/SIGINT: exit 0.
    Stopped,
    /// A stream failed with reconnection disabled: exit 1.
    Failed(String),
}

pub fn run(settings: &Settings, cluster: &ClusterConfig) -> Result<Exit, String> {
    let streams = plan_streams(settings);
    let names: Vec<(String, Option<String>)> = streams
        .iter()
        .map(|s| {
            let ns = s
                .path
                .strip_prefix("/api/v1/namespaces/")
                .and_then(|r| r.strip_suffix("/pods"))
                .map(String::from);
            (s.name.clone(), ns)
        })
        .collect();
    let metrics = Arc::new(Metrics::new(&names, settings.reconnect.max_failures));

    if let Some(port) = settings.health_port {
        let addr = serve::start(port, metrics.clone())
            .map_err(|e| format!("cannot serve health endpoint on port {port}: {e}"))?;
        log::info!("health endpoint listening addr={addr}");
    }

    let client = Client::new(cluster).map_err(|e| format!("{}: {e}", cluster.origin))?;
    let (tx, rx) = sync_channel::<Msg>(CHANNEL_CAPACITY);
    let stop = shutdown::install(tx.clone())
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;

    log::info!(
        "starting opsctrl-daemon {} server={} via {} streams={} label_selector={}",
        env!("CARGO_PKG_VERSION"),
        client.server(),
        cluster.origin,
        streams
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        settings.label_selector.as_deref().unwrap_or("-"),
    );

    for spec in streams.iter().cloned() {
        let stream = Stream {
            spec,
            client: client.clone(),
            tx: tx.clone(),
            metrics: metrics.clone(),
            reconnect: settings.reconnect.clone(),
            shutdown: stop.clone(),
        };
        thread::Builder::new()
            .name(format!("watch-{}", stream.spec.id))
            .stack_size(256 * 1024)
            .spawn(move || stream.run())
            .map_err(|e| format!("cannot start watch thread: {e}"))?;
    }
    drop(tx);

    let mut store = Store::new();
    let mut listed = vec![false; streams.len()];
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(Exit::Stopped);
        }
        match rx.recv_timeout(TICK) {
            Ok(Msg::Store { stream, event }) => {
                let n = match &event {
                    Event::Page(p) => p.len() as u64,
                    Event::Apply(_) | Event::Delete(_) => 1,
                    Event::Init | Event::InitDone => 0,
                };
                let done = matches!(event, Event::InitDone);
                let changes = store.apply(stream, event);
                metrics
                    .counters
                    .events_processed
                    .fetch_add(n, Ordering::Relaxed);
                metrics
                    .counters
                    .pods_tracked
                    .store(store.len() as u64, Ordering::Relaxed);
                for c in &changes {
                    match c {
                        Change::Upserted { key, previous } => log::debug!(
                            "pod {} {key}",
                            if previous.is_some() {
                                "updated"
                            } else {
                                "added"
                            }
                        ),
                        Change::Deleted(p) => log::debug!("pod deleted {}", p.key()),
                    }
                }
                if done {
                    let first = !std::mem::replace(&mut listed[stream as usize], true);
                    let name = &streams[stream as usize].name;
                    if first {
                        log::info!(
                            "initial list done stream={name} pods_tracked={}",
                            store.len()
                        );
                    } else {
                        log::info!("relist done stream={name} pods_tracked={}", store.len());
                    }
                }
            }
            Ok(Msg::Fatal(e)) => return Ok(Exit::Failed(e)),
            Ok(Msg::Shutdown) => return Ok(Exit::Stopped),
            // The tick: the loop re-checks the shutdown flag even when no
            // event arrives.
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(Exit::Stopped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Reconnect, Settings};

    fn settings(scope: Scope) -> Settings {
        Settings {
            scope,
            label_selector: Some("app=web".into()),
            page_size: 100,
            reconnect: Reconnect {
                enabled: true,
                initial: Duration::from_secs(1),
                max: Duration::from_secs(30),
                multiplier: 2.0,
                max_failures: 5,
            },
            health_port: None,
            log_filter: "info".into(),
        }
    }

    #[test]
    fn cluster_scope_is_one_stream_with_exclusions_as_a_field_selector() {
        let s = plan_streams(&settings(Scope::Cluster {
            exclude: vec!["kube-system".into(), "kube-public".into()],
        }));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].path, "/api/v1/pods");
        assert_eq!(
            s[0].field_selector.as_deref(),
            Some("metadata.namespace!=kube-system,metadata.namespace!=kube-public")
        );
        assert_eq!(s[0].label_selector.as_deref(), Some("app=web"));
        let s = plan_streams(&settings(Scope::Cluster { exclude: vec![] }));
        assert_eq!(s[0].field_selector, None);
    }

    #[test]
    fn a_namespace_list_is_one_stream_each() {
        let s = plan_streams(&settings(Scope::Namespaces(vec!["a".into(), "b".into()])));
        let paths: Vec<&str> = s.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/api/v1/namespaces/a/pods", "/api/v1/namespaces/b/pods"]
        );
        assert_eq!((s[0].id, s[1].id), (0, 1));
    }
}
