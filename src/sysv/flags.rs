//! Typed flags for msgsnd(2)/msgrcv(2) and permission bits for msgget(2).

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

use libc::c_int;

use super::SysvError;

macro_rules! flag_set {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$fmeta:meta])* $flag:ident = $value:expr ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub(crate) struct $name(c_int);

        impl $name {
            $( $(#[$fmeta])* pub const $flag: Self = Self($value); )+

            /// No flag: the call blocks until it can complete.
            #[must_use]
            pub const fn empty() -> Self {
                Self(0)
            }

            /// Whether every flag of `other` is set in `self`.
            #[must_use]
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            /// The raw `msgflg` bits passed to the kernel.
            #[must_use]
            pub const fn bits(self) -> c_int {
                self.0
            }
        }

        impl BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                Self(self.0 | rhs.0)
            }
        }

        impl BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: Self) {
                self.0 |= rhs.0;
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut set = f.debug_set();
                $( if self.contains(Self::$flag) && Self::$flag.0 != 0 {
                    set.entry(&format_args!(stringify!($flag)));
                } )+
                set.finish()
            }
        }
    };
}

flag_set! {
    /// msgsnd(2) options inside the crate; combine with `|`.
    ///
    /// The default is empty: msgsnd(2) blocks while the queue is full.
    SendFlags {
        /// `IPC_NOWAIT`: fail with `SysvError::TimedOut` (`EAGAIN`)
        /// instead of blocking on a full queue.
        NOWAIT = libc::IPC_NOWAIT,
    }
}

flag_set! {
    /// msgrcv(2) options inside the crate; combine with `|`.
    ///
    /// The default is empty: msgrcv(2) blocks until a matching message
    /// arrives and refuses (`E2BIG`) a message longer than the buffer.
    RecvFlags {
        /// `IPC_NOWAIT`: fail with `SysvError::TimedOut` (`ENOMSG`)
        /// instead of blocking when no message matches.
        NOWAIT = libc::IPC_NOWAIT,
        /// `MSG_NOERROR`: truncate a message longer than the buffer instead
        /// of failing with `E2BIG`. The truncated tail is lost (msgrcv(2)).
        NOERROR = libc::MSG_NOERROR,
    }
}

/// Permission bits of a new queue (the low 9 bits of msgget(2)'s `msgflg`).
///
/// Read permission lets a process msgrcv(2) and `IPC_STAT`; write permission
/// lets it msgsnd(2). A process with `CAP_IPC_OWNER` (root, usually) bypasses
/// these checks.
///
/// # Examples
///
/// ```
/// use guichet::sysv::Mode;
///
/// assert_eq!(Mode::default(), Mode::DEFAULT);
/// assert_eq!(Mode::DEFAULT.bits(), 0o600);
/// assert_eq!(Mode::new(0o640)?.to_string(), "0o640");
/// assert!(Mode::new(0o1777).is_err()); // no sticky/setuid bits on queues
/// # Ok::<(), guichet::sysv::SysvError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mode(u32);

impl Mode {
    /// `0o600`: owner may read and write, nobody else may touch the queue.
    pub const DEFAULT: Mode = Mode(0o600);

    /// The largest mode: everyone may read and write.
    pub const MAX_BITS: u32 = 0o777;

    /// A mode from permission bits.
    ///
    /// # Errors
    ///
    /// [`SysvError::InvalidArgument`] if `bits` has a bit outside `0o777`:
    /// msgget(2) would silently mix such bits with its `IPC_*` flags.
    pub const fn new(bits: u32) -> Result<Mode, SysvError> {
        if bits & !Self::MAX_BITS != 0 {
            return Err(SysvError::InvalidArgument {
                what: "mode has bits outside 0o777",
            });
        }
        Ok(Mode(bits))
    }

    /// The permission bits, within `0o777`.
    #[must_use]
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// The permission bits of a kernel `ipc_perm.mode`, which may carry
    /// other state bits above `0o777`.
    pub(crate) const fn from_kernel(mode: u32) -> Mode {
        Mode(mode & Self::MAX_BITS)
    }

    /// The bits as msgget(2)'s `msgflg` contribution.
    pub(crate) const fn as_msgflg(self) -> c_int {
        // Lossless: `new` keeps the value within 0o777.
        self.0 as c_int
    }
}

impl Default for Mode {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#05o}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_to_libc_bits() {
        assert_eq!(SendFlags::NOWAIT.bits(), libc::IPC_NOWAIT);
        assert_eq!(
            (RecvFlags::NOWAIT | RecvFlags::NOERROR).bits(),
            libc::IPC_NOWAIT | libc::MSG_NOERROR
        );
        let mut f = RecvFlags::default();
        assert_eq!(format!("{f:?}"), "{}");
        f |= RecvFlags::NOERROR;
        assert_eq!(f, RecvFlags::NOERROR);
    }

    #[test]
    fn mode_rejects_non_permission_bits() {
        assert_eq!(Mode::new(0o777).map(Mode::bits), Ok(0o777));
        assert_eq!(Mode::new(0).map(|m| m.to_string()), Ok("0o000".to_owned()));
        for bad in [0o1000, libc::IPC_CREAT as u32, u32::MAX] {
            assert!(matches!(
                Mode::new(bad),
                Err(SysvError::InvalidArgument { .. })
            ));
        }
    }
}
