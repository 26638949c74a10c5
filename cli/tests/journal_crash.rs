//! Crash loop with the real binary: `guichet serve --journal` on a private
//! key, concurrent clients logging every OK, SIGKILL at a random moment,
//! restart on the same journal, and check that every acknowledged booking
//! is there (reserving the same client id again answers OK with the same
//! quantity), every acknowledged cancellation stayed, and no server id is
//! issued twice. Holds too: an acknowledged hold is there until its expiry
//! (wall-clock time, [`HOLD_MS`] after it was sent) and expired after it
//! (with a slack for the clocks), an acknowledged confirmation is for good.
//!
//! `GUICHET_CRASH_CYCLES` sets the number of cycles (default 20),
//! `GUICHET_CRASH_SEED` the seed (printed, so a failure replays).

use guichet_testkit::rng;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use guichet::sysv::{ftok, Key, Queue};
use guichet::{Client, ClientError};
use rng::{seed_from_env_or_clock, Rng};

const DEFAULT_CYCLES: u64 = 20;
const CLIENTS: u64 = 4;
/// Holds go to C only: their expiries change no seat count the checks of
/// A and B track.
const EVENTS: [(&str, u32); 3] = [
    ("A", 1_000_000_000),
    ("B", 1_000_000_000),
    ("C", 1_000_000_000),
];
const HOLD_EVENT: u32 = 3;
/// Small, so compactions happen during the loop.
const COMPACT_BYTES: u64 = 8 << 10;
const MAX_BOOKINGS: usize = guichet::Ledger::MAX_BOOKINGS_LIMIT;
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Generous: the machine may be loaded, and no test waits on it normally.
const CALL_TIMEOUT_MS: u32 = 10_000;
/// `serve --hold-ms`: short, so that holds expire across cycles and restarts.
const HOLD_MS: u64 = 1_500;
/// Slack for the server's clock (monotonic, anchored to the wall clock at
/// its start) against the test's wall clock.
const CLOCK_SLACK_MS: u64 = 250;

/// What the clients were told, and what they could not learn.
#[derive(Default)]
struct Log {
    /// Client-chosen ids answered OK (event, quantity), not cancelled.
    active: HashMap<u64, (u32, u32)>,
    /// Client-chosen ids whose cancellation was answered OK.
    cancelled: HashMap<u64, (u32, u32)>,
    /// Sent, no answer (the server died): either outcome is allowed.
    reserve_unknown: HashMap<u64, (u32, u32)>,
    cancel_unknown: HashMap<u64, (u32, u32)>,
    /// Server-assigned ids answered OK: (event, quantity, cancelled).
    server: HashMap<u64, (u32, u32, bool)>,
    server_cancel_unknown: HashSet<u64>,
    /// Client-chosen holds answered OK and not confirmed: (event, quantity,
    /// wall-clock ms when sent, when answered). Their expiry is between
    /// those plus HOLD_MS.
    held: HashMap<u64, (u32, u32, u64, u64)>,
    /// Holds whose confirmation was answered OK: (event, quantity).
    confirmed: HashMap<u64, (u32, u32)>,
    /// Holds or confirmations sent without an answer: (event, quantity, sent).
    hold_unknown: HashMap<u64, (u32, u32, u64)>,
    /// Holds found expired once due.
    expired: u64,
    ok_replies: u64,
}

impl Log {
    fn merge(&mut self, other: Log) {
        self.active.extend(other.active);
        self.cancelled.extend(other.cancelled);
        self.reserve_unknown.extend(other.reserve_unknown);
        self.cancel_unknown.extend(other.cancel_unknown);
        for (id, b) in other.server {
            assert!(
                self.server.insert(id, b).is_none(),
                "server id {id:#x} was issued twice: a booking answered OK was lost"
            );
        }
        self.server_cancel_unknown
            .extend(other.server_cancel_unknown);
        self.held.extend(other.held);
        self.confirmed.extend(other.confirmed);
        self.hold_unknown.extend(other.hold_unknown);
        self.expired += other.expired;
        self.ok_replies += other.ok_replies;
    }
}

/// Kills the server and removes its queue whatever happens, so a failing
/// run leaves nothing behind.
struct Guard {
    key: Key,
    child: Option<Child>,
    stderr: PathBuf,
}

