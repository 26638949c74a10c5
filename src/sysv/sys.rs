//! The raw syscalls, and the only `unsafe` code of the crate.
//!
//! Each function here is safe to call with any argument: it checks the
//! invariants the kernel relies on (buffer lengths, pointer validity) itself,
//! so soundness is local to this file. Errors come back as raw errnos; the
//! callers in `queue.rs` turn them into typed [`SysvError`](super::SysvError)s
//! because only they know which errnos are ambiguous for their call.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::mem::{size_of, MaybeUninit};

use libc::{c_int, c_long, key_t};

/// The raw errno of the call that just failed.
fn last_errno() -> i32 {
    // `last_os_error` always carries a raw code; 0 would only show up if the
    // C library broke its contract, and it then reads as an unnamed errno.
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// How many bytes of `words` follow the leading `mtype` word.
fn body_room(words: &[c_long]) -> usize {
    words
        .len()
        .saturating_sub(1)
        .saturating_mul(size_of::<c_long>())
}

/// ftok(3).
pub(super) fn ftok(path: &CStr, proj_id: c_int) -> Result<key_t, i32> {
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call;
    // ftok(3) only reads it (it calls stat(2) on it).
    let key = unsafe { libc::ftok(path.as_ptr(), proj_id) };
    if key == -1 {
        Err(last_errno())
    } else {
        Ok(key)
    }
}

/// msgget(2).
pub(super) fn msgget(key: key_t, msgflg: c_int) -> Result<c_int, i32> {
    // SAFETY: msgget(2) takes no pointers; any argument values are accepted
    // by the kernel (bad ones yield an errno).
    let id = unsafe { libc::msgget(key, msgflg) };
    if id == -1 {
        Err(last_errno())
    } else {
        Ok(id)
    }
}

/// msgsnd(2) of the message laid out in `words`: `words[0]` is `mtype`, the
/// `body_len` bytes after it are the body.
///
/// Returns `EINVAL` without a syscall if `words` is shorter than that: the
/// kernel would otherwise read past the buffer.
pub(super) fn msgsnd(
    msqid: c_int,
    words: &[c_long],
    body_len: usize,
    msgflg: c_int,
) -> Result<(), i32> {
    if words.is_empty() || body_len > body_room(words) {
        return Err(libc::EINVAL);
    }
    // SAFETY: `words` is a live, aligned buffer of `mtype` followed by at
    // least `body_len` readable bytes (checked above). msgsnd(2) reads exactly
    // `sizeof(long) + msgsz` bytes from it and keeps no pointer.
    let rc = unsafe { libc::msgsnd(msqid, words.as_ptr().cast(), body_len, msgflg) };
    if rc == -1 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

/// msgrcv(2) into `words`: on success `words[0]` holds the `mtype` and the
/// returned number of body bytes follow it.
///
/// Returns `EINVAL` without a syscall if `words` cannot hold `body_capacity`
/// body bytes: the kernel would otherwise write past the buffer.
pub(super) fn msgrcv(
    msqid: c_int,
    words: &mut [c_long],
    body_capacity: usize,
    msgtyp: c_long,
    msgflg: c_int,
) -> Result<usize, i32> {
    if words.is_empty() || body_capacity > body_room(words) {
        return Err(libc::EINVAL);
    }
    // SAFETY: `words` is a live, aligned, exclusively borrowed buffer with
    // room for `mtype` plus `body_capacity` bytes (checked above); msgrcv(2)
    // writes at most `sizeof(long) + msgsz` bytes and keeps no pointer. Every
    // bit pattern is a valid `c_long`, so partially written words are fine.
    let n = unsafe {
        libc::msgrcv(
            msqid,
            words.as_mut_ptr().cast(),
            body_capacity,
            msgtyp,
            msgflg,
        )
    };
    if n < 0 {
        return Err(last_errno());
    }
    // msgrcv(2) never copies more than msgsz bytes, so `n <= body_capacity`;
    // the `min` only keeps a misbehaving kernel from making callers index out
    // of bounds.
    Ok(usize::try_from(n).map_or(0, |n| n.min(body_capacity)))
}

/// msgctl(2) `IPC_STAT`.
pub(super) fn msgctl_stat(msqid: c_int) -> Result<libc::msqid_ds, i32> {
    let mut ds = MaybeUninit::<libc::msqid_ds>::uninit();
    // SAFETY: `ds` is a writable `msqid_ds` that outlives the call; with
    // IPC_STAT the kernel fills it in whole (glibc selects the 64-bit layout
    // that matches `libc::msqid_ds` on 64-bit Linux).
    let rc = unsafe { libc::msgctl(msqid, libc::IPC_STAT, ds.as_mut_ptr()) };
    if rc == -1 {
        return Err(last_errno());
    }
    // SAFETY: IPC_STAT succeeded, so the kernel initialised every field of
    // `ds` (padding included: it copies a zeroed kernel-side struct).
    Ok(unsafe { ds.assume_init() })
}

/// msgctl(2) `IPC_SET` from a struct previously read by [`msgctl_stat`].
pub(super) fn msgctl_set(msqid: c_int, ds: &libc::msqid_ds) -> Result<(), i32> {
    // msgctl's prototype takes `*mut` for every command; IPC_SET only reads,
    // but a private copy keeps the shared borrow honest anyway.
    let mut copy = *ds;
    // SAFETY: `copy` is a fully initialised `msqid_ds` that outlives the call;
    // with IPC_SET the kernel only reads `msg_perm.{uid,gid,mode}` and
    // `msg_qbytes` from it.
    let rc = unsafe { libc::msgctl(msqid, libc::IPC_SET, &mut copy) };
    if rc == -1 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

/// msgctl(2) `IPC_RMID`.
pub(super) fn msgctl_rmid(msqid: c_int) -> Result<(), i32> {
    // SAFETY: IPC_RMID ignores the buffer argument (msgctl(2)), so a null
    // pointer is never dereferenced.
    let rc = unsafe { libc::msgctl(msqid, libc::IPC_RMID, std::ptr::null_mut()) };
    if rc == -1 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

/// kill(2) with signal 0: whether `pid` names a process, sending nothing.
pub(super) fn kill_probe(pid: libc::pid_t) -> Result<(), i32> {
    // SAFETY: kill(2) takes no pointers; with signal 0 it only checks that
    // `pid` exists and may be signalled, and delivers nothing.
    let rc = unsafe { libc::kill(pid, 0) };
    if rc == -1 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

/// Runs `child` in the child process after every fork(2) of this process
/// (pthread_atfork(3), with no prepare or parent handler). Returns the
/// error number on failure (`ENOMEM`). `child` must be async-signal-safe:
/// the child of a threaded process may call nothing else.
pub(crate) fn on_fork_child(child: extern "C" fn()) -> Result<(), i32> {
    let child: unsafe extern "C" fn() = child;
    // SAFETY: pthread_atfork(3) stores the function pointer, a `'static`
    // function, and calls it in the child after fork; the caller's handler
    // must be async-signal-safe there (the child of a multithreaded
    // process may only call such functions), which its own docs promise.
    match unsafe { libc::pthread_atfork(None, None, Some(child)) } {
        0 => Ok(()),
        errno => Err(errno),
    }
}

/// Forks; the child runs `child` and leaves with its result as exit code
/// (_exit(2): no atexit handler, no stdio flush), and the parent returns
/// the child's wait status, or the errno of fork(2) or waitpid(2). For
/// tests: the child of a threaded process may only call
/// async-signal-safe functions, so `child` must not allocate, lock or
/// panic.
#[cfg(test)]
pub(crate) fn fork_and_wait(child: fn() -> i32) -> Result<i32, i32> {
    // SAFETY: fork(2) has no memory-safety precondition; the child runs
    // only `child`, which callers keep async-signal-safe, then _exit.
    let pid = unsafe { libc::fork() };
    if pid == -1 {
        return Err(last_errno());
    }
    if pid == 0 {
        let code = child();
        // SAFETY: _exit(2) ends the child at once and runs nothing of the
        // parent's (no atexit handler, no destructor).
        unsafe { libc::_exit(code) }
    }
    let mut status: c_int = 0;
    loop {
        // SAFETY: `status` is a writable c_int that outlives the call.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        match rc {
            -1 if last_errno() == libc::EINTR => {}
            -1 => return Err(last_errno()),
            _ => return Ok(status),
        }
    }
}

/// Starts `job` on a new detached pthread with a `stack_bytes` stack:
/// pthread_create(3) and nothing else (see `super::thread` for why not
/// `std::thread`). On failure the thread never ran, and `job` comes back
/// with the error number.
pub(super) fn spawn_detached<F>(stack_bytes: usize, job: F) -> Result<(), (i32, F)>
where
    F: FnOnce() + Send + 'static,
{
    let mut attr = MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: pthread_attr_init(3) initialises the attribute object it is
    // given; `attr` is writable and outlives every use below.
    let rc = unsafe { libc::pthread_attr_init(attr.as_mut_ptr()) };
    if rc != 0 {
        return Err((rc, job));
    }
    let attr_ptr = attr.as_mut_ptr();
    let result = create_detached(attr_ptr, stack_bytes, job);
    // SAFETY: `attr` was initialised by pthread_attr_init above and is
    // destroyed exactly once; pthread_create(3) copied what it needed.
    unsafe { libc::pthread_attr_destroy(attr_ptr) };
    result
}

fn create_detached<F>(
    attr: *mut libc::pthread_attr_t,
    stack_bytes: usize,
    job: F,
) -> Result<(), (i32, F)>
where
    F: FnOnce() + Send + 'static,
{
    // SAFETY: `attr` points to an attribute object initialised by the
    // caller; the call only writes the stack size into it (EINVAL below
    // PTHREAD_STACK_MIN, which we report).
    let rc = unsafe { libc::pthread_attr_setstacksize(attr, stack_bytes) };
    if rc != 0 {
        return Err((rc, job));
    }
    // SAFETY: as above; PTHREAD_CREATE_DETACHED is a valid state.
    let rc = unsafe { libc::pthread_attr_setdetachstate(attr, libc::PTHREAD_CREATE_DETACHED) };
    if rc != 0 {
        return Err((rc, job));
    }
    let raw = Box::into_raw(Box::new(job));
    let mut thread = MaybeUninit::<libc::pthread_t>::uninit();
    // SAFETY: `attr` is initialised; `run_job::<F>` is an `extern "C"`
    // start routine that takes back exactly the `Box<F>` whose pointer is
    // its argument; on success ownership of `raw` passes to the new thread,
    // which is detached so nobody joins it or uses `thread` afterwards.
    let rc = unsafe { libc::pthread_create(thread.as_mut_ptr(), attr, run_job::<F>, raw.cast()) };
    if rc != 0 {
        // SAFETY: pthread_create failed, so no thread started and `raw`,
        // from Box::into_raw above, is still ours alone.
        let job = unsafe { Box::from_raw(raw) };
        return Err((rc, *job));
    }
    Ok(())
}

/// The start routine of [`spawn_detached`]'s threads.
extern "C" fn run_job<F>(arg: *mut libc::c_void) -> *mut libc::c_void
where
    F: FnOnce() + Send + 'static,
{
    // SAFETY: `arg` is the `Box<F>` that `create_detached` leaked for this
    // thread alone (pthread_create succeeded, so it did not take it back).
    let job = unsafe { Box::from_raw(arg.cast::<F>()) };
    // A panic must not unwind into the C frame that called us (that would
    // abort the process): stop it here, as std does for its threads. The
    // job's captures have been dropped by then, during unwinding.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    std::ptr::null_mut()
}

/// The handler of the wake-up signal (`super::alarm`): it does nothing.
/// Its only job is to exist, so that the signal interrupts a blocked
/// msgrcv(2)/msgsnd(2) with `EINTR` instead of killing the process. It
/// touches no memory and not `errno`, so it is async-signal-safe.
extern "C" fn wake_up(_signo: c_int) {}

/// The current disposition of `signo` (sigaction(2) with no new action):
/// `SIG_DFL`, `SIG_IGN` or a handler's address.
pub(super) fn signal_disposition(signo: c_int) -> Result<libc::sighandler_t, i32> {
    let mut old = MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: a null new action makes sigaction(2) only write the current
    // one into `old`, a writable `struct sigaction` that outlives the call.
    let rc = unsafe { libc::sigaction(signo, std::ptr::null(), old.as_mut_ptr()) };
    if rc == -1 {
        return Err(last_errno());
    }
    // SAFETY: sigaction(2) succeeded, so the kernel filled in `old` whole.
    let old = unsafe { old.assume_init() };
    Ok(old.sa_sigaction)
}

/// Installs [`wake_up`] as the handler of `signo`, with `SA_RESTART` (so
/// that the embedding program's own restartable system calls are resumed
/// if they ever see it) and nothing else blocked while it runs. Returns the
/// handler's address as installed: what [`signal_disposition`] reports
/// while it stays installed. (Rust does not promise one address per
/// function: another cast of `wake_up` may give another copy's.)
pub(super) fn install_wake_up(signo: c_int) -> Result<libc::sighandler_t, i32> {
    let mut mask = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset(3) initialises the set it is given, a writable
    // `sigset_t` that outlives the call.
    let rc = unsafe { libc::sigemptyset(mask.as_mut_ptr()) };
    if rc == -1 {
        return Err(last_errno());
    }
    // SAFETY: every field of `struct sigaction` (integers, a set of bits, a
    // function address that may be null) is valid when all zero.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    let handler = wake_up as extern "C" fn(c_int) as libc::sighandler_t;
    action.sa_sigaction = handler;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: sigemptyset succeeded above, so `mask` is initialised.
    action.sa_mask = unsafe { mask.assume_init() };
    // SAFETY: `action` is a fully initialised `struct sigaction` whose
    // handler is an `extern "C" fn(c_int)` that lives as long as the
    // program and is async-signal-safe; the old action is not asked for.
    let rc = unsafe { libc::sigaction(signo, &action, std::ptr::null_mut()) };
    if rc == -1 {
        Err(last_errno())
    } else {
        Ok(handler)
    }
}

/// Whether `signo` is blocked in the calling thread's signal mask.
pub(super) fn signal_blocked(signo: c_int) -> Result<bool, i32> {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: with a null new set pthread_sigmask(3) only writes the
    // thread's current mask into `set`, writable and outliving the call.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), set.as_mut_ptr()) };
    if rc != 0 {
        return Err(rc);
    }
    // SAFETY: pthread_sigmask succeeded, so `set` holds the mask; the
    // call only reads it.
    let member = unsafe { libc::sigismember(set.as_ptr(), signo) };
    match member {
        -1 => Err(last_errno()),
        0 => Ok(false),
        _ => Ok(true),
    }
}

/// `CLOCK_MONOTONIC` now (clock_gettime(2)), the clock `Instant` reads.
pub(super) fn monotonic_now() -> Result<libc::timespec, i32> {
    clock_now(libc::CLOCK_MONOTONIC)
}

/// The CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`).
#[cfg(feature = "testkit")]
pub(super) fn thread_cpu_now() -> Result<libc::timespec, i32> {
    clock_now(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn clock_now(clock: libc::clockid_t) -> Result<libc::timespec, i32> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a writable timespec that outlives the call.
    let rc = unsafe { libc::clock_gettime(clock, &mut now) };
    if rc == -1 {
        Err(last_errno())
    } else {
        Ok(now)
    }
}

/// A POSIX timer on `CLOCK_MONOTONIC` that signals one thread, the one
/// that created it (timer_create(2) with `SIGEV_THREAD_ID`).
///
/// Not `Send`: it names its thread, and lives in that thread's local
/// storage. Deleted on drop, unless the process forked since it was
/// created: timers are not inherited (timer_create(2)), and the id may
/// then name a timer of the child's own.
#[derive(Debug)]
pub(super) struct ThreadTimer {
    id: libc::timer_t,
    pid: u32,
}

impl ThreadTimer {
    /// A disarmed timer that sends `signo` to the calling thread.
    pub(super) fn new(signo: c_int) -> Result<ThreadTimer, i32> {
        // SAFETY: gettid(2) takes no argument and cannot fail.
        let tid = unsafe { libc::gettid() };
        // SAFETY: every field of `struct sigevent` (integers, a union of an
        // integer and a pointer nobody dereferences) is valid when zero.
        let mut event: libc::sigevent = unsafe { std::mem::zeroed() };
        event.sigev_notify = libc::SIGEV_THREAD_ID;
        event.sigev_signo = signo;
        event.sigev_notify_thread_id = tid;
        let mut id = MaybeUninit::<libc::timer_t>::uninit();
        // SAFETY: `event` is a fully initialised sigevent and `id` a
        // writable timer_t, both outliving the call; with SIGEV_THREAD_ID
        // the C library starts no thread and keeps no pointer to `event`.
        let rc = unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut event, id.as_mut_ptr()) };
        if rc == -1 {
            return Err(last_errno());
        }
        Ok(ThreadTimer {
            // SAFETY: timer_create succeeded, so it wrote the new id.
            id: unsafe { id.assume_init() },
            pid: std::process::id(),
        })
    }

    /// Whether this timer belongs to the calling process (not a copy a
    /// forked child inherited with its parent's memory).
    pub(super) fn is_ours(&self) -> bool {
        self.pid == std::process::id()
    }

    /// Fires at the absolute `CLOCK_MONOTONIC` time `at`, then every
    /// `every` until disarmed.
    pub(super) fn arm_at(&self, at: libc::timespec, every: libc::timespec) -> Result<(), i32> {
        self.set(
            libc::TIMER_ABSTIME,
            libc::itimerspec {
                it_interval: every,
                it_value: at,
            },
        )
    }

    /// Stops the timer. A signal it already sent is delivered when this
    /// returns to user space, to the no-op handler, before the caller goes
    /// on.
    pub(super) fn disarm(&self) -> Result<(), i32> {
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        self.set(
            0,
            libc::itimerspec {
                it_interval: zero,
                it_value: zero,
            },
        )
    }

    fn set(&self, flags: c_int, spec: libc::itimerspec) -> Result<(), i32> {
        // SAFETY: `self.id` came from a successful timer_create in this
        // address space (a forked child has a copy of whatever the C
        // library keeps behind it) and is deleted only by drop; in a child
        // the kernel knows no such timer and says EINVAL (callers check
        // `is_ours` first so as not to touch a timer the child made).
        // `spec` is a valid itimerspec that outlives the call; the old
        // value is not asked for.
        let rc = unsafe { libc::timer_settime(self.id, flags, &spec, std::ptr::null_mut()) };
        if rc == -1 {
            Err(last_errno())
        } else {
            Ok(())
        }
    }
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        if self.is_ours() {
            // SAFETY: the id came from timer_create in this process and is
            // deleted exactly once, here.
            unsafe { libc::timer_delete(self.id) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_buffers_are_refused_before_the_kernel_sees_them() {
        // The length check runs before any syscall, so the id is irrelevant.
        let words = [1 as c_long; 2];
        assert_eq!(msgsnd(0, &words, 9, 0), Err(libc::EINVAL));
        assert_eq!(msgsnd(0, &[], 0, 0), Err(libc::EINVAL));
        let mut words = [0 as c_long; 2];
        assert_eq!(msgrcv(0, &mut words, 9, 0, 0), Err(libc::EINVAL));
        assert_eq!(msgrcv(0, &mut [], 0, 0, 0), Err(libc::EINVAL));
    }
}
