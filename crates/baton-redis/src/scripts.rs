//! The Lua scripts, one per operation, each the shared library (`lua/lib.lua`) followed by the
//! operation's body, with the SHA1 that `EVALSHA` names them by. Sources are compiled in, so
//! every node runs the same scripts; a node that lacks one (a promoted replica, a restart)
//! answers `NOSCRIPT` and the client loads it there and runs it again (`client.rs`).

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
        let source = format!("{}\n{body}", include_str!("lua/lib.lua"));
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
