//! The list+watch engine, end to end: the real binary against the fake API server.

use std::time::Duration;

use crate::util::daemon::Daemon;
use crate::util::fake_api::{Auth, FakeApi, Fault, Options};
use crate::util::{TempDir, pod};

const T: Duration = Duration::from_secs(30);

fn pod_lists(api: &FakeApi) -> Vec<crate::util::fake_api::Req> {
    api.requests()
        .into_iter()
        .filter(|r| r.list && r.path.ends_with("/pods"))
        .collect()
}

/// LIST operations started (a page without `continue` starts one).
fn list_operations(api: &FakeApi) -> usize {
    pod_lists(api)
        .iter()
        .filter(|r| r.param("continue").is_none())
        .count()
}

fn pod_watches(api: &FakeApi) -> Vec<crate::util::fake_api::Req> {
    api.requests()
        .into_iter()
        .filter(|r| r.watch && r.path.ends_with("/pods"))
        .collect()
}

fn load(api: &FakeApi, namespaces: &[&str], per_ns: usize) {
    for ns in namespaces {
        for i in 0..per_ns {
            api.upsert_pod(
                pod(ns, &format!("web-{i}"))
                    .label("app", "web")
                    .running()
                    .build(),
            );
        }
    }
}

#[test]
fn starts_with_one_paged_list_then_watches_from_its_resource_version() {
    let api = FakeApi::start();
    load(&api, &["shop", "blog"], 12);
    load(&api, &["kube-system"], 3);
    let home = TempDir::new("paged");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut d = Daemon::start(home.path(), &kc, &[("LIST_PAGE_SIZE", "10")]);
    d.wait_ready();
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 24.0);

    let lists = pod_lists(&api);
    assert_eq!(
        list_operations(&api),
        1,
        "exactly one LIST at start: {lists:#?}"
    );
    assert_eq!(lists.len(), 3, "24 pods in pages of 10");
    for l in &lists {
        assert_eq!(l.path, "/api/v1/pods");
        assert_eq!(l.param("limit"), Some("10"));
        let fs = l.param("fieldSelector").unwrap_or("");
        assert!(fs.contains("metadata.namespace!=kube-system"), "{fs}");
    }
    let w = &pod_watches(&api)[0];
    assert_eq!(w.param("allowWatchBookmarks"), Some("true"));
    let timeout: u64 = w.param("timeoutSeconds").unwrap().parse().unwrap();
    assert!((300..=600).contains(&timeout), "{timeout}");
    let rv: u64 = w.param("resourceVersion").unwrap().parse().unwrap();
    assert!(
        rv >= 27,
        "watch starts from the list's resourceVersion, got {rv}"
    );

    // Changes stream in without another LIST.
    api.upsert_pod(pod("shop", "new-pod").running().build());
    api.delete_pod("blog", "web-0");
    api.delete_pod("blog", "web-1");
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 23.0);
    assert_eq!(list_operations(&api), 1);
    assert_eq!(d.metric("opsctrl_watch_relists_total"), Some(0.0));
}

#[test]
fn a_watch_the_server_ends_resumes_from_the_last_resource_version_without_relisting() {
    let api = FakeApi::start_with(Options {
        max_watch_timeout: Duration::from_millis(1500),
        bookmark_interval: Duration::from_millis(300),
        ..Options::default()
    });
    load(&api, &["shop"], 3);
    let home = TempDir::new("resume");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut d = Daemon::start(home.path(), &kc, &[]);
    d.wait_ready();
    for i in 0..3 {
        api.upsert_pod(pod("shop", &format!("later-{i}")).running().build());
        std::thread::sleep(Duration::from_millis(700));
    }
    d.wait("four watches", T, |_| pod_watches(&api).len() >= 4);
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 6.0);
    assert_eq!(list_operations(&api), 1, "a normal close must not relist");
    let rvs: Vec<u64> = pod_watches(&api)
        .iter()
        .map(|w| w.param("resourceVersion").unwrap().parse().unwrap())
        .collect();
    assert!(
        rvs.windows(2).all(|w| w[0] <= w[1]),
        "resume points only advance: {rvs:?}"
    );
    assert!(
        rvs.last() > rvs.first(),
        "events and bookmarks advance the resume point: {rvs:?}"
    );
    assert!(d.metric("opsctrl_watch_bookmarks_total").unwrap() >= 1.0);
    assert!(d.metric("opsctrl_watch_restarts_total").unwrap() >= 3.0);
    assert_eq!(d.get("/readyz").map(|r| r.0), Some(200));
}

