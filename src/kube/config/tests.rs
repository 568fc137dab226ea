use super::test_support::{Ca, TempDir, b64, fixture};
use super::*;
use std::error::Error as _;

fn env_with(dir: &Path) -> Env {
    Env {
        kubeconfig: None,
        service_host: None,
        service_port: None,
        home: None,
        sa_dir: dir.join("no-service-account"),
    }
}

fn simple_kubeconfig(server: &str, context: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {context}
  cluster:
    server: {server}
contexts:
- name: {context}
  context:
    cluster: {context}
    user: {context}
    namespace: ns-{context}
current-context: {context}
users:
- name: {context}
  user:
    token: token-{context}
"
    )
}

/// The layout k3s writes to /etc/rancher/k3s/k3s.yaml: everything inline,
/// an EC (SEC1) client key and a two-certificate client chain.
fn k3s_yaml(ca: &Ca, client_chain_pem: &str, key_pem: &str) -> String {
    format!(
        "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {}
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {{}}
users:
- name: default
  user:
    client-certificate-data: {}
    client-key-data: {}
",
        b64(&ca.cert_pem),
        b64(client_chain_pem),
        b64(key_pem)
    )
}

fn k3s_fixture() -> (Ca, String) {
    let ca = Ca::new("k3s-server-ca");
    let client_ca = Ca::new("k3s-client-ca");
    let leaf = client_ca.client_cert("system:admin", &fixture("client-ec-pkcs8.key"));
    let chain = format!("{leaf}{}", client_ca.cert_pem);
    let yaml = k3s_yaml(&ca, &chain, &fixture("client-ec-sec1.key"));
    (ca, yaml)
}

