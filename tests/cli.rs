//! The binary's command line: bad input, `check`, `--help`, `--version`.

use crate::util::TempDir;
use crate::util::daemon::command;
use crate::util::fake_api::{Auth, FakeApi, SsarRule};

#[test]
fn every_bad_setting_is_reported_on_its_own_line_with_exit_2() {
    let home = TempDir::new("badenv");
    let out = command(home.path())
        .env("WATCH_NAMESPACES", "Prod_1")
        .env("HEALTH_CHECK_PORT", "80")
        .env("RECONNECTION_ENABLED", "yes")
        .env("RECONNECTION_BACKOFF_MULTIPLIER", "0.5")
        .env("LOG_LEVEL", "chatty")
        .arg("run")
        .arg("--list-page-size=0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 6, "{err}");
    for (line, name) in lines.iter().zip([
        "WATCH_NAMESPACES=\"Prod_1\"",
        "--list-page-size=\"0\"",
        "RECONNECTION_ENABLED=\"yes\"",
        "RECONNECTION_BACKOFF_MULTIPLIER=\"0.5\"",
        "HEALTH_CHECK_PORT=\"80\"",
        "LOG_LEVEL=\"chatty\"",
    ]) {
        assert!(
            line.starts_with(&format!("opsctrl-daemon: {name}: ")),
            "{line}"
        );
        assert!(line.contains("allowed"), "{line}");
    }
}

#[test]
fn unknown_flags_and_broken_kubeconfigs_exit_2_naming_the_problem() {
    let home = TempDir::new("badcli");
    let out = command(home.path()).arg("--frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--frobnicate"));

    let kc = home.path().join("broken.yaml");
    std::fs::write(&kc, "apiVersion: v1\nclusters: [ {name: x, cluster: {server: \"https://h\", certificate-authority-data: \"!!notbase64\"}}]\ncontexts: [{name: c, context: {cluster: x, user: u}}]\ncurrent-context: c\nusers: [{name: u, user: {token: t}}]\n").unwrap();
    let out = command(home.path())
        .arg("--kubeconfig")
        .arg(&kc)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.yaml") && err.contains("certificate-authority-data"),
        "{err}"
    );

    let out = command(home.path())
        .arg("--kubeconfig")
        .arg(&kc)
        .arg("--context")
        .arg("nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

#[test]
fn help_and_version() {
    let home = TempDir::new("help");
    let out = command(home.path()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("WATCH_NAMESPACES") && text.contains("check"));
    let out = command(home.path())
        .args(["check", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("SelfSubjectAccessReview"));
    let out = command(home.path()).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("opsctrl-daemon {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_says_yes_when_every_permission_is_granted() {
    let api = FakeApi::start();
    let home = TempDir::new("check-ok");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let out = command(home.path())
        .arg("check")
        .arg("--kubeconfig")
        .arg(&kc)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("yes")).count(),
        5,
        "{text}"
    );
    assert!(
        text.contains("yes  watch namespaces in all namespaces"),
        "{text}"
    );
    assert!(text.contains("all permissions granted"));
}

#[test]
fn check_names_each_missing_permission_and_the_rbac_that_fixes_it() {
    let api = FakeApi::start();
    api.set_rbac(vec![
        SsarRule::new("list", "", "pods").in_namespace("shop"),
        SsarRule::new("create", "authorization.k8s.io", "selfsubjectaccessreviews"),
        SsarRule::new("create", "authentication.k8s.io", "selfsubjectreviews"),
    ]);
    let home = TempDir::new("check-missing");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let out = command(home.path())
        .args(["check", "--watch-namespaces", "shop"])
        .arg("--kubeconfig")
        .arg(&kc)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("yes  list pods in namespace shop"), "{text}");
    assert!(text.contains("no   watch pods in namespace shop"), "{text}");
    assert!(
        text.contains("no   list events in namespace shop"),
        "{text}"
    );
    assert!(
        text.contains("kubectl create role opsctrl-daemon-read -n shop --verb=get,list,watch --resource=pods,events"),
        "{text}"
    );
}

#[test]
fn scan_refuses_a_dump_that_never_ends() {
    let home = TempDir::new("scan-zero");
    let out = command(home.path())
        .args(["scan", "-f", "/dev/zero"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("opsctrl-daemon: /dev/zero: larger than 512 MiB"),
        "{err}"
    );
}
