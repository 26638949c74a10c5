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
