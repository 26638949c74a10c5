//! The orphan reaper end to end: a process holding a fixture server is
//! killed by SIGKILL, which runs no drop and leaves its private queue; the
//! next fixture server to start (or `guichet reap`) removes it, and
//! leaves a live process's queue and a keyed queue alone.
//!
//! `#[serial]`: every server start here reaps, so the tests must not start
//! servers while another checks that a queue is still there.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};

use guichet::server::registry_dir;
use guichet::sysv::{Queue, QueueId, SysvError};
use guichet::Server;
use serial_test::serial;

use signal_hook::consts::SIGKILL;
use support::{guichet, send_signal, wait_exit, ServeProcess, PATIENCE};

/// Set in the environment of the child that [`fixture_holder`] runs in.
const CHILD_ENV: &str = "GUICHET_TEST_FIXTURE_HOLDER";
const ANNOUNCE: &str = "fixture holder queue ";

/// The child process the tests kill, not a test of its own: holds a
/// fixture server, says its queue id, and waits for its stdin to close
/// (if the test that started it dies, it then stops cleanly).
#[test]
#[ignore = "the child process of the other tests"]
fn fixture_holder() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let server = Server::builder().event("E", 1).spawn().unwrap();
    println!("{ANNOUNCE}{}", server.queue_id());
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    server.shutdown().unwrap();
}

/// A child process holding a fixture server. Dropped (a test failed), it
/// is killed and its queue removed.
struct Holder {
    child: Child,
    queue: QueueId,
}

impl Holder {
    fn start() -> Holder {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["fixture_holder", "--exact", "--ignored", "--nocapture"])
            .env(CHILD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The test harness prints its own lines around ours.
        let stdout = BufReader::new(child.stdout.take().unwrap());
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(id) = line.strip_prefix(ANNOUNCE) {
                let queue = id.parse().unwrap();
                return Holder { child, queue };
            }
        }
        panic!(
            "the fixture holder exited without a queue: {:?}",
            child.wait()
        );
    }

    /// SIGKILL, as a CI timeout or `kill -9` would: no drop runs.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        let status = wait_exit(&mut self.child, PATIENCE).expect("killed child exits");
        assert_eq!(status.signal(), Some(SIGKILL), "{status:?}");
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Queue::from_id(self.queue).remove();
    }
}

fn exists(queue: QueueId) -> bool {
    !matches!(
        Queue::from_id(queue).stat(),
        Err(SysvError::QueueRemoved { .. })
    )
}

fn has_record(queue: QueueId) -> bool {
    registry_dir().join(format!("queue-{queue}")).exists()
}

/// Starts a fixture server (which reaps first) and stops it.
fn start_a_fixture() {
    Server::builder()
        .event("E", 1)
        .spawn()
        .unwrap()
        .shutdown()
        .unwrap();
}

#[test]
#[serial]
fn a_fixture_killed_by_sigkill_leaves_its_queue_only_until_the_next_server_starts() {
    let mut holder = Holder::start();
    assert!(has_record(holder.queue), "{:?}", registry_dir());
    // Alive: spared.
    start_a_fixture();
    assert!(exists(holder.queue));

    holder.kill();
    // Nothing removed it: the kernel keeps a queue until told.
    assert!(exists(holder.queue));
    assert!(has_record(holder.queue));

    start_a_fixture();
    assert!(!exists(holder.queue), "the orphan is still there");
    assert!(!has_record(holder.queue));
}

#[test]
#[serial]
fn a_keyed_queue_of_a_killed_guichet_serve_is_never_reaped() {
    let (serve, _key_file) = ServeProcess::start_fresh(&["--event", "E=1"]);
    let queue = serve.queue_id;
    send_signal(serve.pid(), "KILL");
    let (status, _, _) = serve.wait(PATIENCE);
    assert_eq!(status.signal(), Some(SIGKILL), "{status:?}");
    assert!(!has_record(queue));

    start_a_fixture();
    let out = guichet().arg("reap").output().unwrap();
    let spared = exists(queue);
    let _ = Queue::from_id(queue).remove();
    assert!(out.status.success(), "{out:?}");
    assert!(
        spared,
        "the keyed queue of a killed `guichet serve` was removed"
    );
}

#[test]
#[serial]
fn guichet_reap_lists_then_removes_an_orphan_and_spares_a_live_fixture() {
    let mut dead = Holder::start();
    let live = Holder::start();
    dead.kill();

    let dry = guichet().args(["reap", "--dry-run"]).output().unwrap();
    let dry_out = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success(), "{dry:?}");
    assert!(
        dry_out.contains(&format!("orphan: queue {} of pid", dead.queue)),
        "{dry_out}"
    );
    assert!(exists(dead.queue) && exists(live.queue));

    let reap = guichet().arg("reap").output().unwrap();
    let reap_out = String::from_utf8_lossy(&reap.stdout);
    assert!(reap.status.success(), "{reap:?}");
    assert!(
        reap_out.contains(&format!("removed: queue {} of pid", dead.queue)),
        "{reap_out}"
    );
    assert!(
        !reap_out.contains(&format!("queue {} ", live.queue)),
        "{reap_out}"
    );
    assert!(!exists(dead.queue));
    assert!(exists(live.queue));
}
