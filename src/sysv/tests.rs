//! EINTR handling, which needs a signal delivered to one blocked thread:
//! that takes `pthread_kill`, so these tests live here, next to the only
//! module allowed to use `unsafe`.
#![allow(unsafe_code)]

use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex, MutexGuard, Once, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::*;
use crate::test_support::{current_tid, wait_blocked};

/// How long a thread may take to do what it is due to do at once, however
/// loaded the machine: a liveness bound, never a speed requirement.
const PATIENCE: Duration = Duration::from_secs(60);

static SIGNALS_SEEN: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    // Atomics are async-signal-safe.
    SIGNALS_SEEN.fetch_add(1, Ordering::Relaxed);
}

/// Installs a SIGUSR2 handler so that the signal interrupts a blocked
/// msgsnd/msgrcv with EINTR instead of killing the test process, and
/// returns a guard that keeps the other tests here from signalling
/// meanwhile, so that [`SIGNALS_SEEN`] counts this test's signals only.
fn install_handler() -> MutexGuard<'static, ()> {
    static ALONE: Mutex<()> = Mutex::new(());
    let alone = ALONE.lock().unwrap_or_else(PoisonError::into_inner);
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let handler = count_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: `count_signal` is an `extern "C"` function that only touches
        // an atomic, which is async-signal-safe; SIGUSR2 is not used by the
        // Rust runtime or the test harness.
        let previous = unsafe { libc::signal(libc::SIGUSR2, handler) };
        assert_ne!(previous, libc::SIG_ERR, "signal(SIGUSR2) failed");
    });
    alone
}

/// Spawns `job` and returns its handle and kernel thread id.
fn spawn_with_tid<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> (JoinHandle<T>, u32) {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let _ = tx.send(current_tid());
        job()
    });
    let tid = rx.recv_timeout(PATIENCE).expect("the thread started");
    (handle, tid)
}

/// Sends SIGUSR2 to the thread of `handle`.
fn interrupt<T>(handle: &JoinHandle<T>) {
    // SAFETY: the thread has not been joined or detached (we hold its
    // JoinHandle), so its pthread_t is valid even if it has exited.
    let rc = unsafe { libc::pthread_kill(handle.as_pthread_t(), libc::SIGUSR2) };
    assert_eq!(rc, 0, "pthread_kill failed");
}

/// Interrupts the thread until it finishes, for at most [`PATIENCE`].
fn interrupt_until_finished<T>(handle: &JoinHandle<T>) {
    let deadline = Instant::now() + PATIENCE;
    while !handle.is_finished() {
        assert!(
            Instant::now() < deadline,
            "thread did not finish after signals"
        );
        interrupt(handle);
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn recv_retries_eintr_transparently() -> Result<(), SysvError> {
    let _alone = install_handler();
    let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
    let q = owned.queue();
    let (receiver, tid) = spawn_with_tid(move || {
        let mut buf = MessageBuf::with_body_capacity(8)?;
        q.recv(3, &mut buf, RecvFlags::empty())
            .map(|r| (r, buf.body().to_vec()))
    });
    let id = owned.id().raw();
    for _ in 0..5 {
        wait_blocked(tid, libc::SYS_msgrcv, id);
        let before = SIGNALS_SEEN.load(Ordering::Relaxed);
        interrupt(&receiver);
        // Handled (msgrcv interrupted), then blocked again: retried.
        let deadline = Instant::now() + PATIENCE;
        while SIGNALS_SEEN.load(Ordering::Relaxed) == before {
            assert!(Instant::now() < deadline, "SIGUSR2 never handled");
            thread::sleep(Duration::from_millis(1));
        }
    }
    wait_blocked(tid, libc::SYS_msgrcv, id);
    assert!(
        !receiver.is_finished(),
        "EINTR must not end a blocking recv"
    );
    owned.send(3, b"late", SendFlags::empty())?;
    let (got, body) = receiver.join().expect("receiver panicked")?;
    assert_eq!((got.mtype, body.as_slice()), (3, &b"late"[..]));
    owned.remove()
}

#[test]
fn stop_token_ends_a_blocked_recv_at_its_next_eintr() -> Result<(), SysvError> {
    let _alone = install_handler();
    let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
    let q = owned.queue();
    let stop = StopToken::new();
    let token = stop.clone();
    let (receiver, tid) = spawn_with_tid(move || {
        let mut buf = MessageBuf::with_body_capacity(8)?;
        q.recv_stoppable(3, &mut buf, RecvFlags::empty(), &token)
    });
    wait_blocked(tid, libc::SYS_msgrcv, owned.id().raw());
    stop.stop();
    // As documented: the flag alone does not wake a thread inside
    // msgrcv(2); nothing else has, so it is still asleep there.
    assert!(crate::test_support::blocked_in(
        tid,
        libc::SYS_msgrcv,
        owned.id().raw()
    ));
    assert!(!receiver.is_finished());
    interrupt_until_finished(&receiver);
    let result = receiver.join().expect("receiver panicked");
    assert!(
        matches!(result, Err(SysvError::Stopped { op: "msgrcv" })),
        "{result:?}"
    );
    owned.remove()
}

#[test]
fn stop_token_ends_a_send_blocked_on_a_full_queue() -> Result<(), SysvError> {
    let _alone = install_handler();
    let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
    owned.set_max_bytes(1)?;
    owned.send(1, b"x", SendFlags::empty())?;
    let q = owned.queue();
    let stop = StopToken::new();
    let token = stop.clone();
    let (sender, tid) =
        spawn_with_tid(move || q.send_stoppable(1, b"y", SendFlags::empty(), &token));
    // Blocked, not finished: a send to a full queue waits.
    wait_blocked(tid, libc::SYS_msgsnd, owned.id().raw());
    assert!(!sender.is_finished(), "send to a full queue must block");
    stop.stop();
    interrupt_until_finished(&sender);
    let result = sender.join().expect("sender panicked");
    assert!(
        matches!(result, Err(SysvError::Stopped { op: "msgsnd" })),
        "{result:?}"
    );
    assert_eq!(owned.stat()?.messages, 1);
    owned.remove()
}
