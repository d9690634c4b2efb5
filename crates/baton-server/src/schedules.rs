//! The firing task: fires due schedule ticks on the engine's clock, one server-wide loop.
//!
//! Each pass asks the engine what is due (`Engine::plan_schedules`), and for every step of
//! every plan, in order: sends the tick's message through the service layer
//! (`service::schedules::send_firing`, dedup id `schedule:<name>:<tick>`), then records the
//! step durably (`Engine::advance_schedule`). A step is recorded only after its send was
//! answered, and the next step of a plan starts only after that record is durable, so a
//! crash at any point leaves at most the last sent tick unrecorded: it is planned again after
//! the restart and its second send is answered as a duplicate by the target.
//!
//! A send that failed because the broker cannot write now (not ready, storage unavailable,
//! the disk-free alarm) is not recorded: the plan is retried after [`ERROR_PAUSE`], and if
//! the trouble outlasts `schedule_missed_grace_ms` the `missed` policy applies to the late
//! ticks. Any other failure (the target was deleted, a full queue, a message the target
//! refuses) is recorded as the tick's failed outcome and counted; the schedule moves on.
//!
//! Between passes the loop sleeps until the next tick is due, at most [`SLEEP_MAX`] (so a
//! change of the engine's clock is noticed), and is woken at once by a put or a resume. It
//! runs until shutdown. On an engine without schedules (`NotOnEngine`; every engine of this
//! workspace has them now) it says so once and idles until shutdown, since no schedule can
//! exist there. On the Redis engine every node runs this loop: two nodes firing one tick
//! send one message and record one firing (the engine's marker and compare-and-set, see
//! `baton-redis`'s `schedules.rs`).

use std::fmt::Write as _;
use std::time::Duration;

use baton_core::schedule::{FireOutcome, Plan, Schedule, Step, Target, SCHEDULE_LIST_MAX};
use baton_core::Timestamp;
use baton_engine::{EngineError, QueueFiring, ScheduleEngineError};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::metrics_text::{family, histogram_lines};
use crate::service::schedules::{queue_firing, send_firing};
use crate::service::ServiceError;
use crate::state::AppState;

/// Pause after a pass that could not write.
pub const ERROR_PAUSE: Duration = Duration::from_millis(500);
/// Longest sleep between passes.
pub const SLEEP_MAX: Duration = Duration::from_secs(1);
/// Upper bounds (seconds) of the lateness histogram's buckets.
const LATENESS_BOUNDS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0, 300.0];

/// The firing task's handle: its wake-up and its figures.
pub struct Scheduler {
    wake: Notify,
    stop: CancellationToken,
    figures: Mutex<Figures>,
}

#[derive(Default)]
struct Figures {
    lateness_buckets: [u64; LATENESS_BOUNDS.len()],
    lateness_count: u64,
    lateness_sum_s: f64,
    retries: u64,
    manual: u64,
}

enum PlanEnd {
    Done,
    /// The broker could not write; try again after a pause.
    Retry,
}

impl Scheduler {
    pub fn new(stop: CancellationToken) -> Self {
        Scheduler {
            wake: Notify::new(),
            stop,
            figures: Mutex::new(Figures::default()),
        }
    }

    /// Makes the loop look at the schedules now (after a put or a resume).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn record_lateness(&self, late_ms: u64) {
        let seconds = late_ms as f64 / 1000.0;
        let mut figures = self.figures.lock();
        if let Some(i) = LATENESS_BOUNDS.iter().position(|b| seconds <= *b) {
            if let Some(bucket) = figures.lateness_buckets.get_mut(i) {
                *bucket += 1;
            }
        }
        figures.lateness_count += 1;
        figures.lateness_sum_s += seconds;
    }

    pub(crate) fn record_manual(&self) {
        self.figures.lock().manual += 1;
    }
}

