//! Which private queues this user's servers own, and the reaper of those
//! whose owner died.
//!
//! A server on a private queue (a test fixture, typically) removes it when
//! it stops or is dropped. A process killed by SIGKILL (or SIGINT, SIGTERM
//! or a CI timeout, which a test harness does not catch) runs no drop, and
//! the kernel keeps the queue until reboot: SysV queues belong to no
//! process. The kernel does not record which process created a queue
//! either (`msqid_ds` has the last sender's and receiver's pids only), so
//! each server records it itself, in a per-user directory:
//!
//! - `/tmp/guichet-<euid>` (or `$GUICHET_REGISTRY_DIR`), created 0700 and
//!   used only if it is a real directory (never through a symlink) owned
//!   by this user with no access for anyone else;
//! - one file per queue, `queue-<id>`, 0600, written right after msgget(2)
//!   and before the queue is used, removed right after the queue is: the
//!   queue id, the owner's pid and start time (so a reused pid is not
//!   taken for the owner), and its PID and IPC namespaces.
//!
//! Every server start, keyed or not, first [reaps](reap_orphans): a record
//! whose owner is gone names an orphan, which is removed if it is still a
//! private queue owned and created by this user; a record whose queue is
//! gone, or is no longer such a queue, is dropped. A queue of a live
//! process, another user's queue and a keyed queue (`guichet serve`
//! creates keyed queues deliberately, and records none) are never removed.
//! Records of another PID or IPC namespace are left alone (their pids and
//! ids mean something else here).
//!
//! A queue whose record is lost (killed between msgget(2) and the record,
//! a registry it could not use, a record deleted by hand) is never removed
//! automatically: nothing then proves its owner dead. [`reap_orphans`]
//! lists such queues (private, this user's, no record, last used by a
//! process that is gone) for removal by hand with `ipcrm -q ID`.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode as FileMode, OFlags};
use rustix::io::Errno;

use crate::sysv::{self, Key, Queue, QueueId, SysvError};

/// The environment variable that names the registry directory instead of
/// `/tmp/guichet-<euid>` (for a sandbox whose `/tmp` is not shared, say).
/// Every process whose queues one reaper should see must use the same.
///
/// # Examples
///
/// ```
/// use guichet::server::registry_dir;
///
/// if std::env::var_os("GUICHET_REGISTRY_DIR").is_none() {
///     assert!(registry_dir().starts_with("/tmp"));
/// }
/// ```
pub(crate) const REGISTRY_DIR_ENV: &str = "GUICHET_REGISTRY_DIR";
/// First line of a record: its format.
const FORMAT: &str = "guichet queue record 1";
const RECORD_PREFIX: &str = "queue-";
/// A record is a few short lines; anything longer is not ours.
const MAX_RECORD_BYTES: u64 = 512;
/// Records one reap looks at, at most: a bound on the work a server start
/// does, far above the fixtures one machine runs at once.
const MAX_RECORDS_PER_REAP: usize = 4096;
/// Queues `/proc/sysvipc/msg` lists that one reap looks at, at most (the
/// kernel's own `msgmni` limit is 32,000 by default).
const MAX_LISTED_QUEUES: usize = 65_536;

/// Why the registry could not be used.
///
/// # Examples
///
/// ```
/// use guichet::server::{reap_orphans, RegistryError};
///
/// match reap_orphans(true) {
///     Ok(reaped) => println!("{} orphans", reaped.orphans.len()),
///     Err(RegistryError::Untrusted { path, why, .. }) => println!("{}: {why}", path.display()),
///     Err(e) => println!("{e}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A system call on the registry failed.
    #[error("queue registry {path}: {what}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error, with its errno.
        source: io::Error,
    },
    /// The directory is not one this user alone controls: it is not used.
    #[error("queue registry {path} is not used: {why}")]
    Untrusted {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

fn io_error(path: &Path, what: &'static str, errno: Errno) -> RegistryError {
    RegistryError::Io {
        path: path.to_owned(),
        what,
        source: errno.into(),
    }
}

/// The registry directory: `$GUICHET_REGISTRY_DIR` if set, else
/// `/tmp/guichet-<euid>`.
///
/// Not the temporary directory of `$TMPDIR`: queues are shared by the
/// whole machine, so their records must be too, whatever directory a test
/// runner gives each process.
///
/// # Examples
///
/// ```
/// let dir = guichet::server::registry_dir();
/// assert!(dir.is_absolute() || std::env::var_os("GUICHET_REGISTRY_DIR").is_some());
/// ```
#[must_use]
pub fn registry_dir() -> PathBuf {
    match std::env::var_os(REGISTRY_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(format!(
            "/tmp/guichet-{}",
            rustix::process::geteuid().as_raw()
        )),
    }
}

/// The registry directory, opened: created 0700 if missing, refused
/// unless it is a directory (not a symlink) that this user owns and nobody
/// else may use.
struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    fn open(path: &Path) -> Result<Dir, RegistryError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rustix::fs::open(path, flags, FileMode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                match rustix::fs::mkdir(path, FileMode::RWXU) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(io_error(path, "mkdir", e)),
                }
                rustix::fs::open(path, flags, FileMode::empty())
                    .map_err(|e| io_error(path, "open", e))?
            }
            Err(Errno::LOOP | Errno::NOTDIR) => {
                return Err(RegistryError::Untrusted {
                    path: path.to_owned(),
                    why: "not a directory (or a symlink)".into(),
                })
            }
            Err(e) => return Err(io_error(path, "open", e)),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| io_error(path, "fstat", e))?;
        let euid = rustix::process::geteuid().as_raw();
        let mode = st.st_mode & 0o7777;
        let why = if st.st_uid != euid {
            format!("owned by uid {}, not {euid}", st.st_uid)
        } else if mode & 0o077 != 0 || mode & 0o700 != 0o700 {
            format!("mode {mode:o}, not 700")
        } else {
            return Ok(Dir {
                fd,
                path: path.to_owned(),
            });
        };
        Err(RegistryError::Untrusted {
            path: path.to_owned(),
            why,
        })
    }
}

