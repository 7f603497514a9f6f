//! Metrics (SPEC §19): what a machine counts, and the Prometheus text exposition of it.
//!
//! A machine has one [`Metrics`], made when it starts and handed as `Arc<Metrics>` to the parts
//! that record: its stars (every wave hop they finish), the gateway (every request), the
//! registry cache (every registry call), the channel hub (every delivery), the membership loop
//! (machines alive) and, through [`Metrics::guest_call`] and [`Metrics::not_started`], the wasm
//! host and the stars' admission control. It can only be recorded into and read: a part that
//! holds it can do nothing else to the machine.
//!
//! Recording is on the path of every wave, so it neither locks nor allocates: each thread adds
//! to the cells of a stripe of its own (a stripe per thread, up to a few per core, as Java's
//! `LongAdder` does), so two cores recording at once do not fight over one cache line. A
//! histogram is a fixed set of buckets, one atomic each, and the sum in nanoseconds. Reading
//! ([`Metrics::render`], at each scrape) adds the stripes up.
//!
//! `docs/decisions/observability.md` lists the series, their labels, and why.

use std::cell::Cell;
use std::fmt::{Display, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use cosmic_space::{StatusCode, WaveKind};

use crate::wasm::{CallObserver, CallOutcome};

/// The content type of [`Metrics::render`]'s text: Prometheus's text format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The upper bounds of every duration histogram's buckets, in nanoseconds: 5 µs (a wave
/// between two stars takes a few) to 30 s (the longest a wave waits by default), in steps of
/// 1, 2.5, 5.
const BOUNDS: [u64; 21] = [
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
];

/// A status's cell: 100–599 are slots 0–499; anything else (HTTP allows up to 999) slot 500.
const STATUSES: usize = 501;

/// The outcomes of guest calls (`starlane_guest_calls_total{outcome}`), in the order they
/// are exposed, with their label values; the wasm host reports them ([`CallObserver`]).
const GUEST_OUTCOMES: [(CallOutcome, &str); 6] = [
    (CallOutcome::Ok, "ok"),
    (CallOutcome::Trap, "trap"),
    (CallOutcome::Fuel, "fuel"),
    (CallOutcome::Timeout, "timeout"),
    (CallOutcome::Busy, "busy"),
    (CallOutcome::NotStarted, "not_started"),
];

/// The cell of `outcome` in [`GUEST_OUTCOMES`].
fn outcome_slot(outcome: CallOutcome) -> usize {
    GUEST_OUTCOMES
        .iter()
        .position(|(known, _)| *known == outcome)
        .unwrap_or(1)
}

/// Why a directed wave was not started (`starlane_waves_not_started_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotStarted {
    /// The queue it would have waited in was full (answered 503).
    Full,
    /// Its wait time had passed before it could start: its caller has given up.
    Expired,
}

impl NotStarted {
    /// Every reason, in the order they are exposed.
    pub const ALL: [NotStarted; 2] = [NotStarted::Full, NotStarted::Expired];

    /// The label value (`"full"`).
    pub fn name(self) -> &'static str {
        match self {
            NotStarted::Full => "full",
            NotStarted::Expired => "expired",
        }
    }
}

/// What became of one delivery of a channel's publication to one subscriber
/// (`starlane_channel_deliveries_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChannelDelivery {
    /// Handed to the subscriber's queue.
    Delivered,
    /// Dropped: a full queue, a subscriber that could not be reached.
    Dropped,
}

impl ChannelDelivery {
    /// Every outcome, in the order they are exposed.
    pub const ALL: [ChannelDelivery; 2] = [ChannelDelivery::Delivered, ChannelDelivery::Dropped];

    /// The label value (`"delivered"`).
    pub fn name(self) -> &'static str {
        match self {
            ChannelDelivery::Delivered => "delivered",
            ChannelDelivery::Dropped => "dropped",
        }
    }
}

