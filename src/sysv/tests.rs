//! EINTR handling, which needs a signal delivered to one blocked thread:
//! that takes `pthread_kill`, so these tests live here, next to the only
//! module allowed to use `unsafe`; and the deadline's fallback when a
//! thread blocks the wake-up signal, which takes `pthread_sigmask`.
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

#[test]
fn recv_retries_eintr_transparently() -> Result<(), SysvError> {
    let _alone = install_handler();
    let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
    let q = owned.queue();
    let (receiver, tid) = spawn_with_tid(move || {
        let mut buf = MessageBuf::with_body_capacity(8)?;
        q.recv(3, &mut buf, None).map(|r| (r, buf.body().to_vec()))
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
    owned.send(3, b"late", None)?;
    let (got, body) = receiver.join().expect("receiver panicked")?;
    assert_eq!((got.mtype, body.as_slice()), (3, &b"late"[..]));
    owned.remove()
}

#[test]
fn send_retries_eintr_transparently() -> Result<(), SysvError> {
    let _alone = install_handler();
    let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
    owned.set_max_bytes(1)?;
    owned.send(1, b"x", None)?;
    let q = owned.queue();
    let (sender, tid) = spawn_with_tid(move || q.send(2, b"y", None));
    let id = owned.id().raw();
    for _ in 0..5 {
        wait_blocked(tid, libc::SYS_msgsnd, id);
        let before = SIGNALS_SEEN.load(Ordering::Relaxed);
        interrupt(&sender);
        // Handled (msgsnd interrupted), then blocked again: retried.
        let deadline = Instant::now() + PATIENCE;
        while SIGNALS_SEEN.load(Ordering::Relaxed) == before {
            assert!(Instant::now() < deadline, "SIGUSR2 never handled");
            thread::sleep(Duration::from_millis(1));
        }
    }
    wait_blocked(tid, libc::SYS_msgsnd, id);
    assert!(!sender.is_finished(), "EINTR must not end a blocking send");
    let mut buf = MessageBuf::with_body_capacity(1)?;
    owned.recv(1, &mut buf, None)?; // room for the blocked send
    sender.join().expect("sender panicked")?;
    let got = owned.recv(2, &mut buf, None)?;
    assert_eq!((got.mtype, buf.body()), (2, &b"y"[..]));
    owned.remove()
}

#[test]
fn msg_noerror_truncates_and_takes_the_message_off_the_queue() -> Result<(), SysvError> {
    // The server's receive: one byte more than a valid message, so that an
    // over-long one is consumed (never wedges the queue) yet seen as long.
    let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
    let body: Vec<u8> = (0..100u8).collect();
    owned.send(1, &body, None)?;
    let mut buf = MessageBuf::with_body_capacity(41)?;
    let got = owned.recv_flags(1, &mut buf, super::RecvFlags::NOERROR)?;
    assert_eq!((got.mtype, buf.body()), (1, &body[..41]));
    // Likewise without waiting (the server's drain).
    owned.send(1, &body, None)?;
    let flags = super::RecvFlags::NOWAIT | super::RecvFlags::NOERROR;
    let got = owned.recv_flags(1, &mut buf, flags)?;
    assert_eq!((got.mtype, buf.body()), (1, &body[..41]));
    assert_eq!(
        owned.stat()?.messages,
        0,
        "the tail is discarded, not requeued"
    );
    owned.remove()
}

/// Blocks `signo` in the calling thread's signal mask.
fn block_in_this_thread(signo: libc::c_int) {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the writable set it is given.
    assert_eq!(unsafe { libc::sigemptyset(set.as_mut_ptr()) }, 0);
    // SAFETY: `set` was initialised just above; sigaddset only writes it.
    assert_eq!(unsafe { libc::sigaddset(set.as_mut_ptr(), signo) }, 0);
    // SAFETY: `set` is initialised; the old mask is not asked for.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), std::ptr::null_mut()) };
    assert_eq!(rc, 0);
}

#[test]
fn a_thread_that_blocks_the_wake_signal_still_times_out() -> Result<(), SysvError> {
    // A thread of a program that takes its signals with sigwait(3) has
    // them blocked: the alarm's signal would never interrupt its msgrcv,
    // so its waits must poll instead, and still end.
    let Some(signo) = wake_signal() else {
        return Ok(()); // polling anyway
    };
    let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
    let q = owned.queue();
    let (done, finished) = std::sync::mpsc::channel();
    thread::spawn(move || {
        block_in_this_thread(signo);
        let buf = MessageBuf::with_body_capacity(8).map_err(|e| e.to_string());
        let start = Instant::now();
        let result = buf.and_then(|mut buf| {
            q.recv(2, &mut buf, Some(start + Duration::from_millis(20)))
                .map_err(|e| e.to_string())
        });
        let _ = done.send((result.map(|_| ()), start.elapsed()));
    });
    // Generous: a wait that never ends is the failure looked for.
    let (result, waited) = finished
        .recv_timeout(Duration::from_secs(30))
        .expect("a wait with the wake-up signal blocked never ended");
    assert!(
        result.as_ref().is_err_and(|e| e.contains("timed out")),
        "{result:?}"
    );
    assert!(waited >= Duration::from_millis(20), "{waited:?}");
    owned.remove()
}

/// `recv_polling`, what a server's receive loop tries before it blocks:
/// nothing queued gives `None` (spin or not), a queued message is taken,
/// and a removed queue is an error, not `None`.
#[test]
fn recv_polling_takes_what_is_queued_and_never_blocks() {
    let owned = OwnedQueue::create_private(Mode::DEFAULT).unwrap();
    let queue = owned.queue();
    let mut buf = MessageBuf::with_body_capacity(8).unwrap();
    for spin in [Duration::ZERO, Duration::from_micros(200)] {
        let polled = queue.recv_polling(1, &mut buf, RecvFlags::empty(), spin);
        assert!(matches!(polled, Ok(None)), "{spin:?}: {polled:?}");
    }
    queue.send(1, b"request", None).unwrap();
    let polled = queue.recv_polling(1, &mut buf, RecvFlags::empty(), Duration::ZERO);
    assert!(matches!(polled, Ok(Some(_))), "{polled:?}");
    assert_eq!(buf.body(), b"request");
    owned.remove().unwrap();
    let polled = queue.recv_polling(1, &mut buf, RecvFlags::empty(), Duration::ZERO);
    assert!(
        matches!(polled, Err(SysvError::QueueRemoved { .. })),
        "{polled:?}"
    );
}
