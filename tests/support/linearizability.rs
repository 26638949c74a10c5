//! A linearizability checker for recorded histories of a guichet server,
//! against the sequential reference model in `model.rs`.
//!
//! A history (see `history.rs`) is *linearizable* if every completed call
//! can be given a point in time between its invocation and its return such
//! that applying the calls to the model one at a time, in the order of those
//! points, yields exactly the replies the clients saw; a pending call (no
//! reply) may be given such a point after its invocation, or none at all.
//!
//! # How
//!
//! 1. **Server-assigned ids are checked on their own, then made opaque.**
//!    The server numbers its ids `(1 << 63) | n` in one sequence across all
//!    events. [`check_server_ids`] checks that sequence: every OK RESERVE
//!    without an id got a distinct server id; ids follow real time (a call
//!    that returned before another began got the smaller id); and no more
//!    ids were skipped than there are pending RESERVEs that could have taken
//!    them. The ledger check then treats each server id as an opaque name:
//!    the `k`th RESERVE without an id is given to the model as a RESERVE with
//!    a fresh client-chosen id `f_k` (from a range the history does not
//!    use), and every reply or CANCEL that names the server id that RESERVE
//!    got is rewritten to name `f_k`. The model treats a fresh client id
//!    exactly like "no id" (lookup finds nothing, then the same checks in
//!    the same order), so this changes only the name of the booking.
//!
//!    Not checked: that one order explains the ids and the seats at once.
//!    The ids are checked against real time, the seats event by event; an
//!    id order that contradicts only the orders the search chose for two
//!    events' overlapping calls goes unseen, as checking both together
//!    would couple every event. A CANCEL of a server id that no reply
//!    issued must answer UNKNOWN_BOOKING; while RESERVEs without an id are
//!    pending, one of them may have created it, and the history is refused
//!    as [`Failure::Unsupported`].
//!
//! 2. **The history is split into independent parts** (P-compositionality).
//!    Every call touches one event's seats and at most one booking id: a
//!    QUERY or RESERVE its event, a RESERVE with an id also that id, a
//!    CANCEL its id. Two calls are in the same part if they share an event
//!    or a booking id, transitively (union-find). A booking id belongs to
//!    exactly one part, and so does the event of every booking that id can
//!    name, so calls of different parts read and write disjoint state: they
//!    commute. By the locality of linearizability (Herlihy & Wing 1990) the
//!    history is linearizable iff each part is, checked on its own from a
//!    fresh model. In practice a part is one event with its bookings; a
//!    client id reused on two events merges them; a CANCEL of an id no
//!    RESERVE named forms a part of its own (it must answer
//!    UNKNOWN_BOOKING).
//!
//!    Two things couple every event, and are handled before splitting:
//!    server ids (step 1), and LEDGER_FULL, which depends on the number of
//!    bookings across all events. If the history holds at least
//!    `max_bookings` RESERVEs, no split is made (one part, still exact);
//!    with fewer, no ledger can fill up, in any order, so LEDGER_FULL is
//!    unreachable and the split is exact.
//!
//! 3. **Each part is searched with Wing & Gong's algorithm as improved by
//!    Lowe** (Lowe 2017, "Testing for linearizability"): the calls'
//!    invocations and returns sorted by time in a linked list; repeatedly
//!    linearize some call whose invocation precedes the earliest remaining
//!    return and whose model reply matches, or backtrack. Explored
//!    configurations (the set of linearized completed calls, as a bitset,
//!    and the model's state) are memoised, so each is explored once.
//!
//!    A completed call that changes nothing (a QUERY, a SOLD_OUT, a
//!    retry...) and whose reply fits the current state is linearized at
//!    once, with no alternative tried: if any order completes the history,
//!    one with that call first does too — it is a candidate, so no call
//!    left had returned before it was invoked, and moving it forward
//!    changes no state any other call sees. Without this, a wide window of
//!    concurrent reads makes the search try their subsets.
//!
//!    Pending calls are never removed from the list: at any point after its
//!    invocation one may be applied, if that changes the model's state. That
//!    is enough because every operation of the ledger is idempotent in its
//!    effect — a second RESERVE with the same id or a second CANCEL changes
//!    nothing — so applying a pending call twice is the same as applying it
//!    once, and applying it where it changes nothing is the same as not
//!    applying it.
//!
//! 4. **Expiry is an event** (with [`Checker::hold_ms`]). A hold expires
//!    `hold_ms` after the server applied it, somewhere between the HOLD's
//!    invocation and return, so its expiry is added to the history as a
//!    call of its own over `[invoke, return] + hold_ms` (widened by
//!    [`EXPIRY_SLACK_NS`]: the server counts whole milliseconds), in the
//!    HOLD's part. Linearized, it expires the hold if it is still live
//!    ([`Model::expire`]; a no-op once confirmed or cancelled). So a hold's
//!    seats are back for every call invoked after its window, and still
//!    taken for every call that returned before it. A completed HOLD's
//!    expiry must be linearized (after the hold exists); a pending HOLD's
//!    is pending too. Each id must be held by one HOLD call only
//!    ([`Failure::Unsupported`] otherwise): with two, which one made the
//!    hold, and so when it expires, is unknown. Without `hold_ms` holds
//!    never expire.
//!
//! The model state is memoised as a 64-bit fingerprint of its set of
//! bookings (order-independent, since the order in which two bookings were
//! created does not affect any later reply). A fingerprint collision can
//! only prune a path the search would otherwise have tried: it could make
//! the checker report a violation that is not one (with odds around
//! `states² / 2⁶⁴`), never accept a history that is not linearizable.
//!
//! # Classic calls
//!
//! The classic protocol's calls ([`History::classic`]) are checked with the
//! others. A reservation is a RESERVE with a server-assigned id whose text
//! shows only part of the reply (the seats of an OK, the remaining seats of
//! a refusal) and never the id: it takes a stand-in id like any RESERVE
//! without one, counts as a possible taker of the ids the history does not
//! show, and its text is compared with what it says. A listing reads every
//! event in one step: it joins all events into one part, and fits where
//! the model's remaining seats are exactly the listing's. A pending
//! listing changes nothing, so it is never applied.
//!
//! # Preconditions
//!
//! The history records every call the server received since it started
//! with the events `capacities`, and nothing else changed its ledger.
//! Replies are compared field by field except `request_id`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use guichet::{BookingId, ClientBookingId, Operation, Reply, RequestId, Status};

