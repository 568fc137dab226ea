/*!
`check`: can this identity do its job?

For every permission the daemon needs with the current settings, ask the API
server with a `SelfSubjectAccessReview` and print yes/no; for each no, print
the RBAC change that fixes it, addressed to the right subject (found with a
`SelfSubjectReview` where the server supports it).
*/

use serde::Deserialize;
use serde_json::json;

use crate::kube::client::Client;
use crate::settings::{Scope, Settings};

/// One permission the daemon needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    pub verb: &'static str,
    pub resource: &'static str,
    pub namespace: Option<String>,
    pub why: &'static str,
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
            out.push(Need {
                verb,
                resource: "namespaces",
                namespace: None,
                why: "read opsctrl.dev/ignore on namespaces",
            });
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
            out.push(Need {
                verb,
                resource,
                namespace: ns.clone(),
                why,
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

/// The commands that grant `need` to the subject.
pub fn fix(need: &Need, subject: &str) -> String {
    match &need.namespace {
        None => format!(
            "kubectl create clusterrole opsctrl-daemon-read --verb=get,list,watch --resource=pods,events,namespaces && \
             kubectl create clusterrolebinding opsctrl-daemon-read --clusterrole=opsctrl-daemon-read {subject}"
        ),
        Some(ns) => format!(
            "kubectl create role opsctrl-daemon-read -n {ns} --verb=get,list,watch --resource=pods,events && \
             kubectl create rolebinding opsctrl-daemon-read -n {ns} --role=opsctrl-daemon-read {subject}"
        ),
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
        let mut attrs = json!({"verb": need.verb, "group": "", "resource": need.resource});
        if let Some(ns) = &need.namespace {
            attrs["namespace"] = json!(ns);
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
            need.verb, need.resource, need.why
        );
        if !review.status.allowed {
            all = false;
            if !review.status.reason.is_empty() {
                println!("     reason: {}", review.status.reason);
            }
            println!("     fix: {}", fix(&need, &subject));
        }
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
    use crate::settings::{Reconnect, Settings};
    use std::time::Duration;

    fn settings(scope: Scope) -> Settings {
        Settings {
            scope,
            label_selector: None,
            page_size: 500,
            reconnect: Reconnect {
                enabled: true,
                initial: Duration::from_secs(1),
                max: Duration::from_secs(30),
                multiplier: 2.0,
                max_failures: 5,
            },
            health_port: None,
            log_filter: "info".into(),
            cluster_name: None,
            output: crate::settings::Output::Text,
            detect: crate::settings::Detect::default(),
            diagnosis: Default::default(),
            backend: None,
            alerts: Default::default(),
            leader: None,
        }
    }

    #[test]
    fn needs_follow_the_watch_scope() {
        let n = needs(&settings(Scope::Cluster { exclude: vec![] }));
        assert_eq!(n.len(), 5);
        assert!(n.iter().all(|n| n.namespace.is_none()));
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
        let need = Need {
            verb: "watch",
            resource: "pods",
            namespace: Some("shop".into()),
            why: "",
        };
        let f = fix(&need, "--user=alice");
        assert!(f.contains("kubectl create role opsctrl-daemon-read -n shop"));
        assert!(f.ends_with("--role=opsctrl-daemon-read --user=alice"));
    }
}
