//! `baton schedule ...`: shapes and help texts.

use clap::{ArgGroup, Args, Subcommand, ValueEnum};

use crate::args::parse_attribute;
use crate::time::parse_time;

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Create or replace a schedule; prints it (with its next five fire times) as JSON.
    #[command(
        long_about = "Create or replace a schedule; prints it (with its next five fire times) \
        as JSON.\n\n\
        A schedule sends one message to a queue, a topic or a stream at every tick of a cron \
        pattern (five fields, or six with seconds first) in a time zone, or once --at a time. \
        Every tick is delivered once: its message carries the dedup id \
        `schedule:<name>:<tick>`, so a restart that sends a tick again is answered as a \
        duplicate. --missed says what happens to ticks that passed while the server was down: \
        skip them, fire the latest of them once (the default), or fire them all. Replacing a \
        schedule with the same timing keeps its progress.",
        after_help = "Examples:\n  \
        baton schedule put stream-cleanup --cron '0 3 * * *' --timezone Asia/Seoul \\\n      \
        --queue maintenance --body '{\"stream\":\"access\",\"older_than_days\":60}'\n  \
        baton schedule put heartbeat --cron '*/10 * * * * *' --topic status --routing-key beat\n  \
        baton schedule put reminder --at 2026-12-24T09:00:00+09:00 --queue mail --body hi"
    )]
    Put(Box<SchedulePutArgs>),

    /// List schedules, in name order.
    #[command(after_help = "Examples:\n  baton schedule list\n  baton schedule list --table")]
    List(ScheduleListArgs),

    /// Show a schedule: definition, state, next five fire times, last outcome.
    #[command(
        after_help = "Examples:\n  baton schedule show stream-cleanup\n  baton schedule show stream-cleanup --table"
    )]
    Show(ScheduleShowArgs),

    /// Pause a schedule: no tick fires until it is resumed.
    Pause(ScheduleNameArg),

    /// Resume a paused schedule; ticks while it was paused do not fire.
    Resume(ScheduleNameArg),

    /// Send the schedule's message now (not a tick: the schedule's progress stays).
    Fire(ScheduleNameArg),

    /// Delete a schedule.
    Delete(ScheduleNameArg),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MissedArg {
    Skip,
    Once,
    All,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("when").required(true).args(["cron", "at"])))]
#[command(group(ArgGroup::new("target").required(true).args(["queue", "topic", "stream"])))]
pub struct SchedulePutArgs {
    /// The schedule's name: characters of A-Z a-z 0-9 _ . : -
    pub name: String,

    /// A cron pattern: `0 3 * * *` (03:00 daily), `*/10 * * * * *` (every 10 seconds).
    #[arg(long)]
    pub cron: Option<String>,

    /// The cron pattern's time zone (IANA) [default: UTC].
    #[arg(long, requires = "cron")]
    pub timezone: Option<String>,

    /// Fire once at this time (milliseconds since the epoch, or RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<u64>,

    /// Send to this queue.
    #[arg(long)]
    pub queue: Option<String>,

    /// Publish to this topic.
    #[arg(long)]
    pub topic: Option<String>,

    /// Append to this stream.
    #[arg(long)]
    pub stream: Option<String>,

    /// The message body.
    #[arg(long, default_value = "")]
    pub body: String,

    /// A string attribute (a stream record's header); repeat for several.
    #[arg(long = "attr", value_name = "KEY=VALUE", value_parser = parse_attribute)]
    pub attributes: Vec<(String, String)>,

    /// The message group (FIFO queues).
    #[arg(long)]
    pub group_id: Option<String>,

    /// The routing key (topics).
    #[arg(long)]
    pub routing_key: Option<String>,

    /// The record key (streams).
    #[arg(long)]
    pub key: Option<String>,

    /// What happens to ticks missed while the server was down [default: once].
    #[arg(long, value_enum)]
    pub missed: Option<MissedArg>,

    /// No tick before this time fires.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub start_at: Option<u64>,

    /// No tick after this time fires.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub end_at: Option<u64>,

    /// Create it paused.
    #[arg(long)]
    pub paused: bool,
}

#[derive(Debug, Args)]
pub struct ScheduleNameArg {
    /// The schedule's name.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct ScheduleShowArgs {
    /// The schedule's name.
    pub name: String,

    /// Print a table for humans instead of JSON.
    #[arg(long)]
    pub table: bool,
}

#[derive(Debug, Args)]
pub struct ScheduleListArgs {
    /// Start after this name (the `next_after` of a previous page).
    #[arg(long)]
    pub after: Option<String>,

    /// Most schedules to list, 1..=1000.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max: u32,

    /// Print a table for humans instead of JSON.
    #[arg(long)]
    pub table: bool,
}