use super::history::{ClassicCall, ClassicSeen, History, Op, Return};
use super::model::Model;

/// Bit 63: set on ids the server picks.
const SERVER_BIT: u64 = 1 << 63;
/// First of the fresh client ids that stand for server-assigned ones.
const FRESH_BASE: u64 = 1 << 62;
/// Default bound on the configurations a search may explore per part.
pub const DEFAULT_MAX_STATES: u64 = 2_000_000;

/// What a successful check saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Calls in the history.
    pub ops: usize,
    /// Calls without a reply.
    pub pending: usize,
    /// Independent parts checked.
    pub parts: usize,
    /// Calls in the largest part.
    pub largest_part: usize,
    /// Configurations explored, all parts together.
    pub states: u64,
    /// Server-assigned ids issued and checked.
    pub server_ids: usize,
    /// Time spent checking.
    pub elapsed: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} calls ({} pending) linearizable: {} parts (largest {} calls), {} states \
             explored, {} server ids in order, checked in {:.1} ms",
            self.ops,
            self.pending,
            self.parts,
            self.largest_part,
            self.states,
            self.server_ids,
            self.elapsed.as_secs_f64() * 1e3
        )
    }
}

/// Why a history failed the check.
#[derive(Clone, Debug)]
pub enum Failure {
    /// No order of the calls explains the replies.
    NotLinearizable(Box<Violation>),
    /// The server-assigned ids contradict one sequence issued in real time.
    ServerIds(String),
    /// The history is outside what this checker decides (see the module
    /// documentation); it says nothing about the server.
    Unsupported(String),
    /// The search gave up after exploring this many configurations of one
    /// part: neither verdict is known.
    Inconclusive {
        /// The part's events.
        events: Vec<u32>,
        /// Configurations explored.
        states: u64,
    },
}

/// A call as a violation report shows it.
#[derive(Clone, Debug)]
pub struct Shown {
    /// Its index in the history.
    pub index: usize,
    /// The call.
    pub op: Op,
    /// What the model answers to it at the point the search reached.
    pub model_says: Option<Reply>,
}

/// The deepest point the search reached in a part that has no linearization.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The part's events.
    pub events: Vec<u32>,
    /// Calls in the part.
    pub part_ops: usize,
    /// Completed calls in the longest linearizable prefix found.
    pub linearized: usize,
    /// The last calls of that prefix, in linearization order.
    pub prefix_tail: Vec<Shown>,
    /// After that prefix: the completed call that returned first among those
    /// not yet linearized, which must therefore come next or after one of
    /// the `candidates`, none of which the model accepts.
    pub blocked: Shown,
    /// Calls invoked before `blocked` returned and not yet linearized, with
    /// the model's answer to each after the prefix.
    pub candidates: Vec<Shown>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NotLinearizable(v) => write!(f, "{v}"),
            Failure::ServerIds(why) => write!(f, "server-assigned ids: {why}"),
            Failure::Unsupported(why) => write!(f, "history not supported: {why}"),
            Failure::Inconclusive { events, states } => write!(
                f,
                "inconclusive: gave up on events {events:?} after {states} states"
            ),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "NOT LINEARIZABLE: events {:?} ({} calls): at best {} completed calls \
             linearize; the last of them:",
            self.events, self.part_ops, self.linearized
        )?;
        for s in &self.prefix_tail {
            writeln!(f, "    {}", show(s))?;
        }
        writeln!(f, "  then this call must be linearized, or one before it:")?;
        writeln!(f, "    {}", show(&self.blocked))?;
        writeln!(f, "  and no candidate fits:")?;
        for s in &self.candidates {
            writeln!(f, "    {}", show(s))?;
        }
        write!(
            f,
            "  (model answers name server-assigned bookings by stand-in ids {FRESH_BASE:#x}+k)"
        )
    }
}

