//! Queue handles: [`Queue`] (non-owning, `Copy`) and [`OwnedQueue`] (removes
//! its queue on drop).

use std::ops::Deref;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libc::{c_int, c_long};

use super::buf::Outgoing;
use super::wait::{self, Failure};
use super::{
    sys, Key, MessageBuf, Mode, QueueId, Received, RecvFlags, SendFlags, SysvError, MAX_BODY_BYTES,
    MAX_QUEUE_BYTES,
};

const OP_MSGGET: &str = "msgget";
const OP_MSGSND: &str = "msgsnd";
const OP_MSGRCV: &str = "msgrcv";
const OP_STAT: &str = "msgctl(IPC_STAT)";
const OP_SET: &str = "msgctl(IPC_SET)";
const OP_RMID: &str = "msgctl(IPC_RMID)";

/// A handle on an existing System V message queue.
///
/// It is only an id: `Copy`, `Send`, `Sync`, and it does not remove the
/// queue when dropped (see [`OwnedQueue`] for that). Any number of threads
/// may send and receive through copies of it at once; the kernel serialises
/// them.
///
/// # Examples
///
/// ```
/// use guichet::sysv::{MessageBuf, Mode, OwnedQueue, Queue};
///
/// let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
/// // A client only needs the id (or the key) to talk to the queue.
/// let client = Queue::from_id(owned.id());
/// client.send(1, b"request", None)?;
/// let mut buf = MessageBuf::with_body_capacity(64)?;
/// let got = owned.recv(1, &mut buf, None)?;
/// assert_eq!((got.mtype, buf.body()), (1, &b"request"[..]));
/// owned.remove()?;
/// # Ok::<(), guichet::sysv::SysvError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Queue {
    id: QueueId,
}

/// What msgctl(2) `IPC_STAT` reports about a queue.
///
/// # Examples
///
/// ```
/// use guichet::sysv::{Mode, OwnedQueue, QueueStat};
///
/// let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
/// let st: QueueStat = owned.stat()?;
/// println!(
///     "{} messages, {}/{} bytes, mode {}, last send by {:?}",
///     st.messages, st.bytes, st.max_bytes, st.mode, st.last_send_pid
/// );
/// owned.remove()?;
/// # Ok::<(), guichet::sysv::SysvError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStat {
    /// The key the queue was created with ([`Key::PRIVATE`] for a private
    /// queue).
    pub key: Key,
    /// Messages in the queue (`msg_qnum`).
    pub messages: u64,
    /// Body bytes in the queue (`__msg_cbytes`; `mtype`s are not counted).
    pub bytes: u64,
    /// The most body bytes the queue may hold (`msg_qbytes`); Linux also
    /// caps the number of messages at this value.
    pub max_bytes: u64,
    /// The pid of the last msgsnd(2), if any (`msg_lspid`).
    pub last_send_pid: Option<u32>,
    /// The pid of the last msgrcv(2), if any (`msg_lrpid`).
    pub last_recv_pid: Option<u32>,
    /// When the last msgsnd(2) happened, if any (`msg_stime`, 1 s
    /// resolution).
    pub last_send_time: Option<SystemTime>,
    /// When the last msgrcv(2) happened, if any (`msg_rtime`).
    pub last_recv_time: Option<SystemTime>,
    /// When the queue was created or last changed by `IPC_SET`
    /// (`msg_ctime`).
    pub last_change_time: Option<SystemTime>,
    /// The permission bits.
    pub mode: Mode,
    /// The owner's uid.
    pub uid: u32,
    /// The owner's gid.
    pub gid: u32,
    /// The creator's uid.
    pub creator_uid: u32,
    /// The creator's gid.
    pub creator_gid: u32,
}

