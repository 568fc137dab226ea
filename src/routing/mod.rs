/*!
Who hears about an incident: `ROUTES_FILE` (which sinks, and which channel
or webhook of a sink) and `SILENCES_FILE` plus the `opsctrl.dev/silence-until`
annotation (nobody, for a while). Pure decisions over plain values; the
delivery pool applies the routes, the classification step the silences.

- `file`: reads a JSON or YAML file into a `serde_json::Value`.
- `glob`: `*` and `?` patterns.
- `matcher`: the fields a route or a silence matches an incident on.
- `routes`: ordered routes, `continue`, the default route.
- `silences`: time-boxed silences from the file, and the annotation's value.
*/

pub mod file;
pub mod glob;
pub mod matcher;
pub mod routes;
pub mod silences;

pub use matcher::{Facts, Matcher};
pub use routes::{ChannelRule, Override, OverrideKind, Plan, Routes, SinkInfo, Target};
pub use silences::{SILENCE_ANNOTATION, Silence, Silences};

/// The incident `routes test` asks about, as typed (`cli` parses it,
/// `routes_test` answers it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouteQuery {
    pub namespace: String,
    pub severity: Option<String>,
    pub kind: Option<String>,
    pub cause: Option<String>,
    pub workload_kind: Option<String>,
    pub workload_name: Option<String>,
    /// `--label k=v`, repeatable.
    pub labels: Vec<(String, String)>,
}

/// `ROUTES_FILE` and `SILENCES_FILE`, read and checked.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub routes: Option<Routes>,
    pub silences: Silences,
}

impl Policy {
    /// Whether a route or a silence matches on pods' labels.
    pub fn uses_labels(&self) -> bool {
        self.routes.as_ref().is_some_and(Routes::uses_labels) || self.silences.uses_labels()
    }

    /// Reads both files; every problem of either (exit 2 at start-up).
    pub fn load(
        routes: Option<&std::path::Path>,
        silences: Option<&std::path::Path>,
        sinks: &[SinkInfo],
    ) -> Result<Policy, Vec<String>> {
        let mut problems = Vec::new();
        let routes =
            routes.and_then(|p| Routes::load(p, sinks).map_err(|e| problems.extend(e)).ok());
        let silences = match silences {
            None => Silences::default(),
            Some(p) => Silences::load(p).unwrap_or_else(|e| {
                problems.extend(e);
                Silences::default()
            }),
        };
        if problems.is_empty() {
            Ok(Policy { routes, silences })
        } else {
            Err(problems)
        }
    }
}
