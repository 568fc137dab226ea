// Test code may unwrap: a panic here is a failed test, not a crashed daemon
// (.clippy.toml allows it inside #[test] functions; this covers the helpers).
#![allow(clippy::unwrap_used)]

mod architecture;
mod backend;
mod bad_input;
mod cli;
mod delivery;
mod destinations;
mod detection;
mod enrichment;
mod fake_api_check;
mod faults;
mod fuzz;
mod hostile;
mod install;
mod leader;
mod llm;
mod nodes;
mod notify_sinks;
mod realk8s;
mod routing;
mod secrecy;
mod util;
mod watch_engine;