/// This process as a record names it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Owner {
    pid: u32,
    /// Clock ticks since boot when it started (`/proc/PID/stat`, field
    /// 22), if readable.
    start: Option<u64>,
    pid_ns: Option<String>,
    ipc_ns: Option<String>,
}

fn namespace(name: &str) -> Option<String> {
    std::fs::read_link(format!("/proc/self/ns/{name}"))
        .ok()
        .and_then(|link| link.to_str().map(str::to_owned))
}

/// When `pid` started, in clock ticks since boot; `None` if unreadable.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count
    // from the last ')'. Field 22 is the 20th after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

impl Owner {
    fn this_process() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start: start_time(pid),
            pid_ns: namespace("pid"),
            ipc_ns: namespace("ipc"),
        }
    }

    /// Whether this owner may still be running: it is, or it cannot be
    /// judged from here (another namespace), or its pid is taken by a
    /// process whose start time cannot be compared.
    fn may_be_alive(&self, here: &Owner) -> bool {
        let other_ns = |theirs: &Option<String>, ours: &Option<String>| {
            theirs.is_some() && ours.is_some() && theirs != ours
        };
        if other_ns(&self.pid_ns, &here.pid_ns) || other_ns(&self.ipc_ns, &here.ipc_ns) {
            return true;
        }
        if !sysv::process_alive(i64::from(self.pid)) {
            return false;
        }
        // The pid names a process: the owner, unless it started at another
        // time (the owner died and its pid was reused).
        match (self.start, start_time(self.pid)) {
            (Some(recorded), Some(now)) => recorded == now,
            _ => true,
        }
    }

    fn to_record(&self, queue: QueueId) -> String {
        let mut text = format!("{FORMAT}\nqueue {}\npid {}\n", queue.raw(), self.pid);
        if let Some(start) = self.start {
            text += &format!("start {start}\n");
        }
        for (name, ns) in [("pidns", &self.pid_ns), ("ipcns", &self.ipc_ns)] {
            if let Some(ns) = ns {
                text += &format!("{name} {ns}\n");
            }
        }
        text
    }

    /// Parses a record; `None` if it is not one.
    fn from_record(text: &str) -> Option<(QueueId, Owner)> {
        let mut lines = text.lines();
        if lines.next()? != FORMAT {
            return None;
        }
        let (mut queue, mut pid) = (None, None);
        let mut owner = Owner {
            pid: 0,
            start: None,
            pid_ns: None,
            ipc_ns: None,
        };
        for line in lines {
            let (name, value) = line.split_once(' ')?;
            match name {
                "queue" => queue = Some(QueueId::new(value.parse().ok()?).ok()?),
                "pid" => pid = Some(value.parse().ok().filter(|&p: &u32| p > 0)?),
                "start" => owner.start = Some(value.parse().ok()?),
                "pidns" => owner.pid_ns = Some(value.to_owned()),
                "ipcns" => owner.ipc_ns = Some(value.to_owned()),
                _ => {} // a later version's field
            }
        }
        owner.pid = pid?;
        Some((queue?, owner))
    }
}

fn record_name(queue: QueueId) -> String {
    format!("{RECORD_PREFIX}{}", queue.raw())
}

