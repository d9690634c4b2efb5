#![allow(clippy::unwrap_used)]

use chrono::TimeZone;

use super::*;

const MINUTE: u64 = 60_000;

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// The instant of a wall-clock time in `zone`, on the pass `pick` chooses when it repeats.
fn local(
    zone: &str,
    (y, mo, d): (i32, u32, u32),
    (h, mi, s): (u32, u32, u32),
    pick: Pass,
) -> Timestamp {
    let tz: chrono_tz::Tz = zone.parse().unwrap();
    let result = tz.with_ymd_and_hms(y, mo, d, h, mi, s);
    let dt = match pick {
        Pass::Only => result.single().unwrap(),
        Pass::First => result.earliest().unwrap(),
        Pass::Second => result.latest().unwrap(),
    };
    at(u64::try_from(dt.timestamp_millis()).unwrap())
}

#[derive(Clone, Copy)]
enum Pass {
    Only,
    First,
    Second,
}

fn utc(date: (i32, u32, u32), time: (u32, u32, u32)) -> Timestamp {
    local("UTC", date, time, Pass::Only)
}

fn limits() -> ScheduleLimits {
    ScheduleLimits {
        schedules_max: 3,
        name_chars_max: 20,
        message_bytes_max: 64,
        missed_grace_ms: 2_000,
        catch_up_max: 5,
    }
}

fn name(s: &str) -> ScheduleName {
    ScheduleName::new(s, &limits()).unwrap()
}

fn cron(pattern: &str, zone: &str) -> Timing {
    Timing::Cron(CronTiming::new(pattern, Some(zone)).unwrap())
}

fn spec(timing: Timing, missed: Missed) -> ScheduleSpec {
    ScheduleSpec {
        timing,
        target: Target::Queue("jobs".into()),
        message: ScheduledMessage {
            body: "tick".into(),
            ..ScheduledMessage::default()
        },
        missed,
        start_at: None,
        end_at: None,
    }
}

fn table_with(now: Timestamp, spec: ScheduleSpec) -> ScheduleTable {
    let mut table = ScheduleTable::new(limits());
    table.put(now, &name("s"), spec, false).unwrap();
    table
}

fn ticks_from(timing: &Timing, after: Timestamp, n: usize) -> Vec<Timestamp> {
    let mut out = Vec::new();
    let mut cursor = after;
    for _ in 0..n {
        let t = timing.next_after(cursor).unwrap();
        out.push(t);
        cursor = t;
    }
    out
}

/// Runs every step of every plan at `now` as a firing task would; returns the ticks fired.
fn run(table: &mut ScheduleTable, now: Timestamp) -> Vec<Timestamp> {
    let mut fired = Vec::new();
    for plan in table.plan(now) {
        for step in plan.steps {
            let outcome = step.tick.map(|tick| {
                fired.push(tick);
                FireOutcome {
                    tick,
                    fired_at: now,
                    ok: true,
                    detail: String::new(),
                    manual: false,
                }
            });
            table
                .advance(
                    &plan.name,
                    plan.version,
                    step.position,
                    step.n_missed,
                    outcome,
                )
                .unwrap();
        }
    }
    fired
}

#[test]
fn five_and_six_field_patterns_give_whole_second_ticks() {
    let every_ten_s = cron("*/10 * * * * *", "UTC");
    let t0 = utc((2026, 1, 1), (0, 0, 3));
    assert_eq!(
        ticks_from(&every_ten_s, t0, 3),
        vec![t0.plus_ms(7_000), t0.plus_ms(17_000), t0.plus_ms(27_000)]
    );
    // Searching from inside a tick's second never finds that tick again.
    let tick = utc((2026, 1, 1), (0, 0, 10));
    assert_eq!(
        every_ten_s.next_after(tick.plus_ms(400)),
        Some(tick.plus_ms(10_000))
    );
    assert_eq!(
        every_ten_s.latest_at_or_before(tick.plus_ms(400)),
        Some(tick)
    );
    // 03:00 in Seoul (UTC+9, no daylight saving) is 18:00 UTC the day before.
    let daily = cron("0 3 * * *", "Asia/Seoul");
    assert_eq!(
        daily.next_after(utc((2026, 1, 1), (12, 0, 0))),
        Some(utc((2026, 1, 1), (18, 0, 0)))
    );
}

