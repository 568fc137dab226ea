/*!
Leaf utilities, each written once and used everywhere: RFC 3339 time
(`time`), retry delays (`backoff`), seeded jitter (`random`) and a bounded
least-recently-used map with a time to live (`lru`). They import nothing
from the rest of the crate.
*/

pub mod backoff;
pub mod lru;
pub mod random;
pub mod time;