fn expect_err(result: Result<ClusterConfig, Error>) -> String {
    match result {
        Ok(cfg) => panic!("expected an error, got {cfg:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_k3s_kubeconfig_loads_as_is() {
    let dir = TempDir::new("k3s");
    let (_ca, yaml) = k3s_fixture();
    let path = dir.write("k3s.yaml", yaml);
    let cfg = load(Some(&path), None, &env_with(dir.path())).expect("k3s config loads");
    assert_eq!(cfg.server, "https://127.0.0.1:6443");
    assert_eq!(cfg.tls.ca_certs.len(), 1);
    let identity = cfg.tls.client_cert.as_ref().expect("client cert");
    assert_eq!(identity.chain.len(), 2);
    assert!(matches!(identity.key, PrivateKeyDer::Sec1(_)));
    assert!(matches!(cfg.auth, AuthConfig::None));
    assert_eq!(cfg.namespace, None);
    assert_eq!(
        cfg.origin.to_string(),
        format!("kubeconfig {}, context \"default\"", path.display())
    );
    assert!(!format!("{cfg:?}").contains("PRIVATE"));
}

#[test]
fn rsa_pkcs1_and_pkcs8_keys_are_accepted() {
    let ca = Ca::new("ca");
    let cert = ca.client_cert("rsa-user", &fixture("client-rsa-pkcs8.key"));
    for key in [
        "client-rsa-pkcs1.key",
        "client-rsa-pkcs8.key",
        "client-ec-pkcs8.key",
    ] {
        let cert = if key.starts_with("client-ec") {
            ca.client_cert("ec-user", &fixture(key))
        } else {
            cert.clone()
        };
        let yaml = k3s_yaml(&ca, &cert, &fixture(key));
        let kc = parse_kubeconfig(&yaml, Path::new("/x/config")).expect("parses");
        let cfg = resolve(&kc, &[PathBuf::from("/x/config")], None)
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert!(cfg.tls.client_cert.is_some(), "{key}");
    }
}

#[test]
fn a_truncated_k3s_file_names_the_file_and_the_field() {
    let dir = TempDir::new("truncated");
    let (_ca, yaml) = k3s_fixture();
    let cut = yaml.rfind("client-key-data").expect("key line") + 40;
    let path = dir.write("k3s.yaml", &yaml[..cut]);
    let err = expect_err(load(Some(&path), None, &env_with(dir.path())));
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("context \"default\""), "{err}");
    assert!(err.contains("client-key-data"), "{err}");
}

#[test]
fn a_mismatched_client_key_is_rejected_without_printing_it() {
    let ca = Ca::new("ca");
    let cert = ca.client_cert("u", &fixture("client-ec-pkcs8.key"));
    let yaml = k3s_yaml(&ca, &cert, &fixture("client-rsa-pkcs8.key"));
    let kc = parse_kubeconfig(&yaml, Path::new("/k/config")).expect("parses");
    let err = expect_err(resolve(&kc, &[PathBuf::from("/k/config")], None));
    assert!(err.contains("does not match"), "{err}");
    assert!(!err.contains("MII"), "{err}");
}

#[test]
fn bad_base64_pem_and_key_errors_name_file_context_and_field() {
    let ca = Ca::new("ca");
    let cert = ca.client_cert("u", &fixture("client-ec-pkcs8.key"));
    let good_key = b64(fixture("client-ec-sec1.key"));
    let cases = [
        (
            "certificate-authority-data: '%%%notbase64'",
            "certificate-authority-data is not valid base64",
        ),
        (
            &*format!("certificate-authority-data: {}", b64("hello")),
            "certificate-authority-data contains no PEM CERTIFICATE block",
        ),
        (
            &*format!(
                "client-key-data: {}",
                b64("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")
            ),
            "client-key-data: the private key cannot be loaded",
        ),
        (
            &*format!("client-key-data: {}", b64("nothing")),
            "client-key-data contains no PEM private key",
        ),
    ];
    for (replacement, expected) in cases {
        let field = replacement.split(':').next().expect("field");
        let mut yaml = k3s_yaml(&ca, &cert, &fixture("client-ec-sec1.key"));
        let line = yaml
            .lines()
            .find(|l| l.trim_start().starts_with(field))
            .expect("field line")
            .to_owned();
        let indent = &line[..line.len() - line.trim_start().len()];
        yaml = yaml.replace(&line, &format!("{indent}{replacement}"));
        let kc = parse_kubeconfig(&yaml, Path::new("/etc/k3s.yaml")).expect("parses");
        let err = expect_err(resolve(&kc, &[PathBuf::from("/etc/k3s.yaml")], None));
        assert!(
            err.starts_with("kubeconfig /etc/k3s.yaml, context \"default\": "),
            "{err}"
        );
        assert!(err.contains(expected), "{err}");
        assert!(!err.contains(&good_key[..20]), "{err}");
    }
}

#[test]
fn relative_paths_resolve_against_the_kubeconfig_directory() {
    let dir = TempDir::new("relative");
    let ca = Ca::new("ca");
    let cert = ca.client_cert("u", &fixture("client-rsa-pkcs8.key"));
    dir.write("kube/pki/ca.crt", &ca.cert_pem);
    dir.write("kube/pki/client.crt", &cert);
    dir.write("kube/pki/client.key", fixture("client-rsa-pkcs1.key"));
    dir.write("kube/token", "abc\n");
    let path = dir.write(
        "kube/config",
        "clusters:
- name: c
  cluster:
    server: https://api.example.com:6443/
    certificate-authority: pki/ca.crt
    tls-server-name: kubernetes.default.svc
users:
- name: u
  user:
    client-certificate: pki/client.crt
    client-key: pki/client.key
    tokenFile: token
contexts:
- name: x
  context: {cluster: c, user: u, namespace: team-a}
",
    );
    let cfg = load(Some(&path), Some("x"), &env_with(dir.path())).expect("loads");
    assert_eq!(cfg.server, "https://api.example.com:6443");
    assert_eq!(
        cfg.tls.server_name.as_deref(),
        Some("kubernetes.default.svc")
    );
    assert_eq!(cfg.tls.ca_certs.len(), 1);
    assert!(cfg.tls.client_cert.is_some());
    assert_eq!(cfg.namespace.as_deref(), Some("team-a"));
    match cfg.auth {
        AuthConfig::TokenFile(p) => assert_eq!(p, dir.path().join("kube/token")),
        other => panic!("expected a token file, got {other:?}"),
    }
}

#[test]
fn a_missing_referenced_file_names_the_file_context_and_field() {
    let text = "clusters:
- name: c
  cluster: {server: 'https://h', certificate-authority: ca.pem}
contexts:
- name: x
  context: {cluster: c}
current-context: x
";
    let kc = parse_kubeconfig(text, Path::new("/nowhere/config")).expect("parses");
    let err = expect_err(resolve(&kc, &[PathBuf::from("/nowhere/config")], None));
    assert!(
            err.starts_with(
                "kubeconfig /nowhere/config, context \"x\": cluster \"c\" certificate-authority: cannot read /nowhere/ca.pem"
            ),
            "{err}"
        );
}

#[test]
fn kubeconfig_list_merges_with_the_first_file_winning() {
    let dir = TempDir::new("merge");
    let a = dir.write(
        "a.yaml",
        "clusters:
- name: shared
  cluster: {server: 'https://from-a'}
users:
- name: shared
  user: {token: from-a}
contexts:
- name: one
  context: {cluster: shared, user: shared}
",
    );
    let b = dir.write(
        "b.yaml",
        "current-context: two
clusters:
- name: shared
  cluster: {server: 'https://from-b'}
- name: only-b
  cluster: {server: 'https://only-b'}
contexts:
- name: one
  context: {cluster: only-b}
- name: two
  context: {cluster: only-b, user: shared}
",
    );
    let mut env = env_with(dir.path());
    let missing = dir.path().join("missing.yaml");
    env.kubeconfig = Some(format!(
        "{}:{}::{}",
        missing.display(),
        a.display(),
        b.display()
    ));
    let cfg = load(None, None, &env).expect("merged config loads");
    // current-context from b (a sets none); user "shared" from a.
    assert_eq!(cfg.server, "https://only-b");
    match &cfg.auth {
        AuthConfig::Token(t) => assert_eq!(t.expose(), "from-a"),
        other => panic!("expected a token, got {other:?}"),
    }
    assert_eq!(
        cfg.origin,
        Origin::Kubeconfig {
            paths: vec![a.clone(), b.clone()],
            context: "two".to_owned()
        }
    );
    // Context "one" exists in both: a's definition wins, and a's cluster "shared" too.
    let cfg = load(None, Some("one"), &env).expect("context one");
    assert_eq!(cfg.server, "https://from-a");
}

#[test]
fn a_kubeconfig_list_with_no_existing_file_is_an_error() {
    let dir = TempDir::new("none-exist");
    let mut env = env_with(dir.path());
    env.kubeconfig = Some("/nope/a:/nope/b".to_owned());
    let err = expect_err(load(None, None, &env));
    assert_eq!(
        err,
        "none of the files in KUBECONFIG exist: /nope/a:/nope/b"
    );
}

#[test]
fn the_flag_wins_over_kubeconfig_env_and_in_cluster() {
    let dir = TempDir::new("flag");
    let flag = dir.write("flag.yaml", simple_kubeconfig("https://flag", "f"));
    let listed = dir.write("env.yaml", simple_kubeconfig("https://env", "e"));
    let mut env = env_with(dir.path());
    env.kubeconfig = Some(listed.display().to_string());
    env.service_host = Some("10.0.0.1".to_owned());
    env.service_port = Some("443".to_owned());
    assert_eq!(
        load(Some(&flag), None, &env).expect("flag").server,
        "https://flag"
    );
    let cfg = load(None, None, &env).expect("env");
    assert_eq!(cfg.server, "https://env");
    assert_eq!(cfg.namespace.as_deref(), Some("ns-e"));
}

#[test]
fn a_missing_flag_file_is_an_error_naming_it() {
    let dir = TempDir::new("flag-missing");
    let path = dir.path().join("absent");
    let err = expect_err(load(Some(&path), None, &env_with(dir.path())));
    assert!(
        err.starts_with(&format!("cannot read kubeconfig {}: ", path.display())),
        "{err}"
    );
}

fn service_account(dir: &TempDir) -> PathBuf {
    let ca = Ca::new("cluster-ca");
    dir.write("sa/token", "eyJhbGciOi.token\n");
    dir.write("sa/ca.crt", &ca.cert_pem);
    dir.write("sa/namespace", "monitoring\n");
    dir.path().join("sa")
}

#[test]
fn in_cluster_uses_the_service_account_files() {
    let dir = TempDir::new("in-cluster");
    let mut env = env_with(dir.path());
    env.sa_dir = service_account(&dir);
    env.service_host = Some("10.43.0.1".to_owned());
    env.service_port = Some("443".to_owned());
    env.home = Some(dir.path().to_path_buf());
    dir.write(".kube/config", simple_kubeconfig("https://home", "h"));
    let cfg = load(None, None, &env).expect("in-cluster");
    assert_eq!(cfg.server, "https://10.43.0.1:443");
    assert_eq!(cfg.origin, Origin::InCluster);
    assert_eq!(cfg.origin.to_string(), "in-cluster service account");
    assert_eq!(cfg.namespace.as_deref(), Some("monitoring"));
    assert_eq!(cfg.tls.ca_certs.len(), 1);
    assert!(matches!(cfg.auth, AuthConfig::TokenFile(ref p) if p == &env.sa_dir.join("token")));
}

#[test]
fn in_cluster_brackets_an_ipv6_host() {
    let dir = TempDir::new("in-cluster-v6");
    let mut env = env_with(dir.path());
    env.sa_dir = service_account(&dir);
    env.service_host = Some("fd00::1".to_owned());
    env.service_port = Some("443".to_owned());
    assert_eq!(
        load(None, None, &env).expect("v6").server,
        "https://[fd00::1]:443"
    );
}

#[test]
fn in_cluster_without_a_token_or_ca_is_a_clear_error() {
    let dir = TempDir::new("in-cluster-missing");
    let mut env = env_with(dir.path());
    env.sa_dir = service_account(&dir);
    env.service_host = Some("10.43.0.1".to_owned());
    env.service_port = Some("443".to_owned());
    std::fs::remove_file(env.sa_dir.join("ca.crt")).expect("rm ca");
    let err = expect_err(load(None, None, &env));
    assert!(
        err.starts_with("in-cluster service account: cannot read CA file "),
        "{err}"
    );
    std::fs::remove_file(env.sa_dir.join("token")).expect("rm token");
    let err = expect_err(load(None, None, &env));
    assert!(
        err.starts_with("in-cluster service account: token file "),
        "{err}"
    );
    assert!(err.contains("sa/token cannot be read: "), "{err}");
}

#[test]
fn home_kubeconfig_is_the_last_resort() {
    let dir = TempDir::new("home");
    let mut env = env_with(dir.path());
    env.home = Some(dir.path().to_path_buf());
    let err = expect_err(load(None, None, &env));
    assert!(err.starts_with("no cluster configuration found: "), "{err}");
    assert!(err.contains(".kube/config does not exist"), "{err}");
    dir.write(".kube/config", simple_kubeconfig("https://home", "h"));
    assert_eq!(load(None, None, &env).expect("home").server, "https://home");
}

#[test]
fn an_explicit_context_skips_in_cluster() {
    let dir = TempDir::new("context-skips");
    let mut env = env_with(dir.path());
    env.sa_dir = service_account(&dir);
    env.service_host = Some("10.43.0.1".to_owned());
    env.service_port = Some("443".to_owned());
    env.home = Some(dir.path().to_path_buf());
    dir.write(".kube/config", simple_kubeconfig("https://home", "h"));
    assert_eq!(
        load(None, Some("h"), &env).expect("home").server,
        "https://home"
    );
}

#[test]
fn unknown_context_and_missing_current_context_are_explained() {
    let text = simple_kubeconfig("https://a", "a").replace("current-context: a\n", "");
    let kc = parse_kubeconfig(&text, Path::new("/k")).expect("parses");
    let paths = [PathBuf::from("/k")];
    assert_eq!(
        expect_err(resolve(&kc, &paths, None)),
        "kubeconfig /k: no current-context; pass --context"
    );
    assert_eq!(
        expect_err(resolve(&kc, &paths, Some("prod"))),
        "kubeconfig /k: context \"prod\" not found (available: \"a\")"
    );
}

#[test]
fn dangling_cluster_and_user_references_are_named() {
    let text = "contexts:
- name: x
  context: {cluster: gone, user: admin}
clusters:
- name: here
  cluster: {server: 'https://h'}
";
    let kc = parse_kubeconfig(text, Path::new("/k")).expect("parses");
    let err = expect_err(resolve(&kc, &[PathBuf::from("/k")], Some("x")));
    assert_eq!(
        err,
        "kubeconfig /k, context \"x\": cluster \"gone\" not found"
    );
    let kc = parse_kubeconfig(&text.replace("gone", "here"), Path::new("/k")).expect("parses");
    let err = expect_err(resolve(&kc, &[PathBuf::from("/k")], Some("x")));
    assert_eq!(
        err,
        "kubeconfig /k, context \"x\": user \"admin\" not found"
    );
}

#[test]
fn unsupported_auth_is_rejected_naming_the_user() {
    for user in [
        "auth-provider: {name: gcp, config: {access-token: secret-value}}",
        "{username: admin, password: secret-value}",
    ] {
        let text = format!(
            "clusters: [{{name: c, cluster: {{server: 'https://h'}}}}]
contexts: [{{name: x, context: {{cluster: c, user: admin}}}}]
users:
- name: admin
  user: {user}
"
        );
        let text = text.replace("user: auth-provider", "user:\n    auth-provider");
        let kc = parse_kubeconfig(&text, Path::new("/k")).expect("parses");
        let err = expect_err(resolve(&kc, &[PathBuf::from("/k")], Some("x")));
        assert!(
            err.starts_with("kubeconfig /k, context \"x\": user \"admin\" uses "),
            "{err}"
        );
        assert!(err.contains("not supported"), "{err}");
        assert!(!err.contains("secret-value"), "{err}");
    }
}

#[test]
fn exec_users_are_parsed_with_their_env_and_base_dir() {
    let text =
        "clusters: [{name: c, cluster: {server: 'https://h', insecure-skip-tls-verify: true}}]
contexts: [{name: x, context: {cluster: c, user: eks}}]
current-context: x
users:
- name: eks
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: ./bin/aws
      args: [eks, get-token, --cluster-name, prod]
      env:
      - name: AWS_PROFILE
        value: prod
      installHint: install the aws cli
      provideClusterInfo: true
      interactiveMode: Never
";
    let kc = parse_kubeconfig(text, Path::new("/home/u/.kube/config")).expect("parses");
    let cfg = resolve(&kc, &[PathBuf::from("/home/u/.kube/config")], None).expect("resolves");
    let AuthConfig::Exec(exec) = cfg.auth else {
        panic!("expected exec")
    };
    assert_eq!(exec.command, "./bin/aws");
    assert_eq!(exec.args, ["eks", "get-token", "--cluster-name", "prod"]);
    assert_eq!(exec.env, [("AWS_PROFILE".to_owned(), "prod".to_owned())]);
    assert_eq!(exec.base_dir, PathBuf::from("/home/u/.kube"));
    assert_eq!(exec.install_hint.as_deref(), Some("install the aws cli"));
    assert!(exec.provide_cluster_info);
    assert!(exec.cluster.insecure_skip_tls_verify);
    assert_eq!(exec.cluster.server, "https://h");
    assert!(!format!("{exec:?}").contains("prod\""));
}

#[test]
fn exec_v1alpha1_is_rejected() {
    let text = "clusters: [{name: c, cluster: {server: 'https://h'}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: x}}}]
";
    let kc = parse_kubeconfig(text, Path::new("/k")).expect("parses");
    let err = expect_err(resolve(&kc, &[PathBuf::from("/k")], Some("x")));
    assert!(
        err.contains(
            "user \"u\" exec apiVersion \"client.authentication.k8s.io/v1alpha1\" is not supported"
        ),
        "{err}"
    );
}

#[test]
fn wrong_field_types_name_the_field_but_not_the_value() {
    let text = "users: [{name: u, user: {token: 123456789}}]";
    let err = parse_kubeconfig(text, Path::new("/k"))
        .err()
        .expect("error")
        .to_string();
    assert_eq!(err, "kubeconfig /k: user \"u\": token must be a string");
    let text = "clusters: [{name: c, cluster: {insecure-skip-tls-verify: 'yes'}}]";
    let err = parse_kubeconfig(text, Path::new("/k"))
        .err()
        .expect("error")
        .to_string();
    assert_eq!(
        err,
        "kubeconfig /k: cluster \"c\": insecure-skip-tls-verify must be true or false"
    );
}

#[test]
fn an_alias_bomb_is_refused_before_it_is_expanded() {
    // Regression: 530 bytes of nested aliases expanded to 10^9 nodes and
    // the process ran out of memory.
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        yaml += &format!("a{i}: &a{i} [{refs}]\n");
    }
    let err = parse_kubeconfig(&yaml, Path::new("/k/bomb"))
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .starts_with("kubeconfig /k/bomb: top level: its YAML aliases expand to more than"),
        "{err}"
    );
    // A few aliases, as a hand-written kubeconfig might use, still load.
    let ok = "clusters:\n- name: a\n  cluster: &c {server: https://a}\n- name: b\n  cluster: *c\n";
    assert_eq!(
        parse_kubeconfig(ok, Path::new("/k/c"))
            .unwrap()
            .clusters
            .len(),
        2
    );
}

