mod cli;
mod detection;
mod fake_api_check;
mod llm;
mod util;
mod watch_engine;