fn relist_after_gone(http_410: bool) {
    let api = FakeApi::start();
    api.set_expired_watch_as_http_410(http_410);
    load(&api, &["shop"], 3);
    let home = TempDir::new("gone");
    let kc = api.write_kubeconfig(home.path(), Auth::ClientCert);
    let mut d = Daemon::start(home.path(), &kc, &[]);
    d.wait_ready();
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 3.0);

    // The API server goes away; meanwhile pods change and history is compacted.
    api.go_down();
    api.delete_pod("shop", "web-1");
    api.modify_pod("shop", "web-2", |p| {
        p["status"]["phase"] = "Failed".into();
    });
    api.upsert_pod(pod("shop", "web-9").running().build());
    api.compact();
    std::thread::sleep(Duration::from_millis(500));
    api.come_up();

    // Pods and namespaces both relist (compaction hit both histories).
    d.wait_metric("opsctrl_watch_relists_total", T, |v| v >= 1.0);
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 3.0);
    d.wait("the relist's difference in the log", T, |d| {
        let l = d.logs();
        l.contains("pod deleted shop/web-1")
            && l.contains("pod updated shop/web-2")
            && l.contains("pod added shop/web-9")
    });
    assert!(
        !d.logs().contains("pod updated shop/web-0"),
        "unchanged pods produce nothing"
    );
    assert_eq!(list_operations(&api), 2);
    d.wait_ready();
}

#[test]
fn gone_as_an_error_event_relists_and_synthesizes_what_changed() {
    relist_after_gone(false);
}

#[test]
fn gone_as_http_410_relists_and_synthesizes_what_changed() {
    relist_after_gone(true);
}

#[test]
fn an_api_server_restart_without_compaction_resumes_the_watch() {
    let api = FakeApi::start();
    load(&api, &["shop"], 2);
    let home = TempDir::new("restart");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut d = Daemon::start(home.path(), &kc, &[]);
    d.wait_ready();
    api.go_down();
    d.wait("/readyz to report the outage", T, |d| {
        d.get("/readyz")
            .is_some_and(|(s, b)| s == 503 && b.contains("retrying"))
    });
    api.upsert_pod(pod("shop", "born-while-down").running().build());
    api.come_up();
    d.wait_ready();
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 3.0);
    assert_eq!(list_operations(&api), 1, "history was kept, so no relist");
    assert!(d.metric("opsctrl_api_errors_total").unwrap() >= 1.0);
}

#[test]
fn server_errors_and_broken_streams_are_retried_and_lose_nothing() {
    let api = FakeApi::start();
    load(&api, &["shop"], 2);
    let home = TempDir::new("faults");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut d = Daemon::start(home.path(), &kc, &[]);
    d.wait_ready();

    api.inject(Fault::WatchStatus(500, None));
    api.inject(Fault::CloseWatchesMidChunk);
    api.upsert_pod(pod("shop", "after-cut").running().build());
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 3.0);

    api.inject(Fault::WatchStatus(429, Some(1)));
    api.inject(Fault::EndWatches);
    api.upsert_pod(pod("shop", "after-429").running().build());
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 4.0);

    assert!(d.metric("opsctrl_api_errors_total").unwrap() >= 2.0);
    assert_eq!(list_operations(&api), 1);
    d.wait_ready();
}

#[test]
fn retry_after_is_honoured() {
    let api = FakeApi::start();
    load(&api, &["shop"], 1);
    let home = TempDir::new("retry-after");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut d = Daemon::start(home.path(), &kc, &[]);
    d.wait_ready();
    let before = pod_watches(&api).len();
    api.inject(Fault::WatchStatus(429, Some(2)));
    api.inject(Fault::EndWatches);
    d.wait("a retry after the 429", T, |_| {
        pod_watches(&api).len() >= before + 2
    });
    // Pods and namespaces share the credentials: whichever watch reconnects
    // first meets the 401 and refreshes them for both.
    let watches: Vec<_> = api.requests().into_iter().filter(|r| r.watch).collect();
    let refused = watches
        .iter()
        .rposition(|w| w.status == 429)
        .expect("a 429 was served");
    assert!(watches.len() > refused + 1);
    // The backoff alone would wait at most 1 s (RECONNECTION_MAX_BACKOFF_MS);
    // the daemon's report of the delay it chose shows Retry-After won.
    assert!(d.logs().contains("retry_in_ms=2000"), "{}", d.logs());
}