fn show(s: &Shown) -> String {
    let op = &s.op;
    let ret = match op.ret {
        Return::Replied { at_ns, reply } => format!("-> {} at {} ns", brief(&reply), at_ns),
        Return::Pending => "-> pending".to_owned(),
    };
    let model = s
        .model_says
        .map(|r| format!(" [model: {}]", brief(&r)))
        .unwrap_or_default();
    format!(
        "#{} thread {} {} invoked at {} ns {ret}{model}",
        s.index,
        op.thread,
        call_brief(&op.operation),
        op.invoke_ns
    )
}

fn call_brief(operation: &Operation) -> String {
    match *operation {
        Operation::Query { event } => format!("QUERY event={}", event.get()),
        Operation::Reserve {
            event,
            quantity,
            booking,
        } => format!(
            "RESERVE event={} qty={quantity} id={}",
            event.get(),
            booking.map_or("server".to_owned(), |b| format!("{:#x}", b.get()))
        ),
        Operation::Cancel { booking } => format!("CANCEL id={booking}"),
        Operation::Hold {
            event,
            quantity,
            booking,
        } => format!(
            "HOLD event={} qty={quantity} id={}",
            event.get(),
            booking.map_or("server".to_owned(), |b| format!("{:#x}", b.get()))
        ),
        Operation::Confirm { booking } => format!("CONFIRM id={booking}"),
    }
}

fn brief(r: &Reply) -> String {
    format!(
        "{} booking={:#x} event={} qty={} remaining={}/{}",
        r.status.name(),
        r.booking.map_or(0, BookingId::get),
        r.event.map_or(0, |e| e.get()),
        r.quantity,
        r.remaining,
        r.capacity
    )
}

/// Checks histories of a server configured with these events.
#[derive(Clone, Debug)]
pub struct Checker {
    capacities: Vec<u32>,
    max_bookings: usize,
    max_states: u64,
    /// The server's hold duration, in history nanoseconds; `None`: holds
    /// never expire within the history.
    hold_ns: Option<u64>,
}

/// Slack on each side of an expiry's window: the server's clock counts
/// whole milliseconds, the history's nanoseconds.
const EXPIRY_SLACK_NS: u64 = 2_000_000;

impl Checker {
    /// A checker for a server whose events have these capacities (event 1
    /// first) and whose ledger holds `max_bookings`.
    pub fn new(capacities: &[u32], max_bookings: usize) -> Self {
        Self {
            capacities: capacities.to_vec(),
            max_bookings,
            max_states: DEFAULT_MAX_STATES,
            hold_ns: None,
        }
    }

    /// Holds expire `hold_ms` after the server applied them: each HOLD's
    /// expiry becomes an event of the history (module docs, expiry).
    pub fn hold_ms(mut self, hold_ms: u64) -> Self {
        self.hold_ns = Some(hold_ms * 1_000_000);
        self
    }

    /// Gives up (inconclusive) after exploring this many configurations of
    /// one part.
    pub fn max_states(mut self, max_states: u64) -> Self {
        self.max_states = max_states;
        self
    }

    /// Checks `history`; see the module documentation.
    ///
    /// # Errors
    ///
    /// The first [`Failure`] found.
    pub fn check(&self, history: &History) -> Result<Report, Failure> {
        let start = Instant::now();
        let server_ids = check_server_ids(history)?;
        let mut prepared = prepare(history)?;
        if let Some(hold_ns) = self.hold_ns {
            add_expiries(&mut prepared, hold_ns)?;
        }
        let parts = self.partition(&prepared);
        let mut states = 0;
        for part in &parts {
            match self.search(history, &prepared, part, None)? {
                Verdict::Linearizable { states: n } => states += n,
                Verdict::Stuck { deepest } => {
                    // The search is deterministic: run it again to describe
                    // the deepest point, which is too costly to do for
                    // every point that might turn out to be the deepest.
                    self.search(history, &prepared, part, Some(deepest))?;
                    unreachable!("the second search stops where the first got deepest");
                }
            }
        }
        Ok(Report {
            ops: history.len() + history.classic.len(),
            pending: history.pending(),
            parts: parts.len(),
            largest_part: parts.iter().map(Vec::len).max().unwrap_or(0),
            states,
            server_ids,
            elapsed: start.elapsed(),
        })
    }

