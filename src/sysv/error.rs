//! The one error type of the SysV layer.

use std::io;

/// Everything that can go wrong in the SysV layer.
///
/// Variants name the cases a caller acts on (the queue is gone, the
/// deadline passed, the caller lacks permission, …). Every variant that comes from the
/// kernel keeps the syscall that failed ([`SysvError::op`]) and its raw errno
/// ([`SysvError::errno`]); variants raised before any syscall carry no errno.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use guichet::sysv::{MessageBuf, OwnedQueue, Mode, SysvError};
///
/// let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
/// let mut buf = MessageBuf::with_body_capacity(40)?;
/// match owned.recv(0, &mut buf, Some(Instant::now())) {
///     Err(e @ SysvError::TimedOut { .. }) => {
///         assert_eq!(e.errno(), Some(libc::ENOMSG));
///         assert_eq!(e.op(), Some("msgrcv"));
///         assert_eq!(e.to_string(), "msgrcv timed out: nothing could be done by the deadline (ENOMSG)");
///     }
///     other => panic!("expected TimedOut, got {other:?}"),
/// }
/// owned.remove()?;
/// # Ok::<(), SysvError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SysvError {
    /// The queue no longer exists: `EIDRM`, or `EINVAL` from
    /// msgsnd(2)/msgrcv(2)/msgctl(2) on an id that does not (or no longer)
    /// name a queue.
    ///
    /// Linux reports `EIDRM` only to a caller that was *blocked* in the queue
    /// when it was removed; a later call on the stale id gets `EINVAL`, which
    /// msgrcv(2) also uses for "msgsz < 0" (impossible here: sizes are
    /// `usize` bounded by [`MAX_BODY_BYTES`](super::MAX_BODY_BYTES)). For
    /// msgsnd(2), `EINVAL` can also mean the body is longer than the
    /// system's `msgmax`; [`Queue::send`](super::Queue::send) tells the two
    /// apart by probing the id with `IPC_STAT` and reports
    /// [`SysvError::TooBig`] when the queue is still there.
    #[error("{op} failed: queue removed ({})", errno_name(*.errno))]
    QueueRemoved {
        /// The syscall that failed.
        op: &'static str,
        /// The raw errno (`EIDRM` or `EINVAL`).
        errno: i32,
    },
    /// The queue's mode or the caller's capabilities forbid the operation
    /// (`EACCES`, or `EPERM` from msgctl(2) `IPC_SET`/`IPC_RMID`).
    #[error("{op} failed: permission denied ({})", errno_name(*.errno))]
    PermissionDenied {
        /// The syscall that failed.
        op: &'static str,
        /// The raw errno (`EACCES` or `EPERM`).
        errno: i32,
    },
    /// msgget(2) with `IPC_CREAT | IPC_EXCL` found a queue for the key.
    #[error("{op} failed: a queue already exists for this key ({})", errno_name(*.errno))]
    Exists {
        /// The syscall that failed.
        op: &'static str,
        /// The raw errno (`EEXIST`).
        errno: i32,
    },
    /// `ENOENT`: no queue exists for the key (msgget(2)), or the path given
    /// to ftok(3) does not exist.
    #[error("{op} failed: not found ({})", errno_name(*.errno))]
    NotFound {
        /// The syscall that failed.
        op: &'static str,
        /// The raw errno (`ENOENT`).
        errno: i32,
    },
    /// A system-wide limit was hit: `ENOSPC` (msgget(2): `msgmni` queues
    /// exist) or `ENOMEM`.
    #[error("{op} failed: system limit reached ({})", errno_name(*.errno))]
    SystemLimit {
        /// The syscall that failed.
        op: &'static str,
        /// The raw errno (`ENOSPC` or `ENOMEM`).
        errno: i32,
    },
    /// A message body does not fit.
    ///
    /// Raised without a syscall when a body passed to send is longer than
    /// `limit_bytes` ([`MAX_BODY_BYTES`](super::MAX_BODY_BYTES)); from
    /// msgrcv(2) as `E2BIG` when the first matching message is longer than
    /// the buffer and the buffer is not [`truncating`](super::MessageBuf::truncating) (the message then stays in
    /// the queue); from msgsnd(2) as `EINVAL` when the body exceeds the
    /// system's `msgmax`.
    #[error("{op} failed: message body exceeds {limit_bytes} bytes ({})",
        .errno.map_or("checked before the call", errno_name))]
    TooBig {
        /// The syscall that failed, or that was not made.
        op: &'static str,
        /// The raw errno, or `None` when caught before the syscall.
        errno: Option<i32>,
        /// The limit the body broke: [`MAX_BODY_BYTES`](super::MAX_BODY_BYTES)
        /// for sends checked before the call, the system's `msgmax` for
        /// msgsnd(2) `EINVAL` (0 if `/proc/sys/kernel/msgmax` is unreadable),
        /// the buffer's body capacity for receives.
        limit_bytes: usize,
    },
    /// The call's deadline passed before it could be done: the queue stayed
    /// full (msgsnd(2) kept saying `EAGAIN`) or nothing matched (msgrcv(2)
    /// kept saying `ENOMSG`). A deadline already passed makes one attempt.
    #[error("{op} timed out: nothing could be done by the deadline ({})", errno_name(*.errno))]
    TimedOut {
        /// The syscall that could not be done in time.
        op: &'static str,
        /// What its last attempt said: `EAGAIN` (msgsnd) or `ENOMSG` (msgrcv).
        errno: i32,
    },
    /// The caller passed a value the layer rejects before any syscall.
    #[error("invalid argument: {what}")]
    InvalidArgument {
        /// What was wrong.
        what: &'static str,
    },
    /// Any other errno; see the syscall's man page.
    #[error("{op} failed: {} ({})", errno_name(*.errno), io::Error::from_raw_os_error(*.errno))]
    Other {
        /// The syscall that failed.
        op: &'static str,
        /// The raw errno.
        errno: i32,
    },
}

