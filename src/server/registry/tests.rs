//! The registry and the reaper, on a registry directory of each test's own
//! (the real one is shared by every server of this user on the machine).

use std::error::Error;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::process::Command;

use super::*;
use crate::sysv::{Mode, OwnedQueue};

type TestResult = Result<(), Box<dyn Error>>;

/// A registry directory of this test's own, opened.
fn test_dir() -> Result<(tempfile::TempDir, Dir), Box<dyn Error>> {
    let temp = tempfile::tempdir()?;
    let dir = Dir::open(&temp.path().join("registry"))?;
    Ok((temp, dir))
}

/// A pid that named a process that has exited and been waited for.
fn dead_pid() -> Result<u32, Box<dyn Error>> {
    let mut child = Command::new("true").spawn()?;
    let pid = child.id();
    child.wait()?;
    assert!(!sysv::process_alive(pid.into()), "pid {pid} reused already");
    Ok(pid)
}

fn dead_owner() -> Result<Owner, Box<dyn Error>> {
    Ok(Owner {
        pid: dead_pid()?,
        ..Owner::this_process()
    })
}

/// Leaves a record of `queue` owned by `owner`, as a process killed
/// before it could remove it would.
fn leave_record(dir: &Dir, queue: QueueId, owner: &Owner) -> TestResult {
    let record = Record::write_in(Dir::open(&dir.path)?, queue, owner)?;
    std::mem::forget(record);
    Ok(())
}

fn exists(queue: QueueId) -> bool {
    !matches!(
        Queue::from_id(queue).stat(),
        Err(SysvError::QueueRemoved { .. })
    )
}

fn has_record(dir: &Dir, queue: QueueId) -> bool {
    dir.path.join(record_name(queue)).exists()
}

#[test]
fn an_orphan_of_a_dead_owner_is_removed_with_its_record() -> TestResult {
    let (_temp, dir) = test_dir()?;
    let queue = OwnedQueue::create_private(Mode::DEFAULT)?.into_unowned();
    queue.send_flags(1, b"unread", sysv::SendFlags::NOWAIT)?;
    let owner = dead_owner()?;
    leave_record(&dir, queue.id(), &owner)?;
    let (reaped, recorded) = reap(&dir, &Owner::this_process(), true);
    let orphan = Orphan {
        queue: queue.id(),
        pid: owner.pid,
        messages: 1,
    };
    assert_eq!(reaped.orphans, vec![orphan]);
    assert_eq!(recorded, vec![queue.id()]);
    assert!(!exists(queue.id()));
    assert!(!has_record(&dir, queue.id()));
    Ok(())
}

#[test]
fn a_dry_run_lists_an_orphan_and_removes_nothing() -> TestResult {
    let (_temp, dir) = test_dir()?;
    let queue = OwnedQueue::create_private(Mode::DEFAULT)?;
    leave_record(&dir, queue.id(), &dead_owner()?)?;
    let (reaped, _) = reap(&dir, &Owner::this_process(), false);
    assert_eq!(reaped.orphans.len(), 1);
    assert!(exists(queue.id()));
    assert!(has_record(&dir, queue.id()));
    Ok(())
}

#[test]
fn a_live_owners_queue_is_spared() -> TestResult {
    let (_temp, dir) = test_dir()?;
    let queue = OwnedQueue::create_private(Mode::DEFAULT)?;
    let record = Record::write_in(Dir::open(&dir.path)?, queue.id(), &Owner::this_process())?;
    // Another live process's record too: the child sleeps until killed.
    let mut child = Command::new("sleep").arg("600").spawn()?;
    let other = OwnedQueue::create_private(Mode::DEFAULT)?;
    let child_owner = Owner {
        pid: child.id(),
        start: start_time(child.id()),
        ..Owner::this_process()
    };
    leave_record(&dir, other.id(), &child_owner)?;
    let (reaped, _) = reap(&dir, &Owner::this_process(), true);
    child.kill()?;
    child.wait()?;
    assert_eq!((reaped.orphans.len(), reaped.live), (0, 2), "{reaped:?}");
    assert!(exists(queue.id()) && exists(other.id()));
    // Dropping the record removes it.
    assert!(has_record(&dir, queue.id()));
    drop(record);
    assert!(!has_record(&dir, queue.id()));
    // Its owner gone, the child's queue is an orphan.
    let (reaped, _) = reap(&dir, &Owner::this_process(), true);
    assert_eq!(reaped.orphans.len(), 1, "{reaped:?}");
    assert!(!exists(other.id()));
    Ok(())
}