#[test]
fn a_garbage_line_is_counted_and_the_watch_reopens_from_the_last_good_version() {
    let api = FakeApi::start();
    load(&api, &["shop"], 2);
    let home = TempDir::new("garbage");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut d = Daemon::start(home.path(), &kc, &[]);
    d.wait_ready();
    api.inject(Fault::GarbageLine);
    // The garbage goes to every open watch (pods and namespaces).
    d.wait_metric("opsctrl_watch_malformed_lines_total", T, |v| v >= 1.0);
    api.upsert_pod(pod("shop", "after-garbage").running().build());
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 3.0);
    assert_eq!(list_operations(&api), 1);
    assert!(d.logs().contains("malformed watch line"));
}

#[test]
fn forbidden_lists_keep_retrying_and_the_endpoints_say_why() {
    let api = FakeApi::start();
    load(&api, &["shop"], 2);
    api.inject_persistent(Fault::ListStatus(403));
    let home = TempDir::new("forbidden");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut d = Daemon::start(home.path(), &kc, &[("RECONNECTION_MAX_FAILURES", "2")]);
    d.wait("/readyz 503 naming the 403", T, |d| {
        d.get("/readyz")
            .is_some_and(|(s, b)| s == 503 && b.contains("403"))
    });
    d.wait("/health 503 after RECONNECTION_MAX_FAILURES", T, |d| {
        d.get("/health")
            .is_some_and(|(s, b)| s == 503 && b.contains("\"isHealthy\":false"))
    });
    assert!(
        d.logs().contains("opsctrl-daemon check"),
        "the log points at `check`"
    );
    api.clear_faults();
    d.wait_ready();
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 2.0);
    assert_eq!(d.get("/health").map(|r| r.0), Some(200));
    assert_eq!(
        d.metric("opsctrl_watch_relists_total"),
        Some(0.0),
        "retries are not relists"
    );
}

#[test]
fn a_rotated_token_file_is_picked_up_after_a_401() {
    let api = FakeApi::start();
    load(&api, &["shop"], 1);
    let home = TempDir::new("rotate");
    let token_file = home.path().join("token");
    std::fs::write(&token_file, api.token()).unwrap();
    let kc = api.write_kubeconfig(home.path(), Auth::TokenFile(token_file.clone()));
    let mut d = Daemon::start(home.path(), &kc, &[]);
    d.wait_ready();
    let old = api.token();

    // Rotate: the server accepts only the new token, the file holds it.
    let new = "rotated-token-0123456789";
    api.set_tokens(&[new]);
    std::fs::write(&token_file, new).unwrap();
    api.inject(Fault::EndWatches);
    api.upsert_pod(pod("shop", "after-rotation").running().build());
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 2.0);
    d.wait_ready();
    // Pods and namespaces share the credentials: whichever request reaches
    // the server first after the rotation (a resumed watch, usually) meets
    // the 401 and refreshes them for both. The new pod can arrive on a watch
    // that has not ended yet, so wait for the re-watch itself.
    let rewatched = |reqs: &[crate::util::fake_api::Req]| {
        reqs.iter()
            .position(|r| r.status == 401)
            .is_some_and(|i| reqs[i + 1..].iter().any(|r| r.watch && r.status == 200))
    };
    d.wait("a 401, then a watch with the new token", T, |_| {
        rewatched(&api.requests())
    });
    let reqs = api.requests();
    let refused = reqs
        .iter()
        .position(|r| r.status == 401)
        .expect("the cached old token was refused once");
    assert!(
        reqs[refused + 1..]
            .iter()
            .any(|r| r.watch && r.status == 200),
        "after the 401 the token file is re-read and the watch goes on: {reqs:#?}"
    );
    let logs = d.logs();
    assert!(
        !logs.contains(&old) && !logs.contains(new),
        "tokens never reach the log"
    );
}

#[test]
fn a_namespace_list_is_one_stream_per_namespace() {
    let api = FakeApi::start();
    load(&api, &["a", "b", "c"], 2);
    let home = TempDir::new("ns");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut d = Daemon::start(
        home.path(),
        &kc,
        &[
            ("WATCH_NAMESPACES", "a,b"),
            ("WATCH_LABEL_SELECTOR", "app=web"),
        ],
    );
    d.wait_ready();
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 4.0);
    let mut paths: Vec<String> = pod_lists(&api).into_iter().map(|r| r.path).collect();
    paths.sort();
    assert_eq!(
        paths,
        ["/api/v1/namespaces/a/pods", "/api/v1/namespaces/b/pods"]
    );
    assert!(
        pod_watches(&api)
            .iter()
            .all(|w| w.param("labelSelector") == Some("app=web"))
    );
    let (_, health) = d.get("/health").unwrap();
    assert!(
        health.contains("\"activeNamespaces\":[\"a\",\"b\"]"),
        "{health}"
    );
}

