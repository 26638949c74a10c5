//! Queue keys (msgget(2)'s `key`), queue ids (its result) and ftok(3).

use std::ffi::CString;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::str::FromStr;

use libc::key_t;

use super::{sys, SysvError};

/// A System V IPC key: the machine-wide name under which msgget(2) finds a
/// queue.
///
/// Displayed as `0x%08x`, the way ipcs(1) shows it. Parsed (for a `--key`
/// option) from `0x`-prefixed hex or from decimal.
///
/// # Examples
///
/// ```
/// use guichet::sysv::Key;
///
/// let key: Key = "0x4743fa01".parse()?;
/// assert_eq!(key.to_string(), "0x4743fa01");
/// assert_eq!(Key::new(17).raw(), 17);
/// assert_eq!("17".parse::<Key>()?, Key::new(17));
/// assert_eq!(Key::PRIVATE.to_string(), "0x00000000");
/// # Ok::<(), guichet::sysv::SysvError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key(key_t);

impl Key {
    /// `IPC_PRIVATE`: not a name but a request for a new queue that no other
    /// process can find by key (its id must be passed along instead).
    pub const PRIVATE: Key = Key(libc::IPC_PRIVATE);

    /// A key from its raw value.
    #[must_use]
    pub const fn new(raw: key_t) -> Key {
        Key(raw)
    }

    /// The raw `key_t`.
    #[must_use]
    pub const fn raw(self) -> key_t {
        self.0
    }

    /// Whether this is [`Key::PRIVATE`].
    #[must_use]
    pub const fn is_private(self) -> bool {
        self.0 == libc::IPC_PRIVATE
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys are bit patterns, not numbers: show them unsigned, as ipcs does.
        write!(f, "0x{:08x}", self.0 as u32)
    }
}

impl FromStr for Key {
    type Err = SysvError;

    /// Parses `0x`/`0X`-prefixed hex (at most 8 digits) or decimal (from
    /// `i32::MIN` to `u32::MAX`; values above `i32::MAX` wrap to the same bit
    /// pattern ipcs(1) shows).
    ///
    /// # Errors
    ///
    /// [`SysvError::InvalidArgument`] for anything else.
    fn from_str(s: &str) -> Result<Key, SysvError> {
        const BAD: SysvError = SysvError::InvalidArgument {
            what: "key must be 0x-prefixed hex (up to 8 digits) or a 32-bit decimal",
        };
        let s = s.trim();
        let bits = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            // from_str_radix accepts a sign; a key in hex has none.
            if hex.is_empty() || hex.len() > 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(BAD);
            }
            u32::from_str_radix(hex, 16).map_err(|_| BAD)?
        } else {
            let n: i64 = s.parse().map_err(|_| BAD)?;
            if let Ok(n) = i32::try_from(n) {
                n as u32
            } else {
                u32::try_from(n).map_err(|_| BAD)?
            }
        };
        Ok(Key(bits as key_t))
    }
}

/// A queue identifier (`msqid`), as returned by msgget(2) and shown by
/// ipcs(1).
///
/// Unlike a [`Key`], an id names one queue *instance*: once that queue is
/// removed, the id stays dead (Linux reuses the slot with a new sequence
/// number).
///
/// # Examples
///
/// ```
/// use guichet::sysv::{Mode, OwnedQueue, QueueId};
///
/// let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
/// let id: QueueId = owned.id();
/// assert_eq!(id.to_string(), id.raw().to_string());
/// assert_eq!(QueueId::new(id.raw())?, id);
/// assert!(QueueId::new(-1).is_err());
/// owned.remove()?;
/// # Ok::<(), guichet::sysv::SysvError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(i32);

impl QueueId {
    /// An id from its raw value (e.g. read from ipcs(1) or a command line).
    ///
    /// # Errors
    ///
    /// [`SysvError::InvalidArgument`] if `raw` is negative: msgget(2) never
    /// returns such an id.
    pub const fn new(raw: i32) -> Result<QueueId, SysvError> {
        if raw < 0 {
            return Err(SysvError::InvalidArgument {
                what: "queue id must be >= 0",
            });
        }
        Ok(QueueId(raw))
    }

