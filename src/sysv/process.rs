//! Whether a process still exists: how the server recognises replies left
//! in the queue for clients that died.

use super::sys;

/// Whether a process with this pid exists, by kill(2) with signal 0.
///
/// `EPERM` means it exists but belongs to someone else: alive. Only `ESRCH`
/// means dead. Pids that no `pid_t` can hold, and pids `<= 0` (which kill(2)
/// reads as process groups), name no process. A pid can be reused by a new
/// process, so "alive" may be a stranger; callers treat it as a hint.
///
/// The pid is read in the caller's PID namespace. A pid that a process in
/// another namespace got from getpid(2) (a container that shares the
/// caller's IPC namespace but not its PID namespace) names a different
/// process here, or none: such a process may look dead while it runs.
pub fn process_alive(pid: i64) -> bool {
    match libc::pid_t::try_from(pid) {
        Ok(pid) if pid > 0 => !matches!(sys::kill_probe(pid), Err(libc::ESRCH)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::process_alive;

    #[test]
    fn this_process_is_alive_and_impossible_pids_are_not() {
        assert!(process_alive(i64::from(std::process::id())));
        assert!(!process_alive(0));
        assert!(!process_alive(i64::MAX));
    }
}