#[test]
fn sigterm_stops_the_daemon_promptly_with_exit_0() {
    let api = FakeApi::start();
    load(&api, &["shop"], 1);
    let home = TempDir::new("sigterm");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut d = Daemon::start(home.path(), &kc, &[]);
    d.wait_ready();
    // A reader is now blocked in a read on an idle watch.
    let (status, took, logs) = d.terminate();
    assert_eq!(status.code(), Some(0), "{logs}");
    assert!(took < Duration::from_secs(5), "exit took {took:?}");
    assert!(logs.contains("SIGTERM received"));
}

#[test]
fn with_reconnection_disabled_a_failure_stops_the_daemon_with_exit_1() {
    let api = FakeApi::start();
    api.inject_persistent(Fault::ListStatus(500));
    let home = TempDir::new("noreconnect");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let d = Daemon::start(home.path(), &kc, &[("RECONNECTION_ENABLED", "false")]);
    let (status, logs) = d.wait_exit(T);
    assert_eq!(status.code(), Some(1), "{logs}");
    assert!(logs.contains("RECONNECTION_ENABLED=false"), "{logs}");
}

#[test]
fn the_health_endpoint_rejects_what_it_does_not_serve() {
    let api = FakeApi::start();
    let home = TempDir::new("http");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut d = Daemon::start(home.path(), &kc, &[]);
    d.wait_ready();
    let port = d.port().expect("the health endpoint's port is logged");
    use crate::util::daemon::http;
    assert_eq!(http(port, "GET", "/healthz").map(|r| r.0), Some(200));
    assert_eq!(http(port, "GET", "/nope").map(|r| r.0), Some(404));
    assert_eq!(http(port, "DELETE", "/metrics").map(|r| r.0), Some(405));
    let (s, body) = http(port, "GET", "/metrics").unwrap();
    assert_eq!(s, 200);
    for m in [
        "opsctrl_watch_restarts_total",
        "opsctrl_watch_relists_total",
        "opsctrl_watch_events_processed_total",
        "opsctrl_watch_malformed_lines_total",
        "opsctrl_pods_tracked",
    ] {
        assert!(body.contains(&format!("# TYPE {m} ")), "{m}");
    }
}

#[test]
fn a_silent_watch_is_closed_and_resumed_from_its_resource_version() {
    let api = FakeApi::start();
    load(&api, &["shop"], 2);
    let home = TempDir::new("silent");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut d = Daemon::start(home.path(), &kc, &[("WATCH_IDLE_TIMEOUT_SECONDS", "2")]);
    d.wait_ready();
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 2.0);
    let before = pod_watches(&api).len();

    // The next pod watch answers and then sends nothing, not even bookmarks.
    api.inject(Fault::SilentWatch);
    api.inject(Fault::EndWatches);
    d.wait("the silent watch opened", T, |_| {
        pod_watches(&api).len() > before
    });
    let silent_at = std::time::Instant::now();
    let silent_rv = pod_watches(&api)[before]
        .param("resourceVersion")
        .unwrap()
        .to_string();
    api.upsert_pod(pod("shop", "during-silence").running().build());
    // A dead watch lasts WATCH_TIMEOUT_SECONDS (300 s and more) without the idle timeout.
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 3.0);
    let took = silent_at.elapsed();
    assert!(took < Duration::from_secs(10), "resumed after {took:?}");
    assert!(d.metric("opsctrl_watch_idle_timeouts_total").unwrap() >= 1.0);
    let resumed = &pod_watches(&api)[before + 1];
    assert_eq!(
        resumed.param("resourceVersion"),
        Some(silent_rv.as_str()),
        "resumed from the silent watch's resourceVersion"
    );
    assert_eq!(list_operations(&api), 1, "no relist");
    assert!(
        d.logs().contains("no event or bookmark for 2 s"),
        "{}",
        d.logs()
    );
    d.wait_ready();
}

