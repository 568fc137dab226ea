/*!
`check`: can this identity do its job?

For every permission the daemon needs with the current settings, ask the API
server with a `SelfSubjectAccessReview` and print yes/no; for each no, print
the RBAC change that fixes it, addressed to the right subject (found with a
`SelfSubjectReview` where the server supports it).

The reads (pods, events; namespaces and nodes cluster-wide) are always needed; the rest only when a
setting asks for it: `get pods/log` with `INCLUDE_LOGS` (on by default; the
daemon goes on without logs when it is missing, but `check` says no so that
the grant gets fixed), `create events` with
`EMIT_K8S_EVENTS`, and `get`/`create`/`update` on Leases in the Lease's
namespace with `LEADER_ELECTION`.
*/

use serde::Deserialize;
use serde_json::json;

use crate::kube::client::Client;
use crate::settings::{Scope, Settings};

/// One permission the daemon needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    pub verb: &'static str,
    /// The API group (`""` for core).
    pub group: &'static str,
    pub resource: &'static str,
    /// `log` for `pods/log`; empty for the resource itself.
    pub subresource: &'static str,
    pub namespace: Option<String>,
    /// The one object the daemon uses (the Lease for `get` and `update`), so a rule limited
    /// to it with `resourceNames`, as the manifests' is, answers yes.
    pub name: Option<String>,
    pub why: &'static str,
}

impl Need {
    fn core(
        verb: &'static str,
        resource: &'static str,
        ns: Option<String>,
        why: &'static str,
    ) -> Need {
        Need {
            verb,
            group: "",
            resource,
            subresource: "",
            namespace: ns,
            name: None,
            why,
        }
    }

    /// `pods`, `pods/log`, `leases.coordination.k8s.io`: as kubectl names it.
    pub fn what(&self) -> String {
        let mut s = self.resource.to_string();
        if !self.group.is_empty() {
            s = format!("{s}.{}", self.group);
        }
        if !self.subresource.is_empty() {
            s = format!("{s}/{}", self.subresource);
        }
        s
    }
}

