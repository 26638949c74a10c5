//! Helpers for the end-to-end suites of the server, the client and the
//! `guichet` command: raw wire messages, reply readers, keys from `ftok` on
//! temporary files, child processes that are killed (and whose queues are
//! removed) even when a test fails.
//!

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Once};
use std::thread;
use std::time::{Duration, Instant};

use guichet::server::{Builder, Dispatch, Server, ServerError, Stats};
use guichet::sysv::{ftok, Key, MessageBuf, Queue, QueueId, SysvError};
use guichet::wire::{BODY_SIZE, MAGIC, REQUEST_MTYPE, VERSION};
use guichet::{decode_reply, Ledger, Reply};

/// Every dispatch mode, for tests that must hold in all of them.
pub const MODES: [Dispatch; 3] = [
    Dispatch::ThreadPerRequest,
    Dispatch::Pool(4),
    Dispatch::Sequential,
];

/// A liveness bound, not a speed requirement: the machine is shared and
/// noisy, so anything that should take milliseconds gets this long.
pub const PATIENCE_MS: u32 = 20_000;

/// The instant `ms` from now: a deadline for [`guichet::sysv::Queue`]'s
/// send and receive.
pub fn deadline_in_ms(ms: u32) -> Instant {
    Instant::now() + Duration::from_millis(u64::from(ms))
}
pub const PATIENCE: Duration = Duration::from_millis(PATIENCE_MS as u64);

/// Whether the bigger runs are asked for (`GUICHET_STRESS=1`).
pub fn stress() -> bool {
    std::env::var("GUICHET_STRESS").is_ok_and(|v| v == "1")
}

/// `default` normally, `stressed` under `GUICHET_STRESS=1`.
pub fn scale(default: usize, stressed: usize) -> usize {
    if stress() {
        stressed
    } else {
        default
    }
}

// ---------------------------------------------------------------------------
// Raw wire messages, written from PROTOCOL.md's offsets (not from
// `guichet::wire`), so that a layout bug in the crate cannot hide here.

/// A request body with every field settable, valid or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawRequest {
    pub magic: u32,
    pub version: u16,
    pub op: u16,
    pub reply_to: i64,
    pub request_id: u64,
    pub booking_id: u64,
    pub event_id: u32,
    pub quantity: u32,
}

pub const OP_QUERY: u16 = 1;
pub const OP_RESERVE: u16 = 2;
pub const OP_CANCEL: u16 = 3;

impl RawRequest {
    /// A well-formed request of `op` with every other field 0.
    pub fn new(op: u16, reply_to: i64, request_id: u64) -> Self {
        Self {
            magic: MAGIC,
            version: VERSION,
            op,
            reply_to,
            request_id,
            booking_id: 0,
            event_id: 0,
            quantity: 0,
        }
    }

    pub fn query(reply_to: i64, request_id: u64, event_id: u32) -> Self {
        Self {
            event_id,
            ..Self::new(OP_QUERY, reply_to, request_id)
        }
    }

    pub fn reserve(
        reply_to: i64,
        request_id: u64,
        event_id: u32,
        quantity: u32,
        booking_id: u64,
    ) -> Self {
        Self {
            event_id,
            quantity,
            booking_id,
            ..Self::new(OP_RESERVE, reply_to, request_id)
        }
    }

    pub fn cancel(reply_to: i64, request_id: u64, booking_id: u64) -> Self {
        Self {
            booking_id,
            ..Self::new(OP_CANCEL, reply_to, request_id)
        }
    }

    /// The 40 body bytes, host byte order, at PROTOCOL.md's offsets (minus
    /// the 8 of `mtype`).
    pub fn bytes(&self) -> [u8; BODY_SIZE] {
        let mut b = [0u8; BODY_SIZE];
        b[0..4].copy_from_slice(&self.magic.to_ne_bytes());
        b[4..6].copy_from_slice(&self.version.to_ne_bytes());
        b[6..8].copy_from_slice(&self.op.to_ne_bytes());
        b[8..16].copy_from_slice(&self.reply_to.to_ne_bytes());
        b[16..24].copy_from_slice(&self.request_id.to_ne_bytes());
        b[24..32].copy_from_slice(&self.booking_id.to_ne_bytes());
        b[32..36].copy_from_slice(&self.event_id.to_ne_bytes());
        b[36..40].copy_from_slice(&self.quantity.to_ne_bytes());
        b
    }
}

/// A reply tag of this process that no `Client` uses: clients take slots
/// 1..=65536, these start at 2^30.
pub fn tag(n: u32) -> i64 {
    (i64::from(std::process::id()) << 32) | i64::from((1u32 << 30) + n)
}

