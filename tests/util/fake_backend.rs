/*!
A fake OpsCtrl backend for the integration tests: plain HTTP/1.1 on 127.0.0.1 (the shared
`super::http` server).

It serves the endpoints the daemon calls (those the original called):
* `POST /clusters` `{externalRefId, clusterName, userEmail}`: registers (or finds) a cluster;
  the backend id is `cl_<n>` (deliberately unlike `clu_…`), the org `org_1`; claimed at once
  when `set_claim_on_register(true)`, else pending.
* `GET /clusters/{externalRefId}`: the record (`isClaimed`, `userEmail`, `id`, `orgId`); 404
  when unknown (see `forget_clusters`).
* `GET /auth/cluster/tokens?clusterId=<backend id>&orgId=`: `[{token}]` with a fresh refresh
  token once the cluster is claimed, `[]` before (or with `set_tokens_available(false)`).
* `POST /auth/cluster/refresh` `{refreshToken, clusterId}`: only for a live refresh token of
  exactly that backend id (so using `clu_…` there fails); rotates the refresh token and issues
  an access token living `set_token_lifetime` seconds. 401 otherwise, and the 401 body echoes
  the token it was given, so tests can check the daemon never logs it.
* `POST /daemon/analyze-stack`: needs `Authorization: Bearer <live access token>`; answers 201
  with `analysis()`. 401 otherwise (also echoing the token).

Controls: `set_claimed`, `revoke_tokens` (every token dies), `fail_next`
(the next N matching requests get a status), and a request log (method, path, query, headers,
body, status) for assertions. `issued_tokens` lists every token ever handed out.
*/

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::fake_api::rand_u64;
use super::http::{self, Action, Request, Response, Server};

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Without the query.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub status: u16,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        http::header(&self.headers, name)
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Clone, Debug)]
pub struct Cluster {
    pub external_ref_id: String,
    pub name: String,
    pub email: String,
    pub id: String,
    pub org_id: String,
    pub claimed: bool,
    pub claimed_by: String,
}

struct Fail {
    method: String,
    path_prefix: String,
    status: u16,
    left: usize,
}

struct State {
    clusters: Vec<Cluster>,
    claim_on_register: bool,
    tokens_available: bool,
    lifetime_secs: u64,
    /// Live refresh tokens → backend cluster id.
    refresh_tokens: HashMap<String, String>,
    /// Live access tokens → expiry.
    access_tokens: HashMap<String, Instant>,
    issued: Vec<String>,
    fails: Vec<Fail>,
    analysis: Value,
    requests: Vec<Recorded>,
    next_id: u64,
}

pub struct FakeBackend {
    server: Server,
    state: Arc<Mutex<State>>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn random_hex() -> String {
    format!("{:016x}", rand_u64())
}

impl FakeBackend {
    pub fn start() -> FakeBackend {
        let state = Arc::new(Mutex::new(State {
            clusters: Vec::new(),
            claim_on_register: false,
            tokens_available: true,
            lifetime_secs: 3600,
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            issued: Vec::new(),
            fails: Vec::new(),
            analysis: json!({
                "stackOverview": {"totalPods": 1, "failingPods": 1, "healthyPods": 0,
                                  "namespace": "shop", "helmRelease": "web"},
                "rootCauseAnalysis": {"primaryCause": "DATABASE_URL is not set", "confidence": 0.9,
                                      "evidence": ["panic: DATABASE_URL missing"]},
                "recommendations": ["Set DATABASE_URL on deployment/web"],
                "analysis": "The container exits at start because DATABASE_URL is missing."
            }),
            requests: Vec::new(),
            next_id: 1,
        }));
        let st = state.clone();
        let server = Server::start(Arc::new(move |req: &Request| serve(&st, req)));
        FakeBackend { server, state }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn set_claim_on_register(&self, on: bool) {
        lock(&self.state).claim_on_register = on;
    }

    /// Marks every registered cluster claimed (by its registering email) or not.
    pub fn set_claimed(&self, claimed: bool) {
        for c in &mut lock(&self.state).clusters {
            c.claimed = claimed;
            c.claimed_by = c.email.clone();
        }
    }

    /// The backend forgets every cluster (GET /clusters/{id} answers 404).
    pub fn forget_clusters(&self) {
        lock(&self.state).clusters.clear();
    }

    pub fn set_tokens_available(&self, on: bool) {
        lock(&self.state).tokens_available = on;
    }

    /// Lifetime (`expiresIn`) of access tokens issued from now on.
    pub fn set_token_lifetime(&self, secs: u64) {
        lock(&self.state).lifetime_secs = secs;
    }

    /// Every refresh and access token stops working.
    pub fn revoke_tokens(&self) {
        let mut s = lock(&self.state);
        s.refresh_tokens.clear();
        s.access_tokens.clear();
    }

    /// The next `n` requests with `method` whose path starts with `path_prefix` get `status`.
    pub fn fail_next(&self, method: &str, path_prefix: &str, n: usize, status: u16) {
        lock(&self.state).fails.push(Fail {
            method: method.into(),
            path_prefix: path_prefix.into(),
            status,
            left: n,
        });
    }

    pub fn analysis(&self) -> Value {
        lock(&self.state).analysis.clone()
    }

    pub fn clusters(&self) -> Vec<Cluster> {
        lock(&self.state).clusters.clone()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state).requests.clone()
    }

    pub fn requests_to(&self, method: &str, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect()
    }

    pub fn count(&self, method: &str, path: &str) -> usize {
        self.requests_to(method, path).len()
    }