    /// The independent parts, as lists of indices into `prepared`.
    fn partition(&self, prepared: &[Prepared]) -> Vec<Vec<usize>> {
        let reserves = prepared
            .iter()
            .filter(|p| {
                matches!(
                    p.operation,
                    Operation::Reserve { .. } | Operation::Hold { .. }
                )
            })
            .count();
        if reserves >= self.max_bookings {
            // LEDGER_FULL is reachable: it couples every event.
            return vec![(0..prepared.len()).collect()];
        }
        let mut sets = UnionFind::default();
        let roots: Vec<usize> = prepared
            .iter()
            .map(|p| {
                let (first, second) = nodes(&p.operation);
                let a = sets.node(first);
                if let Some(second) = second {
                    let b = sets.node(second);
                    sets.union(a, b);
                }
                a
            })
            .collect();
        // A classic listing reads every event: one part holds them all.
        if prepared
            .iter()
            .any(|p| p.classic == Some(ClassicCall::List))
        {
            let first = sets.node(Node::Event(1));
            for event in 2..=self.capacities.len() as u32 {
                let other = sets.node(Node::Event(event));
                sets.union(first, other);
            }
        }
        let mut parts: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, node) in roots.into_iter().enumerate() {
            parts.entry(sets.find(node)).or_default().push(i);
        }
        let mut parts: Vec<Vec<usize>> = parts.into_values().collect();
        parts.sort();
        parts
    }

    /// Wing–Gong–Lowe search of one part: the configurations it explored,
    /// or how many completed calls it linearized at best. With `explain_at`,
    /// it stops with [`Failure::NotLinearizable`] the first time it is
    /// stuck with that many linearized.
    ///
    /// At each configuration the candidates are tried in this order: the
    /// completed calls invoked before the earliest return not yet passed,
    /// in time order, then the pending calls invoked before it. Trying
    /// pending calls last applies each one lazily, where some reply needs
    /// it: a pending call applied too early is found out only when a reply
    /// contradicts it, possibly much later, and every configuration in
    /// between is explored again before the search gets back to it.
    fn search(
        &self,
        history: &History,
        prepared: &[Prepared],
        part: &[usize],
        explain_at: Option<usize>,
    ) -> Result<Verdict, Failure> {
        let ops: Vec<&Prepared> = part.iter().map(|&i| &prepared[i]).collect();
        let mut list = EntryList::new(&ops);
        let completed = list.completed;
        let mut linearized = Bitset::new(completed);
        let mut left = completed;
        let mut model = Model::new(&self.capacities, self.max_bookings);
        let mut seen: HashSet<(Vec<u64>, u64)> = HashSet::new();
        seen.insert((linearized.words.clone(), fingerprint(&model)));
        let mut stack: Vec<Frame> = Vec::new();
        let mut states = 0u64;
        let mut deepest = 0;
        let mut cursor = Cursor::Completed(list.first());
        loop {
            if left == 0 {
                return Ok(Verdict::Linearizable { states });
            }
            // The candidate under the cursor, and where to go if it fails.
            let (i, skip) = match cursor {
                Cursor::Completed(entry) => match list.kind(entry) {
                    Some(Kind::Call(i)) => (i, Cursor::Completed(list.next(entry))),
                    Some(Kind::Return(blocked)) => {
                        cursor = Cursor::Pending(0, blocked);
                        continue;
                    }
                    None => unreachable!("a return is always met before the list ends"),
                },
                Cursor::Pending(k, blocked) => {
                    let bound = ops[blocked].return_ns.unwrap_or(u64::MAX);
                    match list.pending.get(k) {
                        Some(&i) if ops[i].invoke_ns <= bound => {
                            (i, Cursor::Pending(k + 1, blocked))
                        }
                        _ => {
                            // Nothing can go before `blocked` returns: undo
                            // the last choice.
                            let depth = completed - left;
                            if explain_at == Some(depth) {
                                return Err(Failure::NotLinearizable(Box::new(self.explain(
                                    history, &ops, &list, &stack, &model, depth, blocked,
                                ))));
                            }
                            deepest = deepest.max(depth);
                            // A forced choice has no alternative: undo the
                            // one before it too.
                            loop {
                                let Some(frame) = stack.pop() else {
                                    return Ok(Verdict::Stuck { deepest });
                                };
                                model = frame.before;
                                if let Some(slot) = list.completed_slot[frame.op] {
                                    list.unlift(frame.op);
                                    linearized.clear(slot);
                                    left += 1;
                                }
                                if !frame.forced {
                                    cursor = frame.resume;
                                    break;
                                }
                            }
                            continue;
                        }
                    }
                }
            };
            let op = ops[i];
            let mut next = model.clone();
            let (fits, changed) = op.step(&mut next);
            let slot = list.completed_slot[i];
            if fits {
                if let Some(slot) = slot {
                    linearized.set(slot);
                }
                if seen.insert((linearized.words.clone(), fingerprint(&next))) {
                    states += 1;
                    if states > self.max_states {
                        return Err(Failure::Inconclusive {
                            events: part_events(&ops),
                            states,
                        });
                    }
                    stack.push(Frame {
                        op: i,
                        before: std::mem::replace(&mut model, next),
                        resume: skip,
                        // A completed call that changes nothing and fits
                        // now can go now (module docs): no need to try the
                        // other candidates instead.
                        forced: slot.is_some() && !changed,
                    });
                    if slot.is_some() {
                        list.lift(i);
                        left -= 1;
                    }
                    cursor = Cursor::Completed(list.first());
                    continue;
                }
                if let Some(slot) = slot {
                    linearized.clear(slot);
                }
            }
            cursor = skip;
        }
    }

    /// Describes the configuration where the search is stuck at `blocked`'s
    /// return.
    #[allow(clippy::too_many_arguments)]
    fn explain(
        &self,
        history: &History,
        ops: &[&Prepared],
        list: &EntryList,
        stack: &[Frame],
        model: &Model,
        depth: usize,
        blocked: usize,
    ) -> Violation {
        let shown = |i: usize, model_says| Shown {
            index: ops[i].index,
            op: shown_op(history, ops[i]),
            model_says,
        };
        let answer = |i: usize| (!ops[i].expire).then(|| model.clone().apply(&ops[i].operation).0);
        let tail_from = stack.len().saturating_sub(8);
        let prefix_tail = stack[tail_from..]
            .iter()
            .map(|f| {
                let says =
                    (!ops[f.op].expire).then(|| f.before.clone().apply(&ops[f.op].operation).0);
                shown(f.op, says)
            })
            .collect();
        let mut candidates = Vec::new();
        let mut entry = list.first();
        while let Some(Kind::Call(i)) = list.kind(entry) {
            candidates.push(shown(i, answer(i)));
            entry = list.next(entry);
        }
        let bound = ops[blocked].return_ns.unwrap_or(u64::MAX);
        for &i in list
            .pending
            .iter()
            .take_while(|&&i| ops[i].invoke_ns <= bound)
        {
            candidates.push(shown(i, answer(i)));
        }
        Violation {
            events: part_events(ops),
            part_ops: ops.len(),
            linearized: depth,
            prefix_tail,
            blocked: shown(blocked, answer(blocked)),
            candidates,
        }
    }
}

