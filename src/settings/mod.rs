/*!
Every setting the daemon accepts: defined once, read from its `--flag`, then
its environment variable, then its default, and validated with every problem
reported at once.

- `kinds`: the kinds of setting (integer, number, boolean, choice, text):
  typed default, bounds, and the "allowed" text derived from them;
- `defs`: the definition of each setting and `SETTINGS`, the list that
  `--help` (`cli.rs`) and the README's table are made from;
- `read`: reading one setting from a `Source`, a bad value becoming a `Problem`;
- `validate`: what a valid namespace, URL, e-mail, channel… looks like;
- `destinations`: the settings of Teams, Discord, Telegram, ntfy, PagerDuty,
  Opsgenie and Alertmanager;
- `resolve`: all settings into `Settings`, with the rules between them;
- `defaults`: every `Default` of the types built here (resolving nothing);
- `types`: `Settings` and its parts, as the rest of the daemon uses them.

Depends on the detection types it configures and on nothing above them.
*/

mod defaults;
mod defs;
mod destinations;
mod kinds;
mod read;
mod resolve;
mod types;
mod validate;

pub use defs::*;
pub use kinds::{Bool, Choice, Int, Kind, Number, Setting, Spec, Text};
pub use read::{Problem, Source, Unset};
pub use resolve::resolve;
pub use types::*;
pub use validate::telegram_chat;
