/*!
Proves the fake API server (`util::fake_api`) behaves like a real kube-apiserver, so the
daemon's integration tests and benchmarks mean something: real `kubectl` (token, client
certificate, exec plugin and tokenFile auth; chunked lists; watches; `auth can-i`) plus
raw HTTP checks of resourceVersion, pagination, watch, bookmark, 410, chunk framing and
fault semantics.

`kubectl` must be on PATH: CI installs it, and these tests fail (never skip) without it.
*/

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::fake_api::{Auth, FakeApi, Fault, Options, SsarRule};
use crate::util::{TempDir, pod, wait_until, write_exec_plugin};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// kubectl with an isolated discovery cache; panics clearly when kubectl is missing.
fn kubectl(kubeconfig: &Path, cache: &Path) -> Command {
    let found = Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        matches!(found, Ok(s) if s.success()),
        "kubectl is not on PATH: the fake-apiserver checks need kubectl (v1.32; CI installs it)"
    );
    let mut c = Command::new("kubectl");
    c.arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .arg("--request-timeout=20s");
    c.env_remove("KUBECONFIG");
    c
}

fn run(mut cmd: Command, args: &[&str]) -> Output {
    cmd.args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run kubectl")
}

fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "kubectl output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}

/// GET with the server's token: (status, Retry-After, body).
fn get(api: &FakeApi, path: &str) -> (u16, Option<String>, Value) {
    get_as(api, path, Some(&api.token()))
}

