mod bad_input;
mod cli;
mod detection;
mod fake_api_check;
mod fuzz;
mod util;
mod watch_engine;
