/*!
Bad input, end to end: the real binary fed bad settings, broken kubeconfigs,
misbehaving exec plugins, absurd pods from the fake API server and broken
`RULES_FILE`s.

What every case here checks, besides its own message:
- start-up problems exit 2 with one `opsctrl-daemon: …` line per problem,
  naming the setting, file, context, field or rule;
- secrets (tokens, keys, webhook URLs) never reach stderr;
- nothing ever panics (`panicked at` never appears on stderr);
- the daemon, once running, survives whatever pods the API server serves and
  still reports a real failure that comes after them.

Every command runs with a clean environment (`util::daemon::command`) and a
deadline, so a hang fails the test instead of stalling the suite.
*/

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use opsctrl_daemon::settings::SETTINGS;

use crate::util::TempDir;
use crate::util::daemon::{Daemon, command};
use crate::util::fake_api::{Auth, FakeApi, Fault};
use crate::util::pod;

/// Checked-in bad inputs (`tests/fixtures/bad/`).
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bad");

fn fixture(rel: &str) -> PathBuf {
    Path::new(FIXTURES).join(rel)
}

/// What a finished command left behind.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Ran {
    /// The stderr lines, which must all be the binary's own problem lines.
    fn lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }

    /// Exit 2, no panic, and every stderr line is one of our problem lines.
    fn assert_bad_input(&self, what: &str) {
        assert_eq!(
            self.code,
            Some(2),
            "{what}: expected exit 2\n--- stderr ---\n{}\n--- stdout ---\n{}",
            self.stderr,
            self.stdout
        );
        assert_no_panic(&self.stderr, what);
        assert!(!self.stderr.trim().is_empty(), "{what}: no error printed");
        for line in self.lines() {
            assert!(
                line.starts_with("opsctrl-daemon: "),
                "{what}: stray stderr line {line:?}\n{}",
                self.stderr
            );
        }
    }
}

fn assert_no_panic(stderr: &str, what: &str) {
    assert!(
        !stderr.contains("panicked at") && !stderr.contains("RUST_BACKTRACE"),
        "{what}: the binary panicked\n{stderr}"
    );
}

/// Runs `cmd` to completion, killing it (and failing the test) past `limit`.
fn run(mut cmd: Command, limit: Duration) -> Ran {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn opsctrl-daemon");
    // Read both pipes on threads: a chatty child must not block on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for opsctrl-daemon") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "opsctrl-daemon did not exit within {limit:?}\n--- stderr ---\n{}",
                err.join().unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    Ran {
        code: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        took: started.elapsed(),
    }
}

/// Start-up problems are found before any network I/O: seconds are plenty.
const QUICK: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/// One value per setting that is wrong on its own, whatever else is set.
fn bad_value(env: &str) -> &'static str {
    match env {
        "WATCH_NAMESPACES"
        | "EXCLUDE_NAMESPACES"
        | "LEADER_ELECTION_NAMESPACE"
        | "LEADER_ELECTION_NAME" => "Not_A_Namespace",
        "WATCH_LABEL_SELECTOR" => "app=\"web\"",
        "CLUSTER_NAME" | "LLM_MODEL" | "SLACK_CHANNEL" | "LLM_API_KEY" => "has spaces",
        "RULES_FILE"
        | "LLM_API_KEY_FILE"
        | "SLACK_BOT_TOKEN_FILE"
        | "WEBHOOK_AUTH_HEADER_FILE"
        | "ROUTES_FILE"
        | "SILENCES_FILE" => "/nonexistent/opsctrl/file",
        "WEBHOOK_AUTH_HEADER" => "Bearer a\u{1}b",
        "SLACK_BOT_TOKEN" => "not-a-slack-token",
        "SLACK_CHANNEL_ROUTES" => "no-equals-sign",
        "SLACK_WEBHOOK_URL"
        | "WEBHOOK_URL"
        | "LLM_BASE_URL"
        | "OPSCTRL_BACKEND_URL"
        | "OPSCTRL_FRONTEND_URL"
        | "SLACK_API_URL" => "ftp://example.com/hook",
        "USER_EMAIL" => "not-an-email",
        "OPSCTRL_STATE_DIR" => "relative/dir",
        // Numbers, booleans, enumerations: a word is wrong for all of them.
        _ => "not-a-value",
    }
}