#[test]
fn a_flapping_watch_counts_failures_until_health_says_unhealthy() {
    let api = FakeApi::start();
    load(&api, &["shop"], 1);
    let home = TempDir::new("flapping");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut d = Daemon::start(home.path(), &kc, &[("RECONNECTION_MAX_FAILURES", "4")]);
    d.wait_ready();
    let health = |d: &Daemon| -> Option<(u16, serde_json::Value)> {
        let (code, body) = d.get("/health")?;
        Some((code, serde_json::from_str(&body).ok()?))
    };
    assert_eq!(health(&d).unwrap().0, 200);

    // Every pod watch opens (200) and breaks before sending anything.
    api.inject_persistent(Fault::FlappingWatch);
    api.inject(Fault::EndWatches);
    d.wait("/health unhealthy", T, |d| {
        health(d).is_some_and(|(code, h)| {
            code == 503
                && h["isHealthy"] == false
                && h["connectionState"]["consecutiveFailures"].as_u64() >= Some(4)
        })
    });
    assert!(
        d.logs()
            .contains("watch unhealthy stream=all namespaces failures=4"),
        "{}",
        d.logs()
    );

    // A watch that delivers again makes it healthy again.
    api.clear_faults();
    d.wait("/health healthy again", T, |d| {
        health(d).is_some_and(|(code, h)| {
            code == 200 && h["connectionState"]["consecutiveFailures"] == 0
        })
    });
}

#[test]
fn a_repeating_continue_token_is_an_error_with_backoff() {
    let api = FakeApi::start();
    load(&api, &["shop"], 5);
    api.inject_persistent(Fault::RepeatContinue);
    let home = TempDir::new("repeat-continue");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let d = Daemon::start(
        home.path(),
        &kc,
        &[
            ("LIST_PAGE_SIZE", "2"),
            ("RECONNECTION_INITIAL_BACKOFF_MS", "500"),
            ("RECONNECTION_MAX_BACKOFF_MS", "2000"),
        ],
    );
    std::thread::sleep(Duration::from_secs(4));
    let pages = pod_lists(&api).len();
    // Without the check: thousands of pages in 4 s. With it: two pages per
    // attempt, attempts 0.5 s, 1 s, 2 s apart.
    assert!(pages <= 12, "{pages} LIST pages in 4 s");
    assert!(pages >= 4, "the list is retried: {pages}");
    assert!(
        d.logs().contains("LIST continue token repeated"),
        "{}",
        d.logs()
    );
    assert_eq!(d.get("/readyz").map(|r| r.0), Some(503));

    api.clear_faults();
    let mut d = d;
    d.wait_ready();
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 5.0);
}

#[test]
fn a_watch_line_that_is_not_utf8_is_decoded_lossily_not_retried_forever() {
    let api = FakeApi::start();
    load(&api, &["shop"], 1);
    let home = TempDir::new("utf8");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut d = Daemon::start(home.path(), &kc, &[]);
    d.wait_ready();
    let before = pod_watches(&api).len();
    // Every time this pod's event is sent (a reopened watch replays it), its
    // message carries bytes that are not UTF-8.
    api.inject_persistent(Fault::InvalidUtf8("BADBYTES".into()));
    api.upsert_pod(
        pod("shop", "bad-bytes")
            .create_container_config_error("secret BADBYTES not found")
            .build(),
    );
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 2.0);
    d.wait_metric("opsctrl_watch_invalid_utf8_lines_total", T, |v| v >= 1.0);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(d.metric("opsctrl_watch_malformed_lines_total"), Some(0.0));
    let reopened = pod_watches(&api).len() - before;
    assert!(reopened <= 1, "the watch was reopened {reopened} times");
}

#[test]
fn api_error_text_on_health_readyz_and_the_log_is_redacted_and_short() {
    let api = FakeApi::start();
    load(&api, &["shop"], 1);
    let filler = "y".repeat(400);
    api.inject_persistent(Fault::ListError(
        500,
        format!("etcd said: password=hunter2-HEALTH, token: s3cr3tTOKEN99 {filler}"),
    ));
    let home = TempDir::new("health-redact");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut d = Daemon::start(home.path(), &kc, &[("RECONNECTION_MAX_FAILURES", "1")]);
    d.wait("/health names the 500", T, |d| {
        d.get("/health")
            .is_some_and(|(s, b)| s == 503 && b.contains("API server answered 500"))
    });
    let (_, health) = d.get("/health").unwrap();
    let (_, ready) = d.get("/readyz").unwrap();
    for (what, text) in [
        ("/health", &health),
        ("/readyz", &ready),
        ("the log", &d.logs()),
    ] {
        assert!(!text.contains("hunter2-HEALTH"), "{what}: {text}");
        assert!(!text.contains("s3cr3tTOKEN99"), "{what}: {text}");
    }
    for (what, text) in [("/health", &health), ("/readyz", &ready)] {
        assert!(!text.contains(&filler), "{what} is cut short: {text}");
    }
    api.clear_faults();
    d.wait_ready();
}
