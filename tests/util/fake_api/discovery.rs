//! The discovery documents (`/version`, `/api`, `/apis`, ...) kubectl reads first.

use serde_json::{Value, json};

pub(super) struct Discovery {
    pub(super) version: Vec<u8>,
    pub(super) api: Vec<u8>,
    pub(super) api_v1: Vec<u8>,
    pub(super) apis: Vec<u8>,
    pub(super) authz_group: Vec<u8>,
    pub(super) authz_v1: Vec<u8>,
    pub(super) coord_group: Vec<u8>,
    pub(super) coord_v1: Vec<u8>,
}

impl Discovery {
    pub(super) fn new(port: u16) -> Discovery {
        let b = |v: Value| serde_json::to_vec(&v).unwrap_or_default();
        let authz_gv = json!({"groupVersion": "authorization.k8s.io/v1", "version": "v1"});
        let authz_group = json!({"name": "authorization.k8s.io", "versions": [authz_gv], "preferredVersion": authz_gv});
        let coord_gv = json!({"groupVersion": "coordination.k8s.io/v1", "version": "v1"});
        let coord_group = json!({"name": "coordination.k8s.io", "versions": [coord_gv], "preferredVersion": coord_gv});
        Discovery {
            version: b(json!({
                "major": "1", "minor": "32", "gitVersion": "v1.32.0-fake", "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean", "buildDate": "2024-12-11T00:00:00Z", "goVersion": "go1.23.3", "compiler": "gc",
                "platform": "linux/amd64"
            })),
            api: b(json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": format!("127.0.0.1:{port}")}]})),
            api_v1: b(
                json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                    {"name": "events", "singularName": "event", "namespaced": true, "kind": "Event", "verbs": ["create", "get", "list"], "shortNames": ["ev"]},
                    {"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace", "verbs": ["get", "list", "watch"], "shortNames": ["ns"]},
                    {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod", "verbs": ["get", "list", "watch"], "shortNames": ["po"], "categories": ["all"]},
                    {"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]}
                ]}),
            ),
            apis: b(
                json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [authz_group, coord_group]}),
            ),
            coord_group: b({
                let mut g = coord_group.clone();
                g["kind"] = json!("APIGroup");
                g["apiVersion"] = json!("v1");
                g
            }),
            coord_v1: b(
                json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "coordination.k8s.io/v1", "resources": [
                    {"name": "leases", "singularName": "lease", "namespaced": true, "kind": "Lease",
                     "verbs": ["create", "get", "list", "update"]}
                ]}),
            ),
            authz_group: b({
                let mut g = authz_group.clone();
                g["kind"] = json!("APIGroup");
                g["apiVersion"] = json!("v1");
                g
            }),
            authz_v1: b(
                json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "authorization.k8s.io/v1", "resources": [
                    {"name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview", "namespaced": false,
                     "kind": "SelfSubjectAccessReview", "verbs": ["create"]}
                ]}),
            ),
        }
    }
}