/// The system's `msgmax` (largest body msgsnd(2) accepts) in this IPC
/// namespace, if readable.
fn system_msgmax_bytes() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/kernel/msgmax")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Seconds since the epoch as a time; 0 (never) and out-of-range values as
/// `None`.
fn epoch_secs(secs: libc::time_t) -> Option<SystemTime> {
    let secs = u64::try_from(secs).ok().filter(|&s| s > 0)?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// How long a send or receive with a deadline polls before it blocks: a
/// few polls, for a message already on its way.
const QUEUE_SPIN: Duration = Duration::from_micros(5);

/// The error of a failed msgrcv(2) into a buffer of `body_capacity` bytes.
fn recv_error(errno: i32, body_capacity: usize) -> SysvError {
    match errno {
        // IPC_NOWAIT and nothing matched: a deadline of now has passed.
        libc::ENOMSG => SysvError::TimedOut {
            op: OP_MSGRCV,
            errno,
        },
        libc::E2BIG => SysvError::TooBig {
            op: OP_MSGRCV,
            errno: Some(errno),
            limit_bytes: body_capacity,
        },
        // msgsz is a usize <= MAX_BODY_BYTES and MSG_COPY is never passed,
        // so EINVAL can only mean a dead id (msgrcv(2)).
        _ => SysvError::from_errno(OP_MSGRCV, errno, true),
    }
}

/// `mtype` and `body` laid out for msgsnd(2), once both are checked.
fn outgoing(mtype: c_long, body: &[u8]) -> Result<Outgoing, SysvError> {
    if mtype <= 0 {
        return Err(SysvError::InvalidArgument {
            what: "mtype must be > 0",
        });
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(SysvError::TooBig {
            op: OP_MSGSND,
            errno: None,
            limit_bytes: MAX_BODY_BYTES,
        });
    }
    Ok(Outgoing::new(mtype, body))
}

/// A pid from the kernel; 0 (none yet) as `None`.
fn pid(pid: libc::pid_t) -> Option<u32> {
    u32::try_from(pid).ok().filter(|&p| p > 0)
}

impl From<&libc::msqid_ds> for QueueStat {
    fn from(ds: &libc::msqid_ds) -> Self {
        QueueStat {
            key: Key::new(ds.msg_perm.__key),
            messages: ds.msg_qnum,
            bytes: ds.__msg_cbytes,
            max_bytes: ds.msg_qbytes,
            last_send_pid: pid(ds.msg_lspid),
            last_recv_pid: pid(ds.msg_lrpid),
            last_send_time: epoch_secs(ds.msg_stime),
            last_recv_time: epoch_secs(ds.msg_rtime),
            last_change_time: epoch_secs(ds.msg_ctime),
            mode: Mode::from_kernel(u32::from(ds.msg_perm.mode)),
            uid: ds.msg_perm.uid,
            gid: ds.msg_perm.gid,
            creator_uid: ds.msg_perm.cuid,
            creator_gid: ds.msg_perm.cgid,
        }
    }
}

impl Queue {
    /// Opens the existing queue named by `key` (msgget(2) with no flags).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::sysv::{ftok, Key, Mode, OwnedQueue, Queue, SysvError};
    ///
    /// let dir = std::env::temp_dir();
    /// let key = ftok(&dir, b'd')?;
    /// match Queue::open(key) {
    ///     Ok(q) => println!("{key} is queue {}", q.id()),
    ///     Err(SysvError::NotFound { .. }) => println!("no queue for {key}"),
    ///     Err(e) => return Err(e),
    /// }
    /// assert!(Queue::open(Key::PRIVATE).is_err());
    /// # Ok::<(), SysvError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - [`SysvError::InvalidArgument`] for [`Key::PRIVATE`]: msgget(2) would
    ///   create a new queue instead of opening one;
    /// - [`SysvError::NotFound`] (`ENOENT`) if no queue has this key;
    /// - [`SysvError::PermissionDenied`] (`EACCES`);
    /// - [`SysvError::Other`] for any other errno of msgget(2).
    pub fn open(key: Key) -> Result<Queue, SysvError> {
        if key.is_private() {
            return Err(SysvError::InvalidArgument {
                what: "Queue::open needs a public key: IPC_PRIVATE would create a queue",
            });
        }
        sys::msgget(key.raw(), 0)
            .map(|id| Queue {
                id: QueueId::from_kernel(id),
            })
            .map_err(|errno| SysvError::from_errno(OP_MSGGET, errno, false))
    }

    /// A handle on the queue with this id, e.g. one a server announced.
    ///
    /// Nothing is checked: a wrong id surfaces as
    /// [`SysvError::QueueRemoved`] on first use.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::sysv::{Mode, OwnedQueue, Queue};
    ///
    /// let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
    /// assert_eq!(Queue::from_id(owned.id()), owned.queue());
    /// owned.remove()?;
    /// # Ok::<(), guichet::sysv::SysvError>(())
    /// ```
    #[must_use]
    pub const fn from_id(id: QueueId) -> Queue {
        Queue { id }
    }

    /// The queue's id.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::sysv::{Mode, OwnedQueue};
    ///
    /// let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
    /// println!("ipcrm -q {}", owned.id());
    /// owned.remove()?;
    /// # Ok::<(), guichet::sysv::SysvError>(())
    /// ```
    #[must_use]
    pub const fn id(&self) -> QueueId {
        self.id
    }

    /// Sends one message (msgsnd(2)): `body`, with `mtype` in front of it
    /// in one contiguous, `long`-aligned buffer (on the stack up to 256
    /// bytes); `msgsz` is `body.len()`.
    ///
    /// `deadline` bounds the wait for room in a full queue:
    ///
    /// - `None`: block until there is room; an interrupted call (`EINTR`)
    ///   is retried. Only the kernel ends it otherwise: room made, or the
    ///   queue removed ([`SysvError::QueueRemoved`]).
    /// - `Some(instant)`: give up at `instant` with [`SysvError::TimedOut`],
    ///   never before; a deadline already passed makes exactly one attempt.
    ///   SysV has no timed send: the call polls with `IPC_NOWAIT` for a
    ///   few µs, then blocks in msgsnd(2), which the kernel wakes when room
    ///   is made, until a per-thread timer interrupts it at the deadline
    ///   with the wake-up signal ([`wake_signal`](super::wake_signal)); on
    ///   an unloaded machine it ends within about 0.1 ms after the
    ///   deadline. Where the signal cannot be used it polls, with sleeps of
    ///   at most 1 ms.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use guichet::sysv::{Mode, OwnedQueue, SysvError};
    ///
    /// let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
    /// owned.set_max_bytes(4)?;
    /// owned.send(1, b"full", None)?;
    /// let soon = Instant::now() + Duration::from_millis(5);
    /// let err = owned.send(2, b"more", Some(soon)).unwrap_err();
    /// assert!(matches!(err, SysvError::TimedOut { op: "msgsnd", errno: libc::EAGAIN }));
    /// assert!(Instant::now() >= soon);
    /// owned.remove()?;
    /// # Ok::<(), SysvError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - [`SysvError::InvalidArgument`] if `mtype <= 0` (no syscall made);
    /// - [`SysvError::TooBig`] if `body` is longer than [`MAX_BODY_BYTES`]
    ///   (no syscall made), or longer than the system's `msgmax`;
    /// - [`SysvError::TimedOut`] if the queue stayed full until `deadline`;
    /// - [`SysvError::QueueRemoved`] (`EIDRM`, `EINVAL`) if the queue is gone;
    /// - [`SysvError::PermissionDenied`] (`EACCES`) without write permission;
    /// - [`SysvError::SystemLimit`] (`ENOMEM`);
    /// - [`SysvError::Other`] for any other errno of msgsnd(2).
    pub fn send(
        &self,
        mtype: c_long,
        body: &[u8],
        deadline: Option<Instant>,
    ) -> Result<(), SysvError> {
        match deadline {
            None => self.send_flags(mtype, body, SendFlags::empty()),
            Some(deadline) => self.send_until(mtype, body, deadline, QUEUE_SPIN),
        }
    }

    /// One msgsnd(2) with `flags` (`IPC_NOWAIT`: [`SysvError::TimedOut`] at
    /// once on a full queue), retrying `EINTR`.
    pub(crate) fn send_flags(
        &self,
        mtype: c_long,
        body: &[u8],
        flags: SendFlags,
    ) -> Result<(), SysvError> {
        let msg = outgoing(mtype, body)?;
        loop {
            match sys::msgsnd(self.id.raw(), msg.words(), body.len(), flags.bits()) {
                Ok(()) => return Ok(()),
                // msgsnd(2) is never restarted after a signal handler.
                Err(libc::EINTR) => {}
                Err(libc::EINVAL) => return Err(self.classify_msgsnd_einval(body.len())),
                // IPC_NOWAIT on a full queue: a deadline of now has passed.
                Err(errno @ libc::EAGAIN) => {
                    return Err(SysvError::TimedOut {
                        op: OP_MSGSND,
                        errno,
                    })
                }
                Err(errno) => return Err(SysvError::from_errno(OP_MSGSND, errno, false)),
            }
        }
    }

    /// Sends by `deadline`, polling up to `spin` before blocking in the
    /// kernel ([`wait::until`]): the client passes its own measured spin.
    pub(crate) fn send_until(
        &self,
        mtype: c_long,
        body: &[u8],
        deadline: Instant,
        spin: Duration,
    ) -> Result<(), SysvError> {
        let msg = outgoing(mtype, body)?;
        let id = self.id.raw();
        wait::until(deadline, spin, libc::EAGAIN, |extra| {
            sys::msgsnd(id, msg.words(), body.len(), extra)
        })
        .map_err(|failure| match failure {
            Failure::TimedOut => SysvError::TimedOut {
                op: OP_MSGSND,
                errno: libc::EAGAIN,
            },
            Failure::Errno(libc::EINVAL) => self.classify_msgsnd_einval(body.len()),
            Failure::Errno(errno) => SysvError::from_errno(OP_MSGSND, errno, false),
        })
    }

    /// msgsnd(2) says `EINVAL` for a dead id *or* a body above `msgmax`
    /// (mtype was checked before the call). Ask the kernel whether the id
    /// still names a queue to tell which.
    fn classify_msgsnd_einval(&self, body_len: usize) -> SysvError {
        let removed = SysvError::QueueRemoved {
            op: OP_MSGSND,
            errno: libc::EINVAL,
        };
        if body_len == 0 {
            return removed;
        }
        match sys::msgctl_stat(self.id.raw()) {
            // EACCES: the queue exists, we just may not read its state.
            Ok(_) | Err(libc::EACCES) => SysvError::TooBig {
                op: OP_MSGSND,
                errno: Some(libc::EINVAL),
                limit_bytes: system_msgmax_bytes().unwrap_or(0),
            },
            Err(_) => removed,
        }
    }

    /// Receives one message (msgrcv(2)) into `buf`.
    ///
    /// `msgtyp` selects the message, as in msgrcv(2):
    /// - `0`: the first message in the queue;
    /// - `> 0`: the first message of exactly that type;
    /// - `< 0`: the first message of the lowest type `<= |msgtyp|`.
    ///
    /// `msgsz` is [`buf.body_capacity()`](MessageBuf::body_capacity). On
    /// success the returned [`Received`] and [`MessageBuf::body`] describe
    /// the message; on failure `buf` is left empty. A message longer than
    /// `buf` is refused and stays queued, unless `buf` is
    /// [`truncating`](MessageBuf::truncating). `deadline` bounds the
    /// wait as in [`Queue::send`]: `None` blocks until a message matches
    /// (retrying `EINTR`), `Some(instant)` gives up at `instant` with
    /// [`SysvError::TimedOut`], never before, blocked in the kernel (woken
    /// the moment a message matches) until a timer signal ends the wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use guichet::sysv::{MessageBuf, Mode, OwnedQueue, SysvError};
    ///
    /// let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
    /// owned.send(5, b"five", None)?;
    /// owned.send(3, b"three", None)?;
    /// let mut buf = MessageBuf::with_body_capacity(16)?;
    /// let got = owned.recv(-4, &mut buf, None)?; // lowest type <= 4
    /// assert_eq!((got.mtype, got.body_len, buf.body()), (3, 5, &b"three"[..]));
    /// let soon = Instant::now() + Duration::from_millis(5);
    /// let err = owned.recv(4, &mut buf, Some(soon)).unwrap_err();
    /// assert!(matches!(err, SysvError::TimedOut { op: "msgrcv", .. }));
    /// owned.remove()?;
    /// # Ok::<(), SysvError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - [`SysvError::TimedOut`] if nothing matched by `deadline`;
    /// - [`SysvError::TooBig`] (`E2BIG`) if the matching message is longer
    ///   than `buf` and `buf` is not truncating; the message stays queued;
    /// - [`SysvError::QueueRemoved`] (`EIDRM` if removed while we waited,
    ///   `EINVAL` if the id is already dead);
    /// - [`SysvError::PermissionDenied`] (`EACCES`) without read permission;
    /// - [`SysvError::Other`] for any other errno of msgrcv(2).
    pub fn recv(
        &self,
        msgtyp: c_long,
        buf: &mut MessageBuf,
        deadline: Option<Instant>,
    ) -> Result<Received, SysvError> {
        match deadline {
            None => self.recv_flags(msgtyp, buf, RecvFlags::empty()),
            Some(deadline) => {
                self.recv_until(msgtyp, buf, RecvFlags::empty(), deadline, QUEUE_SPIN)
            }
        }
    }

    /// One msgrcv(2) with `flags` (`IPC_NOWAIT`: [`SysvError::TimedOut`] at
    /// once when nothing matches; `MSG_NOERROR`: truncate a longer
    /// message), retrying `EINTR`.
    pub(crate) fn recv_flags(
        &self,
        msgtyp: c_long,
        buf: &mut MessageBuf,
        flags: RecvFlags,
    ) -> Result<Received, SysvError> {
        buf.clear();
        let flags = flags.bits() | buf.recv_flags();
        loop {
            let (words, body_capacity) = buf.raw_mut();
            match sys::msgrcv(self.id.raw(), words, body_capacity, msgtyp, flags) {
                Ok(body_len) => return Ok(buf.set_received(body_len)),
                // msgrcv(2) is never restarted after a signal handler.
                Err(libc::EINTR) => {}
                Err(errno) => return Err(recv_error(errno, body_capacity)),
            }
        }
    }

    /// Receives what is queued, polling (`IPC_NOWAIT`, yielding between
    /// attempts) for up to `spin`: `Ok(None)` if nothing came, without
    /// blocking. What a server's receive loop tries before it blocks.
    pub(crate) fn recv_polling(
        &self,
        msgtyp: c_long,
        buf: &mut MessageBuf,
        flags: RecvFlags,
        spin: Duration,
    ) -> Result<Option<Received>, SysvError> {
        buf.clear();
        let id = self.id.raw();
        let flags = flags.bits() | buf.recv_flags();
        let body_capacity = buf.body_capacity();
        let body_len = wait::poll_for(None, spin, libc::ENOMSG, |extra| {
            let (words, body_capacity) = buf.raw_mut();
            sys::msgrcv(id, words, body_capacity, msgtyp, flags | extra)
        })
        .map_err(|failure| match failure {
            // No deadline: only an errno ends the poll early.
            Failure::TimedOut => recv_error(libc::ENOMSG, body_capacity),
            Failure::Errno(errno) => recv_error(errno, body_capacity),
        })?;
        Ok(body_len.map(|body_len| buf.set_received(body_len)))
    }

    /// Receives by `deadline`, polling up to `spin` before blocking in the
    /// kernel ([`wait::until`]).
    pub(crate) fn recv_until(
        &self,
        msgtyp: c_long,
        buf: &mut MessageBuf,
        flags: RecvFlags,
        deadline: Instant,
        spin: Duration,
    ) -> Result<Received, SysvError> {
        buf.clear();
        let id = self.id.raw();
        let flags = flags.bits() | buf.recv_flags();
        let body_capacity = buf.body_capacity();
        wait::until(deadline, spin, libc::ENOMSG, |extra| {
            let (words, body_capacity) = buf.raw_mut();
            sys::msgrcv(id, words, body_capacity, msgtyp, flags | extra)
        })
        .map(|body_len| buf.set_received(body_len))
        .map_err(|failure| match failure {
            Failure::TimedOut => SysvError::TimedOut {
                op: OP_MSGRCV,
                errno: libc::ENOMSG,
            },
            Failure::Errno(errno) => recv_error(errno, body_capacity),
        })
    }

    /// Reads the queue's state (msgctl(2) `IPC_STAT`).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::sysv::{Mode, OwnedQueue};
    ///
    /// let owned = OwnedQueue::create_private(Mode::new(0o640)?)?;
    /// owned.send(1, &[7; 40], None)?;
    /// let st = owned.stat()?;
    /// assert_eq!((st.messages, st.bytes), (1, 40));
    /// assert_eq!(st.last_send_pid, Some(std::process::id()));
    /// assert_eq!(st.mode.bits(), 0o640);
    /// owned.remove()?;
    /// # Ok::<(), guichet::sysv::SysvError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - [`SysvError::QueueRemoved`] (`EIDRM`, `EINVAL`) if the queue is gone;
    /// - [`SysvError::PermissionDenied`] (`EACCES`) without read permission;
    /// - [`SysvError::Other`] for any other errno of msgctl(2).
    pub fn stat(&self) -> Result<QueueStat, SysvError> {
        sys::msgctl_stat(self.id.raw())
            .map(|ds| QueueStat::from(&ds))
            .map_err(|errno| SysvError::from_errno(OP_STAT, errno, true))
    }

    /// Sets the most body bytes the queue may hold (msgctl(2) `IPC_SET` of
    /// `msg_qbytes`), keeping owner and mode.
    ///
    /// This reads the current state with `IPC_STAT` and writes it back, so an
    /// `IPC_SET` by another process in between may be undone. Raising the
    /// value above the system's `msgmnb` needs `CAP_SYS_RESOURCE`.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::sysv::{Mode, OwnedQueue};
    ///
    /// let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
    /// owned.set_max_bytes(4096)?;
    /// assert_eq!(owned.stat()?.max_bytes, 4096);
    /// owned.remove()?;
    /// # Ok::<(), guichet::sysv::SysvError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - [`SysvError::InvalidArgument`] if `max_bytes` is 0 (no message could
    ///   ever be sent) or above [`MAX_QUEUE_BYTES`];
    /// - [`SysvError::PermissionDenied`] (`EPERM`) if the caller is neither
    ///   owner, creator nor privileged, or raises the limit above `msgmnb`
    ///   without `CAP_SYS_RESOURCE`; (`EACCES`) without read permission;
    /// - [`SysvError::QueueRemoved`] (`EIDRM`, `EINVAL`) if the queue is gone;
    /// - [`SysvError::Other`] for any other errno of msgctl(2).
    pub fn set_max_bytes(&self, max_bytes: u64) -> Result<(), SysvError> {
        if max_bytes == 0 || max_bytes > MAX_QUEUE_BYTES {
            return Err(SysvError::InvalidArgument {
                what: "max_bytes must be in 1..=MAX_QUEUE_BYTES",
            });
        }
        let mut ds = sys::msgctl_stat(self.id.raw())
            .map_err(|errno| SysvError::from_errno(OP_STAT, errno, true))?;
        ds.msg_qbytes = max_bytes;
        sys::msgctl_set(self.id.raw(), &ds)
            .map_err(|errno| SysvError::from_errno(OP_SET, errno, true))
    }

    /// Gives the queue to another owner (msgctl(2) `IPC_SET` of the uid and
    /// gid; the creator stays): the tests' "another user's queue".
    #[cfg(test)]
    pub(crate) fn set_owner(&self, uid: u32, gid: u32) -> Result<(), SysvError> {
        let mut ds = sys::msgctl_stat(self.id.raw())
            .map_err(|errno| SysvError::from_errno(OP_STAT, errno, true))?;
        ds.msg_perm.uid = uid;
        ds.msg_perm.gid = gid;
        sys::msgctl_set(self.id.raw(), &ds)
            .map_err(|errno| SysvError::from_errno(OP_SET, errno, true))
    }

    /// Removes the queue (msgctl(2) `IPC_RMID`) at once: queued messages are
    /// lost and every process blocked in it wakes with
    /// [`SysvError::QueueRemoved`] (`EIDRM`).
    ///
    /// Copies of this handle stay usable as values but every call through
    /// them then fails with [`SysvError::QueueRemoved`].
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::sysv::{Mode, OwnedQueue, SysvError};
    ///
    /// let q = OwnedQueue::create_private(Mode::DEFAULT)?.into_unowned();
    /// q.remove()?;
    /// assert!(matches!(q.stat(), Err(SysvError::QueueRemoved { .. })));
    /// # Ok::<(), SysvError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - [`SysvError::QueueRemoved`] (`EIDRM`, `EINVAL`) if it is already
    ///   gone;
    /// - [`SysvError::PermissionDenied`] (`EPERM`) if the caller is neither
    ///   owner, creator nor privileged;
    /// - [`SysvError::Other`] for any other errno of msgctl(2).
    pub fn remove(self) -> Result<(), SysvError> {
        sys::msgctl_rmid(self.id.raw()).map_err(|errno| SysvError::from_errno(OP_RMID, errno, true))
    }
}

/// A queue this process created and will remove (msgctl(2) `IPC_RMID`) when
/// the guard is dropped.
///
/// SysV queues outlive their creator: without this guard a crash or an early
/// return leaves the queue in the machine (see ipcs(1)). The guard cannot
/// help if the process is killed without unwinding (SIGKILL, `abort`).
/// Errors on drop are ignored (the queue may already have been removed by
/// someone else); call [`OwnedQueue::remove`] to see them.
///
/// It dereferences to [`Queue`] for sending and receiving.
///
/// # Examples
///
/// ```
/// use guichet::sysv::{Mode, OwnedQueue, Queue, SysvError};
///
/// let id = {
///     let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
///     owned.id()
/// }; // dropped: removed
/// assert!(matches!(Queue::from_id(id).stat(), Err(SysvError::QueueRemoved { .. })));
/// # Ok::<(), SysvError>(())
/// ```
#[derive(Debug)]
pub struct OwnedQueue {
    queue: Queue,
}

impl OwnedQueue {
    /// Creates a new private queue (msgget(2) with `IPC_PRIVATE`): no other
    /// process can find it by key, only by its [`id`](Queue::id).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::sysv::{Key, Mode, OwnedQueue};
    ///
    /// let owned = OwnedQueue::create_private(Mode::default())?;
    /// assert_eq!(owned.stat()?.key, Key::PRIVATE);
    /// owned.remove()?;
    /// # Ok::<(), guichet::sysv::SysvError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - [`SysvError::SystemLimit`] (`ENOSPC`) if the system's `msgmni`
    ///   queues exist, or (`ENOMEM`);
    /// - [`SysvError::Other`] for any other errno of msgget(2).
    pub fn create_private(mode: Mode) -> Result<OwnedQueue, SysvError> {
        Self::create(Key::PRIVATE, libc::IPC_CREAT | mode.as_msgflg())
    }

    /// Creates a new queue under `key`, failing if one exists
    /// (msgget(2) with `IPC_CREAT | IPC_EXCL`).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::sysv::{ftok, Mode, OwnedQueue, Queue, SysvError};
    ///
    /// let file = std::env::temp_dir().join(format!("guichet-doc-{}", std::process::id()));
    /// std::fs::write(&file, b"")?;
    /// let key = ftok(&file, b'x')?;
    /// let owned = OwnedQueue::create_exclusive(key, Mode::DEFAULT)?;
    /// assert!(matches!(
    ///     OwnedQueue::create_exclusive(key, Mode::DEFAULT),
    ///     Err(SysvError::Exists { .. })
    /// ));
    /// assert_eq!(Queue::open(key)?, owned.queue());
    /// owned.remove()?;
    /// std::fs::remove_file(&file)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - [`SysvError::InvalidArgument`] for [`Key::PRIVATE`] (use
    ///   [`OwnedQueue::create_private`]);
    /// - [`SysvError::Exists`] (`EEXIST`) if a queue has this key;
    /// - [`SysvError::SystemLimit`] (`ENOSPC`, `ENOMEM`);
    /// - [`SysvError::Other`] for any other errno of msgget(2).
    pub fn create_exclusive(key: Key, mode: Mode) -> Result<OwnedQueue, SysvError> {
        if key.is_private() {
            return Err(SysvError::InvalidArgument {
                what: "create_exclusive needs a public key; use create_private",
            });
        }
        Self::create(key, libc::IPC_CREAT | libc::IPC_EXCL | mode.as_msgflg())
    }

    fn create(key: Key, msgflg: c_int) -> Result<OwnedQueue, SysvError> {
        let id = sys::msgget(key.raw(), msgflg)
            .map_err(|errno| SysvError::from_errno(OP_MSGGET, errno, false))?;
        Ok(OwnedQueue {
            queue: Queue {
                id: QueueId::from_kernel(id),
            },
        })
    }

    /// A non-owning handle on the queue, e.g. to give to another thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::sysv::{Mode, OwnedQueue};
    ///
    /// let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
    /// let q = owned.queue();
    /// std::thread::spawn(move || q.send(1, b"hi", None)).join().unwrap()?;
    /// owned.remove()?;
    /// # Ok::<(), guichet::sysv::SysvError>(())
    /// ```
    #[must_use]
    pub fn queue(&self) -> Queue {
        self.queue
    }

    /// Removes the queue now, reporting errors that drop would ignore.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::sysv::{Mode, OwnedQueue};
    ///
    /// OwnedQueue::create_private(Mode::DEFAULT)?.remove()?;
    /// # Ok::<(), guichet::sysv::SysvError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Those of [`Queue::remove`].
    pub fn remove(self) -> Result<(), SysvError> {
        self.into_unowned().remove()
    }

    /// Gives up ownership: the queue outlives the guard (e.g. a server
    /// handing it to whoever removes it later).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::sysv::{Mode, OwnedQueue};
    ///
    /// let q = OwnedQueue::create_private(Mode::DEFAULT)?.into_unowned();
    /// assert!(q.stat().is_ok()); // still there
    /// q.remove()?;
    /// # Ok::<(), guichet::sysv::SysvError>(())
    /// ```
    #[must_use = "the queue is no longer removed automatically; keep its handle to remove it"]
    pub fn into_unowned(self) -> Queue {
        let queue = self.queue;
        // Skipping Drop is the point: it would remove the queue.
        std::mem::forget(self);
        queue
    }
}

impl Deref for OwnedQueue {
    type Target = Queue;

    fn deref(&self) -> &Queue {
        &self.queue
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // Nothing useful can be done with an error here (it is most likely
        // "already removed"); `remove` reports it for callers who care.
        let _ = sys::msgctl_rmid(self.queue.id.raw());
    }
}