/// A call as the model is given it: server ids replaced by stand-ins.
#[derive(Clone, Debug)]
struct Prepared {
    /// Index in the history (`history.ops.len() + k` for classic call `k`).
    index: usize,
    /// For a classic listing, a QUERY of event 1 that is never applied.
    operation: Operation,
    /// The reply with `request_id` 0 and stand-in ids; `None` if pending.
    expected: Option<Reply>,
    /// A classic call, and what its text said (`None` if pending).
    classic: Option<ClassicCall>,
    seen: Option<ClassicSeen>,
    invoke_ns: u64,
    return_ns: Option<u64>,
    /// An expiry, not a call: `operation` is a CONFIRM naming the hold
    /// (so it joins the hold's part), `index` the HOLD's, and applying it
    /// expires the hold if it is live ([`Model::expire`]).
    expire: bool,
}

/// Adds each hold's expiry as an event (module docs, expiry): the HOLD was
/// applied somewhere between its invocation and its return, so its expiry
/// falls between those plus `hold_ns` (with [`EXPIRY_SLACK_NS`] each side).
/// The expiry of a completed HOLD must be linearized before its window
/// ends, after the hold exists (it is a no-op if the hold was confirmed or
/// cancelled first); a pending HOLD's is pending too: applied only where it
/// expires something.
///
/// # Errors
///
/// [`Failure::Unsupported`] if two HOLD calls name one id: which of them
/// made the hold, and so when it expires, is then unknown.
fn add_expiries(prepared: &mut Vec<Prepared>, hold_ns: u64) -> Result<(), Failure> {
    let mut seen = HashSet::new();
    let mut expiries = Vec::new();
    for p in prepared.iter() {
        let Operation::Hold {
            booking: Some(id), ..
        } = p.operation
        else {
            continue;
        };
        if !seen.insert(id.get()) {
            return Err(Failure::Unsupported(format!(
                "call #{} holds id {:#x} again: expiries need one HOLD per id",
                p.index,
                id.get()
            )));
        }
        if p.expected.is_some_and(|r| r.status != Status::Ok) {
            continue;
        }
        expiries.push(Prepared {
            index: p.index,
            operation: Operation::Confirm {
                booking: id.booking_id(),
            },
            expected: p.expected,
            classic: None,
            seen: None,
            invoke_ns: (p.invoke_ns + hold_ns).saturating_sub(EXPIRY_SLACK_NS),
            return_ns: p.return_ns.map(|r| r + hold_ns + EXPIRY_SLACK_NS),
            expire: true,
        });
    }
    prepared.extend(expiries);
    Ok(())
}