/// A tag no other call of this test process uses, for tests that run in
/// parallel in one binary.
pub fn fresh_tag() -> i64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    tag(u32::try_from(n).expect("fewer than 2^32 tags per test binary"))
}

/// Sends one request body, waiting at most [`PATIENCE_MS`] for room.
pub fn send_raw(queue: Queue, body: &[u8]) {
    queue
        .send(REQUEST_MTYPE, body, Some(deadline_in_ms(PATIENCE_MS)))
        .unwrap_or_else(|e| panic!("sending a {}-byte request: {e}", body.len()));
}

/// Receives the next reply on `tag` (waiting at most `timeout_ms`) and
/// decodes it; any other outcome fails the test.
pub fn recv_reply(queue: Queue, tag: i64, timeout_ms: u32) -> Reply {
    try_recv_reply(queue, tag, timeout_ms)
        .unwrap_or_else(|e| panic!("no reply on tag {tag:#x} within {timeout_ms} ms: {e}"))
}

/// Like [`recv_reply`], returning the transport error instead of failing.
pub fn try_recv_reply(queue: Queue, tag: i64, timeout_ms: u32) -> Result<Reply, SysvError> {
    // One byte more than a reply: an over-long message shows as 41 bytes.
    let mut buf = MessageBuf::truncating(BODY_SIZE + 1).expect("41 <= MAX_BODY_BYTES");
    queue.recv(tag, &mut buf, Some(deadline_in_ms(timeout_ms)))?;
    Ok(decode_reply(buf.body())
        .unwrap_or_else(|e| panic!("malformed reply on {tag:#x}: {e}: {:?}", buf.body())))
}

/// Whether a message for `tag` is waiting (taking it off the queue).
pub fn take_message(queue: Queue, tag: i64) -> bool {
    let mut buf = MessageBuf::truncating(BODY_SIZE + 1).expect("41 <= MAX_BODY_BYTES");
    match queue.recv(tag, &mut buf, Some(Instant::now())) {
        Ok(_) => true,
        Err(SysvError::TimedOut { .. }) => false,
        Err(e) => panic!("checking tag {tag:#x}: {e}"),
    }
}

/// Fails unless the queue with this id no longer exists.
pub fn assert_queue_gone(id: QueueId) {
    match Queue::from_id(id).stat() {
        Err(SysvError::QueueRemoved { .. }) => {}
        Ok(stat) => panic!("queue {id} still exists: {stat:?}"),
        Err(e) => panic!("queue {id}: unexpected error {e}"),
    }
}

/// Polls `done` every millisecond until it holds or `within` passes.
pub fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// Fails unless every message the server received is accounted for: a
/// reply sent, a message dropped, or a reply abandoned (counted). Only
/// meaningful once nothing is in flight (after a shutdown).
pub fn assert_accounted(stats: &Stats) {
    assert_eq!(
        stats.received,
        stats.replies_sent() + stats.dropped + stats.replies_abandoned,
        "a received message is not accounted for: {stats:?}"
    );
}

/// Shuts `server` down and checks what every test expects of that: it
/// succeeds, every message received is accounted for, and the queue is
/// gone. Returns the final stats.
pub fn stop(server: Server) -> Stats {
    let id = server.queue_id();
    let stats = server
        .shutdown()
        .unwrap_or_else(|e| panic!("shutdown failed: {e}"));
    assert_accounted(&stats);
    assert_queue_gone(id);
    stats
}

/// The ledger as it is now (for before/after comparisons).
pub fn snapshot(server: &Server) -> Ledger {
    server
        .with_ledger(Ledger::clone)
        .expect("ledger not poisoned")
}

/// Fails unless the server's ledger passes every invariant.
pub fn assert_invariants(server: &Server) {
    server
        .with_ledger(Ledger::check_invariants)
        .expect("ledger not poisoned")
        .unwrap_or_else(|e| panic!("{e}"));
}

// ---------------------------------------------------------------------------
// Keys that other processes can find.

/// A key from `ftok` on a fresh temporary file, that no queue has yet. The
/// file (and so the key's meaning) lives as long as this value.
pub struct KeyFile {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub key: Key,
}

/// The project id of the suite's keys ('S' for srvtest), so that keys from
/// other suites' temporary files are less likely to collide with ours.
const PROJ_ID: u8 = b'S';

/// A key that names no queue right now. ftok(3) keeps only some inode bits,
/// so two files can share a key: retry with another file in that case.
pub fn fresh_key() -> KeyFile {
    for _ in 0..64 {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        std::fs::write(&path, b"guichet test key").expect("write key file");
        let key = ftok(&path, PROJ_ID).expect("ftok on a fresh file");
        if matches!(Queue::open(key), Err(SysvError::NotFound { .. })) {
            return KeyFile {
                _dir: dir,
                path,
                key,
            };
        }
    }
    panic!("64 temporary files all gave keys already in use");
}

