/*!
The shipped manifests on the real server, one private copy per test: `kubectl kustomize` renders
the install (with components), the daemon's namespace `opsctrl` becomes the test's own, the
cluster-scoped names get the test's suffix, and the namespaced overlay's example namespaces
`shop` and `payments` become the test's. Nothing else changes: the rules are applied as shipped
(or with one rule taken away, to see `check` say so). Then a token for the daemon's
ServiceAccount comes from the TokenRequest API, as kubelet's projected volume gets it.
*/

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::util::TempDir;
use crate::util::real_api::{Cluster, yaml_to_json};

pub const SA: &str = "opsctrl-daemon";

fn manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests")
}

/// `path` relative to `from` (both absolute).
fn relative(from: &Path, path: &Path) -> PathBuf {
    let f: Vec<_> = from.components().collect();
    let p: Vec<_> = path.components().collect();
    let common = f.iter().zip(&p).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c);
    }
    out
}

/// A kustomization in `dir` of `base` (relative to manifests/) with `components`, the way a
/// user's own kustomization adds them (README, Install on k3s).
pub fn kustomization(dir: &Path, base: &str, components: &[&str]) -> PathBuf {
    let rel = relative(dir, &manifests());
    let mut text = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - {}\n",
        rel.join(base).display()
    );
    if !components.is_empty() {
        text += "components:\n";
        for c in components {
            text += &format!("  - {}\n", rel.join("components").join(c).display());
        }
    }
    std::fs::write(dir.join("kustomization.yaml"), text).expect("write kustomization");
    dir.to_path_buf()
}

/// `kubectl kustomize DIR` as JSON objects.
pub fn render(c: &Cluster, dir: &Path) -> Vec<Value> {
    let out = c.kubectl(&["kustomize", &dir.to_string_lossy()]);
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    yaml_rust2::YamlLoader::load_from_str(&text)
        .expect("kustomize output is YAML")
        .iter()
        .map(yaml_to_json)
        .filter(|v| v.is_object())
        .collect()
}

/// Which install.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Variant {
    /// `manifests/` (ClusterRole).
    Cluster,
    /// `manifests/overlays/namespaced` (a Role per watched namespace).
    Namespaced,
}

/// The daemon's identity, installed from the manifests.
pub struct Install<'a> {
    pub c: &'a Cluster,
    /// The daemon's own namespace (the manifests' `opsctrl`).
    pub ns: String,
    /// The namespaced overlay's watched namespaces (its `shop` and `payments`).
    pub watched: Vec<String>,
    /// The rendered ConfigMap's settings.
    pub settings: Vec<(String, String)>,
}