impl Prepared {
    /// Applies the call to `model`: whether it fits there, and whether it
    /// changed the model. Applying a pending call is only worth trying
    /// where it changes something (module docs).
    fn step(&self, model: &mut Model) -> (bool, bool) {
        if self.expire {
            let Operation::Confirm { booking } = self.operation else {
                unreachable!("an expiry names its hold as a CONFIRM")
            };
            let exists = model.booking(booking.get()).is_some();
            let changed = model.expire(booking.get());
            // A completed HOLD's expiry waits for the hold to exist; a
            // pending one's only goes where it expires something.
            let fits = if self.expected.is_some() {
                exists
            } else {
                changed
            };
            return (fits, changed);
        }
        if self.classic == Some(ClassicCall::List) {
            let fits = match &self.seen {
                Some(ClassicSeen::Listing(seen)) => (1..=model.event_count() as u32)
                    .map(|e| model.remaining(e).unwrap_or(0))
                    .eq(seen.iter().copied()),
                _ => false,
            };
            return (fits, false);
        }
        let (reply, changed) = model.apply(&self.operation);
        let fits = match (&self.classic, &self.seen, &self.expected) {
            (Some(_), Some(seen), _) => seen.matches(&reply),
            (None, _, Some(expected)) => reply == *expected,
            _ => changed,
        };
        (fits, changed)
    }
}

/// The call at `p.index` as a violation report shows it; a classic call as
/// the wire v1 call it stands for (its reply shown as pending).
fn shown_op(history: &History, p: &Prepared) -> Op {
    match history.ops.get(p.index) {
        Some(op) => *op,
        None => {
            let c = &history.classic[p.index - history.ops.len()];
            Op {
                thread: c.thread,
                invoke_ns: c.invoke_ns,
                operation: p.operation,
                ret: Return::Pending,
            }
        }
    }
}

/// How many classic reservations may have taken a server id the history
/// does not show: those answered OK, and those pending.
fn classic_id_takers(history: &History) -> usize {
    history
        .classic
        .iter()
        .filter(|c| matches!(c.call, ClassicCall::Reserve { .. }))
        .filter(|c| matches!(c.ret, None | Some((_, ClassicSeen::Booked { .. }))))
        .count()
}

/// Rewrites server-assigned ids into fresh client ids (module docs, step 1).
fn prepare(history: &History) -> Result<Vec<Prepared>, Failure> {
    let client_ids: HashSet<u64> = history
        .ops
        .iter()
        .filter_map(|op| match op.operation {
            Operation::Reserve {
                booking: Some(b), ..
            }
            | Operation::Hold {
                booking: Some(b), ..
            } => Some(b.get()),
            Operation::Cancel { booking } | Operation::Confirm { booking }
                if booking.get() & SERVER_BIT == 0 =>
            {
                Some(booking.get())
            }
            _ => None,
        })
        .collect();
    let mut next_fresh = FRESH_BASE;
    let mut fresh = || {
        while client_ids.contains(&next_fresh) {
            next_fresh += 1;
        }
        next_fresh += 1;
        ClientBookingId::new(next_fresh - 1).unwrap_or_else(|| unreachable!("bit 63 clear"))
    };
    let mut stand_in: HashMap<u64, BookingId> = HashMap::new();
    let mut operations = Vec::with_capacity(history.len());
    let mut pending_server_reserves = classic_id_takers(history);
    for op in &history.ops {
        let operation = match op.operation {
            Operation::Reserve {
                event,
                quantity,
                booking: None,
            }
            | Operation::Hold {
                event,
                quantity,
                booking: None,
            } => {
                let id = fresh();
                match op.ret {
                    Return::Replied { reply, .. } if reply.status == Status::Ok => {
                        if let Some(server) = reply.booking.filter(|b| b.is_server_assigned()) {
                            // Duplicates were refused by check_server_ids.
                            stand_in.insert(server.get(), id.booking_id());
                        }
                    }
                    Return::Pending => pending_server_reserves += 1,
                    Return::Replied { .. } => {}
                }
                if matches!(op.operation, Operation::Hold { .. }) {
                    Operation::Hold {
                        event,
                        quantity,
                        booking: Some(id),
                    }
                } else {
                    Operation::Reserve {
                        event,
                        quantity,
                        booking: Some(id),
                    }
                }
            }
            other => other,
        };
        operations.push(operation);
    }
    let rename = |id: BookingId| stand_in.get(&id.get()).copied().unwrap_or(id);
    let mut prepared = Vec::with_capacity(history.len());
    for (index, (op, operation)) in history.ops.iter().zip(operations).enumerate() {
        let operation = match operation {
            Operation::Cancel { booking } | Operation::Confirm { booking }
                if booking.is_server_assigned() =>
            {
                if !stand_in.contains_key(&booking.get()) && pending_server_reserves > 0 {
                    return Err(Failure::Unsupported(format!(
                        "call #{index} names server id {booking}, which no reply issued, \
                         while {pending_server_reserves} RESERVEs or HOLDs without an id \
                         are pending: one of them may have created it"
                    )));
                }
                let booking = rename(booking);
                if matches!(operation, Operation::Confirm { .. }) {
                    Operation::Confirm { booking }
                } else {
                    Operation::Cancel { booking }
                }
            }
            other => other,
        };
        let expected = op.reply().map(|reply| Reply {
            request_id: RequestId(0),
            booking: reply.booking.map(rename),
            ..*reply
        });
        prepared.push(Prepared {
            index,
            operation,
            expected,
            classic: None,
            seen: None,
            invoke_ns: op.invoke_ns,
            return_ns: op.return_ns(),
            expire: false,
        });
    }
    for (k, c) in history.classic.iter().enumerate() {
        let operation = match c.call {
            ClassicCall::Reserve { event, quantity } => Operation::Reserve {
                event,
                quantity,
                booking: Some(fresh()),
            },
            ClassicCall::List => Operation::Query {
                event: guichet::EventId::new(1).unwrap_or_else(|| unreachable!("1 is not 0")),
            },
        };
        prepared.push(Prepared {
            index: history.ops.len() + k,
            operation,
            expected: None,
            classic: Some(c.call),
            seen: c.ret.as_ref().map(|(_, seen)| seen.clone()),
            invoke_ns: c.invoke_ns,
            return_ns: c.ret.as_ref().map(|&(at, _)| at),
            expire: false,
        });
    }
    Ok(prepared)
}

