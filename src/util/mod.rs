/*!
Leaf utilities, each written once and used everywhere: RFC 3339 time
(`time`), regular-file reads with a size bound (`file`), retry delays (`backoff`), seeded jitter
(`random`), visible cuts (`text`), a bounded least-recently-used map with a time to live (`lru`),
mutex access that ignores poisoning (`sync`) and link templates (`url_template`). They import nothing
from the rest of the crate.
*/

pub mod backoff;
pub mod file;
pub mod lru;
pub mod random;
pub mod sync;
pub mod text;
pub mod time;
pub mod url_template;
