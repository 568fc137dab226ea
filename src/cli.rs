/*!
Command line: subcommands, global flags and the generated `--help` text.

Parsing only records what the user typed (`Cli`); `settings::resolve` turns
the setting flags plus the environment into validated `Settings`. Help text
is generated from `settings::SETTINGS`, the definitions the parser reads,
so it cannot drift from it.
*/

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;

pub use crate::routing::RouteQuery;
use crate::settings::{SETTINGS, Source};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Watch the cluster until stopped (the default).
    Run,
    /// Ask the API server whether this identity has every permission it needs.
    Check,
    /// List once, print the would-be incidents, exit 1 if anything fails.
    Scan,
    /// Send one labelled test notification through every configured sink.
    TestAlert,
    /// Say which sinks would receive an incident (`routes test`).
    RoutesTest,
}

impl Command {
    fn name(self) -> &'static str {
        match self {
            Command::Run => "run",
            Command::Check => "check",
            Command::Scan => "scan",
            Command::TestAlert => "test-alert",
            Command::RoutesTest => "routes test",
        }
    }
}

/// What the user typed.
#[derive(Debug)]
pub struct Cli {
    pub command: Command,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// `scan -f FILE` (`-` for stdin).
    pub file: Option<String>,
    /// Setting flags given, keyed by flag (`--health-check-port`).
    pub flags: HashMap<&'static str, String>,
    /// `routes test`: the incident to route.
    pub route_query: Option<Box<RouteQuery>>,
}

#[derive(Debug)]
pub enum Parsed {
    Cli(Cli),
    /// Print this on stdout and exit 0.
    Help(String),
    Version,
}

/// Settings come from the flags first, then the process environment.
impl Source for Cli {
    fn flag(&self, flag: &str) -> Option<String> {
        self.flags.get(flag).cloned()
    }
    fn env(&self, env: &str) -> Option<String> {
        // Not `var(..).ok()`: a value that is not UTF-8 would read as unset and
        // the default would be used silently. Lossy, it is reported as invalid.
        std::env::var_os(env).map(|v| v.to_string_lossy().into_owned())
    }
}

/// Which program the user ran: the daemon, or the same binary installed as
/// the kubectl plugin `kubectl-opsctrl` (run as `kubectl opsctrl ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    Daemon,
    KubectlPlugin,
}

impl Program {
    /// From `argv[0]`: a file named `kubectl-opsctrl` (any directory, any
    /// extension such as `.exe`) is the plugin.
    pub fn from_argv0(argv0: Option<&std::ffi::OsStr>) -> Program {
        let stem = argv0
            .map(std::path::Path::new)
            .and_then(|p| p.file_stem())
            .map(|s| s.to_string_lossy().into_owned());
        if stem.as_deref() == Some("kubectl-opsctrl") {
            Program::KubectlPlugin
        } else {
            Program::Daemon
        }
    }

    /// How the user types the program in a command line.
    pub fn invocation(self) -> &'static str {
        match self {
            Program::Daemon => "opsctrl-daemon",
            Program::KubectlPlugin => "kubectl opsctrl",
        }
    }
}

pub fn parse(args: Vec<OsString>) -> Result<Parsed, String> {
    parse_as(Program::Daemon, args)
}