/// The record of one private queue a server of this process owns; removed
/// when dropped (after the queue).
pub(crate) struct Record {
    dir: Dir,
    name: String,
}

impl Record {
    /// Records that this process owns `queue`. A record already under its
    /// name is stale (the queue id is this process's now): it is replaced.
    pub(crate) fn write(queue: QueueId) -> Result<Record, RegistryError> {
        Record::write_in(Dir::open(&registry_dir())?, queue, &Owner::this_process())
    }

    fn write_in(dir: Dir, queue: QueueId, owner: &Owner) -> Result<Record, RegistryError> {
        let name = record_name(queue);
        let text = owner.to_record(queue);
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        let mode = FileMode::RUSR | FileMode::WUSR;
        let path = dir.path.join(&name);
        let fd = match rustix::fs::openat(&dir.fd, &name, flags | OFlags::CLOEXEC, mode) {
            Err(Errno::EXIST) => {
                let _ = rustix::fs::unlinkat(&dir.fd, &name, AtFlags::empty());
                rustix::fs::openat(&dir.fd, &name, flags | OFlags::CLOEXEC, mode)
            }
            other => other,
        }
        .map_err(|e| io_error(&path, "create", e))?;
        let record = Record { dir, name };
        // Dropped (the file removed) if the write fails.
        File::from(fd)
            .write_all(text.as_bytes())
            .map_err(|source| RegistryError::Io {
                path,
                what: "write",
                source,
            })?;
        Ok(record)
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        // Nothing to do about a failure: at worst the record outlives its
        // queue, and the next reap drops it (its queue is gone).
        let _ = rustix::fs::unlinkat(&self.dir.fd, &self.name, AtFlags::empty());
    }
}

/// A private queue whose owner is gone, found by [`reap_orphans`].
///
/// # Examples
///
/// ```
/// for orphan in guichet::server::reap_orphans(true)?.orphans {
///     println!("{orphan}"); // "queue 42 of pid 1234 (gone), 3 messages"
/// }
/// # Ok::<(), guichet::server::RegistryError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Orphan {
    /// The queue.
    pub queue: QueueId,
    /// The pid of the process that owned it (gone).
    pub pid: u32,
    /// The messages it held, unread.
    pub messages: u64,
}

impl fmt::Display for Orphan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "queue {} of pid {} (gone), {} messages",
            self.queue, self.pid, self.messages
        )
    }
}

/// What [`reap_orphans`] found, and did.
///
/// # Examples
///
/// ```
/// let reaped = guichet::server::reap_orphans(true)?; // a dry run
/// println!(
///     "{} orphans, {} live, {} unrecorded",
///     reaped.orphans.len(),
///     reaped.live,
///     reaped.unrecorded.len()
/// );
/// # Ok::<(), guichet::server::RegistryError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reaped {
    /// Orphaned queues: removed, unless it was a dry run.
    pub orphans: Vec<Orphan>,
    /// Queues left alone because their owner may be alive (it runs, or is
    /// in another PID or IPC namespace).
    pub live: usize,
    /// Records dropped because their queue was gone, or was no longer a
    /// private queue of this user's (its id reused): nothing removed.
    pub stale_records: usize,
    /// Private queues of this user with no record whose last sender and
    /// receiver are gone: left alone (nothing proves them orphans), for
    /// removal by hand (`ipcrm -q ID`) by whoever knows them unused.
    pub unrecorded: Vec<QueueId>,
    /// Orphans that could not be removed, with why.
    pub failures: Vec<(QueueId, SysvError)>,
}

/// Finds the private queues recorded by this user's servers whose owning
/// process is gone, and removes them unless `dry_run`; also lists this
/// user's private queues that have no record (never removed).
///
/// Every [`Server`](crate::Server) start does this too (without the
/// listing), so a fixture killed by SIGKILL leaves its queue only until the
/// next server starts on the machine. A live process's queue, another
/// user's, and a keyed queue are never removed (see the
/// [module docs](crate::server#orphaned-queues)).
///
/// # Examples
///
/// ```
/// use guichet::server::reap_orphans;
///
/// let server = guichet::Server::builder().event("E", 1).spawn()?;
/// let reaped = reap_orphans(true)?; // a dry run: lists only
/// // This process is alive: its queue is never an orphan.
/// assert!(reaped.orphans.iter().all(|o| o.queue != server.queue_id()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`RegistryError`] if the registry directory cannot be created or
/// opened, or is not this user's alone (then nothing is removed).
pub fn reap_orphans(dry_run: bool) -> Result<Reaped, RegistryError> {
    let dir = Dir::open(&registry_dir())?;
    let (mut reaped, recorded) = reap(&dir, &Owner::this_process(), !dry_run);
    reaped.unrecorded = unrecorded(&recorded);
    Ok(reaped)
}

