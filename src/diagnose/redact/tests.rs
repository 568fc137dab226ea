use super::*;

fn same(s: &str) {
    assert_eq!(redact(s), s, "should be left alone");
}

#[test]
fn authorization_headers_and_bearer_tokens() {
    assert_eq!(
        redact("Authorization: Bearer abc.def-123"),
        "Authorization: Bearer [REDACTED]"
    );
    assert_eq!(
        redact("authorization: Basic dXNlcjpwYXNz"),
        "authorization: Basic [REDACTED]"
    );
    // Not base64 of user:pass, still the Authorization header's value.
    assert_eq!(
        redact("Authorization: Basic Zm9vYmFy"),
        "Authorization: Basic [REDACTED]"
    );
    assert_eq!(
        redact("Authorization: s3cr3t value"),
        "Authorization: [REDACTED]"
    );
    assert_eq!(
        redact(r#"{"Authorization": "Bearer tok-12345", "x": 1}"#),
        r#"{"Authorization": "Bearer [REDACTED]", "x": 1}"#
    );
    assert_eq!(
        redact("curl -H 'Authorization: token abcdef0123456789' https://x.io"),
        "curl -H 'Authorization: token [REDACTED]' https://x.io"
    );
    assert_eq!(
        redact("got header map[Authorization:[Bearer zz9x] Cookie:[sid=abc; theme=dark]]"),
        "got header map[Authorization:[Bearer [REDACTED]] Cookie:[[REDACTED]]]"
    );
    assert_eq!(redact("Cookie: a=1; b=2"), "Cookie: [REDACTED]");
    assert_eq!(
        redact("sending Bearer eyzAbc123 to api"),
        "sending Bearer [REDACTED] to api"
    );
    // Prose and challenges stay.
    same("missing Bearer token in request");
    same(r#"WWW-Authenticate: Bearer realm="api", error="invalid_token""#);
    same("Basic auth failed for user admin");
}

#[test]
fn tokens_by_shape() {
    let jwt =
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    assert_eq!(
        redact(&format!("token {jwt}, ok")),
        "token [REDACTED:jwt], ok"
    );
    assert_eq!(
        redact("SLACK=xoxb-1234567890-abcdefghij and xapp-1-A0123-456-abcdef"),
        "SLACK=[REDACTED:slack-token] and [REDACTED:slack-token]"
    );
    assert_eq!(
        redact("key sk-proj-abcdefghijklmnopqrstuvwx1234 used"),
        "key [REDACTED:api-key] used"
    );
    assert_eq!(
        redact(
            "clone with ghp_abcdefghijklmnopqrstuvwxyz0123456789 or github_pat_11AAAAAAA0abcdefghij_xyz"
        ),
        "clone with [REDACTED:github-token] or [REDACTED:github-token]"
    );
    assert_eq!(
        redact("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE"),
        "AWS_ACCESS_KEY_ID=[REDACTED:aws-access-key]"
    );
    assert_eq!(
        redact("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        "aws_secret_access_key = [REDACTED]"
    );
    assert_eq!(
        redact("glpat-abcdefghij0123456789 AIzaSyA-abcdefghijklmnopqrstuvwxyz01234"),
        "[REDACTED:gitlab-token] [REDACTED:google-api-key]"
    );
    same("pip install scikit-learn; import sk-learn; xoxo-hugs; TASK-1234");
}

#[test]
fn passwords_in_urls() {
    assert_eq!(
        redact("connecting to postgres://app:hunter2@db.shop.svc:5432/orders?sslmode=disable"),
        "connecting to postgres://app:[REDACTED]@db.shop.svc:5432/orders?sslmode=disable"
    );
    assert_eq!(
        redact("redis://:p@ss@cache:6379/0"),
        "redis://:[REDACTED]@cache:6379/0"
    );
    assert_eq!(
        redact("POST https://hooks.slack.com/services/T000/B000/XXXXXXXX failed"),
        "POST https://hooks.slack.com/services/[REDACTED] failed"
    );
    same("GET https://example.com:8443/api/v1/pods?watch=1");
}

#[test]
fn sensitive_keys() {
    assert_eq!(redact("PASSWORD=hunter2"), "PASSWORD=[REDACTED]");
    assert_eq!(
        redact("export DB_PASS=hunter2 HOME=/root"),
        "export DB_PASS=[REDACTED] HOME=/root"
    );
    assert_eq!(
        redact(r#"{"user":"bob","password":"p\"w d","apiKey":'k1'}"#),
        r#"{"user":"bob","password":"[REDACTED]","apiKey":'[REDACTED]'}"#
    );
    assert_eq!(
        redact(r#"msg="{\"client_secret\":\"abc123\",\"n\":1}""#),
        r#"msg="{\"client_secret\":\"[REDACTED]\",\"n\":1}""#
    );
    assert_eq!(
        redact("  password: letmein\n  username: app"),
        "  password: [REDACTED]\n  username: app"
    );
    assert_eq!(
        redact("User{name=bob, password=s3cret, sessionId=42}"),
        "User{name=bob, password=[REDACTED], sessionId=[REDACTED]}"
    );
    assert_eq!(
        redact("&{Password:hunter2 User:bob}"),
        "&{Password:[REDACTED] User:bob}"
    );
    assert_eq!(
        redact("kubectl create secret generic db --from-literal=password=hunter2"),
        "kubectl create secret generic db --from-literal=password=[REDACTED]"
    );
    assert_eq!(
        redact("GET /cb?access_token=abc&state=xyz&X-Amz-Signature=0123456789abcdef0123"),
        "GET /cb?access_token=[REDACTED]&state=xyz&X-Amz-Signature=[REDACTED]"
    );
    assert_eq!(redact("api-key => 'v'"), "api-key => '[REDACTED]'");
    assert_eq!(redact("private_key: |"), "private_key: [REDACTED]");
    // Nested in a kept value: still found.
    assert_eq!(
        redact("cache_key=a:password=b"),
        "cache_key=a:password=[REDACTED]"
    );
    // Descriptive keys, placeholders, booleans, comparisons, C++ paths: kept.
    same("secretName: db-creds, tokenPath: /var/run/secrets/token");
    same("password=<value> auth_enabled=true session: none pwd=****");
    same(r#"kubectl patch secret db -n shop -p '{"stringData":{"DB_PASSWORD":"<value>"}}'"#);
    same("password: ${DB_PASSWORD} token=$(cat /run/secrets/token) secret: \"{{ .Values.pw }}\"");
    same("if token == nil { Token::Kind; }");
    same("author=jane authority: example.com");
    same("cache_key=user:123 key=value");
}

#[test]
fn prose_keeps_its_words() {
    same(r#"FATAL:  password authentication failed for user "app""#);
    same(
        "Failed to pull image: failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized",
    );
    same("KeyError: 'DB_PASSWORD'");
    same(r#"Error: couldn't find key password in Secret shop/db-creds"#);
    same("MountVolume.SetUp failed for volume \"creds\" : secret \"db-creds\" not found");
    // But not for passwords, and not for values that look like values.
    assert_eq!(
        redact("login failed, password: letmein"),
        "login failed, password: [REDACTED]"
    );
    assert_eq!(redact("using token: 8f3a9c"), "using token: [REDACTED]");
}

#[test]
fn private_key_blocks() {
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nq83bsd==\n-----END RSA PRIVATE KEY-----";
    assert_eq!(
        redact(&format!("key:\n{pem}\ndone")),
        "key:\n[REDACTED:private-key]\ndone"
    );
    assert_eq!(
        redact("k=\"-----BEGIN PRIVATE KEY-----\\nMIIEv\\n-----END PRIVATE KEY-----\" ok"),
        "k=\"[REDACTED:private-key]\" ok"
    );
    // Truncated: the rest goes.
    assert_eq!(
        redact("x\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1r"),
        "x\n[REDACTED:private-key]"
    );
    same("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
    let lines: Vec<String> = format!("a\n{pem}\nb").lines().map(String::from).collect();
    assert_eq!(redact_lines(&lines), ["a", "[REDACTED:private-key]", "b"]);
}

#[test]
fn emails_and_addresses() {
    assert_eq!(
        redact("mail to jane.doe+ops@example.co.uk failed"),
        "mail to [REDACTED:email] failed"
    );
    assert_eq!(
        redact("dial tcp 10.0.3.7:5432: connect: connection refused"),
        "dial tcp [REDACTED:ip]:5432: connect: connection refused"
    );
    assert_eq!(
        redact("listen 127.0.0.1:8080 and [::1]:9090, peer 2001:db8::8a2e:370:7334"),
        "listen [REDACTED:loopback-ip]:8080 and [[REDACTED:loopback-ip]]:9090, peer [REDACTED:ip]"
    );
    assert_eq!(
        redact("via fe80::1%eth0: no route; mapped ::ffff:10.1.2.3."),
        "via [REDACTED:ip]: no route; mapped [REDACTED:ip]."
    );
    assert_eq!(redact("addr:2001:db8::1 up"), "addr:[REDACTED:ip] up");
    assert_eq!(redact("cidr 10.0.0.0/16"), "cidr [REDACTED:ip]/16");
    same(
        "version 1.2.3 and 1.2.3.4.5, v1.2.3.4, 999.1.1.1, at 09:00:00.123 on 2024-05-14T09:00:00Z",
    );
    same("image nginx@sha256:0123abcd, object com.foo.Bar@1a2b3c, golang.org/x/net@v0.17.0");
    same("aa:bb:cc:dd:ee:ff std::vector<int> u8::MAX Foo.java:42 main.rs:3:5 dead::beef");
}

#[test]
fn control_characters_are_removed() {
    assert_eq!(
        redact("\x1b[31mERROR\x1b[0m password\x1b[1m=hunter2\x07"),
        "ERROR password=[REDACTED]"
    );
    assert_eq!(
        redact("tab\tand\r\nnewline ünïcödé 日本"),
        "tab\tand\r\nnewline ünïcödé 日本"
    );
}

/// Real crash output keeps every non-secret word.
#[test]
fn realistic_crash_logs_are_kept() {
    let java = "Exception in thread \"main\" java.lang.IllegalStateException: Failed to load ApplicationContext\n\
            \tat org.springframework.boot.SpringApplication.run(SpringApplication.java:315)\n\
            \tat com.example.shop.Application.main(Application.java:12)\n\
            Caused by: org.postgresql.util.PSQLException: FATAL: password authentication failed for user \"shop\"\n\
            \tat org.postgresql.core.v3.ConnectionFactoryImpl.doAuthentication(ConnectionFactoryImpl.java:693)\n\
            \t... 42 more";
    same(java);
    let go = "panic: runtime error: invalid memory address or nil pointer dereference\n\
            [signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x6b8f2a]\n\n\
            goroutine 1 [running]:\n\
            main.(*Server).Start(0x0, {0x7ffd, 0x4})\n\
            \t/app/server.go:42 +0x2a\n\
            main.main()\n\
            \t/app/main.go:17 +0x1c5\n\
            exit status 2";
    same(go);
    let python = "Traceback (most recent call last):\n  File \"/app/app.py\", line 10, in <module>\n    \
            conn = psycopg2.connect(os.environ[\"DATABASE_URL\"])\n\
            psycopg2.OperationalError: connection to server at \"db\", port 5432 failed: Connection refused\n\
            \tIs the server running on that host and accepting TCP/IP connections?";
    same(python);
    let nginx = "2024/05/14 09:58:10 [emerg] 1#1: host not found in upstream \"backend:8080\" in /etc/nginx/conf.d/default.conf:12\n\
            nginx: [emerg] host not found in upstream \"backend:8080\"";
    same(nginx);
    let node = "Error: Cannot find module '/app/server.js'\n    at Module._resolveFilename (node:internal/modules/cjs/loader:1039:15) {\n  code: 'MODULE_NOT_FOUND',\n  requireStack: []\n}";
    same(node);
    // With secrets, only the secrets change.
    let nginx_ip = "[error] 29#29: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.5, server: _, request: \"GET / HTTP/1.1\", upstream: \"http://10.0.0.9:8080/\", host: \"shop.example.com\"";
    assert_eq!(
        redact(nginx_ip),
        "[error] 29#29: *1 connect() failed (111: Connection refused) while connecting to upstream, client: [REDACTED:ip], server: _, request: \"GET / HTTP/1.1\", upstream: \"http://[REDACTED:ip]:8080/\", host: \"shop.example.com\""
    );
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "password",
    "token",
    "Authorization",
    "Cookie",
    "key",
    "sig",
    "auth",
    "author",
    "=",
    ":",
    "::",
    " ",
    "  ",
    "\t",
    "\n",
    "\"",
    "'",
    "\\\"",
    "\\",
    "[",
    "]",
    "{",
    "}",
    ",",
    ";",
    "&",
    "?",
    "-",
    "=>",
    "://",
    "@",
    ".",
    "example.com",
    "10",
    "255",
    "256",
    "0",
    "1",
    "fe80",
    "ffff",
    "db8",
    "%eth0",
    "Bearer ",
    "Basic ",
    "dXNlcjpwYXNz",
    "eyJ",
    "eyJhbGciOi",
    "xoxb-",
    "sk-",
    "ghp_",
    "AKIA",
    "IOSFODNN7EXAMPLE",
    "abcdefghij0123456789",
    "hunter2",
    "user",
    "[REDACTED]",
    "[REDACTED:ip]",
    "-----BEGIN PRIVATE KEY-----",
    "-----END PRIVATE KEY-----",
    "-----",
    "\x1b[31m",
    "\x1b",
    "é",
    "日本",
    "/",
    "%",
    "*",
    "<",
    ">",
    "true",
    "none",
    "http",
    "postgres",
    "hooks.slack.com",
    "/services/",
    "a",
    "Z",
    "_",
    "(",
    ")",
];

#[test]
fn never_panics_and_is_idempotent_on_random_input() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..20_000 {
        let mut s = String::new();
        for _ in 0..rng.below(40) {
            s.push_str(PIECES[rng.below(PIECES.len())]);
        }
        let once = redact(&s);
        let twice = redact(&once);
        assert_eq!(once, twice, "round {round}: not idempotent on {s:?}");
    }
    for _ in 0..5_000 {
        let bytes: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
        let s = String::from_utf8_lossy(&bytes);
        let once = redact(&s);
        assert_eq!(once, redact(&once));
        // Arbitrary chars, including multi-byte ones next to delimiters.
        let chars: String = (0..rng.below(100))
            .map(|_| char::from_u32(rng.below(0x3000) as u32).unwrap_or('x'))
            .collect();
        let once = redact(&chars);
        assert_eq!(once, redact(&once));
    }
}

/// Inputs built to defeat a naive scanner (every position a candidate)
/// still take linear time: 256 KiB each, well within a second even in a
/// debug build, where a quadratic pass would take minutes.
#[test]
fn adversarial_inputs_stay_linear() {
    let n = 256 * 1024;
    for unit in [
        "a@",
        "a.",
        "1.",
        "::",
        "eyJ",
        "eyJ ",
        "password=",
        "key=\"\\\"",
        "key=a/",
        "key: [",
        "-----BEGIN ",
        "-----BEGIN PRIVATE KEY-----",
        "://",
        "a://b",
        "Bearer ",
        "bearer x ",
        "sk-",
        "xoxb-",
        "AKIA",
        "\x1b[",
        "1.1.1.1.",
        "a:b:",
        "token=\"",
        "Authorization: ",
        "[",
        "Basic ",
        "é@",
        "key=\"\\\"",
        "key='\\'",
        "key=\\\"\\\\",
        "Authorization: Bearer [REDACTED] ",
        "Cookie: [x] ",
        "cache_key=a:",
        "key=[",
    ] {
        let s = unit.repeat(n / unit.len());
        let t = std::time::Instant::now();
        let _ = redact(&s);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(3),
            "{unit:?}: {:?}",
            t.elapsed()
        );
    }
}

#[test]
fn values_after_a_key_with_only_blanks_between() {
    assert_eq!(
        redact("mysqladmin --password hunter2 status"),
        "mysqladmin --password [REDACTED] status"
    );
    assert_eq!(
        redact("app --api-key abcd1234efgh --verbose"),
        "app --api-key [REDACTED] --verbose"
    );
    assert_eq!(
        redact("mysql -uroot -pS3cr3t!x -h db"),
        "mysql -uroot -p[REDACTED] -h db"
    );
    assert_eq!(
        redact("MYSQL_ROOT_PASSWORD hunter2"),
        "MYSQL_ROOT_PASSWORD [REDACTED]"
    );
    assert_eq!(
        redact("env: MYSQL_ROOT_PASSWORD   supersecret\nPATH /usr/bin"),
        "env: MYSQL_ROOT_PASSWORD   [REDACTED]\nPATH /usr/bin"
    );
    assert_eq!(
        redact("using secret s3cr3tV4lue for signing"),
        "using secret [REDACTED] for signing"
    );
    assert_eq!(
        redact("login with pass Hunter2024 failed"),
        "login with pass [REDACTED] failed"
    );
    // Prose, names and flags without values stay.
    same("DB_PASSWORD is not set");
    same("secret \"db-creds\" not found");
    same("Error: secret db-creds not found");
    same("pass 1 of 3 done");
    same("password authentication failed for user app");
    same("run with --password-file /run/secrets/pw");
    same("mysql -p");
    same("docker run -p8080:80 nginx");
    same("TOKEN_EXPIRED 401");
    same("retrying --token ${TOKEN}");
}

#[test]
fn aws_secret_access_keys_by_shape_and_by_key() {
    let key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    assert_eq!(
        redact(&format!("aws_secret_access_key = {key}")),
        "aws_secret_access_key = [REDACTED]"
    );
    assert_eq!(
        redact(&format!("aws_secret_access_key {key}")),
        "aws_secret_access_key [REDACTED]"
    );
    assert_eq!(
        redact(&format!("credentials loaded: {key} (default profile)")),
        "credentials loaded: [REDACTED:aws-secret-key] (default profile)"
    );
    // A git SHA (one case), a path and a longer word are not keys.
    same("commit 3f786850e387550fdab836ed7e6dc881de23001b merged");
    same("at /usr/lib/python3/dist-packages/Something/Module/File.py");
    same("id ABCDEFGHIJabcdefghij0123456789ABCDEFGHIJKL");
}