/// As the kubectl plugin, no command prints the help instead of starting the
/// daemon (a plugin is run for one answer), and the help says `kubectl opsctrl`.
pub fn parse_as(program: Program, args: Vec<OsString>) -> Result<Parsed, String> {
    let help_for = |command| match program {
        Program::Daemon => help(command),
        Program::KubectlPlugin => help(command)
            .replace("opsctrl-daemon [run]", "opsctrl-daemon run")
            .replace(" (the default); print", "; print")
            .replace("opsctrl-daemon ", "kubectl opsctrl "),
    };
    let mut args = pico_args::Arguments::from_vec(args);
    if args.contains("--version") || args.contains("-V") {
        return Ok(Parsed::Version);
    }
    let wants_help = args.contains(["-h", "--help"]);
    let command = match args.subcommand().map_err(|e| e.to_string())? {
        None if program == Program::KubectlPlugin => {
            return Ok(Parsed::Help(help_for(Command::Run)));
        }
        None => Command::Run,
        Some(s) if s == "run" => Command::Run,
        Some(s) if s == "check" => Command::Check,
        Some(s) if s == "scan" => Command::Scan,
        Some(s) if s == "test-alert" => Command::TestAlert,
        Some(s) if s == "routes" => match args.subcommand().map_err(|e| e.to_string())? {
            Some(t) if t == "test" => Command::RoutesTest,
            None if wants_help => Command::RoutesTest,
            other => {
                return Err(format!(
                    "routes: unknown command {:?} (allowed: routes test; see `opsctrl-daemon routes test --help`)",
                    other.unwrap_or_default()
                ));
            }
        },
        Some(s) if s == "help" => {
            let topic = args.subcommand().map_err(|e| e.to_string())?;
            return Ok(Parsed::Help(match topic.as_deref() {
                Some("check") => help_for(Command::Check),
                Some("scan") => help_for(Command::Scan),
                Some("test-alert") => help_for(Command::TestAlert),
                Some("routes") => help_for(Command::RoutesTest),
                _ => help_for(Command::Run),
            }));
        }
        Some(s) => {
            return Err(format!(
                "unknown command {s:?} (allowed: run, scan, check, test-alert, routes test, help; see --help)"
            ));
        }
    };
    if wants_help {
        return Ok(Parsed::Help(help_for(command)));
    }

    let value = |args: &mut pico_args::Arguments, flag: &'static str| {
        args.opt_value_from_str::<_, String>(flag)
            .map_err(|e| format!("{flag}: {e}"))
    };
    let kubeconfig = value(&mut args, "--kubeconfig")?.map(PathBuf::from);
    let context = value(&mut args, "--context")?;
    let file = args
        .opt_value_from_str::<_, String>(["-f", "--file"])
        .map_err(|e| format!("--file: {e}"))?;
    if file.is_some() && command != Command::Scan {
        return Err("-f/--file goes with `scan` only".into());
    }
    let route_query = if command == Command::RoutesTest {
        Some(Box::new(route_query(&mut args)?))
    } else {
        None
    };
    let mut flags = HashMap::new();
    // `-o` is the short form of `--output`, as in kubectl.
    if let Some(v) = value(&mut args, "-o")? {
        flags.insert("--output", v);
    }
    for spec in SETTINGS {
        if let Some(v) = value(&mut args, spec.flag)? {
            flags.insert(spec.flag, v);
        }
    }
    let rest = args.finish();
    if let Some(first) = rest.first() {
        return Err(format!(
            "unexpected argument {:?} for `{}` (see `opsctrl-daemon {} --help`)",
            first.to_string_lossy(),
            command.name(),
            command.name()
        ));
    }
    Ok(Parsed::Cli(Cli {
        command,
        kubeconfig,
        context,
        file,
        flags,
        route_query,
    }))
}

/// The flags of `routes test`.
fn route_query(args: &mut pico_args::Arguments) -> Result<RouteQuery, String> {
    let mut value = |flag: &'static str| {
        args.opt_value_from_str::<_, String>(flag)
            .map_err(|e| format!("{flag}: {e}"))
    };
    let namespace = value("--namespace")?.ok_or(
        "routes test: --namespace NS is required (see `opsctrl-daemon routes test --help`)",
    )?;
    let severity = value("--severity")?;
    let kind = value("--type")?;
    let cause = value("--cause")?;
    let workload_kind = value("--kind")?;
    let workload_name = value("--name")?;
    let mut labels = Vec::new();
    for l in args
        .values_from_str::<_, String>("--label")
        .map_err(|e| format!("--label: {e}"))?
    {
        match l.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                labels.push((k.trim().to_string(), v.trim().to_string()))
            }
            _ => return Err(format!("--label {l:?}: expected KEY=VALUE")),
        }
    }
    Ok(RouteQuery {
        namespace,
        severity,
        kind,
        cause,
        workload_kind,
        workload_name,
        labels,
    })
}

const CLUSTER_FLAGS: &str = "\
Cluster access (kubectl's order: --kubeconfig, KUBECONFIG, in-cluster service account, ~/.kube/config):
    --kubeconfig PATH    Kubeconfig file to use
    --context NAME       Kubeconfig context to use (default: current-context)
";