#[test]
fn a_pid_reused_by_another_process_is_not_taken_for_the_owner() -> TestResult {
    let (_temp, dir) = test_dir()?;
    let queue = OwnedQueue::create_private(Mode::DEFAULT)?;
    let here = Owner::this_process();
    let Some(start) = here.start else {
        return Err("no start time in /proc/self/stat".into());
    };
    // This process's pid, but a process that started earlier.
    let earlier = Owner {
        start: Some(start - 1),
        ..here.clone()
    };
    leave_record(&dir, queue.id(), &earlier)?;
    let (reaped, _) = reap(&dir, &here, true);
    assert_eq!(reaped.orphans.len(), 1, "{reaped:?}");
    assert!(!exists(queue.id()));
    Ok(())
}

#[test]
fn a_record_of_another_namespace_is_left_alone() -> TestResult {
    let (_temp, dir) = test_dir()?;
    let here = Owner::this_process();
    assert!(here.pid_ns.is_some() && here.ipc_ns.is_some(), "{here:?}");
    for (pid_ns, ipc_ns) in [
        (Some("pid:[1]".to_owned()), here.ipc_ns.clone()),
        (here.pid_ns.clone(), Some("ipc:[1]".to_owned())),
    ] {
        let queue = OwnedQueue::create_private(Mode::DEFAULT)?;
        let elsewhere = Owner {
            pid_ns,
            ipc_ns,
            ..dead_owner()?
        };
        leave_record(&dir, queue.id(), &elsewhere)?;
        let (reaped, _) = reap(&dir, &here, true);
        assert_eq!((reaped.orphans.len(), reaped.live), (0, 1), "{reaped:?}");
        assert!(exists(queue.id()));
        std::fs::remove_file(dir.path.join(record_name(queue.id())))?;
    }
    Ok(())
}

#[test]
fn a_keyed_queue_is_never_removed_and_its_record_is_dropped() -> TestResult {
    let (temp, dir) = test_dir()?;
    let key_file = temp.path().join("key");
    std::fs::write(&key_file, b"")?;
    let queue = OwnedQueue::create_exclusive(sysv::ftok(&key_file, b'r')?, Mode::DEFAULT)?;
    leave_record(&dir, queue.id(), &dead_owner()?)?;
    let (reaped, _) = reap(&dir, &Owner::this_process(), true);
    assert_eq!((reaped.orphans.len(), reaped.stale_records), (0, 1));
    assert!(exists(queue.id()));
    assert!(!has_record(&dir, queue.id()));
    Ok(())
}

#[test]
fn a_record_whose_queue_is_gone_is_dropped() -> TestResult {
    let (_temp, dir) = test_dir()?;
    let id = OwnedQueue::create_private(Mode::DEFAULT)?.id(); // removed
    leave_record(&dir, id, &dead_owner()?)?;
    let (reaped, _) = reap(&dir, &Owner::this_process(), true);
    assert_eq!((reaped.orphans.len(), reaped.stale_records), (0, 1));
    assert!(!has_record(&dir, id));
    Ok(())
}

#[test]
fn another_users_queue_is_never_removed() -> TestResult {
    if !rustix::process::geteuid().is_root() {
        // Making a queue of another user's needs root.
        return Ok(());
    }
    let (_temp, dir) = test_dir()?;
    // A private queue given to nobody (root may): owner 65534, creator
    // root. Its creator alone does not make it ours.
    let queue = OwnedQueue::create_private(Mode::DEFAULT)?;
    queue.set_owner(65534, 65534)?;
    leave_record(&dir, queue.id(), &dead_owner()?)?;
    let (reaped, _) = reap(&dir, &Owner::this_process(), true);
    assert_eq!((reaped.orphans.len(), reaped.stale_records), (0, 1));
    assert!(exists(queue.id()));
    Ok(())
}