fn get_as(api: &FakeApi, path: &str, token: Option<&str>) -> (u16, Option<String>, Value) {
    let mut req = api.agent().get(format!("{}{path}", api.url()));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let mut resp = req.call().expect("request");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .expect("body");
    (
        status,
        retry,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

/// A watch read line by line through ureq.
struct Watch {
    lines: BufReader<ureq::BodyReader<'static>>,
}

impl Watch {
    fn open(api: &FakeApi, path: &str) -> Watch {
        let resp = api
            .agent()
            .get(format!("{}{path}", api.url()))
            .header("Authorization", format!("Bearer {}", api.token()))
            .call()
            .expect("watch");
        assert_eq!(resp.status().as_u16(), 200, "watch {path}");
        Watch {
            lines: BufReader::new(resp.into_body().into_reader()),
        }
    }
    /// Next event; None at the end of the stream.
    fn next(&mut self) -> Option<Value> {
        let mut l = String::new();
        match self.lines.read_line(&mut l) {
            Ok(0) => None,
            Ok(_) => Some(
                serde_json::from_str(&l)
                    .unwrap_or_else(|e| panic!("watch line is not JSON ({e}): {l:?}")),
            ),
            Err(e) => panic!("watch stream failed: {e}"),
        }
    }
    /// Next event that is not a BOOKMARK.
    fn next_change(&mut self) -> Option<Value> {
        loop {
            let e = self.next()?;
            if e["type"] != "BOOKMARK" {
                return Some(e);
            }
        }
    }
}

fn ev(e: &Value) -> (String, String, String) {
    (
        e["type"].as_str().unwrap_or("").to_string(),
        e["object"]["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        e["object"]["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )
}

/// A raw HTTP/1.1-over-TLS request, to look at the framing itself.
struct Raw {
    r: BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>,
    head: String,
}

impl Raw {
    fn get(api: &FakeApi, path: &str) -> Raw {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        use rustls_pki_types::pem::PemObject;
        roots
            .add(
                rustls_pki_types::CertificateDer::from_pem_slice(api.ca_pem().as_bytes())
                    .expect("CA"),
            )
            .expect("root");
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let conn =
            rustls::ClientConnection::new(Arc::new(cfg), "127.0.0.1".try_into().expect("name"))
                .expect("tls");
        let sock = TcpStream::connect(("127.0.0.1", api.port())).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut s = rustls::StreamOwned::new(conn, sock);
        write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nAccept: application/json\r\n\r\n", api.token()).expect("send");
        s.flush().expect("flush");
        let mut r = BufReader::new(s);
        let mut head = String::new();
        loop {
            let mut l = String::new();
            r.read_line(&mut l).expect("head");
            if l == "\r\n" || l.is_empty() {
                break;
            }
            head += &l;
        }
        Raw { r, head }
    }
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
    /// Next chunk: Ok(Some(data)), Ok(None) for the terminating chunk, Err(bytes got) if the
    /// connection ended inside the chunk.
    fn chunk(&mut self) -> Result<Option<Vec<u8>>, (usize, usize)> {
        let mut size_line = String::new();
        self.r.read_line(&mut size_line).map_err(|_| (0, 0))?;
        let size = usize::from_str_radix(size_line.trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size line {size_line:?}"));
        let mut data = vec![0u8; size];
        let mut got = 0;
        while got < size {
            match self.r.read(&mut data[got..]) {
                Ok(0) | Err(_) => return Err((size, got)),
                Ok(n) => got += n,
            }
        }
        let mut crlf = [0u8; 2];
        self.r.read_exact(&mut crlf).map_err(|_| (size, got))?;
        assert_eq!(&crlf, b"\r\n", "chunk not followed by CRLF");
        if size == 0 { Ok(None) } else { Ok(Some(data)) }
    }
}

fn five_pods(api: &FakeApi, ns: &str) {
    for n in ["a", "b", "c", "d", "e"] {
        api.upsert_pod(pod(ns, &format!("web-{n}")).build());
    }
}

// ---------------------------------------------------------------------------------------------
// kubectl
// ---------------------------------------------------------------------------------------------

#[test]
fn kubectl_lists_pods_with_token_and_client_cert() {
    let api = FakeApi::start();
    let dir = TempDir::new("fake-api-kubectl");
    api.upsert_pod(pod("shop", "cart-7d4b9c8f6d-x2k9p").build());
    api.upsert_pod(
        pod("shop", "api-7d4b9c8f6d-q8w2z")
            .crash_loop(4, 1, "Error")
            .build(),
    );
    api.upsert_pod(
        pod("batch", "etl")
            .pending_unschedulable("0/3 nodes are available: 3 Insufficient cpu.")
            .build(),
    );

    for auth in [Auth::Token, Auth::ClientCert] {
        let kc = api.write_kubeconfig(dir.path(), auth.clone());
        let list = stdout_json(&run(
            kubectl(&kc, &dir.join("cache")),
            &["get", "pods", "-A", "-o", "json"],
        ));
        assert_eq!(
            names(&list),
            ["etl", "api-7d4b9c8f6d-q8w2z", "cart-7d4b9c8f6d-x2k9p"],
            "{auth:?}"
        );
        let api_pod = &list["items"][1];
        assert_eq!(
            api_pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
            "CrashLoopBackOff"
        );
        assert_eq!(api_pod["status"]["containerStatuses"][0]["restartCount"], 4);
    }
    let users: Vec<Option<String>> = api
        .requests()
        .iter()
        .filter(|r| r.list)
        .map(|r| r.user.clone())
        .collect();
    assert!(
        users.contains(&Some(api.client_cert_user())),
        "client-cert user not seen: {users:?}"
    );
    assert!(
        users.contains(&Some(Options::default().token_user)),
        "token user not seen: {users:?}"
    );

    // Human output goes through server-side printing (Table).
    let out = run(
        kubectl(
            &api.write_kubeconfig(dir.path(), Auth::Token),
            &dir.join("cache"),
        ),
        &["get", "pods", "-n", "shop"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("CrashLoopBackOff") && text.contains("0/1") && text.contains("4 ("),
        "{text}"
    );
}

#[test]
fn kubectl_exec_plugin_and_token_file() {
    let api = FakeApi::start();
    let dir = TempDir::new("fake-api-exec");
    api.upsert_pod(pod("default", "one").build());
    let token_file = dir.join("token");
    std::fs::write(&token_file, api.token()).expect("token file");

    let plugin = write_exec_plugin(dir.path(), &token_file);
    let exec = Auth::Exec {
        command: plugin.display().to_string(),
        args: vec![],
        env: vec![("FAKE".into(), "1".into())],
    };
    for auth in [exec, Auth::TokenFile(token_file.clone())] {
        let kc = api.write_kubeconfig(dir.path(), auth.clone());
        let list = stdout_json(&run(
            kubectl(&kc, &dir.join("cache")),
            &["get", "pods", "-o", "json"],
        ));
        assert_eq!(names(&list), ["one"], "{auth:?}");
    }
}

#[test]
fn kubectl_chunked_list_pages_through_with_continue() {
    let api = FakeApi::start();
    let dir = TempDir::new("fake-api-chunk");
    five_pods(&api, "paged");
    api.upsert_pod(pod("other", "not-me").build());
    let kc = api.write_kubeconfig(dir.path(), Auth::Token);
    api.clear_requests();
    let list = stdout_json(&run(
        kubectl(&kc, &dir.join("cache")),
        &["get", "pods", "-n", "paged", "--chunk-size=2", "-o", "json"],
    ));
    assert_eq!(names(&list), ["web-a", "web-b", "web-c", "web-d", "web-e"]);

    let lists: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.list && r.path == "/api/v1/namespaces/paged/pods")
        .collect();
    assert_eq!(lists.len(), 3, "{lists:?}");
    assert!(
        lists
            .iter()
            .all(|r| r.param("limit") == Some("2") && r.status == 200)
    );
    assert_eq!(lists[0].param("continue"), None);
    assert!(lists[1].param("continue").is_some() && lists[2].param("continue").is_some());
    assert_eq!(api.list_count("/api/v1/namespaces/paged/pods"), 3);
}

#[test]
fn kubectl_watch_sees_added_and_modified() {
    let api = FakeApi::start();
    let dir = TempDir::new("fake-api-kwatch");
    api.upsert_pod(pod("w", "first").build());
    let kc = api.write_kubeconfig(dir.path(), Auth::Token);
    let mut child = kubectl(&kc, &dir.join("cache"))
        .args([
            "get",
            "pods",
            "-n",
            "w",
            "-w",
            "--output-watch-events",
            "-o",
            "json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kubectl");
    let seen = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let stdout = child.stdout.take().expect("stdout");
    let seen2 = seen.clone();
    let reader = std::thread::spawn(move || {
        for v in serde_json::Deserializer::from_reader(stdout).into_iter::<Value>() {
            let Ok(v) = v else { break };
            let t = v["type"].as_str().unwrap_or("").to_string();
            let n = v["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            seen2.lock().unwrap().push((t, n));
        }
    });
    let has = |t: &str, n: &str| seen.lock().unwrap().iter().any(|(a, b)| a == t && b == n);
    assert!(
        wait_until(Duration::from_secs(20), || has("ADDED", "first")),
        "initial ADDED not printed"
    );
    assert!(
        api.wait_for_watches(1, Duration::from_secs(20)),
        "kubectl never opened a watch"
    );

    api.upsert_pod(pod("w", "second").build());
    api.modify_pod("w", "first", |p| {
        p["metadata"]["labels"]["touched"] = json!("yes")
    })
    .expect("first exists");
    let ok = wait_until(Duration::from_secs(20), || {
        has("ADDED", "second") && has("MODIFIED", "first")
    });
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    assert!(ok, "kubectl printed {:?}", seen.lock().unwrap());
    assert!(
        wait_until(Duration::from_secs(5), || api.open_watches() == 0),
        "a killed client's watch is noticed and closed"
    );
    let w = api
        .requests()
        .into_iter()
        .find(|r| r.watch)
        .expect("watch request");
    assert_eq!(w.path, "/api/v1/namespaces/w/pods");
    assert!(
        w.param("resourceVersion").is_some_and(|rv| rv != "0"),
        "kubectl watches from its list's rv: {w:?}"
    );
}

#[test]
fn kubectl_reports_unauthorized() {
    let api = FakeApi::start();
    let dir = TempDir::new("fake-api-unauth");
    let kc = api.write_kubeconfig(dir.path(), Auth::Token);
    // Warm kubectl's discovery cache so the failing request is the pod LIST itself, whose
    // Status body kubectl decodes (discovery 401s print a generic "provide credentials").
    stdout_json(&run(
        kubectl(&kc, &dir.join("cache")),
        &["get", "pods", "-o", "json"],
    ));
    api.set_tokens(&["rotated-away"]);
    api.clear_requests();
    let out = run(
        kubectl(&kc, &dir.join("cache")),
        &["get", "pods", "-o", "json"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("You must be logged in to the server (Unauthorized)"),
        "stderr: {err}"
    );
    assert!(
        api.requests()
            .iter()
            .all(|r| r.status == 401 && r.user.is_none())
    );

    let cold = run(kubectl(&kc, &dir.join("cold-cache")), &["get", "pods"]);
    assert!(!cold.status.success());
    assert!(String::from_utf8_lossy(&cold.stderr).contains("You must be logged in to the server"));
}

#[test]
fn kubectl_auth_can_i_follows_the_allow_list() {
    let api = FakeApi::start();
    let dir = TempDir::new("fake-api-cani");
    let kc = api.write_kubeconfig(dir.path(), Auth::Token);
    api.set_rbac(vec![
        SsarRule::new("list", "", "pods").in_namespace("team-a"),
        SsarRule::new("watch", "", "pods").in_namespace("team-a"),
        SsarRule::new("get", "", "pods").subresource("log"),
    ]);
    let can = |args: &[&str]| {
        let mut a = vec!["auth", "can-i"];
        a.extend_from_slice(args);
        let out = run(kubectl(&kc, &dir.join("cache")), &a);
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success(), text)
    };
    assert!(can(&["list", "pods", "-n", "team-a"]).0);
    assert!(can(&["watch", "pods", "-n", "team-a"]).0);
    let (ok, text) = can(&["list", "pods", "-n", "team-b"]);
    assert!(!ok && text.starts_with("no"), "{text}");
    assert!(!can(&["list", "pods", "-A"]).0);
    assert!(can(&["get", "pods", "--subresource=log", "-n", "anywhere"]).0);

    // The same list-guards real requests: 403 with the RBAC message.
    let out = run(
        kubectl(&kc, &dir.join("cache")),
        &["get", "pods", "-n", "team-b", "-o", "json"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("Forbidden")
            && err.contains("cannot list resource \"pods\""),
        "{err}"
    );
    let (status, _, body) = get(&api, "/api/v1/pods");
    assert_eq!(status, 403);
    assert_eq!(body["reason"], "Forbidden");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with("at the cluster scope"),
        "{body}"
    );
    assert_eq!(get(&api, "/api/v1/namespaces/team-a/pods").0, 200);
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP: auth, errors, LIST
// ---------------------------------------------------------------------------------------------

#[test]
fn unauthorized_and_errors_are_status_objects() {
    let api = FakeApi::start();
    let resp = api
        .agent()
        .get(format!("{}/api/v1/pods", api.url()))
        .call()
        .expect("request");
    assert_eq!(resp.status().as_u16(), 401);
    let body = resp.into_body().read_to_string().expect("body");
    assert_eq!(
        body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
    );
    assert_eq!(get_as(&api, "/api/v1/pods", Some("wrong")).0, 401);

    // Token rotation: only the current set is accepted.
    let old = api.token();
    api.set_tokens(&["new-token", "second"]);
    assert_eq!(get_as(&api, "/api/v1/pods", Some(&old)).0, 401);
    assert_eq!(get_as(&api, "/api/v1/pods", Some("second")).0, 200);
    assert_eq!(api.token(), "new-token");

    let (s, _, b) = get(&api, "/apis/apps/v1/deployments");
    assert_eq!(
        (s, b["reason"].as_str(), b["code"].as_u64()),
        (404, Some("NotFound"), Some(404))
    );
    let (s, _, b) = get(&api, "/api/v1/namespaces/x/pods/nope");
    assert_eq!(
        (s, b["message"].as_str()),
        (404, Some("pods \"nope\" not found"))
    );
    assert_eq!(b["details"], json!({"name": "nope", "kind": "pods"}));
    let (s, _, b) = get(&api, "/api/v1/pods?fieldSelector=spec.containers.image%3Dx");
    assert_eq!((s, b["reason"].as_str()), (400, Some("BadRequest")));
    assert_eq!(
        b["message"],
        "field label not supported: spec.containers.image"
    );
    assert_eq!(get(&api, "/api/v1/pods?labelSelector=a%20in%20(b").0, 400);
    assert_eq!(get(&api, "/version").2["minor"], "32");
}

#[test]
fn resource_versions_uids_and_the_request_log() {
    let api = FakeApi::start();
    let rv0 = api.resource_version();
    let rv1 = api.upsert_pod(pod("ns", "p").uid("").build());
    assert_eq!(rv1, rv0 + 1);
    let first = api.get_pod("ns", "p").unwrap();
    assert_eq!(first["metadata"]["resourceVersion"], rv1.to_string());
    assert_eq!(
        (first["kind"].as_str(), first["apiVersion"].as_str()),
        (Some("Pod"), Some("v1"))
    );
    let uid = first["metadata"]["uid"].as_str().unwrap().to_string();
    assert_eq!(uid.len(), 36);

    let mut updated = first.clone();
    updated["metadata"].as_object_mut().unwrap().remove("uid");
    let rv2 = api.upsert_pod(updated);
    assert_eq!(rv2, rv1 + 1);
    assert_eq!(
        api.get_pod("ns", "p").unwrap()["metadata"]["uid"],
        uid.as_str(),
        "an update keeps the uid"
    );

    let (_, _, list) = get(&api, "/api/v1/namespaces/ns/pods");
    assert_eq!(list["metadata"]["resourceVersion"], rv2.to_string());
    assert!(
        list["items"][0].get("kind").is_none(),
        "list items carry no kind, like the real server"
    );
    assert_eq!(list["kind"], "PodList");

    let mut w = Watch::open(
        &api,
        &format!("/api/v1/namespaces/ns/pods?watch=1&resourceVersion={rv2}"),
    );
    let rv3 = api.delete_pod("ns", "p").unwrap();
    let e = w.next_change().unwrap();
    assert_eq!(ev(&e), ("DELETED".into(), "p".into(), rv3.to_string()));
    assert_eq!(e["object"]["metadata"]["uid"], uid.as_str());
    assert_eq!(api.pod_count(), 0);
    assert_eq!(api.delete_pod("ns", "p"), None);

    assert_eq!(api.list_count("/api/v1/namespaces/ns/pods"), 1);
    assert_eq!(api.watch_count(), 1);
    assert!(
        api.requests()
            .iter()
            .any(|r| r.watch && r.param("resourceVersion") == Some(&*rv2.to_string()))
    );
}

#[test]
fn list_pagination_is_a_consistent_snapshot() {
    let api = FakeApi::start();
    five_pods(&api, "p");
    let (s, _, page1) = get(&api, "/api/v1/namespaces/p/pods?limit=2");
    assert_eq!(s, 200);
    assert_eq!(names(&page1), ["web-a", "web-b"]);
    assert_eq!(page1["metadata"]["remainingItemCount"], 3);
    let snap = page1["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let token = page1["metadata"]["continue"].as_str().unwrap().to_string();

    // Changes after the first page do not leak into the following pages.
    api.delete_pod("p", "web-c");
    api.modify_pod("p", "web-d", |v| {
        v["metadata"]["labels"]["changed"] = json!("true")
    });
    api.upsert_pod(pod("p", "web-bb").build());
    let (_, _, page2) = get(
        &api,
        &format!("/api/v1/namespaces/p/pods?limit=2&continue={token}"),
    );
    assert_eq!(names(&page2), ["web-c", "web-d"]);
    assert_eq!(page2["metadata"]["resourceVersion"], snap.as_str());
    assert!(
        page2["items"][1]["metadata"]["labels"]
            .get("changed")
            .is_none(),
        "page 2 shows web-d as of the snapshot"
    );
    let token2 = page2["metadata"]["continue"].as_str().unwrap().to_string();
    let (_, _, page3) = get(
        &api,
        &format!("/api/v1/namespaces/p/pods?limit=2&continue={token2}"),
    );
    assert_eq!(names(&page3), ["web-e"]);
    assert!(page3["metadata"].get("continue").is_none());

    // continue + resourceVersion is rejected; resourceVersion=0 is served whole (watch cache).
    let (s, _, b) = get(
        &api,
        &format!("/api/v1/namespaces/p/pods?limit=2&continue={token}&resourceVersion={snap}"),
    );
    assert_eq!((s, b["reason"].as_str()), (400, Some("BadRequest")));
    let (_, _, all) = get(&api, "/api/v1/namespaces/p/pods?limit=2&resourceVersion=0");
    assert_eq!(names(&all).len(), 5);
    assert!(all["metadata"].get("continue").is_none());
    // Exact reads at an older version, too.
    let (_, _, exact) = get(
        &api,
        &format!("/api/v1/namespaces/p/pods?resourceVersion={snap}&resourceVersionMatch=Exact"),
    );
    assert_eq!(names(&exact), ["web-a", "web-b", "web-c", "web-d", "web-e"]);

    // After compaction the token has expired.
    api.compact();
    let (s, _, b) = get(
        &api,
        &format!("/api/v1/namespaces/p/pods?limit=2&continue={token2}"),
    );
    assert_eq!(
        (s, b["reason"].as_str(), b["code"].as_u64()),
        (410, Some("Expired"), Some(410))
    );
    let (s, _, _) = get(
        &api,
        &format!("/api/v1/namespaces/p/pods?resourceVersion={snap}&resourceVersionMatch=Exact"),
    );
    assert_eq!(s, 410);
    assert_eq!(
        get(&api, "/api/v1/namespaces/p/pods?continue=garbage").0,
        400
    );
}

#[test]
fn selectors_filter_lists_and_watches() {
    let api = FakeApi::start();
    api.upsert_pod(pod("a", "web-1").label("tier", "front").build());
    api.upsert_pod(
        pod("a", "db-1")
            .label("tier", "back")
            .node("worker-2")
            .crash_loop(3, 1, "Error")
            .build(),
    );
    api.upsert_pod(
        pod("b", "web-2")
            .label("tier", "front")
            .pending_unschedulable("no nodes")
            .build(),
    );
    let q = |sel: &str| names(&get(&api, &format!("/api/v1/pods?{sel}")).2);
    assert_eq!(q("labelSelector=tier%3Dfront"), ["web-1", "web-2"]);
    assert_eq!(q("labelSelector=tier!%3Dfront"), ["db-1"]);
    assert_eq!(q("labelSelector=tier%20in%20(back,x),app"), ["db-1"]);
    assert_eq!(q("labelSelector=!tier").len(), 0);
    assert_eq!(q("fieldSelector=status.phase!%3DRunning"), ["web-2"]);
    assert_eq!(q("fieldSelector=spec.nodeName%3Dworker-2"), ["db-1"]);
    assert_eq!(
        q("fieldSelector=metadata.namespace%3Da,metadata.name%3Dweb-1"),
        ["web-1"]
    );
    assert_eq!(q("fieldSelector=metadata.namespace!%3Da"), ["web-2"]);

    // A pod leaving the selection is DELETED for that watch, coming back is ADDED.
    let rv = api.resource_version();
    let mut w = Watch::open(
        &api,
        &format!("/api/v1/pods?watch=true&labelSelector=tier%3Dfront&resourceVersion={rv}"),
    );
    api.modify_pod("a", "db-1", |p| p["metadata"]["labels"]["x"] = json!("1")); // never matches: no event
    let rv_out = api
        .modify_pod("a", "web-1", |p| {
            p["metadata"]["labels"]["tier"] = json!("gone")
        })
        .unwrap();
    api.modify_pod("a", "web-1", |p| {
        p["metadata"]["labels"]["tier"] = json!("front")
    });
    api.modify_pod("b", "web-2", |p| p["metadata"]["labels"]["y"] = json!("2"));
    let out = w.next_change().unwrap();
    assert_eq!(
        ev(&out),
        ("DELETED".into(), "web-1".into(), rv_out.to_string())
    );
    assert_eq!(
        out["object"]["metadata"]["labels"]["tier"], "front",
        "DELETED carries the last matching state"
    );
    assert_eq!(ev(&w.next_change().unwrap()).0, "ADDED");
    assert_eq!(
        ev(&w.next_change().unwrap()),
        (
            "MODIFIED".into(),
            "web-2".into(),
            api.resource_version().to_string()
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP: WATCH
// ---------------------------------------------------------------------------------------------

#[test]
fn watch_replays_history_then_goes_live() {
    let api = FakeApi::start();
    api.upsert_pod(pod("h", "one").build());
    let from = api.resource_version();
    api.upsert_pod(pod("h", "two").build());
    api.modify_pod("h", "one", |p| p["status"]["phase"] = json!("Failed"));

    // No resourceVersion: synthetic ADDED for the current state, then live events.
    let mut all = Watch::open(&api, "/api/v1/namespaces/h/pods?watch=true");
    let mut w = Watch::open(
        &api,
        &format!("/api/v1/namespaces/h/pods?watch=true&resourceVersion={from}"),
    );
    let a = ev(&w.next().unwrap());
    let b = ev(&w.next().unwrap());
    assert_eq!((a.0.as_str(), a.1.as_str()), ("ADDED", "two"));
    assert_eq!((b.0.as_str(), b.1.as_str()), ("MODIFIED", "one"));
    assert!(a.2.parse::<u64>().unwrap() < b.2.parse::<u64>().unwrap());
    let initial: Vec<_> = (0..2).map(|_| ev(&all.next().unwrap())).collect();
    assert!(initial.iter().all(|e| e.0 == "ADDED"));
    assert_eq!(
        initial.iter().map(|e| e.1.as_str()).collect::<Vec<_>>(),
        ["one", "two"]
    );

    let rv = api.upsert_pod(pod("h", "three").build());
    assert_eq!(
        ev(&w.next().unwrap()),
        ("ADDED".into(), "three".into(), rv.to_string())
    );
    assert_eq!(ev(&all.next().unwrap()).1, "three");
    let e = api.get_pod("h", "three").unwrap();
    assert_eq!(e["metadata"]["resourceVersion"], rv.to_string());
}

#[test]
fn watch_from_compacted_rv_gets_an_error_410_event_or_http_410() {
    let api = FakeApi::start();
    api.upsert_pod(pod("c", "one").build());
    let old = api.resource_version();
    api.upsert_pod(pod("c", "two").build());
    api.compact();
    let now = api.resource_version();

    let mut raw = Raw::get(
        &api,
        &format!("/api/v1/pods?watch=true&resourceVersion={old}"),
    );
    assert!(raw.head.starts_with("HTTP/1.1 200"), "{}", raw.head);
    let line = raw.chunk().unwrap().unwrap();
    let e: Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(
        e,
        json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": format!("too old resource version: {old} ({now})"), "reason": "Expired", "code": 410}})
    );
    assert_eq!(
        raw.chunk(),
        Ok(None),
        "the stream ends after the ERROR event"
    );

    // Watching from the compaction point itself is fine.
    let mut w = Watch::open(
        &api,
        &format!("/api/v1/pods?watch=true&resourceVersion={now}"),
    );
    api.upsert_pod(pod("c", "three").build());
    assert_eq!(ev(&w.next().unwrap()).1, "three");

    api.set_expired_watch_as_http_410(true);
    let (s, _, b) = get(
        &api,
        &format!("/api/v1/pods?watch=true&resourceVersion={old}"),
    );
    assert_eq!((s, b["reason"].as_str()), (410, Some("Expired")));
}

#[test]
fn bookmarks_carry_the_current_resource_version() {
    let api = FakeApi::start_with(Options {
        bookmark_interval: Duration::from_millis(200),
        ..Options::default()
    });
    api.upsert_pod(pod("bm", "one").build());
    let rv = api.resource_version();
    let mut w = Watch::open(
        &api,
        &format!("/api/v1/pods?watch=true&allowWatchBookmarks=true&resourceVersion={rv}"),
    );
    let b = w.next().unwrap();
    assert_eq!(b["type"], "BOOKMARK");
    assert_eq!(b["object"]["kind"], "Pod");
    assert_eq!(b["object"]["metadata"]["resourceVersion"], rv.to_string());
    let rv2 = api.upsert_pod(pod("other", "two").build());
    assert_eq!(ev(&w.next().unwrap()).2, rv2.to_string());
    let b = w.next().unwrap();
    assert_eq!(
        (
            b["type"].as_str(),
            b["object"]["metadata"]["resourceVersion"].as_str()
        ),
        (Some("BOOKMARK"), Some(&*rv2.to_string()))
    );

    // Without allowWatchBookmarks: no bookmarks.
    let mut quiet = Raw::get(&api, "/api/v1/pods?watch=true&timeoutSeconds=1");
    let first = quiet.chunk().unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("ADDED"));
    assert!(quiet.chunk().unwrap().is_some()); // the second pod
    assert_eq!(quiet.chunk(), Ok(None));
}

#[test]
fn watch_framing_and_timeouts_are_real_chunked_http() {
    let api = FakeApi::start_with(Options {
        max_watch_timeout: Duration::from_secs(1),
        ..Options::default()
    });
    five_pods(&api, "f");
    let started = Instant::now();
    let mut raw = Raw::get(&api, "/api/v1/namespaces/f/pods?watch=1&timeoutSeconds=30");
    assert!(raw.head.starts_with("HTTP/1.1 200 OK\r\n"));
    assert_eq!(raw.header("transfer-encoding").as_deref(), Some("chunked"));
    assert_eq!(
        raw.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(raw.header("content-length"), None);
    let mut n = 0;
    while let Some(chunk) = raw.chunk().expect("complete chunks") {
        // Exactly one JSON event per chunk, newline-terminated.
        assert_eq!(chunk.iter().filter(|b| **b == b'\n').count(), 1);
        assert_eq!(chunk.last(), Some(&b'\n'));
        let e: Value = serde_json::from_slice(&chunk).unwrap();
        assert_eq!(e["type"], "ADDED");
        n += 1;
    }
    let took = started.elapsed();
    assert_eq!(n, 5);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "server cap ends it after ~1 s: {took:?}"
    );

    // The connection stays usable after a cleanly ended watch (keep-alive).
    let s = raw.r.get_mut();
    write!(
        s,
        "GET /version HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        api.token()
    )
    .unwrap();
    s.flush().unwrap();
    let mut status = String::new();
    raw.r.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");

    // timeoutSeconds below the cap wins.
    let api2 = FakeApi::start();
    let t = Instant::now();
    let mut w = Watch::open(&api2, "/api/v1/pods?watch=true&timeoutSeconds=1");
    assert!(w.next().is_none());
    assert!(t.elapsed() >= Duration::from_millis(900) && t.elapsed() < Duration::from_secs(5));
}

#[test]
fn close_mid_chunk_truncates_the_stream() {
    let api = FakeApi::start();
    let mut raw = Raw::get(&api, "/api/v1/pods?watch=true");
    assert!(api.wait_for_watches(1, Duration::from_secs(5)));
    api.inject(Fault::CloseWatchesMidChunk);
    match raw.chunk() {
        Err((size, got)) => assert!(size > 0 && got < size, "size {size}, got {got}"),
        other => panic!("expected a truncated chunk, got {other:?}"),
    }
    assert!(wait_until(Duration::from_secs(5), || api.open_watches() == 0));
}

#[test]
fn garbage_gone_and_end_faults_hit_open_watches() {
    let api = FakeApi::start();
    let mut raw = Raw::get(&api, "/api/v1/pods?watch=true");
    let mut w = Watch::open(&api, "/api/v1/pods?watch=true");
    assert!(api.wait_for_watches(2, Duration::from_secs(5)));

    api.inject(Fault::GarbageLine);
    let garbage = raw.chunk().unwrap().unwrap();
    assert!(
        serde_json::from_slice::<Value>(&garbage).is_err(),
        "{}",
        String::from_utf8_lossy(&garbage)
    );
    assert!(garbage.ends_with(b"\n"));
    let mut l = String::new();
    w.lines.read_line(&mut l).unwrap();
    assert!(serde_json::from_str::<Value>(&l).is_err());
    api.upsert_pod(pod("g", "after-garbage").build());
    assert_eq!(
        ev(&w.next().unwrap()).1,
        "after-garbage",
        "the stream goes on after garbage"
    );
    assert!(raw.chunk().unwrap().is_some());

    api.inject(Fault::WatchErrorGone);
    let e = w.next().unwrap();
    assert_eq!(
        (
            e["type"].as_str(),
            e["object"]["code"].as_u64(),
            e["object"]["reason"].as_str()
        ),
        (Some("ERROR"), Some(410), Some("Expired"))
    );
    assert!(w.next().is_none());
    let e: Value = serde_json::from_slice(&raw.chunk().unwrap().unwrap()).unwrap();
    assert_eq!(e["type"], "ERROR");
    assert_eq!(raw.chunk(), Ok(None));

    let mut w2 = Watch::open(&api, "/api/v1/pods?watch=true&resourceVersion=0");
    assert_eq!(ev(&w2.next().unwrap()).0, "ADDED");
    assert!(api.wait_for_watches(1, Duration::from_secs(5)));
    api.inject(Fault::EndWatches);
    assert!(w2.next().is_none(), "EndWatches closes cleanly");
}

#[test]
fn status_faults_are_one_shot_and_429_carries_retry_after() {
    let api = FakeApi::start();
    api.inject(Fault::WatchStatus(429, Some(7)));
    let (s, retry, b) = get(&api, "/api/v1/pods?watch=true");
    assert_eq!(
        (s, retry.as_deref(), b["reason"].as_str()),
        (429, Some("7"), Some("TooManyRequests"))
    );
    assert_eq!(b["details"]["retryAfterSeconds"], 7);
    Watch::open(&api, "/api/v1/pods?watch=true&timeoutSeconds=1"); // consumed: next one is fine

    api.inject(Fault::ListStatus(500));
    api.inject(Fault::ListStatus(403));
    let (s, _, b) = get(&api, "/api/v1/pods");
    assert_eq!((s, b["reason"].as_str()), (500, Some("InternalError")));
    let (s, _, b) = get(&api, "/api/v1/namespaces/x/pods");
    assert_eq!((s, b["reason"].as_str()), (403, Some("Forbidden")));
    assert_eq!(get(&api, "/api/v1/pods").0, 200);

    api.inject(Fault::WatchStatus(410, None));
    let (s, _, b) = get(&api, "/api/v1/pods?watch=true&resourceVersion=5");
    assert_eq!((s, b["reason"].as_str()), (410, Some("Expired")));

    api.inject_persistent(Fault::ListStatus(503));
    assert_eq!(get(&api, "/api/v1/pods").0, 503);
    assert_eq!(get(&api, "/api/v1/pods").0, 503);
    api.clear_faults();
    assert_eq!(get(&api, "/api/v1/pods").0, 200);
    let statuses: Vec<u16> = api
        .requests()
        .iter()
        .filter(|r| r.list)
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [500, 403, 200, 503, 503, 200]);
}

#[test]
fn go_down_refuses_connections_and_come_up_keeps_state() {
    let api = FakeApi::start();
    api.upsert_pod(pod("r", "survivor").build());
    let before = api.resource_version();
    let mut w = Watch::open(
        &api,
        &format!("/api/v1/pods?watch=true&resourceVersion={before}"),
    );
    assert!(api.wait_for_watches(1, Duration::from_secs(5)));
    let port = api.port();

    api.go_down();
    assert!(!api.is_up());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "connections are refused while down"
    );
    let mut l = String::new();
    assert!(
        matches!(w.lines.read_line(&mut l), Ok(0) | Err(_)),
        "open watches are cut"
    );

    // Changes made while down are replayed after the restart.
    let rv = api.upsert_pod(pod("r", "while-down").build());
    api.come_up();
    assert_eq!(api.port(), port);
    assert_eq!(
        names(&get(&api, "/api/v1/pods").2),
        ["survivor", "while-down"]
    );
    let mut w = Watch::open(
        &api,
        &format!("/api/v1/pods?watch=true&resourceVersion={before}"),
    );
    assert_eq!(
        ev(&w.next().unwrap()),
        ("ADDED".into(), "while-down".into(), rv.to_string())
    );

    // A restart with compaction: the old version is gone.
    api.go_down();
    api.compact();
    api.come_up();
    let mut raw = Raw::get(
        &api,
        &format!("/api/v1/pods?watch=true&resourceVersion={before}"),
    );
    let e: Value = serde_json::from_slice(&raw.chunk().unwrap().unwrap()).unwrap();
    assert_eq!(e["object"]["code"], 410);
}

#[test]
fn namespace_watch_sees_annotations_and_no_pod_events() {
    const IGNORE: &str = "opsctrl.dev/ignore";
    let api = FakeApi::start_with(Options {
        bookmark_interval: Duration::from_millis(200),
        ..Options::default()
    });
    api.upsert_pod(pod("shop", "a").build());

    // LIST (one page, no continue) then WATCH from the list's resourceVersion.
    let (s, _, list) = get(&api, "/api/v1/namespaces?limit=500");
    assert_eq!(s, 200);
    assert_eq!(list["kind"], "NamespaceList");
    assert!(list["metadata"].get("continue").is_none(), "{list}");
    assert_eq!(
        names(&list),
        [
            "default",
            "kube-node-lease",
            "kube-public",
            "kube-system",
            "shop"
        ]
    );
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut nsw = Watch::open(
        &api,
        &format!(
            "/api/v1/namespaces?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=30"
        ),
    );
    let mut podw = Watch::open(
        &api,
        &format!("/api/v1/pods?watch=true&resourceVersion={rv}"),
    );

    let rv1 = api.set_namespace_annotation("shop", IGNORE, Some("true"));
    let rv2 = api.upsert_pod(pod("team", "b").build()); // creates namespace "team"
    assert_eq!(
        api.set_namespace_annotation("shop", IGNORE, Some("true")),
        rv1,
        "no-op"
    );
    let rv3 = api.set_namespace_annotation("shop", IGNORE, None);
    let rv4 = api.set_namespace_annotation("fresh", IGNORE, Some("true"));
    assert!(rv1 < rv2 && rv2 < rv3 && rv3 < rv4);

    let e = nsw.next_change().unwrap();
    assert_eq!(ev(&e), ("MODIFIED".into(), "shop".into(), rv1.to_string()));
    assert_eq!(e["object"]["kind"], "Namespace");
    assert_eq!(e["object"]["metadata"]["annotations"][IGNORE], "true");
    assert_eq!(
        e["object"]["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "shop"
    );
    assert_eq!(
        ev(&nsw.next_change().unwrap()),
        ("ADDED".into(), "team".into(), rv2.to_string())
    );
    let e = nsw.next_change().unwrap();
    assert_eq!(ev(&e), ("MODIFIED".into(), "shop".into(), rv3.to_string()));
    assert!(e["object"]["metadata"].get("annotations").is_none(), "{e}");
    let e = nsw.next_change().unwrap();
    assert_eq!(ev(&e), ("ADDED".into(), "fresh".into(), rv4.to_string()));
    assert_eq!(e["object"]["metadata"]["annotations"][IGNORE], "true");
    let b = nsw.next().unwrap();
    assert_eq!(
        (b["type"].as_str(), b["object"]["kind"].as_str()),
        (Some("BOOKMARK"), Some("Namespace"))
    );
    assert_eq!(b["object"]["metadata"]["resourceVersion"], rv4.to_string());

    // The pod watch saw only the pod; the namespace watch never sees pods.
    assert_eq!(ev(&podw.next().unwrap()).1, "b");
    let rv5 = api.upsert_pod(pod("shop", "c").build());
    let p = podw.next().unwrap();
    assert_eq!(ev(&p), ("ADDED".into(), "c".into(), rv5.to_string()));
    assert_eq!(p["object"]["kind"], "Pod");
    let b = nsw.next().unwrap();
    assert_eq!(b["type"], "BOOKMARK", "{b}");
    assert_eq!(b["object"]["metadata"]["resourceVersion"], rv5.to_string());

    // GET, and kubectl shows the annotation.
    let (s, _, shop) = get(&api, "/api/v1/namespaces/fresh");
    assert_eq!(
        (s, shop["metadata"]["annotations"][IGNORE].as_str()),
        (200, Some("true"))
    );
    let dir = TempDir::new("fake-api-ns");
    let kc = api.write_kubeconfig(dir.path(), Auth::Token);
    let out = stdout_json(&run(
        kubectl(&kc, &dir.join("cache")),
        &["get", "ns", "-o", "json"],
    ));
    let fresh = out["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["metadata"]["name"] == "fresh")
        .expect("kubectl lists namespace fresh");
    assert_eq!(fresh["metadata"]["annotations"][IGNORE], "true");

    // timeoutSeconds ends the stream cleanly after the initial ADDED events.
    let mut raw = Raw::get(&api, "/api/v1/namespaces?watch=true&timeoutSeconds=1");
    let mut added = 0;
    while let Some(c) = raw.chunk().unwrap() {
        let e: Value = serde_json::from_slice(&c).unwrap();
        assert_eq!(e["type"], "ADDED");
        added += 1;
    }
    assert_eq!(added, 7);

    // Compacted versions: ERROR 410 event; RBAC needs `watch namespaces`.
    api.compact();
    let mut raw = Raw::get(
        &api,
        &format!("/api/v1/namespaces?watch=true&resourceVersion={rv}"),
    );
    let e: Value = serde_json::from_slice(&raw.chunk().unwrap().unwrap()).unwrap();
    assert_eq!(
        (e["type"].as_str(), e["object"]["code"].as_u64()),
        (Some("ERROR"), Some(410))
    );
    assert_eq!(raw.chunk(), Ok(None));
    api.set_rbac(vec![SsarRule::new("list", "", "namespaces")]);
    assert_eq!(get(&api, "/api/v1/namespaces").0, 200);
    let (s, _, b) = get(&api, "/api/v1/namespaces?watch=true");
    assert_eq!((s, b["reason"].as_str()), (403, Some("Forbidden")), "{b}");
}

#[test]
fn ssar_json_events_namespaces_and_logs() {
    let api = FakeApi::start();
    api.set_rbac(vec![SsarRule::new("list", "", "pods")]);
    let body = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                      "spec": {"resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "x"}}});
    let mut resp = api
        .agent()
        .post(format!(
            "{}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            api.url()
        ))
        .header("Authorization", format!("Bearer {}", api.token()))
        .content_type("application/json")
        .send(body.to_string())
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let v: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["status"]["allowed"], true);
    assert!(
        v["status"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("RBAC: allowed")
    );
    assert_eq!(v["spec"]["resourceAttributes"]["namespace"], "x");

    api.set_rbac(vec![SsarRule::all()]);
    api.upsert_pod(pod("ev", "crashy").crash_loop(2, 137, "OOMKilled").build());
    api.add_event(json!({"metadata": {"namespace": "ev"}, "involvedObject": {"kind": "Pod", "namespace": "ev", "name": "crashy"},
                         "reason": "BackOff", "type": "Warning", "message": "Back-off restarting failed container"}));
    api.add_event(json!({"metadata": {"namespace": "ev"}, "involvedObject": {"kind": "Pod", "namespace": "ev", "name": "other"},
                         "reason": "Pulled", "type": "Normal"}));
    let (_, _, evs) = get(
        &api,
        "/api/v1/namespaces/ev/events?fieldSelector=involvedObject.name%3Dcrashy,involvedObject.kind%3DPod",
    );
    assert_eq!(evs["kind"], "EventList");
    assert_eq!(evs["items"].as_array().unwrap().len(), 1);
    assert_eq!(evs["items"][0]["reason"], "BackOff");
    assert_eq!(
        get(&api, "/api/v1/events").2["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let (_, _, nss) = get(&api, "/api/v1/namespaces");
    assert!(
        names(&nss).contains(&"ev".to_string()) && names(&nss).contains(&"kube-system".to_string())
    );
    assert_eq!(get(&api, "/api/v1/namespaces/nope").0, 404);

    api.set_pod_log("ev", "crashy", "app", true, "line1\nline2\nOOM\n");
    let mut resp = api
        .agent()
        .get(format!(
            "{}/api/v1/namespaces/ev/pods/crashy/log?previous=true&tailLines=1",
            api.url()
        ))
        .header("Authorization", format!("Bearer {}", api.token()))
        .call()
        .unwrap();
    assert_eq!(resp.body_mut().read_to_string().unwrap(), "OOM\n");
    assert_eq!(
        get(
            &api,
            "/api/v1/namespaces/ev/pods/crashy/log?container=app&previous=true"
        )
        .0,
        200
    );
    assert_eq!(
        get(&api, "/api/v1/namespaces/ev/pods/crashy/log?container=nope").0,
        400
    );
}

#[test]
fn pod_builder_shapes_match_the_kubelet() {
    let p = pod("shop", "cart-7d4b9c8f6d-x2k9p")
        .crash_loop(5, 1, "Error")
        .build();
    assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
    assert_eq!(
        p["metadata"]["ownerReferences"][0]["name"],
        "cart-7d4b9c8f6d"
    );
    assert_eq!(p["metadata"]["labels"]["app"], "cart");
    assert_eq!(p["status"]["phase"], "Running");
    let cs = &p["status"]["containerStatuses"][0];
    assert_eq!(cs["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert!(
        cs["state"]["waiting"]["message"]
            .as_str()
            .unwrap()
            .starts_with(
                "back-off 2m40s restarting failed container=app pod=cart-7d4b9c8f6d-x2k9p_shop("
            )
    );
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(cs["lastState"]["terminated"]["reason"], "Error");
    assert_eq!(
        (
            cs["restartCount"].as_u64(),
            cs["ready"].as_bool(),
            cs["started"].as_bool()
        ),
        (Some(5), Some(false), Some(false))
    );
    assert!(
        cs["containerID"]
            .as_str()
            .unwrap()
            .starts_with("containerd://")
    );
    let conds: Vec<&str> = p["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        conds,
        [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled"
        ]
    );
    assert_eq!(p["status"]["conditions"][2]["reason"], "ContainersNotReady");

    let u = pod("batch", "job")
        .pending_unschedulable("0/3 nodes are available: 3 Insufficient cpu.")
        .build();
    assert_eq!(u["status"]["phase"], "Pending");
    assert_eq!(u["status"]["conditions"][0]["reason"], "Unschedulable");
    assert!(u["spec"].get("nodeName").is_none() && u["status"].get("containerStatuses").is_none());

    let f = pod("x", "evictee")
        .evicted("The node was low on resource: memory.")
        .build();
    assert_eq!(
        (
            f["status"]["phase"].as_str(),
            f["status"]["reason"].as_str()
        ),
        (Some("Failed"), Some("Evicted"))
    );
    assert_eq!(f["status"]["conditions"][0]["type"], "DisruptionTarget");
    assert!(f["status"]["containerStatuses"][0]["state"]["terminated"].is_object());

    let r = pod("x", "ok").build();
    assert!(r["status"]["containerStatuses"][0]["state"]["running"].is_object());
    assert_eq!(r["status"]["conditions"][2]["status"], "True");
    let ip = pod("x", "pull").image_pull_backoff().build();
    assert_eq!(ip["status"]["phase"], "Pending");
    assert_eq!(ip["status"]["containerStatuses"][0]["imageID"], "");
}

#[test]
fn apply_batch_loads_pods_like_one_upsert_each() {
    // The benchmark server bulk-loads through `apply_batch` (256 pods per lock).
    let api = FakeApi::start();
    let before = api.resource_version();
    let last = api.apply_batch((0..600).map(|i| pod("bulk", &format!("p-{i:03}")).build()));
    assert_eq!(last, before + 600, "one resourceVersion per pod");
    assert_eq!(api.pod_count(), 600);
    let (s, _, list) = get(&api, "/api/v1/namespaces/bulk/pods");
    assert_eq!(s, 200);
    let got = names(&list);
    assert_eq!(got.len(), 600);
    assert_eq!((got[0].as_str(), got[599].as_str()), ("p-000", "p-599"));
    let rv = |i: usize| {
        list["items"][i]["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_string)
    };
    assert_eq!(
        rv(599),
        Some(last.to_string()),
        "the last pod carries the last version"
    );
}
