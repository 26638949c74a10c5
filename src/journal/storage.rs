//! Where a journal's bytes live: a [`Storage`] (one file) inside a [`Dir`]
//! (the directory that names it), with a real implementation on the file
//! system here and a crash-simulating one in [`sim`](super::sim).
//!
//! The journal needs only these operations, and relies on exactly these
//! guarantees, which are the POSIX ones:
//!
//! - bytes written to a file are durable once [`Storage::sync_data`]
//!   (`fdatasync(2)`) has returned Ok after them: before, a crash may drop or
//!   garble them;
//! - a name created, renamed or removed in a directory is durable once
//!   [`Dir::sync`] (`fsync(2)` of the directory) has returned Ok after it;
//! - a rename replaces its target atomically: after a crash the name points
//!   to the old file or the new one, never to neither or to a mix.

use std::any::Any;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

/// One file of a journal.
pub trait Storage: Send {
    /// Its length in bytes.
    ///
    /// # Errors
    ///
    /// The operating system's (`fstat(2)`).
    fn len_bytes(&self) -> io::Result<u64>;

    /// Fills `buf` with the bytes at `offset`.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::UnexpectedEof`] if the file ends first; the
    /// operating system's otherwise.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Writes all of `data` at `offset`, extending the file if needed. Not
    /// durable until [`Storage::sync_data`].
    ///
    /// # Errors
    ///
    /// The operating system's; part of `data` may have been written.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;

    /// Makes every byte written so far, and the file's length, durable
    /// (`fdatasync(2)`).
    ///
    /// # Errors
    ///
    /// The operating system's. After a failure the journal trusts nothing
    /// unsynced to have reached the disk and never retries.
    fn sync_data(&mut self) -> io::Result<()>;

    /// Cuts the file to `len` bytes. Not durable until [`Storage::sync_data`].
    ///
    /// # Errors
    ///
    /// The operating system's.
    // Reached only through a journal in a caller's `Dir` (feature `sim`).
    #[cfg_attr(not(feature = "sim"), allow(dead_code))]
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

/// Runs `f`, which calls a [`Storage`] or [`Dir`]: the embedder's code,
/// which may panic. A panic unwinding through the journal would leave its
/// flags (a flush or compaction running) set and every waiter asleep, so it
/// becomes an I/O error of `op` on `name` instead, passed through `wrap`.
pub(crate) fn unwind_to_error<T, E>(
    op: &'static str,
    name: &str,
    wrap: impl FnOnce(super::JournalError) -> E,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(wrap(super::JournalError::Io {
            op,
            name: name.to_owned(),
            source: io::Error::other("the storage panicked"),
        }))
    })
}

/// A held lock on a journal; dropping it releases the lock.
pub type LockGuard = Box<dyn Any + Send + Sync>;

/// The directory holding a journal's files, by name.
pub trait Dir: Send + Sync {
    /// Opens an existing file for reading and writing; `None` if there is none.
    ///
    /// # Errors
    ///
    /// The operating system's, other than the file's absence.
    fn open(&self, name: &str) -> io::Result<Option<Box<dyn Storage>>>;

    /// Creates a file, or empties an existing one. Its name is durable only
    /// after [`Dir::sync`].
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn create(&self, name: &str) -> io::Result<Box<dyn Storage>>;

    /// Renames `from` to `to`, atomically replacing `to`. Durable only after
    /// [`Dir::sync`].
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;

    /// Removes a file; `false` if there was none. Durable only after [`Dir::sync`].
    ///
    /// # Errors
    ///
    /// The operating system's, other than the file's absence.
    fn remove(&self, name: &str) -> io::Result<bool>;

    /// Makes every name change so far durable (`fsync(2)` of the directory).
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn sync(&self) -> io::Result<()>;

    /// Takes the exclusive lock `name`, held until the guard drops;
    /// `None` if someone else holds it. A process that dies releases its locks.
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn lock(&self, name: &str) -> io::Result<Option<LockGuard>>;

    /// Where the directory is, for messages.
    fn describe(&self) -> String;
}

