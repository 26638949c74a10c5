//! A safe, typed System V message-queue API over libc.
//!
//! This module holds every `unsafe` line of the crate: the library's, all
//! in the private `sys` submodule (one syscall per `unsafe` block), and a
//! few test-only blocks in its `#[cfg(test)]` `tests` submodule (a signal
//! handler and `pthread_kill`, to test the retry of `EINTR`; a thread's
//! signal mask, to test the deadline's fallback). Everything else is safe
//! code that makes the queues hard to misuse:
//!
//! - [`OwnedQueue`] creates a queue and removes it when dropped; [`Queue`] is
//!   a `Copy` handle for clients and worker threads.
//! - Sends take the body alone: the `mtype` is a separate, checked (> 0)
//!   argument and `msgsz` is always the body length (msgsnd(2)).
//! - Receives go into a [`MessageBuf`] whose capacity is the `msgsz` given to
//!   msgrcv(2); [`Received::body_len`] is what the kernel actually stored.
//! - One send and one receive, each with an optional deadline (an
//!   `Instant`): without one they block, retrying `EINTR`; with one they
//!   give up at it, never before, blocked in the kernel until a timer
//!   signal ends the wait ([`wake_signal`]). SysV itself has no timed call.
//! - Bodies are limited to [`MAX_BODY_BYTES`].
//! - Every failure is a [`SysvError`] that names the case callers act on and
//!   keeps the syscall's errno.
//!
//! Inside the crate it also holds `spawn_detached`, a bare pthread_create(3) for the
//! thread-per-request server (std's threads cost several more syscalls
//! each), because this is the one module allowed `unsafe`.
//!
//! System V queues are global to the machine and outlive processes: list
//! them with `ipcs -q`, remove a leftover with `ipcrm -q ID`.
//!
//! # Examples
//!
//! A request/reply exchange in the shape of the guichet protocol (requests
//! with `mtype = 1`, replies with the client's `reply_to`):
//!
//! ```
//! use std::time::{Duration, Instant};
//! use guichet::sysv::{MessageBuf, Mode, OwnedQueue, Queue};
//!
//! let server = OwnedQueue::create_private(Mode::DEFAULT)?;
//! let client = Queue::from_id(server.id());
//! let reply_to = (i64::from(std::process::id()) << 32) | 1;
//!
//! client.send(1, &[0u8; 40], None)?;
//! let mut req = MessageBuf::with_body_capacity(40)?;
//! server.recv(1, &mut req, None)?;
//! let in_a_second = Instant::now() + Duration::from_secs(1);
//! server.send(reply_to, req.body(), Some(in_a_second))?;
//!
//! let mut reply = MessageBuf::with_body_capacity(40)?;
//! let got = client.recv(reply_to, &mut reply, Some(in_a_second))?;
//! assert_eq!(got.body_len, 40);
//! server.remove()?;
//! # Ok::<(), guichet::sysv::SysvError>(())
//! ```

pub(crate) mod alarm;
mod buf;
mod error;
mod flags;
mod key;
mod process;
mod queue;
mod sys;
mod thread;
mod timeout;
pub(crate) mod wait;

#[cfg(test)]
mod tests;

pub use alarm::wake_signal;
pub use buf::{MessageBuf, Received};
pub use error::SysvError;
pub use flags::Mode;
pub(crate) use flags::{RecvFlags, SendFlags};
pub use key::{ftok, Key, QueueId};
/// The C `long` that holds a message's `mtype` (8 bytes on 64-bit Linux).
pub use libc::c_long;
pub(crate) use process::{current_pid, process_alive};
pub use queue::{OwnedQueue, Queue, QueueStat};
pub(crate) use thread::spawn_detached;

/// The longest body this layer sends or receives: 8192 bytes, Linux's
/// default `msgmax` (`/proc/sys/kernel/msgmax`).
///
/// Longer sends fail with [`SysvError::TooBig`] before any syscall. A system
/// whose `msgmax` was lowered below this refuses long bodies itself, also as
/// [`SysvError::TooBig`].
///
/// # Examples
///
/// ```
/// use guichet::sysv::{Mode, OwnedQueue, SysvError, MAX_BODY_BYTES};
///
/// let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
/// owned.send(1, &vec![0; MAX_BODY_BYTES], None)?;
/// let err = owned.send(1, &vec![0; MAX_BODY_BYTES + 1], None).unwrap_err();
/// assert!(matches!(err, SysvError::TooBig { errno: None, .. }));
/// owned.remove()?;
/// # Ok::<(), SysvError>(())
/// ```
pub const MAX_BODY_BYTES: usize = 8192;

/// The largest value [`Queue::set_max_bytes`] accepts: `i32::MAX`, the
/// largest `msgmnb` the kernel's sysctl can hold.
///
/// # Examples
///
/// ```
/// use guichet::sysv::{Mode, OwnedQueue, MAX_QUEUE_BYTES};
///
/// let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
/// assert!(owned.set_max_bytes(MAX_QUEUE_BYTES + 1).is_err()); // no syscall
/// owned.remove()?;
/// # Ok::<(), guichet::sysv::SysvError>(())
/// ```
pub const MAX_QUEUE_BYTES: u64 = i32::MAX as u64;
