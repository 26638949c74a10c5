//! The `guichet` command as a user runs it: `serve` on an ftok key in one
//! process, the calls in others; exit codes, output, signals, and no queue
//! left behind.

mod support;
use support as server_support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Output, Stdio};
use std::thread;

use guichet::server::Server;
use guichet::sysv::{Queue, SysvError};
use guichet::{Client, ClientError};

use server_support::{
    assert_queue_gone, fresh_key, guichet, keyed_server, send_signal, stop, ServeProcess, PATIENCE,
    PATIENCE_MS,
};

fn call(key: &str, args: &[&str]) -> Output {
    guichet()
        .args(args)
        .args(["--key", key, "--timeout-ms"])
        .arg(PATIENCE_MS.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn calls_print_one_line_and_exit_0_1_or_2() {
    let (server, _key_file) = keyed_server(Server::builder().event("Concert", 5).event("Opera", 2));
    let key = server.key().to_string();

    let out = call(&key, &["query", "1"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), "event 1: 5 of 5 seats remaining\n");

    let out = call(&key, &["reserve", "1", "2", "--booking-id", "7"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        stdout(&out),
        "reserved booking 7: 2 seat(s) of event 1; 3 of 5 remaining\n"
    );
    // Retrying the same booking id books nothing more.
    let again = call(&key, &["reserve", "1", "2", "--booking-id", "7"]);
    assert_eq!(stdout(&again), stdout(&out));

    let out = call(&key, &["reserve", "2", "1"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        stdout(&out),
        "reserved booking 9223372036854775809: 1 seat(s) of event 2; 1 of 2 remaining\n"
    );
    // Ids and numbers read as decimal or 0x hex alike.
    let out = call(&key, &["query", "0x1"]);
    assert_eq!(stdout(&out), "event 1: 3 of 5 seats remaining\n", "{out:?}");

    let out = call(&key, &["status"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        stdout(&out),
        "event 1: 3 of 5 seats remaining\nevent 2: 1 of 2 seats remaining\n"
    );

    // Refusals: exit 1, and stderr says what was asked and what is there.
    for (args, message) in [
        (
            &["reserve", "2", "2"][..],
            "SOLD_OUT: reserve 2 seat(s) of event 2: 1 of 2 seats remain",
        ),
        (
            &["query", "3"][..],
            "UNKNOWN_EVENT: query event 3: the server has no such event \
             (`guichet status` lists them)",
        ),
        (
            &["cancel", "12345"][..],
            "UNKNOWN_BOOKING: cancel booking 12345: the server has no booking with this id",
        ),
        (
            &["cancel", "0x3039"][..],
            "UNKNOWN_BOOKING: cancel booking 12345: the server has no booking with this id",
        ),
        (
            &["reserve", "2", "1", "--booking-id", "7"][..],
            "BOOKING_CONFLICT: reserve 1 seat(s) of event 2 as booking 7: \
             booking 7 exists with another event or quantity, or was made by the other \
             of RESERVE and HOLD",
        ),
    ] {
        let out = call(&key, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert_eq!(stderr(&out), format!("guichet: {message}\n"), "{args:?}");
        assert!(stdout(&out).is_empty());
    }

    // Cancel, in decimal and hex, twice: OK both times.
    for booking in ["7", "0x7"] {
        let out = call(&key, &["cancel", booking]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert_eq!(
            stdout(&out),
            "cancelled booking 7: 2 seat(s) of event 1; 5 of 5 remaining\n"
        );
    }
    let out = call(&key, &["reserve", "1", "2", "--booking-id", "0x7"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "guichet: BOOKING_CANCELLED: reserve 2 seat(s) of event 1 as booking 7: \
         booking 7 was cancelled\n"
    );

    assert_eq!(server.client().query(1).unwrap().remaining, 5);
    stop(server);
}

#[test]
fn hold_and_confirm_print_one_line_and_exit_0_or_1() {
    let (server, _key_file) = keyed_server(Server::builder().event("Concert", 5).hold_ms(600_000));
    let key = server.key().to_string();
    let out = call(&key, &["hold", "1", "2", "--booking-id", "8"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        stdout(&out),
        "held booking 8: 2 seat(s) of event 1; 3 of 5 remaining\n"
    );
    // A retry holds nothing more.
    assert_eq!(
        stdout(&call(&key, &["hold", "1", "2", "--booking-id", "8"])),
        stdout(&out)
    );
    let out = call(&key, &["hold", "1", "1"]);
    assert!(stdout(&out).starts_with("held booking 9223372036854775809:"));
    for booking in ["8", "0x8"] {
        let out = call(&key, &["confirm", booking]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert_eq!(
            stdout(&out),
            "confirmed booking 8: 2 seat(s) of event 1; 2 of 5 remaining\n"
        );
    }
    for (args, status) in [
        (&["confirm", "99"][..], "UNKNOWN_BOOKING"),
        (
            &["reserve", "1", "2", "--booking-id", "8"],
            "BOOKING_CONFLICT",
        ),
        (&["hold", "1", "5"], "SOLD_OUT"),
    ] {
        let out = call(&key, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert!(stderr(&out).contains(status), "{args:?}: {}", stderr(&out));
    }
    stop(server);
}

#[test]
fn an_unreachable_server_exits_2_with_a_hint() {
    let key_file = fresh_key();
    let key = key_file.key.to_string();
    for args in [
        &["query", "1"][..],
        &["reserve", "1", "1"],
        &["cancel", "5"],
        &["status"],
    ] {
        let out = call(&key, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = stderr(&out);
        assert!(
            err.contains("is a server running on key") && err.contains(&key),
            "{err}"
        );
    }
}

#[test]
fn bad_arguments_are_refused_before_anything_is_sent() {
    let (server, _key_file) = keyed_server(Server::builder().event("E", 5));
    let key = server.key().to_string();
    // One message per field, whichever end of its range is passed, with
    // the value echoed as typed; clap's usage errors exit 2.
    for (args, value, field, message) in [
        (
            &["reserve", "1", "0"][..],
            "0",
            "<SEATS>",
            "a number of seats must be in 1..=4294967295",
        ),
        (
            &["reserve", "0", "1"],
            "0",
            "<EVENT>",
            "an event id must be in 1..=4294967295",
        ),
        (
            &["query", "0"],
            "0",
            "<EVENT>",
            "an event id must be in 1..=4294967295",
        ),
        (
            &["query", "1099511627776"],
            "1099511627776",
            "<EVENT>",
            "an event id must be in 1..=4294967295",
        ),
        (
            &["reserve", "1", "1", "--booking-id", "0"],
            "0",
            "--booking-id <BOOKING_ID>",
            "a booking id of your choosing must be in 1..=9223372036854775807",
        ),
        (
            &["reserve", "1", "1", "--booking-id", "0x8000000000000000"],
            "0x8000000000000000",
            "--booking-id <BOOKING_ID>",
            "a booking id of your choosing must be in 1..=9223372036854775807",
        ),
        (
            &["cancel", "0"],
            "0",
            "<BOOKING>",
            "a booking id must be in 1..=18446744073709551615",
        ),
        (
            &["cancel", "0xZZ"],
            "0xZZ",
            "<BOOKING>",
            "a booking id must be a number, decimal or hex with 0x (in 1..=18446744073709551615)",
        ),
        (
            &["reserve", "x", "1"],
            "x",
            "<EVENT>",
            "an event id must be a number, decimal or hex with 0x (in 1..=4294967295)",
        ),
        (
            &["hold", "1", "0"],
            "0",
            "<SEATS>",
            "a number of seats must be in 1..=4294967295",
        ),
        (
            &["hold", "1", "1", "--booking-id", "0x8000000000000000"],
            "0x8000000000000000",
            "--booking-id <BOOKING_ID>",
            "a booking id of your choosing must be in 1..=9223372036854775807",
        ),
        (
            &["confirm", "0"],
            "0",
            "<BOOKING>",
            "a booking id must be in 1..=18446744073709551615",
        ),
    ] {
        let out = call(&key, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let expected = format!("error: invalid value '{value}' for '{field}': {message}\n");
        assert!(
            stderr(&out).starts_with(&expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = call(&key, &["query", "-1"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stats = stop(server);
    assert_eq!(stats.received, 0, "{stats:?}");
}

/// Starts `guichet serve`, makes a few calls, sends `signal`, and checks
/// it exits 0, reports its stats and leaves no queue.
fn serve_stops_on(signal: &str) {
    let (serve, key_file) =
        ServeProcess::start_fresh(&["--event", "Concert=10", "--event", "Opera=3"]);
    let key = key_file.key;
    let id = serve.queue_id;
    assert!(
        serve.stdout_lines[0].contains(&key.to_string()),
        "{:?}",
        serve.stdout_lines
    );
    let client = Client::open(key).unwrap().with_timeout_ms(PATIENCE_MS);
    assert_eq!(client.reserve(1, 4).unwrap().remaining, 6);
    assert_eq!(client.query(2).unwrap().capacity, 3);
    assert!(matches!(
        client.query(3),
        Err(ClientError::UnknownEvent { .. })
    ));

    send_signal(serve.pid(), signal);
    let (status, out, err) = serve.wait(PATIENCE);
    assert_eq!(
        status.code(),
        Some(0),
        "SIG{signal}: {status}\n{out}\n{err}"
    );
    assert!(out.contains("event 1: Concert, 10 seats"), "{out}");
    assert!(err.contains("shutting down"), "{err}");
    assert!(
        err.contains("stopped; 3 received, replies [OK=2 UNKNOWN_EVENT=1]"),
        "{err}"
    );
    assert!(matches!(Queue::open(key), Err(SysvError::NotFound { .. })));
    assert_queue_gone(id);
    assert!(matches!(client.query(1), Err(ClientError::QueueGone(_))));
}

#[test]
fn serve_exits_0_on_sigterm_and_removes_its_queue() {
    serve_stops_on("TERM");
}

#[test]
fn serve_exits_0_on_sigint_and_removes_its_queue() {
    serve_stops_on("INT");
}

#[test]
fn serve_stops_gracefully_under_load_from_other_processes() {
    for dispatch in ["thread-per-request", "pool:3", "sequential"] {
        let (serve, key_file) = ServeProcess::start_fresh(&[
            "--event",
            "Big=1000000",
            "--dispatch",
            dispatch,
            "--max-in-flight",
            "8",
        ]);
        let key = key_file.key;
        let client = Client::open(key).unwrap().with_timeout_ms(PATIENCE_MS);
        let outcomes = thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|_| {
                    s.spawn(move || {
                        let mut ok = 0u64;
                        loop {
                            match client.reserve(1, 1) {
                                Ok(_) => ok += 1,
                                Err(e) => return (ok, e),
                            }
                        }
                    })
                })
                .collect();
            assert!(server_support::wait_until(PATIENCE, || {
                client.query(1).is_ok_and(|a| a.remaining < 1_000_000 - 100)
            }));
            send_signal(serve.pid(), "TERM");
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        let (status, _, err) = serve.wait(PATIENCE);
        assert_eq!(status.code(), Some(0), "{dispatch}: {err}");
        for (_, e) in &outcomes {
            assert!(
                matches!(e, ClientError::ShuttingDown | ClientError::QueueGone(_)),
                "{dispatch}: {e}"
            );
        }
        // The server's count of OK replies covers every OK the clients saw
        // (plus the queries above).
        let ok: u64 = outcomes.iter().map(|(n, _)| n).sum();
        let reported: u64 = err
            .split("OK=")
            .nth(1)
            .and_then(|rest| rest.split([' ', ']']).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{dispatch}: no OK count in {err}"));
        assert!(reported >= ok, "{dispatch}: {reported} < {ok}: {err}");
        assert!(matches!(Queue::open(key), Err(SysvError::NotFound { .. })));
    }
}

#[test]
fn serve_exits_1_when_its_queue_is_removed() {
    let (serve, key_file) = ServeProcess::start_fresh(&["--event", "E=1"]);
    let client = Client::open(key_file.key)
        .unwrap()
        .with_timeout_ms(PATIENCE_MS);
    client.query(1).unwrap();
    Queue::from_id(serve.queue_id).remove().unwrap();
    let (status, _, err) = serve.wait(PATIENCE);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("removed while the server was running"),
        "{err}"
    );
}

#[test]
fn serve_refuses_bad_configuration_without_creating_a_queue() {
    let key_file = fresh_key();
    for (args, message) in [
        (&["--event", "E"][..], "an event is NAME=CAPACITY"),
        (&["--event", "E=-1"], "a capacity must be a number"),
        (&["--event", "=3"], "an event needs a name before the ="),
        (&["--event", "A=1=2"], "an event name cannot contain ="),
        (&["--event", "E=1", "--event", "E=2"], "E"),
        (&["--dispatch", "pool:0"], "pool:0"),
        (&["--dispatch", "threads"], "threads"),
        (
            &["--max-in-flight", "0"],
            "--max-in-flight must be in 1..=4096",
        ),
        (
            &["--max-bookings", "0"],
            "--max-bookings must be in 1..=16777216",
        ),
        (&["--hold-ms", "0"], "--hold-ms must be in 1..=86400000"),
        (
            &["--receive-spin-us", "10001"],
            "--receive-spin-us must be in 0..=10000",
        ),
        (
            &["--hold-ms", "86400001"],
            "--hold-ms must be in 1..=86400000",
        ),
    ] {
        match ServeProcess::start(key_file.key, args) {
            Ok(serve) => panic!("{args:?} served: {:?}", serve.stdout_lines),
            Err(failed) => {
                assert_eq!(
                    failed.status.and_then(|s| s.code()),
                    Some(2),
                    "{args:?}: {failed:?}"
                );
                assert!(failed.stderr.contains(message), "{args:?}: {failed:?}");
            }
        }
        assert!(
            matches!(Queue::open(key_file.key), Err(SysvError::NotFound { .. })),
            "{args:?} left a queue"
        );
    }
}

#[test]
fn a_journal_in_a_missing_directory_is_named_whole_and_nothing_is_left() {
    let key_file = fresh_key();
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("that/does/not/exist");
    let journal = missing.join("j");
    let failed = ServeProcess::start(key_file.key, &["--journal", journal.to_str().unwrap()])
        .map(|serve| serve.stdout_lines.clone())
        .expect_err("served without its journal's directory");
    assert_eq!(failed.status.and_then(|s| s.code()), Some(2), "{failed:?}");
    assert_eq!(
        failed.stderr,
        format!(
            "guichet: journal {}: open failed: the journal's directory cannot be used: \
             No such file or directory (os error 2)\n",
            missing.display()
        )
    );
    assert!(matches!(
        Queue::open(key_file.key),
        Err(SysvError::NotFound { .. })
    ));
}

#[test]
fn a_refused_start_and_a_clean_stop_leave_only_the_journal_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let journal = tmp.path().join("bookings.journal");
    let path = journal.to_str().unwrap();
    // Refused (the key is taken): no journal, no lock file, nothing.
    let (first, key_file) = ServeProcess::start_fresh(&["--event", "E=5"]);
    let failed = ServeProcess::start(key_file.key, &["--journal", path])
        .map(|serve| serve.stdout_lines.clone())
        .expect_err("a second server on a taken key");
    assert_eq!(failed.status.and_then(|s| s.code()), Some(2), "{failed:?}");
    assert!(failed.stderr.contains("already exists"), "{failed:?}");
    assert_eq!(names_in(tmp.path()), Vec::<String>::new());
    send_signal(first.pid(), "TERM");
    let (status, _, stderr) = first.wait(PATIENCE);
    assert!(status.success(), "{stderr}");

    // Served and stopped: the journal stays, owner-only; its lock is gone.
    let (serve, _key_file) = ServeProcess::start_fresh(&["--journal", path, "--event", "E=5"]);
    send_signal(serve.pid(), "TERM");
    let (status, _, stderr) = serve.wait(PATIENCE);
    assert!(status.success(), "{stderr}");
    assert_eq!(names_in(tmp.path()), vec!["bookings.journal".to_owned()]);
    let mode = std::fs::metadata(&journal).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "journal mode {mode:o}");
}

fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A child `guichet` process, killed (and its queue removed) if the test
/// fails while it runs.
struct Running {
    child: std::process::Child,
    queue: Option<guichet::sysv::QueueId>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            if let Some(id) = self.queue {
                let _ = Queue::from_id(id).remove();
            }
        }
    }
}

/// A stdout on which every write of the child fails with EPIPE, from its
/// first: a pipe whose read end is closed before the child starts.
/// (Dropping the read end after the spawn races the child's first write,
/// which then lands in the pipe and the test tests nothing.)
fn closed_pipe() -> Stdio {
    let (read, write) = rustix::pipe::pipe().unwrap();
    drop(read);
    Stdio::from(write)
}

#[test]
fn serve_keeps_serving_when_its_stdout_is_closed() {
    // `guichet serve | head -0`, or a daemon whose stdout went away: the
    // banner cannot be written, which is no reason to stop serving.
    let key_file = fresh_key();
    let key = key_file.key;
    let child = guichet()
        .args(["serve", "--event", "E=3", "--key", &key.to_string()])
        .stdin(Stdio::null())
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running { child, queue: None };
    let up = server_support::wait_until(PATIENCE, || {
        Queue::open(key).is_ok() || !matches!(running.child.try_wait(), Ok(None))
    });
    assert!(up);
    match Queue::open(key) {
        Ok(queue) => running.queue = Some(queue.id()),
        Err(_) => {
            let status = running.child.wait().unwrap();
            let mut err = String::new();
            use std::io::Read;
            let _ = running
                .child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err);
            panic!("guichet serve exited ({status}) without serving: {err}");
        }
    }
    let client = Client::open(key).unwrap().with_timeout_ms(PATIENCE_MS);
    assert_eq!(client.reserve(1, 1).unwrap().remaining, 2);
    send_signal(running.child.id(), "TERM");
    let status = server_support::wait_exit(&mut running.child, PATIENCE).expect("exits");
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(matches!(Queue::open(key), Err(SysvError::NotFound { .. })));
    // The banner did meet a closed stdout, and said so once.
    let mut err = String::new();
    use std::io::Read;
    let _ = running
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err);
    assert_eq!(err.matches("cannot write to stdout").count(), 1, "{err}");
}

#[test]
fn a_call_whose_stdout_is_closed_still_exits_by_the_servers_answer() {
    let (server, _key_file) = keyed_server(Server::builder().event("E", 3));
    let key = server.key().to_string();
    for (args, code) in [(&["reserve", "1", "1"][..], 0), (&["query", "9"], 1)] {
        let child = guichet()
            .args(args)
            .args(["--key", &key])
            .stdin(Stdio::null())
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {out:?}");
        if code == 0 {
            assert!(stderr(&out).contains("cannot write to stdout"), "{out:?}");
        }
    }
    // The reservation happened, printed or not.
    assert_eq!(server.client().query(1).unwrap().remaining, 2);
    stop(server);
}

#[test]
fn serve_keeps_serving_and_stops_on_sigterm_when_nobody_reads_its_stdout() {
    // `guichet serve > fifo` with nobody reading, or a pipe to a stalled
    // logger: the listing of 3000 events (about 150 KB) fills the pipe
    // (64 KiB) and the write blocks. That must hold up neither requests
    // nor the shutdown.
    let key_file = fresh_key();
    let key = key_file.key;
    let events = 3_000;
    let mut child = guichet()
        .args(["serve", "--key", &key.to_string()])
        .args((1..=events).flat_map(|i| ["--event".to_owned(), format!("Event number {i}=7")]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kept open and never read.
    let _stalled_stdout = child.stdout.take();
    let mut running = Running { child, queue: None };
    let up = server_support::wait_until(PATIENCE, || {
        Queue::open(key).is_ok() || !matches!(running.child.try_wait(), Ok(None))
    });
    assert!(up);
    running.queue = Some(
        Queue::open(key)
            .unwrap_or_else(|e| panic!("guichet serve exited without serving: {e}"))
            .id(),
    );
    let client = Client::open(key).unwrap().with_timeout_ms(PATIENCE_MS);
    let last = client.query(events).unwrap();
    assert_eq!((last.remaining, last.capacity), (7, 7));
    send_signal(running.child.id(), "TERM");
    let status = server_support::wait_exit(&mut running.child, PATIENCE)
        .expect("guichet serve still runs after SIGTERM");
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(matches!(Queue::open(key), Err(SysvError::NotFound { .. })));
}
