/*!
Which LIST+WATCH streams the settings ask for: one for the whole cluster
(with the excluded namespaces as a field selector) or one per watched
namespace, plus the namespace and node streams when cluster-wide. `run` and `scan`
both plan from here.
*/

use crate::kube::watch::StreamSpec;
use crate::settings::{Scope, Settings};

/// The streams the settings ask for.
pub fn plan_streams(settings: &Settings) -> Vec<StreamSpec> {
    let spec = |id: usize, name: String, path: String, field_selector: Option<String>| StreamSpec {
        id: id as u16,
        name,
        path,
        field_selector,
        label_selector: settings.label_selector.clone(),
        page_size: settings.page_size,
        watch_timeout_s: settings.watch_timeout_s,
        watch_idle: settings.watch_idle,
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

/// Cluster-wide, namespaces are watched too, for their ignore annotation
/// (a namespaced Role cannot read namespace objects, so not in list mode).
pub fn namespace_stream(settings: &Settings, id: usize) -> Option<StreamSpec> {
    matches!(settings.scope, Scope::Cluster { .. }).then(|| StreamSpec {
        id: id as u16,
        name: "namespaces".into(),
        path: "/api/v1/namespaces".into(),
        field_selector: None,
        label_selector: None,
        page_size: settings.page_size,
        watch_timeout_s: settings.watch_timeout_s,
        watch_idle: settings.watch_idle,
    })
}

/// Cluster-wide, nodes are watched too, for node incidents and to tell
/// which pod failures are their node's doing. A namespaced install has no
/// node access (nodes are cluster-scoped): no stream, no node detection.
pub fn node_stream(settings: &Settings, id: usize) -> Option<StreamSpec> {
    matches!(settings.scope, Scope::Cluster { .. }).then(|| StreamSpec {
        id: id as u16,
        name: "nodes".into(),
        path: "/api/v1/nodes".into(),
        field_selector: None,
        label_selector: None,
        page_size: settings.page_size,
        watch_timeout_s: settings.watch_timeout_s,
        // Every node heartbeats every 10 s: a node watch silent for long is
        // as dead as a pod watch.
        watch_idle: settings.watch_idle,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(scope: Scope) -> Settings {
        Settings {
            scope,
            label_selector: Some("app=web".into()),
            page_size: 100,
            ..Settings::default()
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
    fn nodes_are_watched_cluster_wide_only_and_without_the_pod_selector() {
        let s = node_stream(&settings(Scope::Cluster { exclude: vec![] }), 3).unwrap();
        assert_eq!((s.id, s.path.as_str()), (3, "/api/v1/nodes"));
        assert_eq!((s.field_selector, s.label_selector), (None, None));
        assert!(node_stream(&settings(Scope::Namespaces(vec!["a".into()])), 1).is_none());
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