/// Checks the server-assigned ids the history saw against one sequence
/// `1, 2, 3…` issued in real-time order (module docs, step 1). Returns how
/// many were issued.
///
/// # Errors
///
/// [`Failure::ServerIds`] describing the first contradiction.
pub fn check_server_ids(history: &History) -> Result<usize, Failure> {
    let mut issued: Vec<(u64, usize)> = Vec::new();
    let mut pending = 0usize;
    for (i, op) in history.ops.iter().enumerate() {
        let (Operation::Reserve { booking: None, .. } | Operation::Hold { booking: None, .. }) =
            op.operation
        else {
            continue;
        };
        match op.ret {
            Return::Pending => pending += 1,
            Return::Replied { reply, .. } if reply.status == Status::Ok => match reply.booking {
                Some(b) if b.is_server_assigned() => issued.push((b.get() & !SERVER_BIT, i)),
                other => {
                    return Err(Failure::ServerIds(format!(
                        "call #{i} {:?} answered OK with booking {other:?}, not a server id",
                        op.operation
                    )))
                }
            },
            Return::Replied { .. } => {}
        }
    }
    issued.sort_unstable();
    if let Some(&(0, i)) = issued.first() {
        return Err(Failure::ServerIds(format!(
            "call #{i} got server id n=0, which the sequence never issues"
        )));
    }
    for pair in issued.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(Failure::ServerIds(format!(
                "calls #{} and #{} both got server id n={}",
                pair[0].1, pair[1].1, pair[0].0
            )));
        }
    }
    // Real time: no call may return before a call that got a smaller id
    // was invoked. Sweep from the largest id keeping the earliest return.
    let mut earliest: Option<(u64, usize)> = None;
    for &(n, i) in issued.iter().rev() {
        let op = &history.ops[i];
        if let Some((ret, j)) = earliest {
            if ret < op.invoke_ns {
                return Err(Failure::ServerIds(format!(
                    "call #{j} returned at {ret} ns with a larger id than call #{i} \
                     (n={n}), invoked later at {} ns",
                    op.invoke_ns
                )));
            }
        }
        let ret = op.return_ns().unwrap_or(u64::MAX);
        if earliest.is_none_or(|(r, _)| ret < r) {
            earliest = Some((ret, i));
        }
    }
    let highest = issued.last().map_or(0, |&(n, _)| n);
    let skipped = highest - issued.len() as u64;
    let pending = pending + classic_id_takers(history);
    if skipped > pending as u64 {
        return Err(Failure::ServerIds(format!(
            "ids up to n={highest} issued but only {} seen: {skipped} skipped, \
             and only {pending} RESERVEs are pending (or classic, whose ids no reply shows)",
            issued.len()
        )));
    }
    Ok(issued.len())
}

/// The union-find nodes a call touches: an event, and a booking id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Node {
    Event(u32),
    Booking(u64),
}

fn nodes(operation: &Operation) -> (Node, Option<Node>) {
    match *operation {
        Operation::Query { event } => (Node::Event(event.get()), None),
        Operation::Reserve { event, booking, .. } | Operation::Hold { event, booking, .. } => (
            Node::Event(event.get()),
            booking.map(|b| Node::Booking(b.get())),
        ),
        Operation::Cancel { booking } | Operation::Confirm { booking } => {
            (Node::Booking(booking.get()), None)
        }
    }
}

#[derive(Default)]
struct UnionFind {
    index: HashMap<Node, usize>,
    parent: Vec<usize>,
}

impl UnionFind {
    fn node(&mut self, node: Node) -> usize {
        let next = self.parent.len();
        let i = *self.index.entry(node).or_insert(next);
        if i == next {
            self.parent.push(i);
        }
        i
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        self.parent[a] = b;
    }
}

fn part_events(ops: &[&Prepared]) -> Vec<u32> {
    let mut events: Vec<u32> = ops
        .iter()
        .filter_map(|p| match p.operation {
            Operation::Query { event }
            | Operation::Reserve { event, .. }
            | Operation::Hold { event, .. } => Some(event.get()),
            Operation::Cancel { .. } | Operation::Confirm { .. } => None,
        })
        .collect();
    events.sort_unstable();
    events.dedup();
    events
}

