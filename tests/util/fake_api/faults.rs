//! Injected misbehaviour: status faults, broadcast watch faults and `block` rules.

use std::collections::VecDeque;
use std::thread;
use std::time::{Duration, Instant};

use super::super::http::Conn;
use super::{FakeApi, Inner, lock};

/// Injected misbehaviour. `ListStatus`/`WatchStatus` are consumed by the next pod LIST/WATCH
/// (`inject`) or hit every one (`inject_persistent`); the others act on every watch open at
/// the time of `inject` (and, when persistent, on every watch opened later too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Next pod LIST answers this status with a Status body (429 gets `Retry-After: 1`).
    ListStatus(u16),
    /// Next pod LIST answers this status with this Status message (an API server or a proxy
    /// in front of it echoing whatever it was given).
    ListError(u16, String),
    /// Next pod WATCH answers this HTTP status, with `Retry-After` when given (namespace
    /// watches never consume it).
    WatchStatus(u16, Option<u64>),
    /// Open watches write half of a chunk, then drop the TCP connection (no close_notify).
    CloseWatchesMidChunk,
    /// Open watches get one non-JSON line, properly chunked, and go on.
    GarbageLine,
    /// Open watches get an ERROR event carrying a 410 Expired Status and end.
    WatchErrorGone,
    /// Open watches end normally now, as if `timeoutSeconds` had passed.
    EndWatches,
    /// The next pod WATCH (every one, when persistent) answers 200 and then sends nothing at
    /// all, no event and no bookmark, like a connection a middlebox silently dropped.
    SilentWatch,
    /// Pod WATCHes answer 200 and then drop the connection before sending anything.
    FlappingWatch,
    /// Pod LIST pages that continue a LIST answer the continue token they were given.
    RepeatContinue,
    /// Watch event lines containing this text get it replaced by bytes that are not UTF-8
    /// (`0xff 0xfe`), every time they are sent (replays included).
    InvalidUtf8(String),
}

/// How requests caught by `FakeApi::block` fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Block {
    /// Answer this status with a Status body.
    Status(u16),
    /// Never answer: hold the request until `unblock` (at most 60 s), then drop the
    /// connection, like a network partition.
    Hang,
}

/// One `block` rule: requests on `resource` (`leases`, `events`), from the client
/// presenting `token` (any client when `None`).
#[derive(Clone, Debug)]
pub(super) struct BlockRule {
    pub(super) resource: String,
    pub(super) token: Option<String>,
    pub(super) how: Block,
}

#[derive(Default)]
pub(super) struct Faults {
    pub(super) queue: VecDeque<Fault>,
    pub(super) persistent: Vec<Fault>,
    pub(super) expired_watch_http_410: bool,
}

impl FakeApi {
    /// One-shot fault (see `Fault`).
    pub fn inject(&self, fault: Fault) {
        match fault {
            Fault::ListStatus(_)
            | Fault::ListError(..)
            | Fault::WatchStatus(..)
            | Fault::SilentWatch => lock(&self.inner.faults).queue.push_back(fault),
            other => self.broadcast(&other),
        }
    }

    /// Fault that stays until `clear_faults()`: status faults answer every matching request;
    /// watch faults hit every open watch now and every later watch right after its initial
    /// events.
    pub fn inject_persistent(&self, fault: Fault) {
        self.broadcast(&fault);
        lock(&self.inner.faults).persistent.push(fault);
    }

    /// Forget queued and persistent faults.
    pub fn clear_faults(&self) {
        let mut f = lock(&self.inner.faults);
        f.queue.clear();
        f.persistent.clear();
    }

    /// Make every request on `resource` (`leases` or `events`) from the client presenting
    /// bearer `token` (every client when `None`) fail as `how` says, until `unblock`.
    pub fn block(&self, resource: &str, token: Option<&str>, how: Block) {
        lock(&self.inner.blocks).push(BlockRule {
            resource: resource.to_string(),
            token: token.map(str::to_string),
            how,
        });
    }

    /// Lift every `block`; hung requests are then dropped.
    pub fn unblock(&self) {
        lock(&self.inner.blocks).clear();
    }

    /// Watches from a compacted resourceVersion: HTTP 410 (true) or 200 + ERROR event (false).
    pub fn set_expired_watch_as_http_410(&self, on: bool) {
        lock(&self.inner.faults).expired_watch_http_410 = on;
    }

