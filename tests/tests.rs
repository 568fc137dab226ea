mod cli;
mod detection;
mod fake_api_check;
mod leader;
mod util;
mod watch_engine;