impl Guard {
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
        // SIGKILL cannot clean up: the queue outlives the server.
        if let Ok(queue) = Queue::open(self.key) {
            let _ = queue.remove();
        }
    }

    fn start(&mut self, journal: &Path) {
        self.kill();
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(&self.stderr)
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_guichet"));
        command
            .args(["serve", "--key", &self.key.to_string(), "--journal"])
            .arg(journal)
            .args(["--journal-compact-bytes", &COMPACT_BYTES.to_string()])
            // Room for a 1,000-cycle run (about 1,100 bookings a cycle).
            .args(["--max-bookings", &MAX_BOOKINGS.to_string()])
            .args(["--hold-ms", &HOLD_MS.to_string()]);
        for (name, capacity) in EVENTS {
            command.args(["--event", &format!("{name}={capacity}")]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Waits until the server answers; panics with its stderr if it exits.
    fn ready(&mut self) -> Client {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = &mut self.child {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("the server exited ({status}):\n{}", self.tail());
                }
            }
            if let Ok(client) = Client::open(self.key) {
                let client = client.with_timeout_ms(1_000);
                if client.query(1).is_ok() {
                    return client.with_timeout_ms(CALL_TIMEOUT_MS);
                }
            }
            assert!(
                Instant::now() < deadline,
                "server not ready:\n{}",
                self.tail()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One client: books and cancels until the server stops answering.
fn client_loop(client: Client, ids: &AtomicU64, seed: u64) -> Log {
    let mut rng = Rng::new(seed);
    let mut log = Log::default();
    let mut mine: Vec<u64> = Vec::new();
    let mut my_server: Vec<u64> = Vec::new();
    let mut my_holds: Vec<u64> = Vec::new();
    loop {
        let event = 1 + rng.below(2) as u32;
        let quantity = 1 + rng.below(4) as u32;
        match rng.below(26) {
            20..=22 => {
                let id = ids.fetch_add(1, Ordering::Relaxed);
                let sent = unix_now_ms();
                let event = HOLD_EVENT;
                match client.hold(event, quantity, id) {
                    Ok(r) => {
                        assert_eq!(r.quantity, quantity);
                        log.held.insert(id, (event, quantity, sent, unix_now_ms()));
                        log.ok_replies += 1;
                        my_holds.push(id);
                    }
                    Err(_) => {
                        log.hold_unknown.insert(id, (event, quantity, sent));
                        return log;
                    }
                }
            }
            23..=25 if !my_holds.is_empty() => {
                let id = my_holds.swap_remove(rng.below(my_holds.len() as u64) as usize);
                let (event, quantity, sent, _) = log.held[&id];
                match client.confirm(id) {
                    Ok(r) => {
                        assert_eq!(r.quantity, quantity);
                        log.held.remove(&id);
                        log.confirmed.insert(id, (event, quantity));
                        log.ok_replies += 1;
                    }
                    // Too late: it stays an acknowledged (expired) hold.
                    Err(ClientError::HoldExpired { .. }) => log.ok_replies += 1,
                    Err(_) => {
                        log.held.remove(&id);
                        log.hold_unknown.insert(id, (event, quantity, sent));
                        return log;
                    }
                }
            }
            0..=11 => {
                let id = ids.fetch_add(1, Ordering::Relaxed);
                match client.reserve_with_id(event, quantity, id) {
                    Ok(r) => {
                        assert_eq!(r.quantity, quantity);
                        log.active.insert(id, (event, quantity));
                        log.ok_replies += 1;
                        mine.push(id);
                    }
                    Err(_) => {
                        log.reserve_unknown.insert(id, (event, quantity));
                        return log;
                    }
                }
            }
            12..=14 => match client.reserve(event, quantity) {
                Ok(r) => {
                    log.server.insert(r.booking.get(), (event, quantity, false));
                    log.ok_replies += 1;
                    my_server.push(r.booking.get());
                }
                Err(_) => return log,
            },
            15..=17 if !mine.is_empty() => {
                let id = mine.swap_remove(rng.below(mine.len() as u64) as usize);
                let booked = log.active[&id];
                match client.cancel(id) {
                    Ok(r) => {
                        assert_eq!(r.quantity, booked.1);
                        log.active.remove(&id);
                        log.cancelled.insert(id, booked);
                        log.ok_replies += 1;
                    }
                    Err(_) => {
                        log.active.remove(&id);
                        log.cancel_unknown.insert(id, booked);
                        return log;
                    }
                }
            }
            _ if !my_server.is_empty() => {
                let id = my_server.swap_remove(rng.below(my_server.len() as u64) as usize);
                match client.cancel(id) {
                    Ok(_) => {
                        if let Some(b) = log.server.get_mut(&id) {
                            b.2 = true;
                        }
                        log.ok_replies += 1;
                    }
                    Err(_) => {
                        log.server_cancel_unknown.insert(id);
                        return log;
                    }
                }
            }
            _ => {}
        }
    }
}

/// Checks the restarted server against the log, settling every unknown
/// outcome (the check itself is acknowledged, so it joins the log). Checks
/// the ids in `recent` and, of the older ones, those `sample` keeps.
fn verify(
    client: &Client,
    log: &mut Log,
    recent: &HashSet<u64>,
    sample: &mut impl FnMut() -> bool,
) {
    // Seats left per event, tracked through every answer: an acknowledged
    // booking's retry must leave them as they are. A retry that books seats
    // means the booking was gone and was just made anew: lost.
    let mut left: HashMap<u32, u32> = (1..=EVENTS.len() as u32)
        .map(|event| (event, client.query(event).unwrap().remaining))
        .collect();
    let still_there = |id: u64, r: &guichet::client::Receipt, what: &str| {
        let event = r.event.get();
        assert_eq!(
            r.remaining, left[&event],
            "{what} {id} was gone: its retry booked {} seat(s) anew",
            r.quantity
        );
    };
    for (id, (event, quantity)) in log.active.clone() {
        if recent.contains(&id) || sample() {
            let r = client
                .reserve_with_id(event, quantity, id)
                .unwrap_or_else(|e| panic!("acknowledged booking {id} lost: {e}"));
            assert_eq!(r.quantity, quantity, "booking {id}");
            still_there(id, &r, "acknowledged booking");
        }
    }
    for (id, (event, quantity)) in log.cancelled.clone() {
        if recent.contains(&id) || sample() {
            match client.reserve_with_id(event, quantity, id) {
                Err(ClientError::BookingCancelled { .. }) => {}
                other => panic!("acknowledged cancellation of {id} lost: {other:?}"),
            }
        }
    }
    for (id, (event, quantity)) in std::mem::take(&mut log.cancel_unknown) {
        // Its booking was acknowledged; only the cancel is in doubt.
        match client.reserve_with_id(event, quantity, id) {
            Ok(r) => {
                still_there(id, &r, "booking (cancel unanswered)");
                log.active.insert(id, (event, quantity))
            }
            Err(ClientError::BookingCancelled { .. }) => {
                log.cancelled.insert(id, (event, quantity))
            }
            Err(e) => panic!("booking {id} (cancel unanswered) lost: {e}"),
        };
    }
    for (id, (event, quantity)) in std::mem::take(&mut log.reserve_unknown) {
        // Survived or not, it exists once this is answered OK.
        let r = client.reserve_with_id(event, quantity, id).unwrap();
        assert_eq!(r.quantity, quantity);
        left.insert(event, r.remaining);
        log.active.insert(id, (event, quantity));
    }
    let mut cancel_server = |id: u64, quantity: u32, what: &str| {
        // Cancelling proves it exists with its quantity.
        let r = client
            .cancel(id)
            .unwrap_or_else(|e| panic!("{what} {id:#x} lost: {e}"));
        assert_eq!(r.quantity, quantity, "{what} {id:#x}");
        left.insert(r.event.get(), r.remaining);
    };
    for id in std::mem::take(&mut log.server_cancel_unknown) {
        cancel_server(id, log.server[&id].1, "server booking");
        if let Some(b) = log.server.get_mut(&id) {
            b.2 = true;
        }
    }
    for (id, (_, quantity, cancelled)) in log.server.clone() {
        if !cancelled && (recent.contains(&id) || sample()) {
            cancel_server(id, quantity, "acknowledged server booking");
            if let Some(b) = log.server.get_mut(&id) {
                b.2 = true;
            }
        }
    }
    verify_holds(client, log, recent, sample);
    // No fewer seats booked than the active bookings certainly hold.
    for (i, (_, capacity)) in EVENTS.iter().enumerate() {
        let event = i as u32 + 1;
        let held: u64 = log
            .active
            .values()
            .filter(|b| b.0 == event)
            .map(|b| u64::from(b.1))
            .sum::<u64>()
            + log
                .server
                .values()
                .filter(|b| b.0 == event && !b.2)
                .map(|b| u64::from(b.1))
                .sum::<u64>()
            + log
                .confirmed
                .values()
                .filter(|b| b.0 == event)
                .map(|b| u64::from(b.1))
                .sum::<u64>();
        let remaining = client.query(event).unwrap().remaining;
        assert!(
            u64::from(remaining) + held <= u64::from(*capacity),
            "event {event}: {remaining} remaining but {held} seats acknowledged"
        );
    }
}

fn unix_now_ms() -> u64 {
    use guichet::ledger::Clock;
    guichet::ledger::SystemClock::new().now_ms()
}

/// The holds' part of [`verify`]: an acknowledged hold is held before its
/// expiry (a CONFIRM finds it, and confirms it) and expired after it; a
/// confirmation is for good. Unknown outcomes are settled. Seats of C are
/// not tracked: expiries move them at any time.
fn verify_holds(
    client: &Client,
    log: &mut Log,
    recent: &HashSet<u64>,
    sample: &mut impl FnMut() -> bool,
) {
    for (id, (event, quantity, sent, answered)) in log.held.clone() {
        // Odd ids are left alone until surely due, then must be expired:
        // a hold that outlived its expiry (across restarts) is confirmed.
        let due = unix_now_ms() >= answered + HOLD_MS + CLOCK_SLACK_MS;
        if id % 2 == 1 {
            if due {
                match client.confirm(id) {
                    Err(ClientError::HoldExpired { .. }) => {
                        log.held.remove(&id);
                        log.expired += 1;
                    }
                    other => panic!("hold {id}, sent at {sent}, outlived its expiry: {other:?}"),
                }
            }
            continue;
        }
        if !(recent.contains(&id) || sample()) {
            continue;
        }
        let before = unix_now_ms();
        let result = client.confirm(id);
        let after = unix_now_ms();
        match result {
            Ok(r) => {
                assert_eq!(r.quantity, quantity, "hold {id}");
                assert!(
                    before < answered + HOLD_MS + CLOCK_SLACK_MS,
                    "hold {id} outlived its expiry: sent at {sent}, still held at {before}"
                );
                log.held.remove(&id);
                log.confirmed.insert(id, (event, quantity));
            }
            Err(ClientError::HoldExpired { .. }) => {
                assert!(
                    after + CLOCK_SLACK_MS >= sent + HOLD_MS,
                    "hold {id} expired early: sent at {sent}, expired by {after}"
                );
                // Settled: found expired, and not early. (Left in `held`,
                // it was counted as unchecked at the end, which failed
                // runs whose cycles took longer than a hold under load.)
                log.held.remove(&id);
                log.expired += 1;
            }
            Err(e) => panic!("acknowledged hold {id} lost: {e}"),
        }
    }
    for (id, (_, quantity)) in log.confirmed.clone() {
        if recent.contains(&id) || sample() {
            let r = client
                .confirm(id)
                .unwrap_or_else(|e| panic!("acknowledged confirmation of {id} lost: {e}"));
            assert_eq!(r.quantity, quantity, "confirmed hold {id}");
        }
    }
    for (id, (event, quantity, _)) in std::mem::take(&mut log.hold_unknown) {
        // Held, confirmed, expired or never made: once confirmed, for good.
        match client.hold(event, quantity, id) {
            Ok(_) => match client.confirm(id) {
                Ok(_) => {
                    log.confirmed.insert(id, (event, quantity));
                }
                Err(ClientError::HoldExpired { .. }) => {}
                Err(e) => panic!("hold {id}: {e}"),
            },
            Err(ClientError::HoldExpired { .. }) => {}
            Err(e) => panic!("hold {id} (outcome unknown): {e}"),
        }
    }
}

#[test]
fn acknowledged_bookings_survive_sigkill() {
    let cycles: u64 = std::env::var("GUICHET_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CYCLES);
    let seed = seed_from_env_or_clock("GUICHET_CRASH_SEED");
    eprintln!("crash loop: {cycles} cycles, GUICHET_CRASH_SEED={seed}");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let key_file = dir.path().join("key");
    File::create(&key_file).unwrap();
    let key = (1..=255u8)
        .map(|proj| ftok(&key_file, proj).unwrap())
        .find(|key| Queue::open(*key).is_err())
        .expect("a free key");
    let mut guard = Guard {
        key,
        child: None,
        stderr: dir.path().join("stderr"),
    };
    let ids = AtomicU64::new(1);
    let mut log = Log::default();
    let mut kills_before_ready = 0;
    let start = Instant::now();
    guard.start(&journal);
    for cycle in 0..cycles {
        // Now and then the kill lands while the server starts or replays.
        if rng.below(10) == 0 {
            thread::sleep(Duration::from_millis(rng.below(30)));
            guard.kill();
            kills_before_ready += 1;
            guard.start(&journal);
        }
        let client = guard.ready();
        let mut recent = HashSet::new();
        let previous: HashSet<u64> = log
            .active
            .keys()
            .chain(log.cancelled.keys())
            .chain(log.server.keys())
            .chain(log.held.keys())
            .chain(log.confirmed.keys())
            .copied()
            .collect();
        let logs: Vec<Log> = thread::scope(|s| {
            let handles: Vec<_> = (0..CLIENTS)
                .map(|c| {
                    let (ids, client) = (&ids, client);
                    let seed = seed ^ (cycle << 8) ^ c;
                    s.spawn(move || client_loop(client, ids, seed))
                })
                .collect();
            thread::sleep(Duration::from_millis(20 + rng.below(300)));
            guard.kill(); // SIGKILL, then the queue is removed: clients stop
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for l in logs {
            log.merge(l);
        }
        for id in log
            .active
            .keys()
            .chain(log.cancelled.keys())
            .chain(log.server.keys())
            .chain(log.held.keys())
            .chain(log.confirmed.keys())
        {
            if !previous.contains(id) {
                recent.insert(*id);
            }
        }
        guard.start(&journal);
        let client = guard.ready();
        let mut sampler = Rng::new(rng.next_u64());
        verify(&client, &mut log, &recent, &mut || sampler.below(50) == 0);
    }
    // Everything, once more, every hold due by then, then a last crash and restart.
    thread::sleep(Duration::from_millis(HOLD_MS + CLOCK_SLACK_MS));
    let client = guard.ready();
    verify(&client, &mut log, &HashSet::new(), &mut || true);
    guard.kill();
    let stderr = std::fs::read_to_string(&guard.stderr).unwrap_or_default();
    let torn = stderr.matches("torn tail").count();
    let stale = stderr.matches("compaction a crash interrupted").count();
    let snapshots = stderr
        .lines()
        .filter(|l| l.contains("replayed") && !l.contains("replayed 0 snapshot"))
        .count();
    eprintln!(
        "crash loop: {cycles} cycles in {:.1} s, {} OK replies logged, {} client bookings \
         ({} cancelled), {} server bookings; {kills_before_ready} kills during start-up; \
         restarts from a snapshot {snapshots}, torn tails cut {torn}, interrupted compactions {stale}; \
         holds: {} confirmed, {} found expired, {} left unchecked",
        start.elapsed().as_secs_f64(),
        log.ok_replies,
        log.active.len() + log.cancelled.len(),
        log.cancelled.len(),
        log.server.len(),
        log.confirmed.len(),
        log.expired,
        log.held.len(),
    );
    assert!(
        log.expired > 0 && log.held.is_empty(),
        "no hold was seen to expire"
    );
    assert!(
        log.ok_replies > cycles,
        "the clients got almost nothing done"
    );
    assert!(Queue::open(key).is_err(), "the queue outlived the test");
}