/// An order-independent 64-bit fingerprint of the model's bookings, which
/// (with its fixed capacities) are its whole state.
fn fingerprint(model: &Model) -> u64 {
    let mut sum = 0u64;
    for b in model.bookings() {
        let shape = (u64::from(b.event) << 32) | u64::from(b.quantity);
        sum = sum.wrapping_add(mix(mix(b.id)
            ^ mix(shape ^ 0x5555)
            ^ u64::from(b.cancelled)
            ^ (u64::from(b.held) << 1)
            ^ (u64::from(b.expired) << 2)
            ^ mix(b.expires_at_ms.map_or(u64::MAX, |t| t ^ 0xaaaa))));
    }
    mix(sum ^ model.booking_count() as u64)
}

/// splitmix64's finaliser.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

struct Bitset {
    words: Vec<u64>,
}

impl Bitset {
    fn new(bits: usize) -> Self {
        Self {
            words: vec![0; bits.div_ceil(64)],
        }
    }
    fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.words[i / 64] &= !(1 << (i % 64));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Call(usize),
    Return(usize),
}

/// How the search of one part ended.
enum Verdict {
    /// Every completed call linearized, after exploring this many
    /// configurations.
    Linearizable { states: u64 },
    /// Every configuration explored; at best this many completed calls
    /// linearized.
    Stuck { deepest: usize },
}

/// Where the search is in the candidates of the current configuration.
#[derive(Clone, Copy, Debug)]
enum Cursor {
    /// At this node of the entry list.
    Completed(usize),
    /// At this index of the pending calls; the earliest return not yet
    /// passed is that of the call given.
    Pending(usize, usize),
}

/// A choice made: the call linearized, the model before it, the
/// candidate to try next if it is undone, and whether there was no other
/// choice worth trying.
struct Frame {
    op: usize,
    before: Model,
    resume: Cursor,
    forced: bool,
}

/// The invocations and returns of one part's completed calls, in time
/// order, as a doubly linked list from which a linearized call's two
/// entries are lifted and put back (in LIFO order, so their old neighbours
/// are still valid); and its pending calls, in invocation order.
struct EntryList {
    /// Node 0 is the head sentinel, the last node the tail sentinel.
    kinds: Vec<Option<Kind>>,
    next: Vec<usize>,
    prev: Vec<usize>,
    call_node: Vec<usize>,
    return_node: Vec<usize>,
    /// Pending calls, by invocation time.
    pending: Vec<usize>,
    /// Bit of each completed call in the linearized set; `None` if pending.
    completed_slot: Vec<Option<usize>>,
    completed: usize,
}

impl EntryList {
    fn new(ops: &[&Prepared]) -> Self {
        // At equal times an invocation sorts before a return: the two calls
        // then overlap, which never rules out an order that was possible.
        let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * ops.len());
        let mut pending: Vec<(u64, usize)> = Vec::new();
        let mut completed_slot = Vec::with_capacity(ops.len());
        let mut completed = 0;
        for (i, op) in ops.iter().enumerate() {
            match op.return_ns {
                Some(ret) => {
                    events.push((op.invoke_ns, 0, i));
                    events.push((ret, 1, i));
                    completed_slot.push(Some(completed));
                    completed += 1;
                }
                None => {
                    pending.push((op.invoke_ns, i));
                    completed_slot.push(None);
                }
            }
        }
        events.sort_unstable();
        pending.sort_unstable();
        let total = events.len() + 2;
        let mut list = Self {
            kinds: vec![None; total],
            next: (1..=total).collect(),
            prev: (0..total).map(|i| i.wrapping_sub(1)).collect(),
            call_node: vec![0; ops.len()],
            return_node: vec![0; ops.len()],
            pending: pending.into_iter().map(|(_, i)| i).collect(),
            completed_slot,
            completed,
        };
        for (n, &(_, kind, i)) in events.iter().enumerate() {
            let node = n + 1;
            if kind == 0 {
                list.kinds[node] = Some(Kind::Call(i));
                list.call_node[i] = node;
            } else {
                list.kinds[node] = Some(Kind::Return(i));
                list.return_node[i] = node;
            }
        }
        list
    }

    fn first(&self) -> usize {
        self.next[0]
    }

    fn next(&self, node: usize) -> usize {
        self.next[node]
    }

    fn kind(&self, node: usize) -> Option<Kind> {
        self.kinds.get(node).copied().flatten()
    }

    fn unlink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn relink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = node;
        self.prev[n] = node;
    }

    /// Removes completed call `i`'s two entries.
    fn lift(&mut self, i: usize) {
        self.unlink(self.call_node[i]);
        self.unlink(self.return_node[i]);
    }

    /// Puts back the entries of the call lifted last.
    fn unlift(&mut self, i: usize) {
        self.relink(self.return_node[i]);
        self.relink(self.call_node[i]);
    }
}