/// The reap every server start does: removes orphans, ignores failures (a
/// registry that cannot be used must not keep a server from starting).
pub(crate) fn reap_on_start() {
    if let Ok(dir) = Dir::open(&registry_dir()) {
        let _ = reap(&dir, &Owner::this_process(), true);
    }
}

/// Reaps the records of `dir`; returns what it did and every queue id a
/// record names.
fn reap(dir: &Dir, here: &Owner, remove: bool) -> (Reaped, Vec<QueueId>) {
    let mut reaped = Reaped::default();
    let mut recorded = Vec::new();
    for name in record_names(dir) {
        let Some((queue, owner)) = read_record(dir, &name) else {
            continue;
        };
        recorded.push(queue);
        if owner.may_be_alive(here) {
            reaped.live += 1;
            continue;
        }
        let drop_record = || {
            if remove {
                let _ = rustix::fs::unlinkat(&dir.fd, &name, AtFlags::empty());
            }
        };
        let euid = rustix::process::geteuid().as_raw();
        match Queue::from_id(queue).stat() {
            Ok(st) if st.key.is_private() && st.uid == euid && st.creator_uid == euid => {
                let orphan = Orphan {
                    queue,
                    pid: owner.pid,
                    messages: st.messages,
                };
                match remove.then(|| Queue::from_id(queue).remove()) {
                    None | Some(Ok(()) | Err(SysvError::QueueRemoved { .. })) => {
                        drop_record();
                        reaped.orphans.push(orphan);
                    }
                    Some(Err(error)) => reaped.failures.push((queue, error)),
                }
            }
            // Gone, or not a private queue of ours any more (another
            // user's, or a key's): the record is stale; the queue is not
            // touched.
            Ok(_) | Err(SysvError::QueueRemoved { .. } | SysvError::PermissionDenied { .. }) => {
                drop_record();
                reaped.stale_records += 1;
            }
            Err(error) => reaped.failures.push((queue, error)),
        }
    }
    (reaped, recorded)
}

/// The names of the records in `dir`, at most [`MAX_RECORDS_PER_REAP`].
fn record_names(dir: &Dir) -> Vec<String> {
    let Ok(entries) = rustix::fs::Dir::read_from(&dir.fd) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str().ok().map(str::to_owned))
        .filter(|name| name.starts_with(RECORD_PREFIX))
        .take(MAX_RECORDS_PER_REAP)
        .collect()
}

/// Reads a record: a regular file of this user's, not a symlink, short.
fn read_record(dir: &Dir, name: &str) -> Option<(QueueId, Owner)> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = rustix::fs::openat(&dir.fd, name, flags, FileMode::empty()).ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    let regular = rustix::fs::FileType::from_raw_mode(st.st_mode).is_file();
    let size = u64::try_from(st.st_size).ok()?;
    if !regular || st.st_uid != rustix::process::geteuid().as_raw() || size > MAX_RECORD_BYTES {
        return None;
    }
    let mut text = String::new();
    File::from(fd)
        .take(MAX_RECORD_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    Owner::from_record(&text)
}

/// This user's private queues that no record names, whose last sender and
/// receiver are gone (from `/proc/sysvipc/msg`).
fn unrecorded(recorded: &[QueueId]) -> Vec<QueueId> {
    let Ok(table) = std::fs::read_to_string("/proc/sysvipc/msg") else {
        return Vec::new();
    };
    let euid = u64::from(rustix::process::geteuid().as_raw());
    let gone = |pid: u64| pid == 0 || !sysv::process_alive(pid as i64);
    table
        .lines()
        .skip(1)
        .take(MAX_LISTED_QUEUES)
        .filter_map(|line| {
            // key msqid perms cbytes qnum lspid lrpid uid gid cuid cgid …
            let f: Vec<i64> = line
                .split_whitespace()
                .take(11)
                .map(|f| f.parse().ok())
                .collect::<Option<_>>()?;
            let [key, id, _, _, _, lspid, lrpid, uid, _, cuid, _] = f[..] else {
                return None;
            };
            let mine = key == i64::from(Key::PRIVATE.raw())
                && u64::try_from(uid).ok()? == euid
                && u64::try_from(cuid).ok()? == euid;
            let idle = gone(u64::try_from(lspid).ok()?) && gone(u64::try_from(lrpid).ok()?);
            let queue = QueueId::new(i32::try_from(id).ok()?).ok()?;
            (mine && idle && !recorded.contains(&queue)).then_some(queue)
        })
        .collect()
}

#[cfg(test)]
mod tests;
