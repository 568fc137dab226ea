//! Routing: one connection's requests, authenticated and authorized, to the handler of their path.

use std::io;

use serde_json::{Value, json};

use super::super::http::{Conn, Request};
use super::events::list_events;
use super::faults::{Block, hang};
use super::ids::new_uid;
use super::leases::{lease_full, list_leases};
use super::list::{list_namespaces, list_nodes, list_pods};
use super::logs::pod_log;
use super::rbac::ssar;
use super::rbac::{Target, forbidden};
use super::status::{ApiError, not_found, not_found_in};
use super::store::Kind;
use super::watch::serve_watch;
use super::{Inner, lock, table};

/// Serve one connection: requests until the client closes, asks to, or the server goes down.
pub(super) fn serve_conn(inner: &Inner, conn: &mut Conn) {
    // The client-certificate user, looked up once after the handshake.
    let mut cert_user: Option<Option<String>> = None;
    while !conn.stale() {
        let req = match conn.read_request() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => {
                if e.kind() == io::ErrorKind::InvalidData {
                    let _ = respond_err(conn, &ApiError::new(400, e.to_string()));
                }
                break;
            }
        };
        let user = cert_user
            .get_or_insert_with(|| {
                conn.peer_certificate().map(|der| {
                    lock(&inner.cert_users)
                        .get(&der)
                        .cloned()
                        .unwrap_or_else(|| "unknown-cert-user".to_string())
                })
            })
            .clone();
        match handle(inner, conn, &req, user) {
            Ok(true) if !req.wants_close() => {}
            Ok(_) => {
                conn.close_notify();
                break;
            }
            Err(_) => break,
        }
    }
}

/// A whole answer with the headers every apiserver answer carries.
fn respond(
    conn: &mut Conn,
    code: u16,
    ctype: &str,
    extra: &[(&str, String)],
    body: &[u8],
) -> io::Result<()> {
    let audit = new_uid();
    let mut headers: Vec<(&str, &str)> = vec![
        ("Audit-Id", &audit),
        ("Cache-Control", "no-cache, private"),
        ("Content-Type", ctype),
    ];
    headers.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
    conn.respond(code, &headers, body)
}

/// An error as a Status object (with Retry-After when it has one).
pub(super) fn respond_err(conn: &mut Conn, e: &ApiError) -> io::Result<()> {
    let extra: Vec<(&str, String)> = e
        .retry_after
        .map(|r| ("Retry-After", r.to_string()))
        .into_iter()
        .collect();
    respond(conn, e.code, "application/json", &extra, &e.body())
}