pub fn help(command: Command) -> String {
    let mut out = String::new();
    match command {
        Command::Run => {
            let _ = write!(
                out,
                "opsctrl-daemon {VERSION}: watches Kubernetes pods and reports failures.

Usage: opsctrl-daemon [run] [OPTIONS]
       opsctrl-daemon scan [-f FILE] [OPTIONS]
       opsctrl-daemon check [OPTIONS]
       opsctrl-daemon test-alert [OPTIONS]
       opsctrl-daemon routes test --namespace NS [--severity S] [--type T] [...]
       opsctrl-daemon help [COMMAND] | --version

Commands:
    run         Watch the cluster until SIGTERM/SIGINT (the default); print incidents
    scan        Look once, print what is failing, exit 1 if anything is
    check       Check that this identity has every permission the daemon needs
    test-alert  Send one labelled test notification through every configured sink
    routes test Say which sinks (and channels) would receive an incident

{CLUSTER_FLAGS}
Settings (a flag beats its environment variable, which beats the default):
"
            );
            for s in SETTINGS {
                let flag = format!("{} {}", s.flag, s.value);
                let _ = writeln!(
                    out,
                    "    {flag:<42} [env {}] (default {:?})",
                    s.env,
                    s.kind.default_text()
                );
                let _ = writeln!(out, "        {}", s.doc);
                let _ = writeln!(out, "        Allowed: {}.", s.kind.allowed());
            }
            out.push_str(
                "\nA bad setting stops start-up with exit code 2 and one line per problem.\n",
            );
        }
        Command::Scan => {
            let _ = write!(
                out,
                "opsctrl-daemon scan: what is failing right now?

Usage: opsctrl-daemon scan [-f FILE] [-o text|json] [--kubeconfig PATH] [--context NAME] [SETTINGS]

Lists the pods once (from the cluster, or with -f from the output of
`kubectl get pods -A -o json` — a List, a PodList or a Pod; `-f -` reads
stdin), classifies them with their own timestamps, and prints one line per
failing workload (a table, or a JSON array with -o json).
Exit 0 when nothing fails, 1 when something does, 2 on error.

    -f, --file FILE      Read pods from FILE instead of the cluster
    -o, --output FORMAT  text (default) or json

{CLUSTER_FLAGS}
Every setting flag of `run` is accepted too (see `opsctrl-daemon --help`);
WATCH_NAMESPACES and EXCLUDE_NAMESPACES apply to files as well.
"
            );
        }
        Command::Check => {
            let _ = write!(
                out,
                "opsctrl-daemon check: can this identity do its job?

Usage: opsctrl-daemon check [--kubeconfig PATH] [--context NAME] [SETTINGS]

Asks the API server (SelfSubjectAccessReview) for each permission the daemon
needs with the current settings (pods list/watch and events list, cluster-wide
or in each of WATCH_NAMESPACES) and prints yes/no, with the RBAC change that
fixes each no. Exit 0 when all are granted, 1 when any is missing, 2 on error.

{CLUSTER_FLAGS}
Every setting flag of `run` is accepted too (see `opsctrl-daemon --help`).
"
            );
        }
        Command::RoutesTest => {
            let _ = write!(
                out,
                "opsctrl-daemon routes test: who would hear of this incident?

Usage: opsctrl-daemon routes test --namespace NS [--severity S] [--type TYPE]
           [--cause CAUSE] [--kind KIND] [--name WORKLOAD] [--label KEY=VALUE]...
           [SETTINGS]

Reads ROUTES_FILE and SILENCES_FILE as the daemon would (a bad file exits 2
naming the route and field), then prints, for an incident with these facts,
the routes that match, the sinks (and Slack channels or webhooks) that would
receive it, and whether ALERT_SEVERITY_FILTERS or a silence in SILENCES_FILE
holds it back now. Nothing is sent and the cluster is not contacted.

    --namespace NS       The incident's namespace (required)
    --type TYPE          A failure type (CrashLoopBackOff, OOMKilled, ...)
    --severity S         informational, low, medium, high or critical
                         (default: the type's severity; one of the two is required)
    --cause CAUSE        The diagnosis' cause (oom_killed, app_error_exit, ...)
    --kind KIND          The workload kind (Deployment, StatefulSet, ...)
    --name WORKLOAD      The workload name
    --label KEY=VALUE    A label of the pod (repeatable)

Every setting flag of `run` is accepted too (see `opsctrl-daemon --help`).
"
            );
        }
        Command::TestAlert => {
            let _ = write!(
                out,
                "opsctrl-daemon test-alert: do the alerts get through?

Usage: opsctrl-daemon test-alert [--kubeconfig PATH] [--context NAME] [SETTINGS]

Sends one notification, clearly labelled as a test (workload
TEST/opsctrl-daemon-test-alert, reason TestAlert), through every configured
sink: SLACK_WEBHOOK_URL, SLACK_BOT_TOKEN, WEBHOOK_URL and, with
EMIT_K8S_EVENTS=true, a Kubernetes Event (on this pod when POD_NAME is set).
Each sink gets ALERT_MAX_ATTEMPTS tries, and one line says whether it
accepted. Exit 0 when every sink accepted, 1 when any refused, 2 on error
(no sink configured, a bad setting). The cluster is only contacted for the
Event sink.

{CLUSTER_FLAGS}
Every setting flag of `run` is accepted too (see `opsctrl-daemon --help`).
"
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Parsed, String> {
        parse(args.iter().map(OsString::from).collect())
    }

    #[test]
    fn no_command_means_run() {
        match parse_strs(&[]).unwrap() {
            Parsed::Cli(c) => assert_eq!(c.command, Command::Run),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn setting_flags_and_cluster_flags_are_recorded() {
        let p = parse_strs(&[
            "check",
            "--kubeconfig",
            "/tmp/kc",
            "--context=prod",
            "--health-check-port",
            "4000",
        ])
        .unwrap();
        let Parsed::Cli(c) = p else { panic!() };
        assert_eq!(c.command, Command::Check);
        assert_eq!(c.kubeconfig, Some(PathBuf::from("/tmp/kc")));
        assert_eq!(c.context.as_deref(), Some("prod"));
        assert_eq!(c.flag("--health-check-port").as_deref(), Some("4000"));
    }

    #[test]
    fn unknown_arguments_and_commands_are_errors() {
        assert!(parse_strs(&["--bogus"]).unwrap_err().contains("--bogus"));
        assert!(parse_strs(&["launch"]).unwrap_err().contains("launch"));
        assert!(parse_strs(&["--health-check-port"]).is_err());
        assert!(parse_strs(&["run", "-f", "x.json"]).is_err());
    }

    #[test]
    fn help_lists_every_setting() {
        let Parsed::Help(h) = parse_strs(&["--help"]).unwrap() else {
            panic!()
        };
        for s in SETTINGS {
            assert!(h.contains(s.env) && h.contains(s.flag), "{}", s.env);
        }
        let Parsed::Help(h) = parse_strs(&["check", "--help"]).unwrap() else {
            panic!()
        };
        assert!(h.contains("SelfSubjectAccessReview"));
    }

    #[test]
    fn scan_takes_a_file_and_short_output_flag() {
        let Parsed::Cli(c) = parse_strs(&["scan", "-f", "-", "-o", "json"]).unwrap() else {
            panic!()
        };
        assert_eq!(c.command, Command::Scan);
        assert_eq!(c.file.as_deref(), Some("-"));
        assert_eq!(c.flag("--output").as_deref(), Some("json"));
    }

    #[test]
    fn routes_test_takes_an_incident_s_facts() {
        let Parsed::Cli(c) = parse_strs(&[
            "routes",
            "test",
            "--namespace",
            "shop",
            "--type",
            "OOMKilled",
            "--label",
            "team=pay",
            "--label",
            "app = web",
            "--kind",
            "Deployment",
            "--name",
            "web",
            "--cause",
            "oom_killed",
            "--severity",
            "high",
            "--alert-workers",
            "3",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(c.command, Command::RoutesTest);
        assert_eq!(c.flag("--alert-workers").as_deref(), Some("3"));
        let q = c.route_query.unwrap();
        assert_eq!(
            (
                q.namespace.as_str(),
                q.kind.as_deref(),
                q.severity.as_deref()
            ),
            ("shop", Some("OOMKilled"), Some("high"))
        );
        assert_eq!(q.workload_kind.as_deref(), Some("Deployment"));
        assert_eq!(q.workload_name.as_deref(), Some("web"));
        assert_eq!(q.cause.as_deref(), Some("oom_killed"));
        let pairs: Vec<(&str, &str)> = q
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(pairs, [("team", "pay"), ("app", "web")]);
        assert!(parse_strs(&["routes"]).unwrap_err().contains("routes test"));
        assert!(
            parse_strs(&["routes", "test"])
                .unwrap_err()
                .contains("--namespace")
        );
        assert!(parse_strs(&["routes", "test", "--namespace", "x", "--label", "v"]).is_err());
        assert!(
            parse_strs(&["run", "--namespace", "x"]).is_err(),
            "only for routes test"
        );
        for args in [
            &["routes", "test", "--help"][..],
            &["help", "routes"],
            &["routes", "--help"],
        ] {
            let Parsed::Help(h) = parse_strs(args).unwrap() else {
                panic!("{args:?}")
            };
            assert!(
                h.contains("opsctrl-daemon routes test --namespace NS"),
                "{args:?}"
            );
        }
    }

    #[test]
    fn version_flag_wins() {
        assert!(matches!(
            parse_strs(&["run", "--version"]).unwrap(),
            Parsed::Version
        ));
    }
}