#[test]
fn each_bad_setting_alone_exits_2_with_exactly_one_line_naming_it() {
    let home = TempDir::new("bad-setting");
    let mut failures = Vec::new();
    for spec in SETTINGS {
        let bad = bad_value(spec.env);
        let mut cmd = command(home.path());
        cmd.arg("run").env(spec.env, bad);
        let r = run(cmd, QUICK);
        r.assert_bad_input(spec.env);
        let prefix = format!("opsctrl-daemon: {}=", spec.env);
        let naming: Vec<&str> = r
            .lines()
            .into_iter()
            .filter(|l| l.starts_with(&prefix))
            .collect();
        // One line, and only that line: a bad value must not also be reported as
        // "has no effect without …", nor make another setting look wrong.
        if naming.len() != 1 || r.lines().len() != 1 {
            failures.push(format!("{} = {bad:?}:\n{}", spec.env, r.stderr));
        }
    }
    assert!(
        failures.is_empty(),
        "settings not reported as exactly one line:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_setting_bad_at_once_lists_them_all_by_env_and_by_flag() {
    let home = TempDir::new("bad-all");
    let mut by_env = command(home.path());
    by_env.arg("run");
    let mut by_flag = command(home.path());
    by_flag.arg("run");
    for spec in SETTINGS {
        by_env.env(spec.env, bad_value(spec.env));
        by_flag.arg(format!("{}={}", spec.flag, bad_value(spec.env)));
    }
    for (how, cmd, name) in [
        (
            "env",
            by_env,
            (|s: &opsctrl_daemon::settings::Spec| s.env) as fn(&_) -> &str,
        ),
        ("flags", by_flag, |s| s.flag),
    ] {
        let r = run(cmd, QUICK);
        r.assert_bad_input(how);
        let missing: Vec<&str> = SETTINGS
            .iter()
            .map(name)
            .filter(|n| {
                let prefix = format!("opsctrl-daemon: {n}=");
                // With both KEY and KEY_FILE set, the one problem is that both
                // are: it is reported under KEY, naming KEY_FILE, and the file is
                // not read at all.
                let partner = n.ends_with("_FILE") || n.ends_with("-file");
                !r.lines().iter().any(|l| {
                    l.starts_with(&prefix)
                        || (partner && l.contains(&format!("set both this and {n};")))
                })
            })
            .collect();
        assert!(
            missing.is_empty(),
            "{how}: not reported: {missing:?}\n{}",
            r.stderr
        );
    }
}

#[test]
fn secrets_in_bad_settings_are_named_but_never_echoed() {
    let home = TempDir::new("bad-secret");
    let token_file = home.join("slack-token");
    std::fs::write(&token_file, "SeCrEt-in-a-file with spaces\n").unwrap();
    // Each row is wrong in its own way; every value carries the marker.
    // (variables set, settings that must be named)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            &[
                (
                    "SLACK_WEBHOOK_URL",
                    "ftp://hooks.slack.com/services/SeCrEt1",
                ),
                ("LLM_API_KEY", "sk-SeCrEt2 with spaces"),
                ("SLACK_BOT_TOKEN", "SeCrEt3-not-xoxb"),
                ("WEBHOOK_AUTH_HEADER", "Bearer SeCrEt4\u{7}"),
                ("WEBHOOK_URL", "gopher://example.com/SeCrEt5"),
            ],
            &[
                "SLACK_WEBHOOK_URL",
                "LLM_API_KEY",
                "SLACK_BOT_TOKEN",
                "WEBHOOK_AUTH_HEADER",
                "WEBHOOK_URL",
            ],
        ),
        // Well-formed secrets that are still wrong: set twice, unused, or a
        // second Slack webhook.
        (
            &[
                ("LLM_API_KEY", "sk-SeCrEt6"),
                ("LLM_API_KEY_FILE", "/etc/hostname"),
                (
                    "WEBHOOK_URL",
                    "https://hooks.slack.com/services/T0/B0/SeCrEt8",
                ),
                (
                    "SLACK_WEBHOOK_URL",
                    "https://hooks.slack.com/services/T0/B0/SeCrEt9",
                ),
            ],
            &["LLM_API_KEY", "WEBHOOK_URL"],
        ),
        (
            &[
                ("LLM_API_KEY", "sk-SeCrEt10"),
                ("WEBHOOK_AUTH_HEADER", "Bearer SeCrEt7"),
                ("SLACK_BOT_TOKEN", "xoxb-SeCrEt11"),
            ],
            &["LLM_API_KEY", "WEBHOOK_AUTH_HEADER", "SLACK_CHANNEL"],
        ),
        (
            &[
                ("SLACK_BOT_TOKEN_FILE", token_file.to_str().unwrap()),
                ("SLACK_CHANNEL", "#alerts"),
            ],
            &["SLACK_BOT_TOKEN_FILE"],
        ),
    ];
    for (env, named) in cases {
        let mut cmd = command(home.path());
        cmd.arg("run");
        for (k, v) in *env {
            cmd.env(k, v);
        }
        let r = run(cmd, QUICK);
        r.assert_bad_input("secrets");
        assert!(
            !r.stderr.contains("SeCrEt"),
            "a secret was echoed:\n{}",
            r.stderr
        );
        for n in *named {
            let prefix = format!("opsctrl-daemon: {n}=");
            assert!(
                r.lines().iter().any(|l| l.starts_with(&prefix)),
                "{n} not named:\n{}",
                r.stderr
            );
        }
    }
}

