mod backend;
mod cli;
mod detection;
mod fake_api_check;
mod leader;
mod notify_sinks;
mod util;
mod watch_engine;
