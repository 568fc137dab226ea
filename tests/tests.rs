mod backend;
mod cli;
mod detection;
mod fake_api_check;
mod util;
mod watch_engine;
