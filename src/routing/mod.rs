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

pub use matcher::{Matcher, Subject};
pub use routes::{Override, OverrideKind, Plan, Routes, SinkInfo, Target};
pub use silences::{SILENCE_ANNOTATION, Silence, Silences};