#[test]
fn a_record_replaces_a_stale_one_under_its_name() -> TestResult {
    let (_temp, dir) = test_dir()?;
    let queue = OwnedQueue::create_private(Mode::DEFAULT)?;
    leave_record(&dir, queue.id(), &dead_owner()?)?;
    let record = Record::write_in(Dir::open(&dir.path)?, queue.id(), &Owner::this_process())?;
    let (reaped, _) = reap(&dir, &Owner::this_process(), true);
    assert_eq!((reaped.orphans.len(), reaped.live), (0, 1), "{reaped:?}");
    assert!(exists(queue.id()));
    drop(record);
    Ok(())
}

#[test]
fn records_that_are_not_plain_short_files_of_ours_are_ignored() -> TestResult {
    let (temp, dir) = test_dir()?;
    let queue = OwnedQueue::create_private(Mode::DEFAULT)?;
    let text = dead_owner()?.to_record(queue.id());
    // Through a symlink: never followed.
    let elsewhere = temp.path().join("elsewhere");
    std::fs::write(&elsewhere, &text)?;
    symlink(&elsewhere, dir.path.join(record_name(queue.id())))?;
    // Too long, or not a record.
    std::fs::write(dir.path.join("queue-1"), text.repeat(20))?;
    std::fs::write(dir.path.join("queue-2"), "not a record\n")?;
    let (reaped, recorded) = reap(&dir, &Owner::this_process(), true);
    assert_eq!(reaped, Reaped::default());
    assert!(recorded.is_empty());
    assert!(exists(queue.id()));
    Ok(())
}

#[test]
fn a_record_reads_back_as_written() -> TestResult {
    let owner = Owner::this_process();
    let queue = QueueId::new(42)?;
    assert_eq!(
        Owner::from_record(&owner.to_record(queue)),
        Some((queue, owner))
    );
    let minimal = format!("{FORMAT}\nqueue 7\npid 9\nlater field\n");
    let parsed = Owner::from_record(&minimal).ok_or("minimal record")?;
    assert_eq!((parsed.0.raw(), parsed.1.pid, parsed.1.start), (7, 9, None));
    for bad in [
        "",
        "guichet queue record 2\nqueue 7\npid 9\n",
        &format!("{FORMAT}\nqueue 7\n"),
        &format!("{FORMAT}\npid 9\n"),
        &format!("{FORMAT}\nqueue x\npid 9\n"),
        &format!("{FORMAT}\nqueue 7\npid 0\n"),
        &format!("{FORMAT}\nqueue -1\npid 9\n"),
    ] {
        assert_eq!(Owner::from_record(bad), None, "{bad:?}");
    }
    Ok(())
}

#[test]
fn a_missing_directory_is_created_owner_only() -> TestResult {
    let temp = tempfile::tempdir()?;
    let path = temp.path().join("registry");
    let dir = Dir::open(&path)?;
    let mode = std::fs::metadata(&dir.path)?.permissions().mode() & 0o777;
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    Ok(())
}

#[test]
fn a_directory_others_may_use_or_reach_through_a_symlink_is_refused() -> TestResult {
    let temp = tempfile::tempdir()?;
    let open = temp.path().join("open");
    std::fs::create_dir(&open)?;
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755))?;
    let link = temp.path().join("link");
    let real = temp.path().join("real");
    std::fs::create_dir(&real)?;
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700))?;
    symlink(&real, &link)?;
    let file = temp.path().join("file");
    std::fs::write(&file, b"")?;
    for path in [&open, &link, &file] {
        let result = Dir::open(path);
        assert!(
            matches!(result, Err(RegistryError::Untrusted { .. })),
            "{path:?}: {:?}",
            result.map(|d| d.path)
        );
    }
    assert!(Dir::open(&real).is_ok());
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::chown(&real, Some(65534), Some(65534))?;
        let result = Dir::open(&real);
        assert!(
            matches!(&result, Err(RegistryError::Untrusted { why, .. }) if why.contains("owned by")),
            "{:?}",
            result.map(|d| d.path)
        );
    }
    Ok(())
}