/// Spawns `builder` on a fresh ftok key, retrying on a key collision with a
/// queue created meanwhile by someone else.
pub fn keyed_server(builder: Builder) -> (Server, KeyFile) {
    for _ in 0..16 {
        let key_file = fresh_key();
        match builder.clone().key(key_file.key).spawn() {
            Ok(server) => return (server, key_file),
            Err(ServerError::QueueExists { .. }) => continue,
            Err(e) => panic!("spawning a keyed server: {e}"),
        }
    }
    panic!("16 fresh keys were all taken");
}

// ---------------------------------------------------------------------------
// Child processes.

/// The pid of a process that has exited and been reaped: requests naming it
/// stand for a client that died before reading its replies.
pub fn dead_pid() -> i64 {
    let mut child = Command::new("true")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn true");
    let pid = child.id();
    assert!(child.wait().expect("wait").success());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} reused already"
    );
    i64::from(pid)
}

/// Sends `signal` (a name such as `TERM`) to `pid` with the shell's `kill`
/// builtin: tests deny `unsafe`, so no libc::kill here.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("sh")
        .args([
            "-c",
            "kill -s \"$1\" \"$2\"",
            "sh",
            signal,
            &pid.to_string(),
        ])
        .status()
        .expect("run sh");
    assert!(status.success(), "kill -s {signal} {pid}: {status}");
}

/// Waits at most `within` for `child` to exit.
pub fn wait_exit(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Live calls made while something else loads the server (at most `calls`,
/// at least 20, fewer once `stop_early` is set); returns how many were made
/// and the slowest. Every call must succeed.
pub fn live_calls(
    client: guichet::Client,
    calls: u64,
    stop_early: &std::sync::atomic::AtomicBool,
) -> (u64, Duration) {
    let mut slowest = Duration::ZERO;
    let mut made = 0;
    for i in 0..calls {
        let start = Instant::now();
        match client.query(1) {
            Ok(a) => assert_eq!(a.capacity, 1_000_000),
            Err(e) => panic!("live call {i}: {e}"),
        }
        slowest = slowest.max(start.elapsed());
        made += 1;
        if stop_early.load(std::sync::atomic::Ordering::Relaxed) && i >= 20 {
            break;
        }
    }
    (made, slowest)
}

// ---------------------------------------------------------------------------
// Panics in threads the test does not join (the server's detached workers)
// do not fail the test by themselves: count them.

static PANICS: AtomicU64 = AtomicU64::new(0);

/// Installs (once per test binary) a panic hook that counts panics and then
/// reports them as usual.
pub fn count_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

/// Panics counted so far in this test binary.
pub fn panics() -> u64 {
    PANICS.load(Ordering::SeqCst)
}

// ---------------------------------------------------------------------------
// Threads of this process, by name (`/proc/self/task/*/comm`).

/// How many threads of this process have a name starting with `prefix`.
pub fn threads_named(prefix: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .filter(|name| name.trim_end().starts_with(prefix))
        .count()
}

/// `server`'s ledger lock, held by a thread of scope `s` from the return of
/// [`hold_ledger`] until [`LedgerHold::release`] (or drop): requests then
/// pile up in flight, in a known state, without any sleep.
pub struct LedgerHold<'scope> {
    release: mpsc::Sender<()>,
    holder: Option<thread::ScopedJoinHandle<'scope, ()>>,
}

/// Takes `server`'s ledger lock in a new thread of `s`; returns once it is
/// held.
pub fn hold_ledger<'scope, 'env>(
    s: &'scope thread::Scope<'scope, 'env>,
    server: &'env Server,
) -> LedgerHold<'scope> {
    let (locked_tx, locked_rx) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let holder = s.spawn(move || {
        server
            .with_ledger(move |_| {
                locked_tx.send(()).unwrap();
                // A dropped sender releases too.
                let _ = release_rx.recv();
            })
            .unwrap();
    });
    locked_rx.recv().unwrap();
    LedgerHold {
        release,
        holder: Some(holder),
    }
}

impl LedgerHold<'_> {
    /// Releases the lock and waits for the holding thread.
    pub fn release(self) {}
}

impl Drop for LedgerHold<'_> {
    fn drop(&mut self) {
        let _ = self.release.send(());
        if let Some(holder) = self.holder.take() {
            let joined = holder.join();
            if !thread::panicking() {
                joined.unwrap();
            }
        }
    }
}