#[test]
fn a_fixed_tick_in_a_spring_forward_gap_fires_right_after_the_gap() {
    // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT, so 02:30 does not exist that day.
    let timing = cron("30 2 * * *", "America/New_York");
    let day_before = local("America/New_York", (2026, 3, 7), (12, 0, 0), Pass::Only);
    let ticks = ticks_from(&timing, day_before, 2);
    assert_eq!(
        ticks[0],
        local("America/New_York", (2026, 3, 8), (3, 0, 0), Pass::Only)
    );
    assert_eq!(ticks[0], utc((2026, 3, 8), (7, 0, 0)));
    assert_eq!(
        ticks[1],
        local("America/New_York", (2026, 3, 9), (2, 30, 0), Pass::Only)
    );
}

#[test]
fn interval_ticks_inside_a_spring_forward_gap_do_not_exist() {
    let timing = cron("*/30 * * * *", "America/New_York");
    let before = local("America/New_York", (2026, 3, 8), (1, 15, 0), Pass::Only);
    let ticks = ticks_from(&timing, before, 3);
    // 01:30 EST, then straight to 03:00 EDT: 02:00 and 02:30 never happen.
    assert_eq!(
        ticks[0],
        local("America/New_York", (2026, 3, 8), (1, 30, 0), Pass::Only)
    );
    assert_eq!(
        ticks[1],
        local("America/New_York", (2026, 3, 8), (3, 0, 0), Pass::Only)
    );
    assert_eq!(ticks[1].millis_since(ticks[0]), 30 * MINUTE);
}

#[test]
fn a_fixed_tick_in_a_repeated_hour_fires_once_on_its_first_pass() {
    // New York, 2026-11-01: 02:00 EDT falls back to 01:00 EST, so 01:30 happens twice.
    let timing = cron("30 1 * * *", "America/New_York");
    let before = local("America/New_York", (2026, 10, 31), (12, 0, 0), Pass::Only);
    let ticks = ticks_from(&timing, before, 2);
    assert_eq!(
        ticks[0],
        local("America/New_York", (2026, 11, 1), (1, 30, 0), Pass::First)
    );
    assert_eq!(ticks[0], utc((2026, 11, 1), (5, 30, 0)));
    assert_eq!(
        ticks[1],
        local("America/New_York", (2026, 11, 2), (1, 30, 0), Pass::Only)
    );
}

#[test]
fn interval_ticks_in_a_repeated_hour_fire_on_both_passes_with_distinct_dedup_ids() {
    let timing = cron("*/30 * * * *", "America/New_York");
    let before = local("America/New_York", (2026, 11, 1), (0, 45, 0), Pass::Only);
    let ticks = ticks_from(&timing, before, 5);
    let zone = "America/New_York";
    assert_eq!(
        ticks,
        vec![
            local(zone, (2026, 11, 1), (1, 0, 0), Pass::First),
            local(zone, (2026, 11, 1), (1, 30, 0), Pass::First),
            local(zone, (2026, 11, 1), (1, 0, 0), Pass::Second),
            local(zone, (2026, 11, 1), (1, 30, 0), Pass::Second),
            local(zone, (2026, 11, 1), (2, 0, 0), Pass::Only),
        ]
    );
    let ids: std::collections::BTreeSet<_> =
        ticks.iter().map(|t| dedup_id(&name("s"), *t)).collect();
    assert_eq!(ids.len(), 5);
}

#[test]
fn the_dedup_id_names_the_schedule_and_the_tick() {
    assert_eq!(
        dedup_id(&name("cleanup"), at(1_700_000_000_000)),
        "schedule:cleanup:1700000000000"
    );
    let longest = "n".repeat(SCHEDULE_NAME_CHARS_LIMIT as usize);
    let wide = ScheduleLimits {
        name_chars_max: SCHEDULE_NAME_CHARS_LIMIT,
        ..limits()
    };
    let id = dedup_id(
        &ScheduleName::new(&longest, &wide).unwrap(),
        at(u64::MAX / 1000),
    );
    assert!(
        id.len() <= crate::limits::DEDUP_ID_CHARS_MAX,
        "{} chars",
        id.len()
    );
}

#[test]
fn on_time_ticks_fire_in_order_exactly_once() {
    let t0 = utc((2026, 1, 1), (0, 0, 0));
    let mut table = table_with(t0, spec(cron("* * * * * *", "UTC"), Missed::Skip));
    assert_eq!(run(&mut table, t0.plus_ms(500)), vec![]);
    assert_eq!(run(&mut table, t0.plus_ms(1_200)), vec![t0.plus_ms(1_000)]);
    // Two ticks within the grace both fire, whatever the policy.
    assert_eq!(
        run(&mut table, t0.plus_ms(3_100)),
        vec![t0.plus_ms(2_000), t0.plus_ms(3_000)]
    );
    assert_eq!(run(&mut table, t0.plus_ms(3_900)), vec![]);
    let s = table.get("s").unwrap();
    assert_eq!((s.n_fired, s.n_missed), (3, 0));
}

