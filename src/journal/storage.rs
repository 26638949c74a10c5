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
use std::os::unix::fs::FileExt;
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
}

impl FsDir {
    /// The directory at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
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
        match OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path.join(name))
        {
            Ok(file) => Ok(Some(Box::new(FsFile(file)))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn Storage>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
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
        // server leaves no stale lock behind.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.path.join(name))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(Box::new(file))),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(e.into()),
        }
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