enum Route<'a> {
    Version,
    Health,
    Api,
    ApiV1,
    Apis,
    AuthzGroup,
    AuthzV1,
    Ssar,
    Pods { ns: Option<&'a str>, watch: bool },
    Pod { ns: &'a str, name: &'a str },
    PodLog { ns: &'a str, name: &'a str },
    Namespaces { watch: bool },
    Namespace(&'a str),
    Nodes { watch: bool },
    Node(&'a str),
    Events { ns: Option<&'a str>, watch: bool },
    CoordGroup,
    CoordV1,
    Leases { ns: Option<&'a str> },
    Lease { ns: &'a str, name: &'a str },
    NotFound,
}

impl Route<'_> {
    fn is_watch(&self) -> bool {
        matches!(
            self,
            Route::Pods { watch: true, .. }
                | Route::Namespaces { watch: true }
                | Route::Nodes { watch: true }
                | Route::Events { watch: true, .. }
        )
    }
    fn is_list(&self) -> bool {
        matches!(
            self,
            Route::Pods { watch: false, .. }
                | Route::Namespaces { watch: false }
                | Route::Nodes { watch: false }
                | Route::Events { watch: false, .. }
                | Route::Leases { .. }
        )
    }
    fn allows(&self, method: &str) -> bool {
        match self {
            Route::Ssar => method == "POST",
            Route::Events {
                ns: Some(_),
                watch: false,
            }
            | Route::Leases { ns: Some(_) } => method == "GET" || method == "POST",
            Route::Lease { .. } => method == "GET" || method == "PUT",
            _ => method == "GET",
        }
    }
    /// The resource `FakeApi::block` rules name, for the routes they can catch.
    fn blockable(&self) -> Option<&'static str> {
        match self {
            Route::Leases { .. } | Route::Lease { .. } => Some("leases"),
            Route::Events { .. } => Some("events"),
            _ => None,
        }
    }
}

fn route<'a>(segs: &[&'a str], watch_param: bool) -> Route<'a> {
    let (watch_path, rest): (bool, Vec<&'a str>) = match segs {
        ["api", "v1", "watch", rest @ ..] => (true, [&["api", "v1"][..], rest].concat()),
        _ => (false, segs.to_vec()),
    };
    let w = watch_path || watch_param;
    match rest.as_slice() {
        ["version"] => Route::Version,
        ["healthz"] | ["readyz"] | ["livez"] => Route::Health,
        ["api"] => Route::Api,
        ["api", "v1"] => Route::ApiV1,
        ["apis"] => Route::Apis,
        ["apis", "authorization.k8s.io"] => Route::AuthzGroup,
        ["apis", "authorization.k8s.io", "v1"] => Route::AuthzV1,
        [
            "apis",
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
        ] => Route::Ssar,
        ["api", "v1", "pods"] => Route::Pods { ns: None, watch: w },
        ["api", "v1", "events"] => Route::Events { ns: None, watch: w },
        ["api", "v1", "namespaces"] => Route::Namespaces { watch: w },
        ["api", "v1", "namespaces", ns] => Route::Namespace(ns),
        ["api", "v1", "nodes"] => Route::Nodes { watch: w },
        ["api", "v1", "nodes", name] => Route::Node(name),
        ["api", "v1", "namespaces", ns, "pods"] => Route::Pods {
            ns: Some(ns),
            watch: w,
        },
        ["api", "v1", "namespaces", ns, "events"] => Route::Events {
            ns: Some(ns),
            watch: w,
        },
        ["api", "v1", "namespaces", ns, "pods", name] => Route::Pod { ns, name },
        ["api", "v1", "namespaces", ns, "pods", name, "log"] => Route::PodLog { ns, name },
        ["apis", "coordination.k8s.io"] => Route::CoordGroup,
        ["apis", "coordination.k8s.io", "v1"] => Route::CoordV1,
        ["apis", "coordination.k8s.io", "v1", "leases"] => Route::Leases { ns: None },
        [
            "apis",
            "coordination.k8s.io",
            "v1",
            "namespaces",
            ns,
            "leases",
        ] => Route::Leases { ns: Some(ns) },
        [
            "apis",
            "coordination.k8s.io",
            "v1",
            "namespaces",
            ns,
            "leases",
            name,
        ] => Route::Lease { ns, name },
        _ => Route::NotFound,
    }
}