fn after_downtime(missed: Missed) -> (Vec<Timestamp>, ScheduleTable, Timestamp) {
    let t0 = utc((2026, 1, 1), (0, 0, 30));
    let mut table = table_with(t0, spec(cron("* * * * *", "UTC"), Missed::Skip));
    table
        .put(
            t0,
            &name("s"),
            spec(cron("* * * * *", "UTC"), missed),
            false,
        )
        .unwrap();
    // Down from 00:00:30 to 00:10:00.5: ticks 00:01 .. 00:09 are missed, 00:10 is on time.
    let now = utc((2026, 1, 1), (0, 10, 0)).plus_ms(500);
    let fired = run(&mut table, now);
    (fired, table, now)
}

#[test]
fn skip_counts_missed_ticks_and_fires_only_the_on_time_one() {
    let (fired, table, _) = after_downtime(Missed::Skip);
    assert_eq!(fired, vec![utc((2026, 1, 1), (0, 10, 0))]);
    let s = table.get("s").unwrap();
    assert_eq!((s.n_fired, s.n_missed), (1, 9));
}

#[test]
fn once_fires_the_latest_missed_tick_then_the_on_time_one() {
    let (fired, table, _) = after_downtime(Missed::Once);
    assert_eq!(
        fired,
        vec![utc((2026, 1, 1), (0, 9, 0)), utc((2026, 1, 1), (0, 10, 0))]
    );
    let s = table.get("s").unwrap();
    assert_eq!((s.n_fired, s.n_missed), (2, 8));
}

#[test]
fn all_fires_every_missed_tick_oldest_first_within_the_catch_up_budget() {
    let (fired, mut table, now) = after_downtime(Missed::All);
    let minute = |m| utc((2026, 1, 1), (0, m, 0));
    assert_eq!(
        fired,
        (1..=5).map(minute).collect::<Vec<_>>(),
        "catch_up_max is 5"
    );
    assert_eq!(
        run(&mut table, now),
        (6..=10).map(minute).collect::<Vec<_>>()
    );
    assert_eq!(run(&mut table, now), vec![]);
    let s = table.get("s").unwrap();
    assert_eq!((s.n_fired, s.n_missed), (10, 0));
}

#[test]
fn a_replayed_or_repeated_advance_never_plans_a_tick_again() {
    let t0 = utc((2026, 1, 1), (0, 0, 0));
    let mut table = table_with(t0, spec(cron("* * * * * *", "UTC"), Missed::All));
    let plan = table.plan(t0.plus_ms(1_100)).pop().unwrap();
    let step = plan.steps[0];
    for _ in 0..2 {
        table
            .advance(&plan.name, plan.version, step.position, 0, None)
            .unwrap();
    }
    // An older position (a retried step) does not move it back.
    table
        .advance(&plan.name, plan.version, t0, 0, None)
        .unwrap();
    assert_eq!(table.get("s").unwrap().position, t0.plus_ms(1_000));
    assert!(table.plan(t0.plus_ms(1_900)).is_empty());
}