    /// Wraps an id msgget(2) just returned (never negative on success).
    pub(crate) const fn from_kernel(raw: i32) -> QueueId {
        QueueId(raw)
    }

    /// The raw `msqid`.
    #[must_use]
    pub const fn raw(self) -> i32 {
        self.0
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for QueueId {
    type Err = SysvError;

    /// Parses a non-negative decimal id.
    ///
    /// # Errors
    ///
    /// [`SysvError::InvalidArgument`] for anything else.
    fn from_str(s: &str) -> Result<QueueId, SysvError> {
        let raw: i32 = s.trim().parse().map_err(|_| SysvError::InvalidArgument {
            what: "queue id must be a non-negative decimal",
        })?;
        QueueId::new(raw)
    }
}

/// Derives a [`Key`] from an existing file and a project id, as ftok(3) does,
/// so that unrelated processes (including C clients) agree on a key.
///
/// The key depends on the file's inode and device numbers: a file that is
/// deleted and re-created usually yields another key, and two paths on
/// different file systems may collide (ftok(3) uses only some of their bits).
///
/// # Examples
///
/// ```
/// use guichet::sysv::ftok;
///
/// let a = ftok(std::path::Path::new("/"), b'G')?;
/// let b = ftok(std::path::Path::new("/"), b'G')?;
/// assert_eq!(a, b);
/// assert_ne!(a, ftok(std::path::Path::new("/"), b'H')?);
/// # Ok::<(), guichet::sysv::SysvError>(())
/// ```
///
/// # Errors
///
/// - [`SysvError::InvalidArgument`] if `proj_id` is 0 (ftok(3) leaves its
///   result unspecified then) or `path` contains a NUL byte;
/// - [`SysvError::NotFound`] (`ENOENT`) if `path` does not exist;
/// - [`SysvError::PermissionDenied`] (`EACCES`) if a directory on the way
///   cannot be searched;
/// - [`SysvError::Other`] with stat(2)'s errno otherwise.
pub fn ftok(path: &Path, proj_id: u8) -> Result<Key, SysvError> {
    if proj_id == 0 {
        return Err(SysvError::InvalidArgument {
            what: "ftok proj_id must be non-zero",
        });
    }
    let c_path =
        CString::new(path.as_os_str().as_bytes()).map_err(|_| SysvError::InvalidArgument {
            what: "ftok path contains a NUL byte",
        })?;
    sys::ftok(&c_path, libc::c_int::from(proj_id))
        .map(Key)
        .map_err(|errno| SysvError::from_errno("ftok", errno, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parses_hex_and_decimal() {
        assert_eq!("0x0".parse::<Key>(), Ok(Key::PRIVATE));
        assert_eq!("0XFFFFFFFF".parse::<Key>(), Ok(Key::new(-1)));
        assert_eq!("-1".parse::<Key>(), Ok(Key::new(-1)));
        assert_eq!("4294967295".parse::<Key>(), Ok(Key::new(-1)));
        assert_eq!(" 42 ".parse::<Key>(), Ok(Key::new(42)));
        assert_eq!(Key::new(-1).to_string(), "0xffffffff");
        for bad in [
            "",
            "0x",
            "0x-1",
            "0x+1",
            "0x123456789",
            "4294967296",
            "-2147483649",
            "k",
        ] {
            assert!(bad.parse::<Key>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn key_display_round_trips() {
        for raw in [0, 1, 0x4743_fa01, i32::MAX, i32::MIN, -1] {
            let k = Key::new(raw);
            assert_eq!(k.to_string().parse::<Key>(), Ok(k));
        }
    }

    #[test]
    fn queue_id_parses() {
        assert_eq!("7".parse::<QueueId>().map(QueueId::raw), Ok(7));
        assert!("-7".parse::<QueueId>().is_err());
        assert!("x".parse::<QueueId>().is_err());
    }

    #[test]
    fn ftok_rejects_bad_input_before_the_call() {
        assert!(matches!(
            ftok(Path::new("/"), 0),
            Err(SysvError::InvalidArgument { .. })
        ));
        assert!(matches!(
            ftok(Path::new("/a\0b"), 1),
            Err(SysvError::InvalidArgument { .. })
        ));
    }
}