impl<'a> Install<'a> {
    /// Installs the RBAC objects, ServiceAccount and ConfigMap of `variant` with `components`,
    /// after `edit` (which may take a rule away) has seen every object.
    pub fn new(
        c: &'a Cluster,
        variant: Variant,
        components: &[&str],
        edit: impl Fn(&mut Value),
    ) -> Install<'a> {
        let ns = c.namespace_labelled(
            "opsctrl",
            &json!({"pod-security.kubernetes.io/enforce": "restricted"}),
        );
        let watched = if variant == Variant::Namespaced {
            vec![c.namespace("shop"), c.namespace("payments")]
        } else {
            Vec::new()
        };
        let dir = TempDir::new("realk8s-kustomize");
        let base = match variant {
            Variant::Cluster => ".",
            Variant::Namespaced => "overlays/namespaced",
        };
        let mut objects = render(c, &kustomization(dir.path(), base, components));
        let rename_ns = |n: &str| -> String {
            match n {
                "opsctrl" => ns.clone(),
                "shop" if !watched.is_empty() => watched[0].clone(),
                "payments" if !watched.is_empty() => watched[1].clone(),
                other => other.to_string(),
            }
        };
        let keep = [
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
        ];
        objects.retain(|o| keep.contains(&o["kind"].as_str().unwrap_or("")));
        for o in &mut objects {
            let kind = o["kind"].as_str().unwrap_or("").to_string();
            if let Some(n) = o["metadata"]["namespace"].as_str() {
                o["metadata"]["namespace"] = json!(rename_ns(n));
            }
            if kind.starts_with("Cluster") {
                let n = o["metadata"]["name"].as_str().unwrap_or("").to_string();
                o["metadata"]["name"] = json!(format!("{n}-{ns}"));
            }
            if kind == "ClusterRoleBinding" {
                let n = o["roleRef"]["name"].as_str().unwrap_or("").to_string();
                o["roleRef"]["name"] = json!(format!("{n}-{ns}"));
            }
            if let Some(subjects) = o.get_mut("subjects").and_then(Value::as_array_mut) {
                for s in subjects {
                    if let Some(n) = s["namespace"].as_str() {
                        s["namespace"] = json!(rename_ns(n));
                    }
                }
            }
            if kind == "ConfigMap" {
                if let Some(w) = o["data"]["WATCH_NAMESPACES"].as_str() {
                    let w = w.split(',').map(rename_ns).collect::<Vec<_>>().join(",");
                    o["data"]["WATCH_NAMESPACES"] = json!(w);
                }
            }
            edit(o);
        }
        let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
        let out = c.kubectl_with(
            &c.admin_kubeconfig,
            &["apply", "-f", "-"],
            Some(&list.to_string()),
        );
        assert!(
            out.status.success(),
            "kubectl apply: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            list
        );
        let settings = objects
            .iter()
            .find(|o| o["kind"] == "ConfigMap")
            .and_then(|o| o["data"].as_object())
            .map(|d| {
                d.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Install {
            c,
            ns,
            watched,
            settings,
        }
    }

    /// A token for the daemon's ServiceAccount (TokenRequest), optionally bound to an
    /// object (kind, name, uid) in its namespace.
    pub fn token(&self, bound: Option<(&str, &str, &str)>) -> String {
        let mut spec = json!({"expirationSeconds": 3600});
        if let Some((kind, name, uid)) = bound {
            spec["boundObjectRef"] =
                json!({"kind": kind, "apiVersion": "v1", "name": name, "uid": uid});
        }
        let v = self.c.post(
            &format!("/api/v1/namespaces/{}/serviceaccounts/{SA}/token", self.ns),
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}),
        );
        v["status"]["token"]
            .as_str()
            .expect("TokenRequest answers a token")
            .to_string()
    }

    /// `system:serviceaccount:NS:opsctrl-daemon`
    pub fn username(&self) -> String {
        format!("system:serviceaccount:{}:{SA}", self.ns)
    }

    /// A kubeconfig in `dir` with a fresh token.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let kc = dir.join("daemon.kubeconfig");
        std::fs::write(&kc, self.c.kubeconfig_yaml(&self.token(None))).expect("write kubeconfig");
        kc
    }

    /// The ConfigMap's settings, without the ones the test harness sets itself.
    pub fn env(&self) -> Vec<(String, String)> {
        self.settings
            .iter()
            .filter(|(k, _)| k != "HEALTH_CHECK_PORT" && k != "LOG_LEVEL")
            .cloned()
            .collect()
    }
}

/// Removes `verb` from every rule of the object `kind`/`name` that grants it on `resource`.
pub fn without(kind: &str, resource: &str, verb: &str) -> impl Fn(&mut Value) {
    let (kind, resource, verb) = (kind.to_string(), resource.to_string(), verb.to_string());
    move |o: &mut Value| {
        if o["kind"] != kind.as_str() {
            return;
        }
        for r in o["rules"].as_array_mut().into_iter().flatten() {
            let has = r["resources"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == resource.as_str()));
            if has {
                if let Some(v) = r["verbs"].as_array_mut() {
                    v.retain(|x| x != verb.as_str());
                }
            }
        }
    }
}