/// How a registry call was answered (`starlane_registry_operations_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RegistryOutcome {
    /// From the machine's cache, without asking the store.
    Cached,
    /// By the store: done.
    Ok,
    /// By the store: refused (no such particle, already exists, locked … — a 4xx).
    Refused,
    /// The store failed or could not be reached (a 5xx).
    Failed,
}

impl RegistryOutcome {
    /// Every outcome, in the order they are exposed.
    pub const ALL: [RegistryOutcome; 4] = [
        RegistryOutcome::Cached,
        RegistryOutcome::Ok,
        RegistryOutcome::Refused,
        RegistryOutcome::Failed,
    ];

    /// The label value (`"cached"`).
    pub fn name(self) -> &'static str {
        match self {
            RegistryOutcome::Cached => "cached",
            RegistryOutcome::Ok => "ok",
            RegistryOutcome::Refused => "refused",
            RegistryOutcome::Failed => "failed",
        }
    }
}

/// Declares [`RegistryOp`]: one variant per call of the `Registry` trait, with its label.
macro_rules! registry_ops {
    ($($op:ident => $name:literal),+ $(,)?) => {
        /// A call of the registry (`starlane_registry_operations_total{op}`): the method of
        /// the `Registry` trait, by name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum RegistryOp {
            $(
                #[doc = concat!("`", $name, "`")]
                $op,
            )+
        }

        impl RegistryOp {
            /// Every call, in the order they are exposed.
            pub const ALL: &[RegistryOp] = &[$(RegistryOp::$op),+];

            /// The label value: the method's name (`"record"`).
            pub fn name(self) -> &'static str {
                match self {
                    $(RegistryOp::$op => $name,)+
                }
            }
        }
    };
}

registry_ops! {
    Register => "register",
    RegisterAll => "register_all",
    NextSequence => "next_sequence",
    Record => "record",
    Location => "location",
    Line => "line",
    Hierarchy => "hierarchy",
    Lineage => "lineage",
    SetStatus => "set_status",
    SetLocation => "set_location",
    SetProperties => "set_properties",
    WriteContent => "write_content",
    Select => "select",
    Children => "children",
    Delete => "delete",
    Content => "content",
    Chown => "chown",
    Grant => "grant",
    Revoke => "revoke",
    Grants => "grants",
    GrantsOn => "grants_on",
    StoreToken => "store_token",
    TokenAgent => "token_agent",
    Census => "census",
    Subscribe => "subscribe",
    Unsubscribe => "unsubscribe",
    UnsubscribeAll => "unsubscribe_all",
    Subscriptions => "subscriptions",
}

/// The directed kinds of wave a star handles, in the order they are exposed.
const DIRECTED: [WaveKind; 3] = [WaveKind::Ping, WaveKind::Signal, WaveKind::Ripple];

/// The cell of a directed kind; `None` for a reflection (not a hop a star handles).
fn directed(kind: WaveKind) -> Option<usize> {
    match kind {
        WaveKind::Ping => Some(0),
        WaveKind::Signal => Some(1),
        WaveKind::Ripple => Some(2),
        WaveKind::Pong | WaveKind::Echo => None,
    }
}

/// The cell of an HTTP or wave status.
fn status_slot(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status - 100),
        _ => STATUSES - 1,
    }
}

/// One duration histogram's cells: a count per bucket (not cumulative; the last is above every
/// bound) and the sum of the durations in nanoseconds.
#[derive(Debug)]
struct Timer {
    buckets: [AtomicU64; BOUNDS.len() + 1],
    nanos: AtomicU64,
}

impl Timer {
    const fn new() -> Timer {
        Timer {
            buckets: [const { AtomicU64::new(0) }; BOUNDS.len() + 1],
            nanos: AtomicU64::new(0),
        }
    }

