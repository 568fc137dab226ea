//! The binary's command line: bad input, `check`, `--help`, `--version`.

use opsctrl_daemon::settings::{self, Kind, Setting};

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

/// The binary's side of one setting: `--help` shows its definition, and a
/// bad value by variable or by flag exits 2 with the line naming it and what
/// is allowed.
fn setting_end_to_end<K: Kind>(help: &str, s: &Setting<K>, bad: &str) {
    let home = TempDir::new("kind");
    let entry = format!("{} {}", s.flag, s.value);
    let shown = format!("[env {}] (default {:?})", s.env, s.kind.default_text());
    let allowed = s.kind.allowed();
    assert!(
        help.lines()
            .any(|l| l.contains(&entry) && l.contains(&shown))
            && help.contains(&format!("        Allowed: {allowed}.")),
        "--help misstates {}",
        s.env
    );
    let by_env = command(home.path()).env(s.env, bad).output().unwrap();
    let by_flag = command(home.path())
        .arg(format!("{}={bad}", s.flag))
        .output()
        .unwrap();
    for (name, out) in [(s.env, by_env), (s.flag, by_flag)] {
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim_end(),
            format!("opsctrl-daemon: {name}={bad:?}: allowed: {allowed}")
        );
    }
}

#[test]
fn one_setting_of_each_kind_end_to_end() {
    let home = TempDir::new("kinds-help");
    let out = command(home.path()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    setting_end_to_end(&help, &settings::HEALTH_CHECK_PORT, "80");
    setting_end_to_end(&help, &settings::RECONNECTION_BACKOFF_MULTIPLIER, "0.5");
    setting_end_to_end(&help, &settings::INCLUDE_LOGS, "yes");
    setting_end_to_end(&help, &settings::OUTPUT, "yaml");
    setting_end_to_end(&help, &settings::CLUSTER_NAME, "has spaces");
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
    // The reads, and get on pods/log for INCLUDE_LOGS (on by default).
    assert_eq!(
        text.lines().filter(|l| l.starts_with("yes")).count(),
        9,
        "{text}"
    );
    assert!(
        text.contains("yes  watch nodes in all namespaces"),
        "{text}"
    );
    assert!(
        text.contains("yes  get pods/log in all namespaces"),
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