impl SysvError {
    /// The raw errno the kernel returned, or `None` when the error was raised
    /// before (or instead of) a syscall.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::sysv::{OwnedQueue, Mode, SysvError};
    ///
    /// let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
    /// let err = owned.send(0, b"x", None).unwrap_err();
    /// assert_eq!(err.errno(), None); // rejected before msgsnd(2)
    /// # Ok::<(), SysvError>(())
    /// ```
    #[must_use]
    pub fn errno(&self) -> Option<i32> {
        match *self {
            Self::QueueRemoved { errno, .. }
            | Self::TimedOut { errno, .. }
            | Self::PermissionDenied { errno, .. }
            | Self::Exists { errno, .. }
            | Self::NotFound { errno, .. }
            | Self::SystemLimit { errno, .. }
            | Self::Other { errno, .. } => Some(errno),
            Self::TooBig { errno, .. } => errno,
            Self::InvalidArgument { .. } => None,
        }
    }

    /// The syscall (or library call) concerned, e.g. `"msgrcv"` or
    /// `"msgctl(IPC_STAT)"`; `None` for [`SysvError::InvalidArgument`].
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::sysv::{Key, Queue, SysvError};
    ///
    /// let err = Queue::open(Key::PRIVATE).unwrap_err();
    /// assert_eq!(err.op(), None); // IPC_PRIVATE is refused before msgget(2)
    /// ```
    #[must_use]
    pub fn op(&self) -> Option<&'static str> {
        match *self {
            Self::QueueRemoved { op, .. }
            | Self::PermissionDenied { op, .. }
            | Self::Exists { op, .. }
            | Self::NotFound { op, .. }
            | Self::SystemLimit { op, .. }
            | Self::TooBig { op, .. }
            | Self::TimedOut { op, .. }
            | Self::Other { op, .. } => Some(op),
            Self::InvalidArgument { .. } => None,
        }
    }

    /// Classifies an errno from `op`. `EINVAL` is only mapped to
    /// [`SysvError::QueueRemoved`] when the caller knows that every other
    /// cause of `EINVAL` was ruled out before the call.
    pub(crate) fn from_errno(op: &'static str, errno: i32, einval_means_removed: bool) -> Self {
        match errno {
            libc::EIDRM => Self::QueueRemoved { op, errno },
            libc::EINVAL if einval_means_removed => Self::QueueRemoved { op, errno },
            libc::EACCES | libc::EPERM => Self::PermissionDenied { op, errno },
            libc::EEXIST => Self::Exists { op, errno },
            libc::ENOENT => Self::NotFound { op, errno },
            libc::ENOSPC | libc::ENOMEM => Self::SystemLimit { op, errno },
            _ => Self::Other { op, errno },
        }
    }
}