/// What the settings require.
pub fn needs(settings: &Settings) -> Vec<Need> {
    let scopes: Vec<Option<String>> = match &settings.scope {
        Scope::Cluster { .. } => vec![None],
        Scope::Namespaces(list) => list.iter().cloned().map(Some).collect(),
    };
    let mut out = Vec::new();
    if matches!(settings.scope, Scope::Cluster { .. }) {
        for verb in ["list", "watch"] {
            out.push(Need::core(
                verb,
                "namespaces",
                None,
                "read opsctrl.dev/ignore on namespaces",
            ));
        }
        for (verb, why) in [
            ("get", "read a node's facts for a diagnosis"),
            ("list", "list nodes at start-up (node incidents)"),
            (
                "watch",
                "stream node conditions (NotReady, pressure, cordon)",
            ),
        ] {
            out.push(Need::core(verb, "nodes", None, why));
        }
    }
    for ns in scopes {
        for (verb, resource, why) in [
            ("list", "pods", "list pods at start-up and after 410 Gone"),
            ("watch", "pods", "stream pod changes"),
            (
                "list",
                "events",
                "read a failing pod's events for diagnosis",
            ),
        ] {
            out.push(Need::core(verb, resource, ns.clone(), why));
        }
        if settings.diagnosis.include_logs {
            out.push(Need {
                subresource: "log",
                ..Need::core(
                    "get",
                    "pods",
                    ns.clone(),
                    "read the failing container's previous logs (INCLUDE_LOGS)",
                )
            });
        }
        if settings.alerts.emit_k8s_events {
            out.push(Need::core(
                "create",
                "events",
                ns.clone(),
                "write the diagnosis as an Event on the pod (EMIT_K8S_EVENTS)",
            ));
        }
    }
    if let Some(lease) = &settings.leader {
        for verb in ["get", "create", "update"] {
            out.push(Need {
                group: "coordination.k8s.io",
                // RBAC cannot see the name of an object being created.
                name: (verb != "create").then(|| lease.name.clone()),
                ..Need::core(
                    verb,
                    "leases",
                    Some(lease.namespace.clone()),
                    "hold the leader Lease (LEADER_ELECTION)",
                )
            });
        }
    }
    out
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ReviewStatus {
    allowed: bool,
    reason: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Review {
    status: ReviewStatus,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UserInfo {
    username: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SelfStatus {
    #[serde(rename = "userInfo")]
    user_info: UserInfo,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SelfReview {
    status: SelfStatus,
}

/// The `kubectl create …binding` subject flag for a username.
pub fn subject_flag(username: Option<&str>) -> String {
    match username {
        Some(u) => match u.strip_prefix("system:serviceaccount:") {
            Some(sa) => format!("--serviceaccount={sa}"),
            None => format!("--user={u}"),
        },
        None => "--user=<your-user>".into(),
    }
}

/// The commands that grant `need` to the subject (and, for the optional
/// permissions, the manifests' component that carries them).
pub fn fix(need: &Need, subject: &str) -> String {
    // (role name, verbs, resources, the manifests' way)
    let (role, verbs, resources, manifests) = match (need.resource, need.subresource, need.verb) {
        ("pods", "log", _) => (
            "opsctrl-daemon-logs",
            "get",
            "pods/log",
            Some(
                "the default manifests and the Helm chart grant it: re-apply manifests/ \
                 without components/no-logs, or the chart with logs.enabled=true; \
                 or set INCLUDE_LOGS=false to diagnose without logs",
            ),
        ),
        ("events", _, "create") => (
            "opsctrl-daemon-events",
            "create",
            "events",
            Some("with the manifests: enable manifests/components/k8s-events"),
        ),
        ("leases", _, _) => (
            "opsctrl-daemon-leader-election",
            "get,create,update",
            "leases.coordination.k8s.io",
            None,
        ),
        _ => (
            "opsctrl-daemon-read",
            "get,list,watch",
            if need.namespace.is_none() {
                "pods,events,namespaces,nodes"
            } else {
                "pods,events"
            },
            None,
        ),
    };
    let grant = match &need.namespace {
        None => format!(
            "kubectl create clusterrole {role} --verb={verbs} --resource={resources} && \
             kubectl create clusterrolebinding {role} --clusterrole={role} {subject}"
        ),
        Some(ns) => format!(
            "kubectl create role {role} -n {ns} --verb={verbs} --resource={resources} && \
             kubectl create rolebinding {role} -n {ns} --role={role} {subject}"
        ),
    };
    match manifests {
        Some(manifests) => format!("{grant} ({manifests})"),
        None => grant,
    }
}

/// Runs the reviews and prints the report. `Ok(true)` when all are granted.
pub fn run(settings: &Settings, client: &Client) -> Result<bool, String> {
    let who: Option<String> = client
        .post_json::<SelfReview>(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
            "self-subject review",
        )
        .ok()
        .map(|r| r.status.user_info.username)
        .filter(|u| !u.is_empty());
    println!(
        "identity: {} (API server {})",
        who.as_deref()
            .unwrap_or("unknown (SelfSubjectReview not available)"),
        client.server()
    );
    let subject = subject_flag(who.as_deref());
    let mut all = true;
    for need in needs(settings) {
        let mut attrs = json!({"verb": need.verb, "group": need.group, "resource": need.resource});
        if !need.subresource.is_empty() {
            attrs["subresource"] = json!(need.subresource);
        }
        if let Some(ns) = &need.namespace {
            attrs["namespace"] = json!(ns);
        }
        if let Some(name) = &need.name {
            attrs["name"] = json!(name);
        }
        let body = json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs},
        });
        let review: Review = client
            .post_json(
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                &body,
                "access review",
            )
            .map_err(|e| format!("cannot ask the API server ({}): {e}", client.server()))?;
        let place = need
            .namespace
            .as_deref()
            .map_or("all namespaces".to_string(), |n| format!("namespace {n}"));
        let answer = if review.status.allowed { "yes" } else { "no " };
        println!(
            "{answer}  {} {} in {place}  ({})",
            need.verb,
            need.what(),
            need.why
        );
        if !review.status.allowed {
            all = false;
            if !review.status.reason.is_empty() {
                println!("     reason: {}", review.status.reason);
            }
            println!("     fix: {}", fix(&need, &subject));
        }
    }
    if !matches!(settings.scope, Scope::Cluster { .. }) {
        println!(
            "note: node detection is off: with WATCH_NAMESPACES the daemon does not read nodes (they are cluster-scoped, and a namespaced Role cannot grant them), so there are no NodeNotReady/NodePressure/NodeUnschedulable incidents and pod failures are not attributed to their node; a cluster-wide install (manifests/ or the Helm chart's default) has them"
        );
    }
    if all {
        println!("all permissions granted");
    } else {
        println!("some permissions are missing (see fix lines above)");
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    /// The reads alone: INCLUDE_LOGS (on by default) off.
    fn settings(scope: Scope) -> Settings {
        let mut s = Settings {
            scope,
            ..Settings::default()
        };
        s.diagnosis.include_logs = false;
        s
    }

    #[test]
    fn needs_follow_the_watch_scope() {
        let n = needs(&settings(Scope::Cluster { exclude: vec![] }));
        assert_eq!(n.len(), 8);
        assert!(n.iter().all(|n| n.namespace.is_none()));
        for verb in ["get", "list", "watch"] {
            assert!(n.iter().any(|n| n.resource == "nodes" && n.verb == verb));
        }
        assert!(
            n.iter()
                .any(|n| n.resource == "namespaces" && n.verb == "watch")
        );
        let n = needs(&settings(Scope::Namespaces(vec!["a".into(), "b".into()])));
        assert_eq!(n.len(), 6);
        assert_eq!(n[3].namespace.as_deref(), Some("b"));
    }

    #[test]
    fn fixes_name_the_subject_and_the_scope() {
        assert_eq!(
            subject_flag(Some("system:serviceaccount:opsctrl:opsctrl-daemon")),
            "--serviceaccount=opsctrl:opsctrl-daemon"
        );
        assert_eq!(subject_flag(Some("alice")), "--user=alice");
        let need = Need::core("watch", "pods", Some("shop".into()), "");
        let f = fix(&need, "--user=alice");
        assert!(f.contains("kubectl create role opsctrl-daemon-read -n shop"));
        assert!(f.ends_with("--role=opsctrl-daemon-read --user=alice"));
    }

    #[test]
    fn optional_permissions_follow_their_settings() {
        let mut s = settings(Scope::Namespaces(vec!["shop".into()]));
        assert_eq!(needs(&s).len(), 3);
        s.diagnosis.include_logs = true;
        s.alerts.emit_k8s_events = true;
        s.leader = Some(crate::settings::Leader {
            namespace: "opsctrl".into(),
            name: "opsctrl-daemon".into(),
            identity: "pod-a".into(),
        });
        let n = needs(&s);
        let what: Vec<String> = n
            .iter()
            .map(|n| {
                format!(
                    "{} {} {}",
                    n.verb,
                    n.what(),
                    n.namespace.as_deref().unwrap_or("*")
                )
            })
            .collect();
        assert_eq!(
            what,
            [
                "list pods shop",
                "watch pods shop",
                "list events shop",
                "get pods/log shop",
                "create events shop",
                "get leases.coordination.k8s.io opsctrl",
                "create leases.coordination.k8s.io opsctrl",
                "update leases.coordination.k8s.io opsctrl",
            ]
        );
        // get and update name the Lease (the manifests' rule is limited to it); a create
        // cannot be.
        let names: Vec<Option<&str>> = n[5..].iter().map(|n| n.name.as_deref()).collect();
        assert_eq!(
            names,
            [Some("opsctrl-daemon"), None, Some("opsctrl-daemon")]
        );
        assert!(n[..5].iter().all(|n| n.name.is_none()));
        let subject = "--serviceaccount=opsctrl:opsctrl-daemon";
        let logs = fix(&n[3], subject);
        assert!(
            logs.contains(
                "kubectl create role opsctrl-daemon-logs -n shop --verb=get --resource=pods/log"
            ),
            "{logs}"
        );
        assert!(
            logs.contains("without components/no-logs") && logs.contains("INCLUDE_LOGS=false"),
            "{logs}"
        );
        let events = fix(&n[4], subject);
        assert!(
            events.contains("--verb=create --resource=events"),
            "{events}"
        );
        assert!(
            events.contains("manifests/components/k8s-events"),
            "{events}"
        );
        let lease = fix(&n[6], subject);
        assert!(
            lease.contains("kubectl create role opsctrl-daemon-leader-election -n opsctrl --verb=get,create,update --resource=leases.coordination.k8s.io"),
            "{lease}"
        );
    }
}
