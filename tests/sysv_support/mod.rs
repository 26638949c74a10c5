//! Helpers shared by the `tests/sysv_*.rs` suites.
//!
//! SysV queues are global to the machine and other people's tests may run
//! at the same time, so the suites never count "all queues": each test
//! records the ids it created and checks that exactly those are gone.
#![allow(dead_code)] // each suite uses a different subset

use std::fs;

use guichet::sysv::{Mode, OwnedQueue, Queue, QueueId, SysvError};

/// Records every queue a test creates, to check afterwards that none
/// survived.
#[derive(Debug, Default)]
pub struct Created {
    ids: Vec<QueueId>,
}

impl Created {
    /// A private queue with mode 0o600, recorded.
    pub fn private(&mut self) -> Result<OwnedQueue, SysvError> {
        self.private_with(Mode::DEFAULT)
    }

    /// A private queue with `mode`, recorded.
    pub fn private_with(&mut self, mode: Mode) -> Result<OwnedQueue, SysvError> {
        let owned = OwnedQueue::create_private(mode)?;
        self.ids.push(owned.id());
        Ok(owned)
    }

    /// Records a queue created some other way.
    pub fn record(&mut self, owned: OwnedQueue) -> OwnedQueue {
        self.ids.push(owned.id());
        owned
    }

    /// The ids recorded so far.
    pub fn ids(&self) -> &[QueueId] {
        &self.ids
    }

    /// Panics unless every recorded queue is gone, both for msgctl(2) and in
    /// `/proc/sysvipc/msg`.
    pub fn assert_all_removed(&self) {
        let listed = listed_queue_ids();
        for &id in &self.ids {
            match Queue::from_id(id).stat() {
                Err(SysvError::QueueRemoved { .. }) => {}
                other => panic!("queue {id} survived its test: stat gave {other:?}"),
            }
            assert!(
                !listed.contains(&id),
                "queue {id} still in /proc/sysvipc/msg"
            );
        }
    }
}

/// Runs a test body that creates its queues through `Created`, then checks
/// that all of them were removed, whether the body succeeded, failed or
/// panicked (the queues' guards drop while it unwinds).
pub fn tracked<F>(body: F) -> Result<(), SysvError>
where
    F: FnOnce(&mut Created) -> Result<(), SysvError>,
{
    let mut created = Created::default();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&mut created)));
    created.assert_all_removed();
    match result {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Queue ids listed in `/proc/sysvipc/msg` (this IPC namespace).
pub fn listed_queue_ids() -> Vec<QueueId> {
    let Ok(text) = fs::read_to_string("/proc/sysvipc/msg") else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

/// Whether this process has `CAP_IPC_OWNER` (bit 15 of `CapEff`), which
/// bypasses SysV permission checks (root usually has it).
pub fn has_cap_ipc_owner() -> bool {
    const CAP_IPC_OWNER: u32 = 15;
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_IPC_OWNER) != 0)
}

/// A short name for an outcome, for assertions that cross a process.
pub fn outcome<T>(r: &Result<T, SysvError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(SysvError::QueueRemoved { .. }) => "QueueRemoved",
        Err(SysvError::PermissionDenied { .. }) => "PermissionDenied",
        Err(SysvError::Exists { .. }) => "Exists",
        Err(SysvError::NotFound { .. }) => "NotFound",
        Err(SysvError::SystemLimit { .. }) => "SystemLimit",
        Err(SysvError::TooBig { .. }) => "TooBig",
        Err(SysvError::TimedOut { .. }) => "TimedOut",
        Err(SysvError::InvalidArgument { .. }) => "InvalidArgument",
        Err(_) => "Other",
    }
}

/// The calling thread's kernel id, for [`wait_blocked`].
pub fn current_tid() -> u32 {
    // "/proc/thread-self" links to "PID/task/TID".
    fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|link| link.file_name()?.to_str()?.parse().ok())
        .expect("/proc/thread-self names the thread")
}

/// Whether thread `tid` of this process is asleep inside system call
/// `syscall` on `queue` (its first argument), from `/proc`.
pub fn blocked_in(tid: u32, syscall: libc::c_long, queue: QueueId) -> bool {
    let task = format!("/proc/self/task/{tid}");
    let (Ok(call), Ok(stat)) = (
        fs::read_to_string(format!("{task}/syscall")),
        fs::read_to_string(format!("{task}/stat")),
    ) else {
        return false;
    };
    let mut fields = call.split_whitespace();
    let in_call = fields.next() == Some(syscall.to_string().as_str())
        && fields.next() == Some(format!("{:#x}", queue.raw()).as_str());
    // State S: asleep, here in the queue's wait list.
    let asleep = stat
        .rsplit_once(") ")
        .is_some_and(|(_, rest)| rest.starts_with('S'));
    in_call && asleep
}

/// Waits (a minute at most, however loaded the machine) until thread
/// `tid` is asleep in `syscall` on `queue`: "the receiver is blocked",
/// observed rather than assumed after a sleep. Fails the test otherwise.
pub fn wait_blocked(tid: u32, syscall: libc::c_long, queue: QueueId) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !blocked_in(tid, syscall, queue) {
        assert!(
            std::time::Instant::now() < deadline,
            "thread {tid} never blocked in syscall {syscall} on queue {queue}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
