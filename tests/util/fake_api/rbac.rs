//! The fake RBAC: an allow-list that guards requests and answers SelfSubjectAccessReviews.

use serde_json::{Value, json};

use super::super::http::Request;
use super::status::ApiError;
use super::{FakeApi, Inner, lock, proto};

/// One allow-list entry of the fake RBAC. `"*"` matches anything; `namespace: None` grants
/// cluster-wide (like a ClusterRoleBinding), `Some(ns)` only inside `ns` (a RoleBinding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsarRule {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: Option<String>,
}

impl SsarRule {
    /// Cluster-wide rule for `verb` on `group`/`resource` (no subresource; see `subresource`).
    pub fn new(verb: &str, group: &str, resource: &str) -> SsarRule {
        SsarRule {
            verb: verb.to_string(),
            group: group.to_string(),
            resource: resource.to_string(),
            subresource: String::new(),
            namespace: None,
        }
    }
    /// Everything, everywhere (the default allow-list).
    pub fn all() -> SsarRule {
        SsarRule::new("*", "*", "*").subresource("*")
    }
    pub fn subresource(mut self, sub: &str) -> SsarRule {
        self.subresource = sub.to_string();
        self
    }
    pub fn in_namespace(mut self, ns: &str) -> SsarRule {
        self.namespace = Some(ns.to_string());
        self
    }
    pub(super) fn matches(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        sub: &str,
        ns: &str,
    ) -> bool {
        let m = |rule: &str, v: &str| rule == "*" || rule == v;
        m(&self.verb, verb)
            && m(&self.group, group)
            && m(&self.resource, resource)
            && m(&self.subresource, sub)
            && match &self.namespace {
                None => true,
                Some(n) => !ns.is_empty() && n == ns,
            }
    }
}

impl FakeApi {
    /// Replace the RBAC allow-list (default: `[SsarRule::all()]`). Applies to requests and
    /// to SelfSubjectAccessReview answers alike.
    pub fn set_rbac(&self, rules: Vec<SsarRule>) {
        *lock(&self.inner.rules) = rules;
    }
}

impl Inner {
    /// Whether the allow-list lets `user` `verb` a core (API group "") `resource`.
    pub(super) fn authorize(
        &self,
        user: &str,
        verb: &str,
        resource: &str,
        sub: &str,
        ns: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        self.allowed(user, verb, &Target::new("", resource, sub, ns, name))
    }

    /// `authorize` for a resource of API group `group` (no subresource).
    pub(super) fn authorize_in(
        &self,
        user: &str,
        verb: &str,
        group: &str,
        resource: &str,
        ns: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        self.allowed(user, verb, &Target::new(group, resource, "", ns, name))
    }

    fn allowed(&self, user: &str, verb: &str, t: &Target) -> Result<(), ApiError> {
        if lock(&self.rules)
            .iter()
            .any(|r| r.matches(verb, t.group, t.resource, t.sub, t.ns))
        {
            return Ok(());
        }
        Err(forbidden(user, verb, t))
    }
}

/// What a request acts on, as RBAC sees it (empty strings: none).
pub(super) struct Target<'a> {
    group: &'a str,
    resource: &'a str,
    sub: &'a str,
    ns: &'a str,
    name: &'a str,
}

impl<'a> Target<'a> {
    pub(super) fn new(
        group: &'a str,
        resource: &'a str,
        sub: &'a str,
        ns: &'a str,
        name: &'a str,
    ) -> Target<'a> {
        Target {
            group,
            resource,
            sub,
            ns,
            name,
        }
    }
}

/// The apiserver's 403 for `user` not allowed to `verb` the target.
pub(super) fn forbidden(user: &str, verb: &str, t: &Target) -> ApiError {
    let full = if t.sub.is_empty() {
        t.resource.to_string()
    } else {
        format!("{}/{}", t.resource, t.sub)
    };
    let qualified = if t.group.is_empty() {
        t.resource.to_string()
    } else {
        format!("{}.{}", t.resource, t.group)
    };
    let subject = if t.name.is_empty() {
        qualified
    } else {
        format!("{qualified} \"{}\"", t.name)
    };
    let scope = if t.ns.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", t.ns)
    };
    let mut details = json!({"kind": t.resource});
    if !t.group.is_empty() {
        details["group"] = json!(t.group);
    }
    if !t.name.is_empty() {
        details["name"] = json!(t.name);
    }
    ApiError::new(
        403,
        format!(
            "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{full}\" in API group \"{}\" {scope}",
            t.group
        ),
    )
    .details(details)
}

pub(super) fn ssar(inner: &Inner, req: &Request) -> Result<Vec<u8>, ApiError> {
    let ctype = req.header("content-type").unwrap_or("application/json");
    let v: Value = if ctype.starts_with("application/vnd.kubernetes.protobuf") {
        // kubectl's typed clients post protobuf; answer in JSON (their Accept allows it).
        proto::decode_ssar(&req.body).ok_or_else(|| {
            ApiError::new(
                400,
                "the body of the request was not a valid protobuf SelfSubjectAccessReview",
            )
        })?
    } else if ctype.starts_with("application/json") {
        serde_json::from_slice(&req.body).map_err(|e| {
            ApiError::new(
                400,
                format!("the body of the request was in an unknown format: {e}"),
            )
        })?
    } else {
        return Err(ApiError::new(
            415,
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/vnd.kubernetes.protobuf (got {ctype})"
            ),
        ));
    };
    let spec = v.get("spec").cloned().unwrap_or_else(|| json!({}));
    let (allowed, reason) = if let Some(ra) = spec.get("resourceAttributes") {
        let g = |k: &str| ra.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (verb, group, resource, sub, ns) = (
            g("verb"),
            g("group"),
            g("resource"),
            g("subresource"),
            g("namespace"),
        );
        let rule = lock(&inner.rules)
            .iter()
            .find(|r| r.matches(&verb, &group, &resource, &sub, &ns))
            .cloned();
        match rule {
            Some(r) => (
                true,
                format!(
                    "RBAC: allowed by fake rule verb={} group={} resource={} subresource={} namespace={}",
                    r.verb,
                    r.group,
                    r.resource,
                    r.subresource,
                    r.namespace.as_deref().unwrap_or("*")
                ),
            ),
            None => (
                false,
                format!("no fake RBAC rule allows {verb} {resource} in {:?}", ns),
            ),
        }
    } else if spec.get("nonResourceAttributes").is_some() {
        (
            true,
            "RBAC: non-resource URLs are allowed for authenticated users".to_string(),
        )
    } else {
        return Err(ApiError::new(
            422,
            "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    };
    let out = json!({
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": spec,
        "status": {"allowed": allowed, "reason": reason}
    });
    Ok(serde_json::to_vec(&out).unwrap_or_default())
}
