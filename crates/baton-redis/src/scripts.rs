//! The Lua scripts, one per operation, each a shared library followed by the operation's
//! body, with the SHA1 that `EVALSHA` names them by: queue scripts start with `lua/lib.lua`,
//! lock scripts with `lua/lock_lib.lua`; the fenced twins of send, ack and nack put
//! `lua/fence.lua` between the library and the body (`locks.rs`), and a schedule's firing
//! to a queue puts `lua/fired.lua` before `send` (`schedules.rs`), and a topic's copy handed
//! over to a queue puts `lua/published.lua` there (`topics.rs`); `lock_admit.lua` (which also
//! admits schedule and topic names to their indexes), `schedule_write.lua` (which also writes
//! topic records) and `topic_publish.lua` stand alone. Sources
//! are compiled in, so every node runs the same scripts; a node that lacks one (a promoted
//! replica, a restart) answers `NOSCRIPT` and the client loads it there and runs it again
//! (`client.rs`).

use std::sync::LazyLock;

/// One script: its whole source and its SHA1.
#[derive(Debug)]
pub(crate) struct Script {
    pub(crate) name: &'static str,
    pub(crate) source: String,
    pub(crate) sha: String,
}

impl Script {
    fn new(name: &'static str, body: &str) -> Self {
        Self::from_source(name, format!("{}\n{body}", include_str!("lua/lib.lua")))
    }

    /// A queue script that first checks and raises the write's fence floor (`fence.lua`).
    fn fenced(name: &'static str, body: &str) -> Self {
        let source = format!(
            "{}\n{}\n{body}",
            include_str!("lua/lib.lua"),
            include_str!("lua/fence.lua")
        );
        Self::from_source(name, source)
    }

    /// A lock script: `lock_lib.lua` and the body.
    /// A schedule's firing to a queue: `send` checked against and raising the queue's marker
    /// of the schedule's last tick sent (`fired.lua`, see `schedules.rs`).
    fn fired(name: &'static str, body: &str) -> Self {
        let source = format!(
            "{}\n{}\n{body}",
            include_str!("lua/lib.lua"),
            include_str!("lua/fired.lua")
        );
        Self::from_source(name, source)
    }

    /// A topic's copy handed over to a queue: `send` checked against and recording the copy's
    /// token in the queue's `movedin` set (`published.lua`, see `topics.rs`).
    fn published(name: &'static str, body: &str) -> Self {
        let source = format!(
            "{}\n{}\n{body}",
            include_str!("lua/lib.lua"),
            include_str!("lua/published.lua")
        );
        Self::from_source(name, source)
    }

    fn lock(name: &'static str, body: &str) -> Self {
        Self::from_source(
            name,
            format!("{}\n{body}", include_str!("lua/lock_lib.lua")),
        )
    }

    /// A script that stands alone (no library).
    fn from_source_file(name: &'static str, body: &str) -> Self {
        Self::from_source(name, body.to_string())
    }

    fn from_source(name: &'static str, source: String) -> Self {
        let sha = redis::Script::new(&source).get_hash().to_string();
        Script { name, source, sha }
    }
}

macro_rules! scripts {
    ($($ident:ident => $file:literal),* $(,)?) => {
        $(
            pub(crate) static $ident: LazyLock<Script> =
                LazyLock::new(|| Script::new($file, include_str!(concat!("lua/", $file, ".lua"))));
        )*
    };
}

scripts! {
    CREATE => "create",
    UPDATE => "update",
    DELETE => "delete",
    GET => "get",
    ADVANCE => "advance",
    SEND => "send",
    RECEIVE => "receive",
    ACK => "ack",
    NACK => "nack",
    VISIBILITY => "visibility",
    STATUS => "status",
    PURGE => "purge",
    PEEK => "peek",
    META => "meta",
    CALLBACK => "callback",
    CALLBACKS_FAILED => "callbacks_failed",
    ACCEPT => "accept",
    REDRIVE => "redrive",
}

macro_rules! built {
    ($($ident:ident => $build:ident $file:literal),* $(,)?) => {
        $(
            pub(crate) static $ident: LazyLock<Script> =
                LazyLock::new(|| Script::$build($file, include_str!(concat!("lua/", $file, ".lua"))));
        )*
    };
}

built! {
    SEND_FENCED => fenced "send",
    ACK_FENCED => fenced "ack",
    NACK_FENCED => fenced "nack",
    LOCK_ACQUIRE => lock "lock_acquire",
    LOCK_RENEW => lock "lock_renew",
    LOCK_RELEASE => lock "lock_release",
    LOCK_GET => lock "lock_get",
    LOCK_ADMIT => from_source_file "lock_admit",
    SEND_FIRED => fired "send",
    SCHEDULE_WRITE => from_source_file "schedule_write",
    SEND_PUBLISHED => published "send",
    TOPIC_PUBLISH => from_source_file "topic_publish",
}