    /// Every token value handed out so far (refresh and access).
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.state).issued.clone()
    }

    pub fn live_access_tokens(&self) -> Vec<String> {
        lock(&self.state).access_tokens.keys().cloned().collect()
    }
}

fn serve(state: &Mutex<State>, req: &Request) -> Action {
    let body = String::from_utf8_lossy(&req.body).into_owned();
    let mut s = lock(state);
    let (status, answer) = route(&mut s, req, &body);
    s.requests.push(Recorded {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        headers: req.headers.clone(),
        body,
        status,
    });
    Action::Respond(Response::with_type(
        status,
        "application/json",
        answer.to_string().into_bytes(),
    ))
}

fn cluster_json(c: &Cluster) -> Value {
    json!({
        "id": c.id,
        "externalRefId": c.external_ref_id,
        "clusterName": c.name,
        "userEmail": if c.claimed { &c.claimed_by } else { &c.email },
        "orgId": c.org_id,
        "organization": {"id": c.org_id, "name": "Acme"},
        "isClaimed": c.claimed,
        "claimedAt": if c.claimed { json!("2026-01-01T00:00:00.000Z") } else { Value::Null },
        "createdAt": "2026-01-01T00:00:00.000Z",
        "updatedAt": "2026-01-01T00:00:00.000Z",
    })
}

fn message(status: u16, text: &str) -> (u16, Value) {
    (status, json!({"statusCode": status, "message": text}))
}

fn route(s: &mut State, req: &Request, body: &str) -> (u16, Value) {
    let (path, query) = (req.path.as_str(), req.query.as_slice());
    if let Some(f) = s
        .fails
        .iter_mut()
        .find(|f| f.left > 0 && f.method == req.method && path.starts_with(&f.path_prefix))
    {
        f.left -= 1;
        return message(f.status, "injected failure");
    }
    let json_body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let str_field = |k: &str| json_body.get(k).and_then(Value::as_str).map(str::to_string);
    match (req.method.as_str(), path) {
        ("POST", "/clusters") => {
            let (Some(ext), Some(name), Some(email)) = (
                str_field("externalRefId"),
                str_field("clusterName"),
                str_field("userEmail"),
            ) else {
                return message(400, "externalRefId, clusterName and userEmail are required");
            };
            if let Some(c) = s.clusters.iter().find(|c| c.external_ref_id == ext) {
                return (200, cluster_json(c));
            }
            let c = Cluster {
                external_ref_id: ext,
                name,
                email: email.clone(),
                id: format!("cl_{}", s.next_id),
                org_id: "org_1".into(),
                claimed: s.claim_on_register,
                claimed_by: email,
            };
            s.next_id += 1;
            let answer = cluster_json(&c);
            s.clusters.push(c);
            (201, answer)
        }
        ("GET", p) if p.starts_with("/clusters/") => {
            // (The server percent-decoded the path.)
            let ext = &p["/clusters/".len()..];
            match s.clusters.iter().find(|c| c.external_ref_id == ext) {
                Some(c) => (200, cluster_json(c)),
                None => message(404, "Cluster not found"),
            }
        }
        ("GET", "/auth/cluster/tokens") => {
            let param = |k: &str| query.iter().find(|(qk, _)| qk == k).map(|(_, v)| v.clone());
            let (id, org) = (param("clusterId"), param("orgId"));
            let Some(c) = s
                .clusters
                .iter()
                .find(|c| Some(&c.id) == id.as_ref())
                .cloned()
            else {
                return message(404, "Cluster not found");
            };
            if org.as_ref() != Some(&c.org_id) {
                return message(403, "Organization mismatch");
            }
            if !c.claimed || !s.tokens_available {
                return (200, json!([]));
            }
            let token = format!("rt_{}", random_hex());
            s.refresh_tokens.insert(token.clone(), c.id.clone());
            s.issued.push(token.clone());
            (
                200,
                json!([{"id": "tok_1", "token": token, "createdAt": "2026-01-01T00:00:00.000Z"}]),
            )
        }
        ("POST", "/auth/cluster/refresh") => {
            let (Some(rt), Some(cid)) = (str_field("refreshToken"), str_field("clusterId")) else {
                return message(400, "refreshToken and clusterId are required");
            };
            match s.refresh_tokens.get(&rt) {
                Some(owner) if *owner == cid => {}
                // Echo the token: the daemon must scrub it from anything it logs.
                _ => return message(401, &format!("Invalid refresh token {rt} for {cid}")),
            }
            s.refresh_tokens.remove(&rt);
            let access = format!("at_{}", random_hex());
            let refresh = format!("rt_{}", random_hex());
            let lifetime = s.lifetime_secs;
            s.access_tokens.insert(
                access.clone(),
                Instant::now() + Duration::from_secs(lifetime),
            );
            s.refresh_tokens.insert(refresh.clone(), cid);
            s.issued.push(access.clone());
            s.issued.push(refresh.clone());
            (
                200,
                json!({"accessToken": access, "refreshToken": refresh, "expiresIn": lifetime}),
            )
        }
        ("POST", "/daemon/analyze-stack") => {
            let bearer = req
                .header("authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("")
                .to_string();
            let live = s
                .access_tokens
                .get(&bearer)
                .is_some_and(|exp| Instant::now() < *exp);
            if !live {
                return message(401, &format!("Bearer {bearer} is not valid"));
            }
            if json_body
                .get("primaryPod")
                .and_then(Value::as_str)
                .is_none()
            {
                return message(400, "primaryPod is required");
            }
            (201, s.analysis.clone())
        }
        _ => message(404, &format!("Cannot {} {path}", req.method)),
    }
}