#[test]
fn an_advance_planned_before_a_change_is_stale() {
    let t0 = utc((2026, 1, 1), (0, 0, 0));
    let mut table = table_with(t0, spec(cron("* * * * * *", "UTC"), Missed::All));
    let plan = table.plan(t0.plus_ms(1_100)).pop().unwrap();
    table
        .put(
            t0,
            &name("s"),
            spec(cron("*/2 * * * * *", "UTC"), Missed::All),
            false,
        )
        .unwrap();
    let error = table
        .advance(&plan.name, plan.version, t0.plus_ms(1_000), 0, None)
        .unwrap_err();
    assert!(
        matches!(
            error,
            ScheduleError::Stale {
                planned: 1,
                current: 2,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_put_that_keeps_the_timing_keeps_the_position() {
    let t0 = utc((2026, 1, 1), (0, 0, 0));
    let mut table = table_with(t0, spec(cron("* * * * *", "UTC"), Missed::All));
    let same = spec(cron("* * * * *", "UTC"), Missed::All);
    let (put, s) = table
        .put(t0.plus_ms(5 * MINUTE), &name("s"), same, false)
        .unwrap();
    assert_eq!((put, s.version, s.position), (Put::Unchanged, 1, t0));
    let mut new_body = spec(cron("* * * * *", "UTC"), Missed::All);
    new_body.message.body = "other".into();
    let (put, s) = table
        .put(t0.plus_ms(5 * MINUTE), &name("s"), new_body, false)
        .unwrap();
    assert_eq!((put, s.version, s.position), (Put::Replaced, 2, t0));
    let new_timing = spec(cron("*/5 * * * *", "UTC"), Missed::All);
    let (_, s) = table
        .put(t0.plus_ms(5 * MINUTE), &name("s"), new_timing, false)
        .unwrap();
    assert_eq!(s.position, t0.plus_ms(5 * MINUTE));
}

#[test]
fn ticks_while_paused_are_neither_fired_nor_missed() {
    let t0 = utc((2026, 1, 1), (0, 0, 0));
    let mut table = table_with(t0, spec(cron("* * * * *", "UTC"), Missed::All));
    table.set_paused(t0, &name("s"), true).unwrap();
    assert!(table.plan(t0.plus_ms(10 * MINUTE)).is_empty());
    assert_eq!(table.get("s").unwrap().state(), ScheduleState::Paused);
    table
        .set_paused(t0.plus_ms(10 * MINUTE + 500), &name("s"), false)
        .unwrap();
    assert_eq!(run(&mut table, t0.plus_ms(10 * MINUTE + 900)), vec![]);
    assert_eq!(
        run(&mut table, t0.plus_ms(11 * MINUTE + 100)),
        vec![t0.plus_ms(11 * MINUTE)]
    );
    assert_eq!(table.get("s").unwrap().n_missed, 0);
}

#[test]
fn the_window_bounds_ticks_and_ends_the_schedule() {
    let t0 = utc((2026, 1, 1), (0, 0, 0));
    let mut windowed = spec(cron("* * * * *", "UTC"), Missed::All);
    windowed.start_at = Some(t0.plus_ms(3 * MINUTE));
    windowed.end_at = Some(t0.plus_ms(5 * MINUTE));
    let mut table = table_with(t0, windowed);
    assert_eq!(
        table.get("s").unwrap().next_fires(5),
        vec![
            t0.plus_ms(3 * MINUTE),
            t0.plus_ms(4 * MINUTE),
            t0.plus_ms(5 * MINUTE)
        ]
    );
    let fired = run(&mut table, t0.plus_ms(60 * MINUTE));
    assert_eq!(
        fired,
        vec![
            t0.plus_ms(3 * MINUTE),
            t0.plus_ms(4 * MINUTE),
            t0.plus_ms(5 * MINUTE)
        ]
    );
    assert_eq!(table.get("s").unwrap().state(), ScheduleState::Finished);
    assert!(table.plan(t0.plus_ms(120 * MINUTE)).is_empty());
}

#[test]
fn once_after_a_downtime_past_the_end_fires_the_last_tick_in_the_window() {
    let t0 = utc((2026, 1, 1), (0, 0, 0));
    let mut windowed = spec(cron("* * * * *", "UTC"), Missed::Once);
    windowed.end_at = Some(t0.plus_ms(5 * MINUTE + 1));
    let mut table = table_with(t0, windowed);
    assert_eq!(
        run(&mut table, t0.plus_ms(60 * MINUTE)),
        vec![t0.plus_ms(5 * MINUTE)]
    );
    assert_eq!(table.get("s").unwrap().n_missed, 4);
}

#[test]
fn a_one_shot_fires_once_then_is_finished() {
    let t0 = utc((2026, 1, 1), (0, 0, 0));
    let mut table = table_with(t0, spec(Timing::At(t0.plus_ms(5_000)), Missed::Skip));
    assert_eq!(table.next_due(), Some(t0.plus_ms(5_000)));
    assert_eq!(run(&mut table, t0.plus_ms(4_999)), vec![]);
    assert_eq!(run(&mut table, t0.plus_ms(5_001)), vec![t0.plus_ms(5_000)]);
    assert_eq!(run(&mut table, t0.plus_ms(9_000)), vec![]);
    let s = table.get("s").unwrap();
    assert_eq!(
        (s.state(), s.next_fires(5)),
        (ScheduleState::Finished, vec![])
    );
    assert_eq!(table.next_due(), None);
}

#[test]
fn a_one_shot_missed_by_a_long_downtime_follows_the_policy() {
    let t0 = utc((2026, 1, 1), (0, 0, 0));
    let mut skip = table_with(t0, spec(Timing::At(t0.plus_ms(5_000)), Missed::Skip));
    assert_eq!(run(&mut skip, t0.plus_ms(60_000)), vec![]);
    assert_eq!(skip.get("s").unwrap().n_missed, 1);
    let mut once = table_with(t0, spec(Timing::At(t0.plus_ms(5_000)), Missed::Once));
    assert_eq!(run(&mut once, t0.plus_ms(60_000)), vec![t0.plus_ms(5_000)]);
    assert_eq!(once.get("s").unwrap().n_missed, 0);
}

#[test]
fn invalid_definitions_are_refused_with_the_reason_and_change_nothing() {
    let t0 = utc((2026, 1, 1), (0, 0, 0));
    let bad_cron = CronTiming::new("61 * * * *", None).unwrap_err();
    assert!(
        matches!(bad_cron, ScheduleError::InvalidCron { .. }),
        "{bad_cron}"
    );
    let bad_zone = CronTiming::new("* * * * *", Some("Mars/Olympus")).unwrap_err();
    assert_eq!(
        bad_zone,
        ScheduleError::UnknownTimezone {
            timezone: "Mars/Olympus".into()
        }
    );
    let mut table = ScheduleTable::new(limits());
    let never = spec(cron("0 0 30 2 *", "UTC"), Missed::Skip);
    let error = table.put(t0, &name("s"), never, false).unwrap_err();
    assert!(
        matches!(
            error,
            ScheduleError::NeverFires {
                in_window: false,
                ..
            }
        ),
        "{error}"
    );
    for now in [t0, t0.plus_ms(1)] {
        let past = spec(Timing::At(t0), Missed::Skip);
        let error = table.put(now, &name("s"), past, false).unwrap_err();
        assert!(matches!(error, ScheduleError::AtInPast { .. }), "{error}");
    }
    let mut window = spec(cron("* * * * *", "UTC"), Missed::Skip);
    window.start_at = Some(t0.plus_ms(10));
    window.end_at = Some(t0.plus_ms(10));
    let error = table.put(t0, &name("s"), window, false).unwrap_err();
    assert!(
        matches!(error, ScheduleError::InvalidWindow { .. }),
        "{error}"
    );
    let mut narrow = spec(cron("0 * * * *", "UTC"), Missed::Skip);
    narrow.end_at = Some(t0.plus_ms(MINUTE));
    let error = table
        .put(t0.plus_ms(1), &name("s"), narrow, false)
        .unwrap_err();
    assert!(
        matches!(
            error,
            ScheduleError::NeverFires {
                in_window: true,
                ..
            }
        ),
        "{error}"
    );
    let mut large = spec(cron("* * * * *", "UTC"), Missed::Skip);
    large.message.body = "x".repeat(65);
    let error = table.put(t0, &name("s"), large, false).unwrap_err();
    assert_eq!(error, ScheduleError::MessageTooLarge { bytes: 65, max: 64 });
    assert!(table.is_empty());
    let long = ScheduleName::new(&"n".repeat(21), &limits()).unwrap_err();
    assert!(long.to_string().contains("at most 20 characters"), "{long}");
    assert!(ScheduleName::new("a/b", &limits()).is_err());
}

#[test]
fn the_table_keeps_at_most_schedules_max() {
    let t0 = utc((2026, 1, 1), (0, 0, 0));
    let mut table = ScheduleTable::new(limits());
    for n in ["a", "b", "c"] {
        table
            .put(
                t0,
                &name(n),
                spec(cron("* * * * *", "UTC"), Missed::Skip),
                false,
            )
            .unwrap();
    }
    let error = table
        .put(
            t0,
            &name("d"),
            spec(cron("* * * * *", "UTC"), Missed::Skip),
            false,
        )
        .unwrap_err();
    assert_eq!(error, ScheduleError::TooManySchedules { limit: 3 });
    // Replacing one is not a new schedule.
    table
        .put(
            t0,
            &name("a"),
            spec(cron("*/2 * * * *", "UTC"), Missed::Skip),
            false,
        )
        .unwrap();
    table.delete(&name("a")).unwrap();
    table
        .put(
            t0,
            &name("d"),
            spec(cron("* * * * *", "UTC"), Missed::Skip),
            false,
        )
        .unwrap();
    let names: Vec<_> = table
        .list(None, 10)
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, ["b", "c", "d"]);
    assert_eq!(table.list(Some("b"), 1).len(), 1);
}