#[test]
fn a_setting_that_is_not_utf8_is_reported_not_ignored() {
    // Regression: std::env::var() fails on non-UTF-8 values and the setting was
    // silently treated as unset (the default port, here), with no error.
    use std::os::unix::ffi::OsStrExt;
    let home = TempDir::new("bad-utf8");
    let mut cmd = command(home.path());
    cmd.arg("run")
        .env("HEALTH_CHECK_PORT", OsStr::from_bytes(b"80\xff"))
        .env("LOG_LEVEL", OsStr::from_bytes(b"\xfe"));
    let r = run(cmd, QUICK);
    r.assert_bad_input("non-UTF-8 settings");
    assert_eq!(r.lines().len(), 2, "{}", r.stderr);
    assert!(
        r.lines()[0].starts_with("opsctrl-daemon: HEALTH_CHECK_PORT="),
        "{}",
        r.stderr
    );
    assert!(
        r.lines()[1].starts_with("opsctrl-daemon: LOG_LEVEL="),
        "{}",
        r.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// Kubeconfigs
// ---------------------------------------------------------------------------------------------

/// `scan` against a kubeconfig: it loads the config, then makes one request.
fn scan_with(home: &TempDir, kubeconfig: &Path, extra: &[&str], limit: Duration) -> Ran {
    let mut cmd = command(home.path());
    cmd.arg("scan")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(extra);
    run(cmd, limit)
}

#[test]
fn the_valid_kubeconfig_fixture_loads_so_the_bad_ones_fail_for_their_own_reason() {
    // Control: valid.yaml passes every check and only fails to connect
    // (port 1), so each broken copy of it below fails because of what was broken.
    let home = TempDir::new("kc-valid");
    let r = scan_with(&home, &fixture("kubeconfig/valid.yaml"), &[], QUICK);
    r.assert_bad_input("valid.yaml");
    assert!(r.stderr.contains("listing pods"), "{}", r.stderr);
    assert!(!r.stderr.contains("kubeconfig"), "{}", r.stderr);
}

#[test]
fn broken_kubeconfigs_exit_2_naming_the_file_and_what_is_wrong() {
    let home = TempDir::new("kc-bad");
    let cases: &[(&str, &[&str])] = &[
        ("truncated.yaml", &["client-key-data", "user \"default\""]),
        ("truncated-in-quote.yaml", &["is not valid YAML", "line"]),
        ("not-yaml.yaml", &["is not valid YAML"]),
        ("not-a-mapping.yaml", &["top level: must be a mapping"]),
        (
            "bad-base64-ca.yaml",
            &[
                "certificate-authority-data is not valid base64",
                "cluster \"default\"",
            ],
        ),
        (
            "bad-base64-key.yaml",
            &["client-key-data is not valid base64", "user \"default\""],
        ),
        (
            "ca-not-pem.yaml",
            &["certificate-authority-data contains no PEM CERTIFICATE"],
        ),
        (
            "no-current-context.yaml",
            &["no current-context; pass --context"],
        ),
        (
            "dangling-current-context.yaml",
            &["context \"prod\" not found", "(available: \"default\")"],
        ),
        ("wrong-types.yaml", &["clusters must be a list"]),
        // 530 bytes of nested aliases, 10^9 nodes once expanded.
        ("alias-bomb.yaml", &["its YAML aliases expand to more than"]),
        ("empty.yaml", &["no current-context"]),
    ];
    for (file, wants) in cases {
        let path = fixture(&format!("kubeconfig/{file}"));
        let r = scan_with(&home, &path, &[], QUICK);
        r.assert_bad_input(file);
        assert_eq!(r.lines().len(), 1, "{file}: one line\n{}", r.stderr);
        assert!(
            r.stderr.contains(file),
            "{file}: file not named\n{}",
            r.stderr
        );
        for want in *wants {
            assert!(r.stderr.contains(want), "{file}: no {want:?}\n{}", r.stderr);
        }
    }
    // Key material never reaches the error (the fixture's bad key starts with
    // base64 of "secret-key-material").
    let r = scan_with(
        &home,
        &fixture("kubeconfig/bad-base64-key.yaml"),
        &[],
        QUICK,
    );
    assert!(!r.stderr.contains("c2VjcmV0"), "{}", r.stderr);
}

#[test]
fn an_x509_v1_client_certificate_is_named_as_the_certificate_not_the_key() {
    // Regression: rustls only takes v3 certificates; `openssl x509 -req` without
    // extensions writes v1. The error named client-key-data and printed
    // "Other(OtherError(UnsupportedCertVersion))".
    let home = TempDir::new("kc-v1");
    let r = scan_with(
        &home,
        &fixture("kubeconfig/client-cert-v1.yaml"),
        &[],
        QUICK,
    );
    r.assert_bad_input("v1 client certificate");
    assert!(
        r.stderr
            .contains("client-certificate-data: is an X.509 v1 certificate"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("client-key-data"), "{}", r.stderr);
}

#[test]
fn a_context_that_does_not_exist_is_named_with_the_ones_that_do() {
    let home = TempDir::new("kc-ctx");
    let r = scan_with(
        &home,
        &fixture("kubeconfig/valid.yaml"),
        &["--context", "staging"],
        QUICK,
    );
    r.assert_bad_input("--context staging");
    assert!(
        r.stderr.contains("valid.yaml")
            && r.stderr.contains("context \"staging\" not found")
            && r.stderr.contains("\"default\""),
        "{}",
        r.stderr
    );
}

#[test]
fn unreadable_missing_and_directory_kubeconfigs_are_named() {
    let home = TempDir::new("kc-unreadable");
    let missing = home.join("nope.yaml");
    let r = scan_with(&home, &missing, &[], QUICK);
    r.assert_bad_input("missing kubeconfig");
    assert!(r.stderr.contains("cannot read kubeconfig") && r.stderr.contains("nope.yaml"));

    // A directory cannot be read by anyone, root included.
    let r = scan_with(&home, home.path(), &[], QUICK);
    r.assert_bad_input("directory as kubeconfig");
    assert!(r.stderr.contains("cannot read kubeconfig"), "{}", r.stderr);

    let locked = home.join("locked.yaml");
    std::fs::copy(fixture("kubeconfig/valid.yaml"), &locked).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&locked).is_ok() {
        // Root (CI runs as root) reads mode-000 files anyway: nothing to assert.
        eprintln!(
            "skipping the mode-000 kubeconfig check: this user can read mode-000 files (root)"
        );
    } else {
        let r = scan_with(&home, &locked, &[], QUICK);
        r.assert_bad_input("mode 000 kubeconfig");
        assert!(
            r.stderr.contains("locked.yaml") && r.stderr.contains("ermission denied"),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn a_kubeconfig_variable_that_is_not_utf8_is_an_error_not_a_fallback() {
    // Regression: a non-UTF-8 KUBECONFIG was treated as unset, so the daemon
    // silently fell back to ~/.kube/config, possibly another cluster.
    use std::os::unix::ffi::OsStrExt;
    let home = TempDir::new("kc-env-utf8");
    std::fs::create_dir_all(home.join(".kube")).unwrap();
    std::fs::copy(fixture("kubeconfig/valid.yaml"), home.join(".kube/config")).unwrap();
    let mut cmd = command(home.path());
    cmd.arg("scan").env(
        "KUBECONFIG",
        OsStr::from_bytes(b"/nonexistent/kube\xffconfig"),
    );
    let r = run(cmd, QUICK);
    r.assert_bad_input("non-UTF-8 KUBECONFIG");
    assert!(r.stderr.contains("KUBECONFIG"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("listing pods"),
        "fell back to ~/.kube/config:\n{}",
        r.stderr
    );
}

#[test]
fn files_that_never_end_are_refused_not_read_until_memory_runs_out() {
    // Regression: the kubeconfig, the files it names and the *_FILE secrets
    // were read whole, so /dev/zero (or a huge log file given by mistake) made
    // the daemon read until it was killed for memory; and a FIFO there made
    // start-up hang silently, waiting for a writer.
    let home = TempDir::new("dev-zero");
    let fifo = home.join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let huge = home.join("huge");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(17 << 20)
        .unwrap();
    let fifo_s = fifo.to_string_lossy().to_string();
    let huge_s = huge.to_string_lossy().to_string();
    let specials = [
        ("/dev/zero", "is a character device, not a regular file"),
        (
            fifo_s.as_str(),
            "is a FIFO (named pipe), not a regular file",
        ),
        (huge_s.as_str(), "larger than"),
    ];
    let valid = std::fs::read_to_string(fixture("kubeconfig/valid.yaml")).unwrap();
    let ca_line = valid
        .lines()
        .find(|l| l.contains("certificate-authority-data"))
        .unwrap();
    for (path, why) in specials {
        let r = scan_with(&home, Path::new(path), &[], QUICK);
        r.assert_bad_input(&format!("--kubeconfig {path}"));
        assert!(
            r.stderr.contains(path) && r.stderr.contains(why),
            "{path}: {}",
            r.stderr
        );
        for (what, kubeconfig) in [
            (
                "certificate-authority",
                valid.replace(ca_line, &format!("    certificate-authority: {path}")),
            ),
            (
                "tokenFile",
                valid.replace(
                    "    client-certificate-data:",
                    &format!("    tokenFile: {path}\n    client-certificate-data:"),
                ),
            ),
        ] {
            let kc = home.join("kubeconfig.yaml");
            std::fs::write(&kc, kubeconfig).unwrap();
            let r = scan_with(&home, &kc, &[], QUICK);
            r.assert_bad_input(what);
            assert!(
                r.stderr.contains(what) && r.stderr.contains(why),
                "{what} {path}: {}",
                r.stderr
            );
        }

        for (env, with) in [
            (
                "LLM_API_KEY_FILE",
                &[
                    ("LLM_BASE_URL", "http://ollama:11434/v1"),
                    ("LLM_MODEL", "llama3"),
                ][..],
            ),
            ("SLACK_BOT_TOKEN_FILE", &[("SLACK_CHANNEL", "#alerts")][..]),
            (
                "WEBHOOK_AUTH_HEADER_FILE",
                &[("WEBHOOK_URL", "https://example.com/hook")][..],
            ),
        ] {
            let mut cmd = command(home.path());
            cmd.arg("run").env(env, path).envs(with.iter().copied());
            let r = run(cmd, QUICK);
            r.assert_bad_input(env);
            assert_eq!(r.lines().len(), 1, "{}", r.stderr);
            assert!(
                r.stderr.starts_with(&format!(
                    "opsctrl-daemon: {env}=\"{path}\": cannot read it: "
                )) && r.stderr.contains(why),
                "{}",
                r.stderr
            );
        }
    }
}

/// A kubeconfig whose user runs `plugin` (relative to the kubeconfig) as its exec credential plugin.
fn exec_kubeconfig(dir: &Path, plugin_body: Option<&str>) -> PathBuf {
    if let Some(body) = plugin_body {
        let script = dir.join("plugin.sh");
        std::fs::write(&script, body).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let kc = dir.join("exec.yaml");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    \
         insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    exec:\n      \
         apiVersion: client.authentication.k8s.io/v1\n      command: ./plugin.sh\n      \
         installHint: \"install it with: brew install fake-plugin\"\n      interactiveMode: Never\n\
         contexts:\n- name: ctx\n  context: {cluster: c, user: u}\ncurrent-context: ctx\n",
    )
    .unwrap();
    kc
}

#[test]
fn exec_plugins_that_fail_print_garbage_or_are_missing_exit_2_and_say_why() {
    let cases: &[(&str, Option<&str>, &[&str])] = &[
        (
            "exits non-zero",
            Some("#!/bin/sh\necho 'error: SSO session expired; run aws sso login' >&2\nexit 3\n"),
            &[
                "exec plugin \"./plugin.sh\" failed",
                "exit status: 3",
                "SSO session expired",
            ],
        ),
        (
            "prints garbage",
            Some("#!/bin/sh\necho 'this is not json at all'\n"),
            &[
                "returned unusable output",
                "not an ExecCredential JSON document",
            ],
        ),
        (
            "prints a credential with a broken expiry",
            Some(
                "#!/bin/sh\necho '{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\",\
                 \"status\":{\"token\":\"SeCrEt-token\",\"expirationTimestamp\":\"tomorrow\"}}'\n",
            ),
            &["status.expirationTimestamp"],
        ),
        (
            "prints megabytes",
            Some("#!/bin/sh\nhead -c 5000000 /dev/zero | tr '\\0' 'x'\n"),
            &["returned unusable output"],
        ),
        (
            "is missing",
            None,
            &["not found", "brew install fake-plugin"],
        ),
    ];
    for (what, body, wants) in cases {
        let home = TempDir::new("exec-bad");
        let kc = exec_kubeconfig(home.path(), *body);
        let r = scan_with(&home, &kc, &[], QUICK);
        r.assert_bad_input(what);
        for want in *wants {
            assert!(r.stderr.contains(want), "{what}: no {want:?}\n{}", r.stderr);
        }
        assert!(
            !r.stderr.contains("SeCrEt"),
            "{what}: token echoed\n{}",
            r.stderr
        );
    }

    // Present but not executable: the spawn error, not a hang or a panic.
    let home = TempDir::new("exec-noexec");
    let kc = exec_kubeconfig(home.path(), None);
    std::fs::write(home.join("plugin.sh"), "#!/bin/sh\nexit 0\n").unwrap();
    let r = scan_with(&home, &kc, &[], QUICK);
    r.assert_bad_input("non-executable plugin");
    assert!(r.stderr.contains("could not be started"), "{}", r.stderr);
}

#[test]
fn an_exec_plugin_that_hangs_is_killed_after_the_timeout() {
    // The plugin timeout is 30 s (auth::EXEC_TIMEOUT) and not a setting, so this
    // test takes that long. `exec` makes the shell *become* sleep, so the kill
    // reaches it and nothing is left behind.
    let home = TempDir::new("exec-hang");
    let kc = exec_kubeconfig(home.path(), Some("#!/bin/sh\nexec sleep 600\n"));
    let r = scan_with(&home, &kc, &[], Duration::from_secs(120));
    r.assert_bad_input("hanging plugin");
    assert!(
        r.stderr.contains("timed out after 30s and was killed"),
        "{}",
        r.stderr
    );
    assert!(
        r.took >= Duration::from_secs(29) && r.took < Duration::from_secs(60),
        "took {:?}",
        r.took
    );
}

// ---------------------------------------------------------------------------------------------
// Absurd pods
// ---------------------------------------------------------------------------------------------

/// Pods no sane kubelet writes, each still a pod the API server could serve.
fn absurd_pods(tag: &str) -> Vec<Value> {
    let name = |app: &str| format!("{app}{tag}-5f6d8b9c4-q7w2z");
    let mb = "x".repeat(1 << 20);
    let mut out = Vec::new();

    // 1 MB message on a failed pod (the incident must carry a capped one).
    out.push(
        pod("weird", &name("bigmsg"))
            .phase_failed("Error", &mb)
            .build(),
    );

    // 1 MB annotations, ours among them with a non-"true" value.
    let mut p = pod("weird", &name("bigannot")).running().build();
    p["metadata"]["annotations"] = json!({
        "kubectl.kubernetes.io/last-applied-configuration": mb,
        "opsctrl.dev/ignore": "maybe",
    });
    out.push(p);

    // A container state nobody knows.
    let mut p = pod("weird", &name("unknownstate")).running().build();
    p["status"]["containerStatuses"][0]["state"] = json!({"hibernating": {"since": "forever"}});
    p["status"]["containerStatuses"][0]["lastState"] = json!({"teleported": {}});
    out.push(p);

    // No status at all.
    let mut p = pod("weird", &name("nostatus")).running().build();
    p.as_object_mut().unwrap().remove("status");
    out.push(p);

    // Status full of nulls, null list items included.
    let mut p = pod("weird", &name("nulls")).running().build();
    p["status"] = json!({
        "phase": null, "reason": null, "message": null, "conditions": [null, {"type": null, "status": null}],
        "containerStatuses": [null, {"name": null, "image": null, "ready": null, "restartCount": null,
            "state": {"waiting": null, "running": null, "terminated": null}, "lastState": null}],
        "initContainerStatuses": null
    });
    p["spec"]["containers"][0]["resources"] = Value::Null;
    out.push(p);

    // 500 containers.
    let mut p = pod("weird", &name("many")).running().build();
    let spec0 = p["spec"]["containers"][0].clone();
    let status0 = p["status"]["containerStatuses"][0].clone();
    let (mut specs, mut statuses) = (Vec::new(), Vec::new());
    for i in 0..500 {
        let (mut s, mut st) = (spec0.clone(), status0.clone());
        s["name"] = json!(format!("c{i}"));
        st["name"] = json!(format!("c{i}"));
        specs.push(s);
        statuses.push(st);
    }
    p["spec"]["containers"] = json!(specs);
    p["status"]["containerStatuses"] = json!(statuses);
    out.push(p);

    // Control characters, escapes, a lone replacement character, bidi overrides, emoji.
    let weird_text = "nul\u{0} esc\u{1b}[31mred\u{1b}[0m cr\r lf\n tab\t bell\u{7} \u{fffd} \u{202e}txet \u{2028} 😀";
    let mut p = pod("weird", &name("escapes"))
        .crash_loop(3, 1, "Error")
        .build();
    let cs = &mut p["status"]["containerStatuses"][0];
    cs["state"]["waiting"]["message"] = json!(weird_text);
    cs["lastState"]["terminated"]["message"] = json!(weird_text);
    cs["lastState"]["terminated"]["reason"] = json!(weird_text);
    out.push(p);

    // Numbers, booleans and lists where strings belong, and the reverse.
    let mut p = pod("weird", &name("types"))
        .crash_loop(3, 1, "Error")
        .build();
    p["status"]["phase"] = json!(5);
    p["status"]["reason"] = json!(["a", "list"]);
    p["status"]["conditions"][0]["status"] = json!(true);
    p["status"]["conditions"][0]["lastTransitionTime"] = json!(1_715_677_200);
    p["metadata"]["creationTimestamp"] = json!(12345);
    p["metadata"]["ownerReferences"] = json!("not a list");
    p["spec"]["nodeName"] = json!(false);
    p["spec"]["containers"][0]["image"] = json!(7);
    p["spec"]["containers"][0]["resources"]["limits"]["memory"] = json!(268_435_456);
    p["spec"]["containers"][0]["livenessProbe"] =
        json!({"httpGet": {"path": 8080, "port": {"name": "http"}}, "timeoutSeconds": "5"});
    let cs = &mut p["status"]["containerStatuses"][0];
    cs["restartCount"] = json!("three");
    cs["ready"] = json!("yes");
    cs["image"] = json!({"nested": "object"});
    cs["state"]["waiting"]["message"] = json!(42);
    cs["lastState"]["terminated"]["exitCode"] = json!("1");
    cs["lastState"]["terminated"]["signal"] = json!(1.5);
    out.push(p);

    // Numbers out of every range.
    let mut p = pod("weird", &name("ranges"))
        .crash_loop(3, 1, "Error")
        .build();
    let cs = &mut p["status"]["containerStatuses"][0];
    cs["restartCount"] = json!(-1);
    cs["lastState"]["terminated"]["exitCode"] = json!(99_999_999_999_i64);
    cs["lastState"]["terminated"]["signal"] = json!(-2_147_483_649_i64);
    p["spec"]["containers"][0]["livenessProbe"] = json!({"exec": {"command": ["true"]},
        "timeoutSeconds": 1e300, "periodSeconds": -3, "failureThreshold": 4_294_967_296_u64});
    out.push(p);

    out
}

#[test]
fn absurd_pods_do_not_stop_the_daemon_and_a_real_crash_loop_is_still_reported() {
    let api = FakeApi::start();
    // Some are there for the first LIST, the others arrive on the watch.
    for p in absurd_pods("") {
        api.upsert_pod(p);
    }
    let home = TempDir::new("absurd");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut d = Daemon::start(
        home.path(),
        &kc,
        &[
            ("OUTPUT", "json"),
            ("NOTIFY_BATCH_MS", "0"),
            ("CLUSTER_NAME", "edge"),
        ],
    );
    let n = absurd_pods("").len();
    d.wait_ready();
    d.wait_metric("opsctrl_pods_tracked", Duration::from_secs(30), |v| {
        v == n as f64
    });
    for p in absurd_pods("w") {
        api.upsert_pod(p);
    }
    // Modified once more, still absurd, and one deleted.
    for p in absurd_pods("") {
        api.upsert_pod(p);
    }
    api.delete_pod("weird", "nostatus-5f6d8b9c4-q7w2z");
    // A truly malformed line is counted (the absurd pods above are not).
    api.inject(Fault::GarbageLine);
    d.wait_metric(
        "opsctrl_watch_malformed_lines_total",
        Duration::from_secs(30),
        |v| v >= 1.0,
    );

    let real = "api-7d4b9c6f8-zzzzz";
    api.upsert_pod(pod("shop", real).crash_loop(5, 1, "Error").build());
    d.wait("the real crash loop", Duration::from_secs(30), |d| {
        d.records()
            .iter()
            .any(|r| r["pod"] == real && r["type"] == "CrashLoopBackOff" && r["state"] == "open")
    });
    d.wait_metric("opsctrl_pods_tracked", Duration::from_secs(30), |v| {
        v == (2 * n) as f64
    });

    let records = d.records();
    let big = records
        .iter()
        .find(|r| r["pod"].as_str().is_some_and(|p| p.starts_with("bigmsg")))
        .expect("the 1 MB-message pod is reported");
    let msg = big["message"].as_str().unwrap_or_default();
    assert!(
        msg.len() < 5000 && msg.ends_with("[truncated]"),
        "message not capped: {} bytes",
        msg.len()
    );
    // Every stdout line is one whole JSON record, control characters and all.
    for line in d.stdout() {
        assert!(serde_json::from_str::<Value>(&line).is_ok(), "{line:?}");
    }
    let (status, _, logs) = d.terminate();
    assert_no_panic(&logs, "absurd pods");
    assert_eq!(status.code(), Some(0), "{logs}");
}

#[test]
fn scan_of_a_file_of_absurd_pods_reports_without_panicking() {
    let home = TempDir::new("absurd-scan");
    let file = home.join("pods.json");
    let doc = json!({"kind": "List", "apiVersion": "v1", "items": absurd_pods("")});
    std::fs::write(&file, doc.to_string()).unwrap();
    for output in ["json", "text"] {
        let mut cmd = command(home.path());
        cmd.arg("scan").arg("-f").arg(&file).args(["-o", output]);
        let r = run(cmd, QUICK);
        assert_no_panic(&r.stderr, output);
        assert_eq!(
            r.code,
            Some(1),
            "{output}: failing pods found\n{}",
            r.stderr
        );
        if output == "json" {
            let v: Value = serde_json::from_str(&r.stdout).expect("one JSON array");
            assert!(v.as_array().is_some_and(|a| !a.is_empty()), "{v:#}");
        } else {
            // Regression: the "escapes" pod's message reached the table raw, so
            // a termination message could recolour the terminal (ESC) or
            // overwrite the line (CR).
            let bad: Vec<char> = r
                .stdout
                .chars()
                .filter(|c| c.is_control() && *c != '\n')
                .collect();
            assert!(
                bad.is_empty(),
                "control characters {bad:?} in:\n{}",
                r.stdout
            );
            assert!(r.stdout.contains("Deployment/escapes"), "{}", r.stdout);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// RULES_FILE
// ---------------------------------------------------------------------------------------------

fn with_rules(home: &TempDir, file: &Path) -> Ran {
    let mut cmd = command(home.path());
    cmd.arg("run").env("RULES_FILE", file);
    run(cmd, QUICK)
}

#[test]
fn broken_rules_files_exit_2_naming_the_file_and_each_rule() {
    let home = TempDir::new("rules-bad");
    let cases: &[(&str, &[&[&str]])] = &[
        ("not-json.json", &[&["not a rules document"]]),
        ("empty.json", &[&["not a rules document"]]),
        (
            "unknown-cause.json",
            &[&[
                "rule 1 (\"payments-db\")",
                "cause \"database_down\" is not one of",
            ]],
        ),
        (
            "bad-regex.json",
            &[&["rule 2 (\"payments-db\")", "logs: bad regex"]],
        ),
        (
            "several-problems.json",
            &[
                &["rule 1 (\"a\")", "cause \"bogus\""],
                &["rule 1 (\"a\")", "type \"Crashy\""],
                &["rule 1 (\"a\")", "message: bad regex"],
                &["rule 1 (\"a\")", "{{nope}}"],
                &["rule 3 (\"c\")", "confidence 7"],
                &["rule 3 (\"c\")", "summary is empty"],
            ],
        ),
        (
            "unknown-field.json",
            &[&["rule 2 (\"typo\")", "unknown field `mesage`"]],
        ),
        (
            "wrong-type.json",
            &[&["rule 1 (\"exit-as-text\")", "exit_codes"]],
        ),
    ];
    for (file, lines) in cases {
        let path = fixture(&format!("rules/{file}"));
        let r = with_rules(&home, &path);
        r.assert_bad_input(file);
        let prefix = format!("opsctrl-daemon: RULES_FILE {}: ", path.display());
        assert_eq!(
            r.lines().len(),
            lines.len(),
            "{file}: one line per problem\n{}",
            r.stderr
        );
        for line in r.lines() {
            assert!(line.starts_with(&prefix), "{file}: file not named: {line}");
        }
        for wants in *lines {
            assert!(
                r.lines()
                    .iter()
                    .any(|l| wants.iter().all(|w| l.contains(w))),
                "{file}: no line with {wants:?}\n{}",
                r.stderr
            );
        }
    }
}

#[test]
fn unreadable_huge_and_non_utf8_rules_files_are_named() {
    let home = TempDir::new("rules-odd");
    // A directory: caught by the setting itself.
    let r = with_rules(&home, home.path());
    r.assert_bad_input("directory");
    assert!(
        r.stderr.starts_with("opsctrl-daemon: RULES_FILE=") && r.stderr.contains("is not a file")
    );

    let huge = home.join("huge.json");
    std::fs::write(&huge, format!("[{}]", " ".repeat(2 << 20))).unwrap();
    let r = with_rules(&home, &huge);
    r.assert_bad_input("huge");
    assert!(
        r.stderr.contains("huge.json") && r.stderr.contains("larger than"),
        "{}",
        r.stderr
    );

    let latin1 = home.join("latin1.json");
    std::fs::write(&latin1, b"{\"rules\": [{\"id\": \"caf\xe9\"}]}").unwrap();
    let r = with_rules(&home, &latin1);
    r.assert_bad_input("non-UTF-8");
    assert!(
        r.stderr.contains("latin1.json") && r.stderr.contains("cannot read it"),
        "{}",
        r.stderr
    );
}