impl From<SysvError> for io::Error {
    /// Lets a binary `?` a [`SysvError`] into `std::io::Result`, keeping the
    /// message and, where there is one, the errno-derived kind.
    fn from(err: SysvError) -> Self {
        let kind = match &err {
            SysvError::PermissionDenied { .. } => io::ErrorKind::PermissionDenied,
            SysvError::Exists { .. } => io::ErrorKind::AlreadyExists,
            SysvError::NotFound { .. } => io::ErrorKind::NotFound,
            SysvError::TimedOut { .. } => io::ErrorKind::TimedOut,
            SysvError::InvalidArgument { .. } => io::ErrorKind::InvalidInput,
            SysvError::Other { errno, .. } => io::Error::from_raw_os_error(*errno).kind(),
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, err)
    }
}

/// The symbolic name of the errnos this layer meets, for messages that an
/// operator can grep; others fall back to their number.
pub(crate) fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::E2BIG => "E2BIG",
        libc::EACCES => "EACCES",
        libc::EAGAIN => "EAGAIN",
        libc::EEXIST => "EEXIST",
        libc::EFAULT => "EFAULT",
        libc::EIDRM => "EIDRM",
        libc::EINTR => "EINTR",
        libc::EINVAL => "EINVAL",
        libc::ELOOP => "ELOOP",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOENT => "ENOENT",
        libc::ENOMEM => "ENOMEM",
        libc::ENOMSG => "ENOMSG",
        libc::ENOSPC => "ENOSPC",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTDIR => "ENOTDIR",
        libc::EPERM => "EPERM",
        _ => "unnamed errno",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_op_case_and_errno() {
        let e = SysvError::from_errno("msgrcv", libc::EIDRM, true);
        assert_eq!(e.to_string(), "msgrcv failed: queue removed (EIDRM)");
        let e = SysvError::from_errno("msgrcv", libc::EINVAL, true);
        assert_eq!(e.to_string(), "msgrcv failed: queue removed (EINVAL)");
        let e = SysvError::from_errno("msgget", libc::EINVAL, false);
        assert!(matches!(
            e,
            SysvError::Other {
                errno: libc::EINVAL,
                ..
            }
        ));
        let e = SysvError::TooBig {
            op: "msgsnd",
            errno: None,
            limit_bytes: 8192,
        };
        assert_eq!(
            e.to_string(),
            "msgsnd failed: message body exceeds 8192 bytes (checked before the call)"
        );
        assert_eq!(e.errno(), None);
        assert_eq!(e.op(), Some("msgsnd"));
    }

    #[test]
    fn every_errno_maps_to_a_named_case() {
        let cases = [
            (libc::EIDRM, "QueueRemoved"),
            (libc::EACCES, "PermissionDenied"),
            (libc::EPERM, "PermissionDenied"),
            (libc::EEXIST, "Exists"),
            (libc::ENOENT, "NotFound"),
            (libc::ENOSPC, "SystemLimit"),
            (libc::ENOMEM, "SystemLimit"),
            (libc::EFAULT, "Other"),
        ];
        for (errno, name) in cases {
            let e = SysvError::from_errno("msgsnd", errno, false);
            assert!(format!("{e:?}").starts_with(name), "{errno} -> {e:?}");
            assert_eq!(e.errno(), Some(errno));
        }
    }

    #[test]
    fn converts_to_io_error_with_kind() {
        let e: io::Error = SysvError::from_errno("msgget", libc::ENOENT, false).into();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