/// A shared directory, so that a test keeps a handle on the disk a journal
/// owns.
impl<D: Dir + ?Sized> Dir for std::sync::Arc<D> {
    fn open(&self, name: &str) -> io::Result<Option<Box<dyn Storage>>> {
        (**self).open(name)
    }
    fn create(&self, name: &str) -> io::Result<Box<dyn Storage>> {
        (**self).create(name)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        (**self).rename(from, to)
    }
    fn remove(&self, name: &str) -> io::Result<bool> {
        (**self).remove(name)
    }
    fn sync(&self) -> io::Result<()> {
        (**self).sync()
    }
    fn lock(&self, name: &str) -> io::Result<Option<LockGuard>> {
        (**self).lock(name)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// A directory of the file system.
///
/// ```
/// use guichet::journal::{Dir, FsDir};
/// let tmp = tempfile::tempdir()?;
/// let dir = FsDir::new(tmp.path());
/// let mut file = dir.create("a")?;
/// file.write_at(0, b"hello")?;
/// file.sync_data()?;
/// dir.rename("a", "b")?;
/// dir.sync()?;
/// assert_eq!(dir.open("b")?.expect("renamed").len_bytes()?, 5);
/// assert!(dir.open("a")?.is_none());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct FsDir {
    path: PathBuf,
    mode: u32,
}

/// The mode of the files an [`FsDir`] creates unless told otherwise: a
/// journal holds every booking, so only its owner may read it.
pub const DEFAULT_FILE_MODE: u32 = 0o600;

/// How many times [`FsDir::lock`] starts over when the lock file it locked
/// was removed meanwhile by the holder it waited for. Each retry means
/// another process released the lock in between: a handful is plenty.
const MAX_LOCK_ATTEMPTS: u32 = 8;

impl FsDir {
    /// The directory at `path`; the files it creates are owner-only (0600).
    #[cfg(any(test, feature = "sim"))]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_mode(path, DEFAULT_FILE_MODE)
    }

    /// The directory at `path`, creating files with permission bits `mode`
    /// (before the umask, as open(2) does).
    pub fn with_mode(path: impl Into<PathBuf>, mode: u32) -> Self {
        Self {
            path: path.into(),
            mode: mode & 0o777,
        }
    }

    /// Options that create a file with this directory's mode, and never
    /// follow a symlink planted at its name (open(2) with `O_NOFOLLOW`
    /// fails with `ELOOP`).
    fn options(&self) -> OpenOptions {
        let mut options = OpenOptions::new();
        options
            .read(true)
            .write(true)
            .mode(self.mode)
            .custom_flags(libc::O_NOFOLLOW);
        options
    }
}

/// A lock file of an [`FsDir`], locked with flock(2). Dropping it removes
/// the file, then releases the lock, so nothing is left behind.
struct FsLock {
    // Held for its flock(2), released when it closes.
    _file: File,
    path: PathBuf,
}

impl Drop for FsLock {
    fn drop(&mut self) {
        // Unlinked while still locked: a process that opened the old file
        // meanwhile finds, once it gets the lock, that its file is no
        // longer the one at the path, and starts over (see `lock`).
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A file of an [`FsDir`].
#[derive(Debug)]
struct FsFile(File);

impl Storage for FsFile {
    fn len_bytes(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.write_all_at(data, offset)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

impl Dir for FsDir {
    fn open(&self, name: &str) -> io::Result<Option<Box<dyn Storage>>> {
        match self.options().open(self.path.join(name)) {
            Ok(file) => Ok(Some(Box::new(FsFile(file)))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn Storage>> {
        let file = self
            .options()
            .create(true)
            .truncate(true)
            .open(self.path.join(name))?;
        Ok(Box::new(FsFile(file)))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.path.join(from), self.path.join(to))
    }

    fn remove(&self, name: &str) -> io::Result<bool> {
        match std::fs::remove_file(self.path.join(name)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn sync(&self) -> io::Result<()> {
        // fsync(2) of a directory, opened read-only, makes its entries durable.
        File::open(&self.path)?.sync_all()
    }

    fn lock(&self, name: &str) -> io::Result<Option<LockGuard>> {
        // A separate lock file, never renamed: compaction replaces the
        // journal's inode, so a lock on the journal itself would not carry
        // over to the new file. flock(2) dies with its process, so a killed
        // server leaves no stale lock behind (only, at worst, the file).
        let path = self.path.join(name);
        for _ in 0..MAX_LOCK_ATTEMPTS {
            let file = self.options().create(true).truncate(false).open(&path)?;
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
            // The holder we may have raced removes the file before it
            // unlocks: ours is the lock only if our file is still the one
            // at the path.
            let ours = file.metadata()?;
            match std::fs::symlink_metadata(&path) {
                Ok(now) if now.dev() == ours.dev() && now.ino() == ours.ino() => {
                    return Ok(Some(Box::new(FsLock { _file: file, path })));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!("the lock file changed hands {MAX_LOCK_ATTEMPTS} times while we took it"),
        ))
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_past_the_end_is_an_error_not_short_data() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = FsDir::new(tmp.path());
        let mut f = dir.create("x").unwrap();
        f.write_at(0, b"abc").unwrap();
        let mut buf = [0u8; 4];
        let err = f.read_at(0, &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        f.truncate(1).unwrap();
        assert_eq!(f.len_bytes().unwrap(), 1);
        assert!(dir.remove("x").unwrap());
        assert!(!dir.remove("x").unwrap());
    }

    #[test]
    fn a_lock_is_exclusive_until_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = FsDir::new(tmp.path());
        let held = dir.lock("j.lock").unwrap().expect("free");
        assert!(dir.lock("j.lock").unwrap().is_none());
        drop(held);
        assert!(dir.lock("j.lock").unwrap().is_some());
    }
}
