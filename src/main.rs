//! Entry point: parse, validate, dispatch. Everything else lives in the library.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use opsctrl_daemon::cli::{self, Command, Parsed};
use opsctrl_daemon::kube::client::Client;
use opsctrl_daemon::kube::config::Origin;
use opsctrl_daemon::kube::config::{self, Env};
use std::sync::Arc;

use opsctrl_daemon::diagnose::{RuleSet, user_rules};
use opsctrl_daemon::routing::Policy;
use opsctrl_daemon::{check, daemon, routes_test, scan, settings, test_alert};

fn main() -> ExitCode {
    let program = cli::Program::from_argv0(std::env::args_os().next().as_deref());
    let cli = match cli::parse_as(program, std::env::args_os().skip(1).collect()) {
        Ok(Parsed::Cli(c)) => c,
        Ok(Parsed::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            println!("{} {}", program.invocation(), cli::VERSION);
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(2, &e),
    };
    let settings = match settings::resolve(&cli) {
        Ok(s) => s,
        Err(problems) => {
            for p in problems {
                eprintln!("opsctrl-daemon: {p}");
            }
            return ExitCode::from(2);
        }
    };
    let rules = Arc::new(match &settings.diagnosis.rules_file {
        None => RuleSet::builtin(),
        Some(path) => match user_rules::load(path) {
            Ok(r) => r,
            Err(problems) => {
                for p in problems {
                    eprintln!("opsctrl-daemon: {p}");
                }
                return ExitCode::from(2);
            }
        },
    });
    // Only what notifies reads them: `scan` and `check` run where no sink may be set.
    let notifies = matches!(cli.command, Command::Run | Command::RoutesTest);
    let sinks = opsctrl_daemon::notify::sinks::routable(&settings);
    let policy = match Policy::load(
        settings.alerts.routes_file.as_deref().filter(|_| notifies),
        settings
            .alerts
            .silences_file
            .as_deref()
            .filter(|_| notifies),
        &sinks,
    ) {
        Ok(p) => p,
        Err(problems) => {
            for p in problems {
                eprintln!("opsctrl-daemon: {p}");
            }
            return ExitCode::from(2);
        }
    };
    opsctrl_daemon::logging::init(
        &settings.log_filter,
        settings.log_format,
        opsctrl_daemon::diagnose::redact::redact_secrets,
    );
    if let (Command::RoutesTest, Some(query)) = (cli.command, &cli.route_query) {
        return match routes_test::run(&settings, &policy, query, &mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(2, &e),
        };
    }
    if let (Command::Scan, Some(file)) = (cli.command, cli.file.as_deref()) {
        let name = settings
            .cluster_name
            .clone()
            .unwrap_or_else(|| "unknown".into());
        return match scan::run(&settings, &name, scan::Source::File(file), &rules) {
            Ok(false) => ExitCode::SUCCESS,
            Ok(true) => ExitCode::from(1),
            Err(e) => fail(2, &e),
        };
    }
    // test-alert needs the cluster only for the Event sink.
    if cli.command == Command::TestAlert && !settings.alerts.emit_k8s_events {
        let name = settings
            .cluster_name
            .clone()
            .unwrap_or_else(|| "unknown".into());
        return test_alert_exit(test_alert::run(
            &settings,
            None,
            &name,
            &mut std::io::stdout(),
        ));
    }
    let cluster = match config::load(
        cli.kubeconfig.as_deref(),
        cli.context.as_deref(),
        &Env::from_process(),
    ) {
        Ok(c) => c,
        Err(e) => return fail(2, &e.to_string()),
    };
    // Incidents name their cluster: CLUSTER_NAME, else the context, else in-cluster.
    let cluster_name = settings
        .cluster_name
        .clone()
        .unwrap_or_else(|| match &cluster.origin {
            Origin::Kubeconfig { context, .. } => context.clone(),
            Origin::InCluster => "in-cluster".into(),
        });
    match cli.command {
        Command::Scan => {
            let client = match Client::new(&cluster) {
                Ok(c) => c,
                Err(e) => return fail(2, &format!("{}: {e}", cluster.origin)),
            };
            match scan::run(
                &settings,
                &cluster_name,
                scan::Source::Cluster(&client),
                &rules,
            ) {
                Ok(false) => ExitCode::SUCCESS,
                Ok(true) => ExitCode::from(1),
                Err(e) => fail(2, &e),
            }
        }
        Command::RoutesTest => ExitCode::SUCCESS,
        Command::Run => match daemon::run(&settings, &cluster, &cluster_name, rules, policy) {
            Ok(daemon::Exit::Stopped) => ExitCode::SUCCESS,
            Ok(daemon::Exit::Failed(e)) => fail(1, &e),
            Err(e) => fail(1, &e),
        },
        Command::TestAlert => {
            let client = match Client::new(&cluster) {
                Ok(c) => c,
                Err(e) => return fail(2, &format!("{}: {e}", cluster.origin)),
            };
            test_alert_exit(test_alert::run(
                &settings,
                Some(&client),
                &cluster_name,
                &mut std::io::stdout(),
            ))
        }
        Command::Check => {
            let client = match Client::new(&cluster) {
                Ok(c) => c,
                Err(e) => return fail(2, &format!("{}: {e}", cluster.origin)),
            };
            match check::run(&settings, &client) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => fail(2, &e),
            }
        }
    }
}

fn test_alert_exit(result: Result<bool, String>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => fail(2, &e),
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("opsctrl-daemon: {message}");
    ExitCode::from(code)
}