#[test]
fn invalid_yaml_names_the_file() {
    let err = parse_kubeconfig("clusters: [\n  - {name: x", Path::new("/k"))
        .err()
        .expect("error");
    assert!(
        err.to_string()
            .starts_with("kubeconfig /k is not valid YAML: "),
        "{err}"
    );
    assert!(err.source().is_some());
}

#[test]
fn json_kubeconfigs_parse_too() {
    let text = r#"{"apiVersion":"v1","clusters":[{"name":"c","cluster":{"server":"http://127.0.0.1:8001"}}],
            "contexts":[{"name":"proxy","context":{"cluster":"c"}}],"current-context":"proxy","users":null}"#;
    let kc = parse_kubeconfig(text, Path::new("/k.json")).expect("parses");
    let cfg = resolve(&kc, &[PathBuf::from("/k.json")], None).expect("resolves");
    assert_eq!(cfg.server, "http://127.0.0.1:8001");
    assert!(matches!(cfg.auth, AuthConfig::None));
}

#[test]
fn insecure_with_a_ca_is_refused() {
    let ca = Ca::new("ca");
    let text = format!(
            "clusters: [{{name: c, cluster: {{server: 'https://h', insecure-skip-tls-verify: true, certificate-authority-data: {}}}}}]
contexts: [{{name: x, context: {{cluster: c}}}}]
",
            b64(&ca.cert_pem)
        );
    let kc = parse_kubeconfig(&text, Path::new("/k")).expect("parses");
    let err = expect_err(resolve(&kc, &[PathBuf::from("/k")], Some("x")));
    assert!(
        err.contains("sets both certificate-authority-data and insecure-skip-tls-verify"),
        "{err}"
    );
}