/// The firing loop; runs until shutdown.
pub async fn run(state: AppState) {
    let scheduler = state.schedules.clone();
    loop {
        let pause = match state.engine.plan_schedules().await {
            Ok(plans) => {
                let mut pause = sleep_for(plans.next_due, plans.now);
                for plan in plans.plans {
                    if scheduler.stop.is_cancelled() {
                        return;
                    }
                    match run_plan(&state, plan).await {
                        // A plan fires at most `catch_up_max` ticks: look again at once.
                        PlanEnd::Done => pause = Duration::ZERO,
                        PlanEnd::Retry => {
                            scheduler.figures.lock().retries += 1;
                            pause = ERROR_PAUSE;
                            break;
                        }
                    }
                }
                pause
            }
            Err(ScheduleEngineError::Engine(error @ EngineError::NotOnEngine { .. })) => {
                tracing::info!(%error, "the schedule firing task is idle");
                scheduler.stop.cancelled().await;
                return;
            }
            Err(_) => ERROR_PAUSE,
        };
        if pause.is_zero() {
            tokio::task::yield_now().await;
            if scheduler.stop.is_cancelled() {
                return;
            }
            continue;
        }
        tokio::select! {
            _ = scheduler.stop.cancelled() => return,
            _ = scheduler.wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

fn sleep_for(next_due: Option<baton_core::Timestamp>, now: baton_core::Timestamp) -> Duration {
    match next_due {
        Some(due) => Duration::from_millis(due.millis_since(now)).min(SLEEP_MAX),
        None => SLEEP_MAX,
    }
}

/// Whether a failed send is the broker's momentary trouble rather than the tick's.
fn is_momentary(error: &ServiceError) -> bool {
    matches!(
        error,
        ServiceError::Engine(
            EngineError::NotReady
                | EngineError::StorageUnavailable { .. }
                | EngineError::OutcomeUnknown { .. }
                | EngineError::DiskLow { .. }
                | EngineError::DiskFull { .. }
                | EngineError::MemoryPressure { .. }
        )
    )
}

async fn run_plan(state: &AppState, plan: Plan) -> PlanEnd {
    for step in &plan.steps {
        // Looked up before every step, so a pause, a change or a delete stops the plan at
        // once (at most a send already on its way completes).
        let schedule = match state.engine.get_schedule(&plan.name).await {
            Ok(Some(schedule)) if schedule.version == plan.version && !schedule.paused => schedule,
            Ok(_) => return PlanEnd::Done,
            Err(_) => return PlanEnd::Retry,
        };
        if let (Some(tick), Target::Queue(_)) = (step.tick, &schedule.spec.target) {
            match fire_to_queue(state, &schedule, &plan, step, tick).await {
                Fired::Done => continue,
                Fired::Retry => return PlanEnd::Retry,
                Fired::Stop => return PlanEnd::Done,
                Fired::Failed(outcome) => {
                    match record_step(state, &plan, step, Some(outcome)).await {
                        Some(end) => return end,
                        None => continue,
                    }
                }
            }
        }
        let outcome = match step.tick {
            None => None,
            Some(tick) => {
                let sent = send_firing(state, &schedule, tick, false).await;
                if let Err(error) = &sent {
                    if is_momentary(error) {
                        return PlanEnd::Retry;
                    }
                    tracing::warn!(schedule = %plan.name, tick = tick.as_millis(), %error, "a schedule's firing failed");
                }
                let fired_at = state.engine.now();
                state.schedules.record_lateness(fired_at.millis_since(tick));
                Some(FireOutcome {
                    tick,
                    fired_at,
                    ok: sent.is_ok(),
                    detail: sent.unwrap_or_else(|error| error.to_string()),
                    manual: false,
                })
            }
        };
        if let Some(end) = record_step(state, &plan, step, outcome).await {
            return end;
        }
    }
    PlanEnd::Done
}

/// Records a step that sent nothing itself (a count of missed ticks, a failed or a topic or
/// stream firing); `Some` ends the plan.
async fn record_step(
    state: &AppState,
    plan: &Plan,
    step: &Step,
    outcome: Option<FireOutcome>,
) -> Option<PlanEnd> {
    let advanced = state
        .engine
        .advance_schedule(
            &plan.name,
            plan.version,
            step.position,
            step.n_missed,
            outcome,
        )
        .await;
    match advanced {
        Ok(_) => None,
        // Changed or deleted meanwhile: the next pass plans the new definition.
        Err(ScheduleEngineError::Schedule(_)) => Some(PlanEnd::Done),
        Err(ScheduleEngineError::Engine(_)) => Some(PlanEnd::Retry),
    }
}

/// What a firing to a queue came to.
enum Fired {
    /// Sent and recorded as one unit.
    Done,
    /// The broker's momentary trouble: plan again later.
    Retry,
    /// The schedule changed or went meanwhile.
    Stop,
    /// The queue refused the send: record this failed outcome.
    Failed(FireOutcome),
}

/// One tick to a queue: the send and the step as one durable unit (`Engine::fire_to_queue`),
/// so a crash never leaves the tick sent but unrecorded however long the broker stays down.
async fn fire_to_queue(
    state: &AppState,
    schedule: &Schedule,
    plan: &Plan,
    step: &Step,
    tick: Timestamp,
) -> Fired {
    let failed = |detail: String| {
        Fired::Failed(FireOutcome {
            tick,
            fired_at: state.engine.now(),
            ok: false,
            detail,
            manual: false,
        })
    };
    let (queue, entry) = match queue_firing(schedule, tick, false) {
        Ok(firing) => firing,
        Err(error) => return failed(error.to_string()),
    };
    let firing = QueueFiring {
        name: plan.name.clone(),
        version: plan.version,
        position: step.position,
        n_missed: step.n_missed,
        tick,
        queue,
        entry,
    };
    match state.engine.fire_to_queue(firing).await {
        Ok((schedule, _)) => {
            if let Some(outcome) = &schedule.last_outcome {
                state
                    .schedules
                    .record_lateness(outcome.fired_at.millis_since(tick));
            }
            Fired::Done
        }
        Err(ScheduleEngineError::Schedule(_)) => Fired::Stop,
        Err(ScheduleEngineError::Engine(error)) => {
            let error = ServiceError::Engine(error);
            if is_momentary(&error) {
                return Fired::Retry;
            }
            tracing::warn!(schedule = %plan.name, tick = tick.as_millis(), %error, "a schedule's firing failed");
            failed(error.to_string())
        }
    }
}

/// The schedule figures for `/metrics`: per schedule from the engine's durable counts, the
/// lateness of firings since this process started.
pub async fn write_metrics(state: &AppState, out: &mut String) {
    let mut schedules = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let Ok(page) = state
            .engine
            .list_schedules(after.as_deref(), SCHEDULE_LIST_MAX)
            .await
        else {
            return;
        };
        let full = page.len() == SCHEDULE_LIST_MAX;
        after = page.last().map(|s| s.name.to_string());
        schedules.extend(page);
        if !full {
            break;
        }
    }
    family(out, "baton_schedules", "gauge", "Schedules, by state.");
    for wanted in ["active", "paused", "finished"] {
        let n = schedules
            .iter()
            .filter(|s| s.state().as_str() == wanted)
            .count();
        let _ = writeln!(out, "baton_schedules{{state=\"{wanted}\"}} {n}");
    }
    for (name, help, value) in [
        (
            "baton_schedule_fired_total",
            "Ticks and manual firings whose send succeeded, by schedule.",
            (|s: &baton_core::schedule::Schedule| s.n_fired) as fn(&_) -> u64,
        ),
        (
            "baton_schedule_missed_total",
            "Ticks not fired because the broker was down or behind (the missed policy), by schedule.",
            |s| s.n_missed,
        ),
        (
            "baton_schedule_failures_total",
            "Firings whose send failed (recorded as the tick's outcome), by schedule.",
            |s| s.n_failed,
        ),
    ] {
        family(out, name, "counter", help);
        for schedule in &schedules {
            let _ = writeln!(
                out,
                "{name}{{schedule=\"{}\"}} {}",
                schedule.name,
                value(schedule)
            );
        }
    }
    let figures = state.schedules.figures.lock();
    family(
        out,
        "baton_schedule_lateness_seconds",
        "histogram",
        "How long after its tick each firing's send was answered.",
    );
    histogram_lines(
        out,
        "baton_schedule_lateness_seconds",
        &LATENESS_BOUNDS,
        &figures.lateness_buckets,
        figures.lateness_count,
        figures.lateness_sum_s,
    );
    family(
        out,
        "baton_schedule_retries_total",
        "counter",
        "Passes that stopped because the broker could not write (the ticks stay due).",
    );
    let _ = writeln!(out, "baton_schedule_retries_total {}", figures.retries);
    family(
        out,
        "baton_schedule_manual_firings_total",
        "counter",
        "Firings asked for with POST /v1/schedules/{name}/fire.",
    );
    let _ = writeln!(
        out,
        "baton_schedule_manual_firings_total {}",
        figures.manual
    );
}