/// Serve one request; Ok(false) = close the connection afterwards.
pub(super) fn handle(
    inner: &Inner,
    conn: &mut Conn,
    req: &Request,
    cert_user: Option<String>,
) -> io::Result<bool> {
    let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let route = route(&segs, req.flag("watch"));
    let (watch, list) = (route.is_watch(), route.is_list() && req.method == "GET");

    // Authentication: a verified client certificate, else a known bearer token (the union
    // authenticator: the first one that succeeds wins).
    let user = cert_user.or_else(|| {
        let auth = req.header("authorization")?;
        let (scheme, token) = auth.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && lock(&inner.tokens).iter().any(|t| t == token))
            .then(|| inner.opts.token_user.clone())
    });
    let Some(user) = user else {
        inner.log(req, 401, watch, list, None);
        respond_err(conn, &ApiError::new(401, "Unauthorized"))?;
        return Ok(true);
    };
    let user = user.as_str();

    if !matches!(route, Route::NotFound) && !route.allows(&req.method) {
        let e = ApiError::new(
            405,
            "the server does not allow this method on the requested resource",
        )
        .details(json!({}));
        inner.log(req, 405, watch, list, Some(user));
        respond_err(conn, &e)?;
        return Ok(true);
    }

    if let Some(resource) = route.blockable() {
        match inner.blocked(resource, req.header("authorization")) {
            Some(Block::Status(code)) => {
                let e = ApiError::injected(code, resource, None);
                inner.log(req, e.code, watch, list, Some(user));
                respond_err(conn, &e)?;
                return Ok(true);
            }
            Some(Block::Hang) => {
                hang(inner, conn, resource, req.header("authorization"));
                inner.log(req, 0, watch, list, Some(user));
                return Ok(false);
            }
            None => {}
        }
    }

    if let Route::Pods { ns, watch: true } = route {
        return serve_watch(inner, conn, req, Kind::Pod, ns, user);
    }
    if let Route::Namespaces { watch: true } = route {
        return serve_watch(inner, conn, req, Kind::Namespace, None, user);
    }
    if let Route::Nodes { watch: true } = route {
        return serve_watch(inner, conn, req, Kind::Node, None, user);
    }

    let result: Result<(u16, &str, Vec<u8>), ApiError> = match route {
        Route::Version => Ok((200, "application/json", inner.discovery.version.clone())),
        Route::Health => Ok((200, "text/plain; charset=utf-8", b"ok".to_vec())),
        Route::Api => Ok((200, "application/json", inner.discovery.api.clone())),
        Route::ApiV1 => Ok((200, "application/json", inner.discovery.api_v1.clone())),
        Route::Apis => Ok((200, "application/json", inner.discovery.apis.clone())),
        Route::AuthzGroup => Ok((200, "application/json", inner.discovery.authz_group.clone())),
        Route::AuthzV1 => Ok((200, "application/json", inner.discovery.authz_v1.clone())),
        Route::Ssar => ssar(inner, req).map(|b| (201, "application/json", b)),
        // (Pod watches were served above.)
        Route::Pods { .. } if let Some((code, msg)) = inner.take_list_error() => {
            Err(ApiError::new(code, msg))
        }
        Route::Pods { ns, .. } => match inner.take_list_fault() {
            Some(code) => Err(if code == 403 {
                forbidden(user, "list", &Target::new("", "pods", "", ns.unwrap_or(""), ""))
            } else {
                ApiError::injected(code, "list", None)
            }),
            None => inner
                .authorize(user, "list", "pods", "", ns.unwrap_or(""), "")
                .and_then(|_| list_pods(inner, req, ns))
                .map(|b| (200, "application/json", b)),
        },
        Route::Pod { ns, name } => {
            inner
                .authorize(user, "get", "pods", "", ns, name)
                .and_then(|_| {
                    let obj = lock(&inner.store)
                        .pods
                        .get(&(ns.to_string(), name.to_string()))
                        .cloned();
                    match obj {
                        Some(o) if wants_table(req) => {
                            Ok((200, "application/json", table::pods(&[o], None, None, None)))
                        }
                        Some(o) => Ok((200, "application/json", o.full_json("Pod"))),
                        None => Err(not_found("pods", name)),
                    }
                })
        }
        Route::PodLog { ns, name } => inner
            .authorize(user, "get", "pods", "log", ns, name)
            .and_then(|_| pod_log(inner, req, ns, name))
            .map(|b| (200, "text/plain", b)),
        Route::Namespaces { watch: false } => inner
            .authorize(user, "list", "namespaces", "", "", "")
            .and_then(|_| list_namespaces(inner, req, None))
            .map(|b| (200, "application/json", b)),
        Route::Namespace(ns) => inner
            .authorize(user, "get", "namespaces", "", "", ns)
            .and_then(|_| list_namespaces(inner, req, Some(ns)))
            .map(|b| (200, "application/json", b)),
        Route::Nodes { watch: false } => inner
            .authorize(user, "list", "nodes", "", "", "")
            .and_then(|_| list_nodes(inner, req, None))
            .map(|b| (200, "application/json", b)),
        Route::Node(name) => inner
            .authorize(user, "get", "nodes", "", "", name)
            .and_then(|_| list_nodes(inner, req, Some(name)))
            .map(|b| (200, "application/json", b)),
        Route::Events {
            ns: Some(ns),
            watch: false,
        } if req.method == "POST" => inner
            .authorize(user, "create", "events", "", ns, "")
            .and_then(|_| json_body(req))
            .and_then(|body| lock(&inner.store).create_event(ns, body))
            .map(|v| (201, "application/json", serde_json::to_vec(&v).unwrap_or_default())),
        Route::Events { ns, watch: false } => inner
            .authorize(user, "list", "events", "", ns.unwrap_or(""), "")
            .and_then(|_| list_events(inner, req, ns))
            .map(|b| (200, "application/json", b)),
        Route::CoordGroup => Ok((200, "application/json", inner.discovery.coord_group.clone())),
        Route::CoordV1 => Ok((200, "application/json", inner.discovery.coord_v1.clone())),
        Route::Leases { .. } if req.flag("watch") => Err(ApiError::new(
            405,
            "watching leases is not supported by the fake apiserver",
        )),
        Route::Leases { ns: Some(ns) } if req.method == "POST" => inner
            .authorize_in(user, "create", "coordination.k8s.io", "leases", ns, "")
            .and_then(|_| json_body(req))
            .and_then(|body| lock(&inner.store).create_lease(ns, body))
            .map(|v| (201, "application/json", serde_json::to_vec(&v).unwrap_or_default())),
        Route::Leases { ns } => inner
            .authorize_in(user, "list", "coordination.k8s.io", "leases", ns.unwrap_or(""), "")
            .and_then(|_| list_leases(inner, req, ns))
            .map(|b| (200, "application/json", b)),
        Route::Lease { ns, name } if req.method == "PUT" => inner
            .authorize_in(user, "update", "coordination.k8s.io", "leases", ns, name)
            .and_then(|_| json_body(req))
            .and_then(|body| {
                let sent = body
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if sent != name {
                    return Err(ApiError::new(
                        400,
                        format!("the name of the object ({sent}) does not match the name on the URL ({name})"),
                    ));
                }
                lock(&inner.store).update_lease(ns, body, false)
            })
            .map(|v| (200, "application/json", serde_json::to_vec(&v).unwrap_or_default())),
        Route::Lease { ns, name } => inner
            .authorize_in(user, "get", "coordination.k8s.io", "leases", ns, name)
            .and_then(|_| {
                lock(&inner.store)
                    .leases
                    .get(&(ns.to_string(), name.to_string()))
                    .map(lease_full)
                    .ok_or_else(|| not_found_in("leases", "coordination.k8s.io", name))
            })
            .map(|v| (200, "application/json", serde_json::to_vec(&v).unwrap_or_default())),
        // (Namespace watches were served above.)
        Route::Namespaces { watch: true }
        | Route::Nodes { watch: true }
        | Route::Events { watch: true, .. } => {
            Err(ApiError::new(
                405,
                "watching events is not supported by the fake apiserver",
            ))
        }
        Route::NotFound => Err(ApiError::not_found_path()),
    };
    match result {
        Ok((code, ctype, body)) => {
            inner.log(req, code, watch, list, Some(user));
            respond(conn, code, ctype, &[], &body)?;
        }
        Err(e) => {
            inner.log(req, e.code, watch, list, Some(user));
            respond_err(conn, &e)?;
        }
    }
    Ok(true)
}

/// kubectl's human-readable output asks for server-side printing (`as=Table`). Watches
/// always stream plain objects; kubectl's `-w` without `-o` then prints NAME/AGE only.
pub(super) fn wants_table(req: &Request) -> bool {
    req.header("accept").is_some_and(|a| a.contains("as=Table"))
}

/// A JSON request body, refused like the apiserver refuses what it cannot decode.
fn json_body(req: &Request) -> Result<Value, ApiError> {
    let ctype = req.header("content-type").unwrap_or("");
    if !ctype.starts_with("application/json") {
        return Err(ApiError::new(
            415,
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {ctype:?})"
            ),
        ));
    }
    serde_json::from_slice(&req.body).map_err(|e| {
        ApiError::new(
            400,
            format!("couldn't get version/kind; json parse error: {e}"),
        )
    })
}