    fn observe(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        // The first bucket whose bound is at least the value (`le`: less or equal).
        let bucket = BOUNDS.partition_point(|bound| *bound < nanos);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// One thread's share of every cell. Aligned so that two stripes never share a cache line.
#[derive(Debug)]
#[repr(align(128))]
struct Stripe {
    waves: [[AtomicU64; STATUSES]; DIRECTED.len()],
    wave_time: [Timer; DIRECTED.len()],
    http: [AtomicU64; STATUSES],
    http_time: Timer,
    guest_calls: [AtomicU64; GUEST_OUTCOMES.len()],
    guest_fuel: AtomicU64,
    guest_time: Timer,
    not_started: [AtomicU64; NotStarted::ALL.len()],
    registry: [[AtomicU64; RegistryOutcome::ALL.len()]; RegistryOp::ALL.len()],
    deliveries: [AtomicU64; ChannelDelivery::ALL.len()],
}

impl Stripe {
    fn new() -> Stripe {
        Stripe {
            waves: [const { [const { AtomicU64::new(0) }; STATUSES] }; DIRECTED.len()],
            wave_time: [const { Timer::new() }; DIRECTED.len()],
            http: [const { AtomicU64::new(0) }; STATUSES],
            http_time: Timer::new(),
            guest_calls: [const { AtomicU64::new(0) }; GUEST_OUTCOMES.len()],
            guest_fuel: AtomicU64::new(0),
            guest_time: Timer::new(),
            not_started: [const { AtomicU64::new(0) }; NotStarted::ALL.len()],
            registry: [const { [const { AtomicU64::new(0) }; RegistryOutcome::ALL.len()] };
                RegistryOp::ALL.len()],
            deliveries: [const { AtomicU64::new(0) }; ChannelDelivery::ALL.len()],
        }
    }
}

/// Numbers the threads that record, in the order they first do.
static THREADS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's number (`usize::MAX` until it first records).
    static THREAD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's number: its stripe is this modulo the number of stripes.
fn thread_number() -> usize {
    THREAD.with(|number| {
        let mut n = number.get();
        if n == usize::MAX {
            n = THREADS.fetch_add(1, Ordering::Relaxed);
            number.set(n);
        }
        n
    })
}

/// What one machine counts (see the module's documentation).
pub struct Metrics {
    stripes: Box<[Stripe]>,
    /// `stripes.len() - 1` (a power of two).
    mask: usize,
    /// Machines of the cosmos holding a lease (1 for a machine alone): set, not added to.
    machines_alive: AtomicU64,
}

/// The wasm host reports every guest call here.
impl CallObserver for Metrics {
    fn observe(&self, outcome: CallOutcome, fuel: u64, elapsed: Duration) {
        self.guest_call(outcome, fuel, elapsed);
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("stripes", &self.stripes.len())
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Everything at zero, with two stripes per core (at least 4, at most 32).
    pub fn new() -> Metrics {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let count = (cores * 2).next_power_of_two().clamp(4, 32);
        Metrics {
            stripes: (0..count).map(|_| Stripe::new()).collect(),
            mask: count - 1,
            machines_alive: AtomicU64::new(0),
        }
    }

    /// The calling thread's stripe.
    fn stripe(&self) -> &Stripe {
        &self.stripes[thread_number() & self.mask]
    }

    /// The sum of one cell over every stripe.
    fn total(&self, cell: impl Fn(&Stripe) -> &AtomicU64) -> u64 {
        self.stripes
            .iter()
            .map(|stripe| cell(stripe).load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    /// A star finished handling a directed wave of `kind` (one hop), answering `status`, in
    /// `elapsed`. Reflections are not hops: a Pong or Echo is not counted.
    pub fn wave(&self, kind: WaveKind, status: StatusCode, elapsed: Duration) {
        let Some(kind) = directed(kind) else {
            return;
        };
        let stripe = self.stripe();
        stripe.waves[kind][status_slot(status.as_u16())].fetch_add(1, Ordering::Relaxed);
        stripe.wave_time[kind].observe(elapsed);
    }

    /// The gateway answered a request with `status` after `elapsed` (for a stream, when it
    /// started).
    pub fn http_request(&self, status: u16, elapsed: Duration) {
        let stripe = self.stripe();
        stripe.http[status_slot(status)].fetch_add(1, Ordering::Relaxed);
        stripe.http_time.observe(elapsed);
    }

    /// A call into a guest ended with `outcome`, having burnt `fuel`, after `elapsed`.
    pub fn guest_call(&self, outcome: CallOutcome, fuel: u64, elapsed: Duration) {
        let stripe = self.stripe();
        stripe.guest_calls[outcome_slot(outcome)].fetch_add(1, Ordering::Relaxed);
        stripe.guest_fuel.fetch_add(fuel, Ordering::Relaxed);
        stripe.guest_time.observe(elapsed);
    }

    /// A directed wave was not started, for `reason`.
    pub fn not_started(&self, reason: NotStarted) {
        self.stripe().not_started[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A registry call `op` was answered so.
    pub fn registry_operation(&self, op: RegistryOp, outcome: RegistryOutcome) {
        self.stripe().registry[op as usize][outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A channel's publication reached one subscriber, or was dropped for it.
    pub fn channel_delivery(&self, outcome: ChannelDelivery) {
        self.stripe().deliveries[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// `machines` machines of the cosmos hold a lease (1 for a machine alone).
    pub fn set_machines_alive(&self, machines: usize) {
        let machines = u64::try_from(machines).unwrap_or(u64::MAX);
        self.machines_alive.store(machines, Ordering::Relaxed);
    }

    /// How many directed waves of `kind` stars finished with `status`.
    pub fn waves(&self, kind: WaveKind, status: StatusCode) -> u64 {
        match directed(kind) {
            Some(kind) => self.total(|s| &s.waves[kind][status_slot(status.as_u16())]),
            None => 0,
        }
    }

    /// How many machines of the cosmos hold a lease, as last set.
    pub fn machines_alive(&self) -> u64 {
        self.machines_alive.load(Ordering::Relaxed)
    }

    /// How many deliveries ended as `outcome`.
    pub fn channel_deliveries(&self, outcome: ChannelDelivery) -> u64 {
        self.total(|s| &s.deliveries[outcome as usize])
    }

    /// Everything, in Prometheus's text format (version 0.0.4, [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = Exposition::default();

        out.family(
            "starlane_waves_total",
            "counter",
            "Directed waves a star finished handling (one per hop), by kind and status.",
        );
        for (index, kind) in DIRECTED.iter().enumerate() {
            for (slot, status) in statuses() {
                let count = self.total(|s| &s.waves[index][slot]);
                if count > 0 {
                    let labels = [("kind", kind_name(*kind)), ("status", status.as_str())];
                    out.sample("starlane_waves_total", &labels, count);
                }
            }
        }
        out.family(
            "starlane_wave_duration_seconds",
            "histogram",
            "How long a star took to handle a directed wave hop, by kind.",
        );
        for (index, kind) in DIRECTED.iter().enumerate() {
            let labels = [("kind", kind_name(*kind))];
            out.histogram(
                "starlane_wave_duration_seconds",
                &labels,
                &self.timer(|s| &s.wave_time[index]),
            );
        }
        out.counters(
            "starlane_waves_not_started_total",
            "Directed waves not started: their queue was full, or their caller had given up.",
            "reason",
            NotStarted::ALL.map(|r| (r.name(), self.total(|s| &s.not_started[r as usize]))),
        );

        out.family(
            "starlane_http_requests_total",
            "counter",
            "HTTP requests the gateway answered, by status.",
        );
        for (slot, status) in statuses() {
            let count = self.total(|s| &s.http[slot]);
            if count > 0 {
                let labels = [("status", status.as_str())];
                out.sample("starlane_http_requests_total", &labels, count);
            }
        }
        out.family(
            "starlane_http_request_duration_seconds",
            "histogram",
            "How long the gateway took to answer a request (a stream: to start it).",
        );
        out.histogram(
            "starlane_http_request_duration_seconds",
            &[],
            &self.timer(|s| &s.http_time),
        );

        out.counters(
            "starlane_guest_calls_total",
            "Calls into wasm guests, by outcome.",
            "outcome",
            GUEST_OUTCOMES.map(|(o, name)| (name, self.total(|s| &s.guest_calls[outcome_slot(o)]))),
        );
        out.family(
            "starlane_guest_fuel_total",
            "counter",
            "Fuel wasm guests burnt in their calls.",
        );
        out.sample(
            "starlane_guest_fuel_total",
            &[],
            self.total(|s| &s.guest_fuel),
        );
        out.family(
            "starlane_guest_call_duration_seconds",
            "histogram",
            "How long calls into wasm guests took.",
        );
        out.histogram(
            "starlane_guest_call_duration_seconds",
            &[],
            &self.timer(|s| &s.guest_time),
        );

        out.family(
            "starlane_registry_operations_total",
            "counter",
            "Registry calls, by operation and by how they were answered.",
        );
        for op in RegistryOp::ALL {
            for outcome in RegistryOutcome::ALL {
                let count = self.total(|s| &s.registry[*op as usize][outcome as usize]);
                if count > 0 {
                    let labels = [("op", op.name()), ("outcome", outcome.name())];
                    out.sample("starlane_registry_operations_total", &labels, count);
                }
            }
        }

        out.counters(
            "starlane_channel_deliveries_total",
            "Deliveries of channels' publications to subscribers on this machine, by outcome.",
            "outcome",
            ChannelDelivery::ALL.map(|o| (o.name(), self.total(|s| &s.deliveries[o as usize]))),
        );

        out.family(
            "starlane_machines_alive",
            "gauge",
            "Machines of the cosmos holding a lease (1 for a machine alone).",
        );
        out.sample(
            "starlane_machines_alive",
            &[],
            self.machines_alive.load(Ordering::Relaxed),
        );
        out.text
    }

    /// One histogram's buckets and sum, added over the stripes.
    fn timer(&self, timer: impl Fn(&Stripe) -> &Timer) -> Observed {
        let mut buckets = [0u64; BOUNDS.len() + 1];
        for (index, bucket) in buckets.iter_mut().enumerate() {
            *bucket = self.total(|s| &timer(s).buckets[index]);
        }
        Observed {
            buckets,
            nanos: self.total(|s| &timer(s).nanos),
        }
    }
}

/// A histogram as read: the count in each bucket (not cumulative) and the sum.
struct Observed {
    buckets: [u64; BOUNDS.len() + 1],
    nanos: u64,
}

/// The label value of a directed kind.
fn kind_name(kind: WaveKind) -> &'static str {
    match kind {
        WaveKind::Ping => "ping",
        WaveKind::Signal => "signal",
        WaveKind::Ripple => "ripple",
        WaveKind::Pong => "pong",
        WaveKind::Echo => "echo",
    }
}

/// Every status cell with its label value.
fn statuses() -> impl Iterator<Item = (usize, String)> {
    (0..STATUSES).map(|slot| match u16::try_from(slot + 100) {
        Ok(code) if slot < STATUSES - 1 => (slot, code.to_string()),
        _ => (slot, "other".to_string()),
    })
}

/// Text in the exposition format, written family by family.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    /// The `# HELP` and `# TYPE` lines that start a family.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// A counter family with one label over a fixed set of values, each written (at zero
    /// too): `(label value, count)`.
    fn counters<const N: usize>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        counts: [(&str, u64); N],
    ) {
        self.family(name, "counter", help);
        for (value, count) in counts {
            self.sample(name, &[(label, value)], count);
        }
    }

    /// One sample: `name{label="value",…} value`.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (index, (label, value)) in labels.iter().enumerate() {
                if index > 0 {
                    self.text.push(',');
                }
                self.text.push_str(label);
                self.text.push_str("=\"");
                escape_label_into(value, &mut self.text);
                self.text.push('"');
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A histogram's samples: cumulative `_bucket`s (`le` in seconds, then `+Inf`), `_sum` in
    /// seconds and `_count`.
    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], observed: &Observed) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (index, count) in observed.buckets.iter().enumerate() {
            cumulative = cumulative.wrapping_add(*count);
            let le = match BOUNDS.get(index) {
                Some(nanos) => seconds(*nanos).to_string(),
                None => "+Inf".to_string(),
            };
            let mut all = labels.to_vec();
            all.push(("le", &le));
            self.sample(&bucket, &all, cumulative);
        }
        self.sample(&format!("{name}_sum"), labels, seconds(observed.nanos));
        self.sample(&format!("{name}_count"), labels, cumulative);
    }
}

/// Nanoseconds as seconds.
fn seconds(nanos: u64) -> f64 {
    Duration::from_nanos(nanos).as_secs_f64()
}

/// `value` as a label value inside double quotes: `\`, `"` and line feeds escaped.
fn escape_label_into(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// `help` as the text of a `# HELP` line: `\` and line feeds escaped.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample whose name and labels are exactly `series` (`name{a="b"}`).
    fn value(text: &str, series: &str) -> Option<String> {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                (name == series).then(|| value.to_string())
            })
    }

    #[test]
    fn a_fresh_machine_exposes_every_family_once_with_help_and_type() {
        let text = Metrics::new().render();
        for (family, kind) in [
            ("starlane_waves_total", "counter"),
            ("starlane_wave_duration_seconds", "histogram"),
            ("starlane_waves_not_started_total", "counter"),
            ("starlane_http_requests_total", "counter"),
            ("starlane_http_request_duration_seconds", "histogram"),
            ("starlane_guest_calls_total", "counter"),
            ("starlane_guest_fuel_total", "counter"),
            ("starlane_guest_call_duration_seconds", "histogram"),
            ("starlane_registry_operations_total", "counter"),
            ("starlane_channel_deliveries_total", "counter"),
            ("starlane_machines_alive", "gauge"),
        ] {
            assert_eq!(
                text.matches(&format!("# TYPE {family} {kind}\n")).count(),
                1,
                "{family} in\n{text}"
            );
            assert_eq!(text.matches(&format!("# HELP {family} ")).count(), 1);
        }
        // Fixed label sets are there at zero; open ones (statuses, operations) only once seen.
        assert_eq!(
            value(
                &text,
                r#"starlane_guest_calls_total{outcome="not_started"}"#
            )
            .as_deref(),
            Some("0")
        );
        assert_eq!(
            value(
                &text,
                r#"starlane_waves_not_started_total{reason="expired"}"#
            )
            .as_deref(),
            Some("0")
        );
        assert_eq!(
            value(
                &text,
                r#"starlane_wave_duration_seconds_count{kind="ripple"}"#
            )
            .as_deref(),
            Some("0")
        );
        assert!(!text.contains("starlane_waves_total{"), "{text}");
        assert!(!text.contains("starlane_registry_operations_total{"));
        // Every line is a comment or `series value`, and ends with a line feed.
        assert!(text.ends_with('\n'));
        for line in text.lines() {
            assert!(
                line.starts_with("# HELP ")
                    || line.starts_with("# TYPE ")
                    || line.split(' ').count() == 2,
                "{line}"
            );
        }
    }

    #[test]
    fn waves_are_counted_by_kind_and_status() {
        let metrics = Metrics::new();
        for _ in 0..3 {
            metrics.wave(WaveKind::Ping, StatusCode::OK, Duration::from_micros(4));
        }
        metrics.wave(
            WaveKind::Ping,
            StatusCode::NOT_FOUND,
            Duration::from_micros(4),
        );
        metrics.wave(WaveKind::Signal, StatusCode::OK, Duration::from_micros(4));
        metrics.wave(
            WaveKind::Ripple,
            StatusCode::FORBIDDEN,
            Duration::from_micros(4),
        );
        // Reflections are not hops.
        metrics.wave(WaveKind::Pong, StatusCode::OK, Duration::from_micros(4));
        let text = metrics.render();
        for (series, count) in [
            (r#"starlane_waves_total{kind="ping",status="200"}"#, "3"),
            (r#"starlane_waves_total{kind="ping",status="404"}"#, "1"),
            (r#"starlane_waves_total{kind="signal",status="200"}"#, "1"),
            (r#"starlane_waves_total{kind="ripple",status="403"}"#, "1"),
            (r#"starlane_wave_duration_seconds_count{kind="ping"}"#, "4"),
            (
                r#"starlane_wave_duration_seconds_count{kind="signal"}"#,
                "1",
            ),
        ] {
            assert_eq!(
                value(&text, series).as_deref(),
                Some(count),
                "{series}\n{text}"
            );
        }
        assert!(!text.contains("pong"), "{text}");
        assert_eq!(metrics.waves(WaveKind::Ping, StatusCode::OK), 3);
    }

    #[test]
    fn histogram_buckets_are_cumulative_with_inclusive_bounds() {
        let metrics = Metrics::new();
        for micros in [1, 5, 6, 10, 2_000] {
            metrics.http_request(200, Duration::from_micros(micros));
        }
        // Above the last bound (30 s): only +Inf.
        metrics.http_request(504, Duration::from_secs(31));
        let text = metrics.render();
        let bucket = |le: &str| {
            value(
                &text,
                &format!(r#"starlane_http_request_duration_seconds_bucket{{le="{le}"}}"#),
            )
        };
        assert_eq!(bucket("0.000005").as_deref(), Some("2"), "{text}"); // 1 µs, 5 µs
        assert_eq!(bucket("0.00001").as_deref(), Some("4")); // + 6 µs, 10 µs
        assert_eq!(bucket("0.001").as_deref(), Some("4"));
        assert_eq!(bucket("0.0025").as_deref(), Some("5")); // + 2 ms
        assert_eq!(bucket("30").as_deref(), Some("5"));
        assert_eq!(bucket("+Inf").as_deref(), Some("6"));
        assert_eq!(
            value(&text, "starlane_http_request_duration_seconds_count").as_deref(),
            Some("6")
        );
        let sum: f64 = value(&text, "starlane_http_request_duration_seconds_sum")
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 31.002_022).abs() < 1e-9, "{sum}");
        assert_eq!(
            value(&text, r#"starlane_http_requests_total{status="200"}"#).as_deref(),
            Some("5")
        );
        assert_eq!(
            value(&text, r#"starlane_http_requests_total{status="504"}"#).as_deref(),
            Some("1")
        );
        // The buckets come in increasing order of `le`, +Inf last.
        let les: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("starlane_http_request_duration_seconds_bucket"))
            .map(|l| l.split('"').nth(1).unwrap())
            .collect();
        assert_eq!(les.len(), BOUNDS.len() + 1);
        assert_eq!(les.last(), Some(&"+Inf"));
        let bounds: Vec<f64> = les[..les.len() - 1]
            .iter()
            .map(|le| le.parse().unwrap())
            .collect();
        assert!(bounds.windows(2).all(|pair| pair[0] < pair[1]), "{les:?}");
    }

    #[test]
    fn statuses_outside_http_s_range_are_other() {
        let metrics = Metrics::new();
        metrics.http_request(999, Duration::ZERO);
        metrics.http_request(99, Duration::ZERO);
        let text = metrics.render();
        assert_eq!(
            value(&text, r#"starlane_http_requests_total{status="other"}"#).as_deref(),
            Some("2"),
            "{text}"
        );
    }

    #[test]
    fn guests_registry_channels_and_machines() {
        let metrics = Metrics::new();
        metrics.guest_call(CallOutcome::Ok, 1_000, Duration::from_micros(20));
        metrics.guest_call(CallOutcome::Fuel, 500, Duration::from_millis(3));
        metrics.guest_call(CallOutcome::Busy, 0, Duration::ZERO);
        metrics.not_started(NotStarted::Full);
        metrics.not_started(NotStarted::Full);
        metrics.not_started(NotStarted::Expired);
        metrics.registry_operation(RegistryOp::Record, RegistryOutcome::Cached);
        metrics.registry_operation(RegistryOp::Record, RegistryOutcome::Cached);
        metrics.registry_operation(RegistryOp::Register, RegistryOutcome::Refused);
        metrics.channel_delivery(ChannelDelivery::Delivered);
        metrics.channel_delivery(ChannelDelivery::Dropped);
        metrics.channel_delivery(ChannelDelivery::Delivered);
        metrics.set_machines_alive(3);
        let text = metrics.render();
        for (series, count) in [
            (r#"starlane_guest_calls_total{outcome="ok"}"#, "1"),
            (r#"starlane_guest_calls_total{outcome="fuel"}"#, "1"),
            (r#"starlane_guest_calls_total{outcome="busy"}"#, "1"),
            (r#"starlane_guest_calls_total{outcome="trap"}"#, "0"),
            ("starlane_guest_fuel_total", "1500"),
            ("starlane_guest_call_duration_seconds_count", "3"),
            (
                r#"starlane_guest_call_duration_seconds_bucket{le="0.000025"}"#,
                "2",
            ),
            (r#"starlane_waves_not_started_total{reason="full"}"#, "2"),
            (r#"starlane_waves_not_started_total{reason="expired"}"#, "1"),
            (
                r#"starlane_registry_operations_total{op="record",outcome="cached"}"#,
                "2",
            ),
            (
                r#"starlane_registry_operations_total{op="register",outcome="refused"}"#,
                "1",
            ),
            (
                r#"starlane_channel_deliveries_total{outcome="delivered"}"#,
                "2",
            ),
            (
                r#"starlane_channel_deliveries_total{outcome="dropped"}"#,
                "1",
            ),
            ("starlane_machines_alive", "3"),
        ] {
            assert_eq!(
                value(&text, series).as_deref(),
                Some(count),
                "{series}\n{text}"
            );
        }
        assert_eq!(metrics.channel_deliveries(ChannelDelivery::Delivered), 2);
        assert_eq!(metrics.machines_alive(), 3);
        // Every registry operation has a distinct label.
        let names: std::collections::HashSet<&str> =
            RegistryOp::ALL.iter().map(|op| op.name()).collect();
        assert_eq!(names.len(), RegistryOp::ALL.len());
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut out = Exposition::default();
        out.family("x_total", "counter", "a \\ back\nslash");
        out.sample(
            "x_total",
            &[("path", "C:\\dir \"quoted\"\nnext"), ("plain", "ok")],
            1,
        );
        assert_eq!(
            out.text,
            "# HELP x_total a \\\\ back\\nslash\n# TYPE x_total counter\n\
             x_total{path=\"C:\\\\dir \\\"quoted\\\"\\nnext\",plain=\"ok\"} 1\n"
        );
    }

    #[test]
    fn threads_recording_at_once_lose_nothing() {
        let metrics = std::sync::Arc::new(Metrics::new());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let metrics = metrics.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        metrics.wave(WaveKind::Ping, StatusCode::OK, Duration::from_micros(3));
                        metrics.registry_operation(RegistryOp::Location, RegistryOutcome::Cached);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let text = metrics.render();
        assert_eq!(metrics.waves(WaveKind::Ping, StatusCode::OK), 80_000);
        assert_eq!(
            value(
                &text,
                r#"starlane_wave_duration_seconds_bucket{kind="ping",le="0.000005"}"#
            )
            .as_deref(),
            Some("80000")
        );
        assert_eq!(
            value(
                &text,
                r#"starlane_registry_operations_total{op="location",outcome="cached"}"#
            )
            .as_deref(),
            Some("80000")
        );
    }
}