    fn broadcast(&self, fault: &Fault) {
        if let Some(action) = WatchAction::of(fault) {
            let mut st = lock(&self.inner.store);
            for actions in st.watches.values_mut() {
                actions.push(action);
            }
            drop(st);
            self.inner.changed.notify_all();
        }
    }
}

impl Inner {
    /// The `block` rule that catches a request on `resource` with this Authorization header.
    pub(super) fn blocked(&self, resource: &str, authorization: Option<&str>) -> Option<Block> {
        let token = authorization
            .and_then(|a| a.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        lock(&self.blocks)
            .iter()
            .find(|b| b.resource == resource && b.token.as_deref().is_none_or(|t| Some(t) == token))
            .map(|b| b.how.clone())
    }

    /// A queued or persistent `ListError`: its status and message.
    pub(super) fn take_list_error(&self) -> Option<(u16, String)> {
        let mut f = lock(&self.faults);
        if let Some(i) = f
            .queue
            .iter()
            .position(|x| matches!(x, Fault::ListError(..)))
        {
            if let Some(Fault::ListError(c, m)) = f.queue.remove(i) {
                return Some((c, m));
            }
        }
        f.persistent.iter().find_map(|x| match x {
            Fault::ListError(c, m) => Some((*c, m.clone())),
            _ => None,
        })
    }

    pub(super) fn take_list_fault(&self) -> Option<u16> {
        let mut f = lock(&self.faults);
        if let Some(i) = f
            .queue
            .iter()
            .position(|x| matches!(x, Fault::ListStatus(_)))
        {
            if let Some(Fault::ListStatus(c)) = f.queue.remove(i) {
                return Some(c);
            }
        }
        f.persistent.iter().find_map(|x| match x {
            Fault::ListStatus(c) => Some(*c),
            _ => None,
        })
    }

    /// Takes a queued `SilentWatch` (or sees a persistent one) / sees a persistent
    /// `FlappingWatch`: how the next pod watch misbehaves right after its head.
    pub(super) fn take_watch_mode(&self) -> Option<Fault> {
        let mut f = lock(&self.faults);
        if let Some(i) = f.queue.iter().position(|x| *x == Fault::SilentWatch) {
            return f.queue.remove(i);
        }
        f.persistent
            .iter()
            .find(|x| matches!(x, Fault::SilentWatch | Fault::FlappingWatch))
            .cloned()
    }

    pub(super) fn has_persistent(&self, fault: &Fault) -> bool {
        lock(&self.faults).persistent.contains(fault)
    }

    /// The text `InvalidUtf8` corrupts, if set.
    pub(super) fn utf8_marker(&self) -> Option<String> {
        lock(&self.faults).persistent.iter().find_map(|x| match x {
            Fault::InvalidUtf8(m) => Some(m.clone()),
            _ => None,
        })
    }

    pub(super) fn take_watch_fault(&self) -> Option<(u16, Option<u64>)> {
        let mut f = lock(&self.faults);
        if let Some(i) = f
            .queue
            .iter()
            .position(|x| matches!(x, Fault::WatchStatus(..)))
        {
            if let Some(Fault::WatchStatus(c, r)) = f.queue.remove(i) {
                return Some((c, r));
            }
        }
        f.persistent.iter().find_map(|x| match x {
            Fault::WatchStatus(c, r) => Some((*c, *r)),
            _ => None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WatchAction {
    CloseMidChunk,
    Garbage,
    ErrorGone,
    End,
}

impl WatchAction {
    pub(super) fn of(f: &Fault) -> Option<WatchAction> {
        match f {
            Fault::CloseWatchesMidChunk => Some(WatchAction::CloseMidChunk),
            Fault::GarbageLine => Some(WatchAction::Garbage),
            Fault::WatchErrorGone => Some(WatchAction::ErrorGone),
            Fault::EndWatches => Some(WatchAction::End),
            _ => None,
        }
    }
}

/// Holds a request caught by a `Block::Hang` rule until the rule is lifted, the server goes
/// down, or 60 s pass; the caller then drops the connection without an answer.
pub(super) fn hang(inner: &Inner, conn: &Conn, resource: &str, authorization: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline
        && !conn.stale()
        && inner.blocked(resource, authorization) == Some(Block::Hang)
    {
        thread::sleep(Duration::from_millis(50));
    }
}
