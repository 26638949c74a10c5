//! `guichet serve --classic-key` as a process: with a journal, a classic OK
//! survives SIGKILL and a restart; SIGTERM removes both queues; an existing
//! classic key refuses the start with a clear message. Keys are ftok(3) of
//! a file in a temporary directory, never the course's 12345; a guard kills
//! the server and removes both queues whatever happens.

use guichet_testkit::fixture::deadline_in_ms;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use guichet::classic::{
    decode_classic_reply, ClassicRequest, MTYPE_LIST_REPLY, MTYPE_RESERVE_REPLY,
};
use guichet::sysv::{ftok, Key, MessageBuf, Queue};
use guichet::Client;

const DEADLINE: Duration = Duration::from_secs(60);
const DEADLINE_MS: u32 = 60_000;

struct Guard {
    keys: [Key; 2],
    child: Option<Child>,
}

impl Guard {
    fn start(&mut self, journal: &Path) {
        let [key, classic] = self.keys;
        let child = Command::new(env!("CARGO_BIN_EXE_guichet"))
            .args(["serve", "--key", &key.to_string()])
            .args(["--classic-key", &classic.to_string(), "--journal"])
            .arg(journal)
            .args(["--event", "Concert=10", "--event", "Opéra=4"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn guichet serve");
        self.child = Some(child);
    }

    /// Waits until both queues answer.
    fn ready(&mut self) -> (Client, Queue) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("the server exited early ({status})");
            }
            if let (Ok(client), Ok(classic)) =
                (Client::open(self.keys[0]), Queue::open(self.keys[1]))
            {
                if client.with_timeout_ms(1_000).query(1).is_ok() {
                    return (client.with_timeout_ms(DEADLINE_MS), classic);
                }
            }
            assert!(Instant::now() < deadline, "the server never became ready");
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }

    /// SIGTERM, then the server's exit and output.
    fn terminate(&mut self) -> Output {
        let child = self.child.take().expect("a running server");
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        child.wait_with_output().expect("wait for the server")
    }

    fn remove_queues(&self) {
        for key in self.keys {
            if let Ok(queue) = Queue::open(key) {
                let _ = queue.remove();
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill();
        // SIGKILL cannot clean up: the queues outlive the server.
        self.remove_queues();
    }
}

fn ask(queue: Queue, request: ClassicRequest) -> String {
    let (mtype, body) = request.encode();
    queue
        .send(mtype, &body, Some(deadline_in_ms(DEADLINE_MS)))
        .expect("send");
    let reply_mtype = match request {
        ClassicRequest::List => MTYPE_LIST_REPLY,
        _ => MTYPE_RESERVE_REPLY,
    };
    let mut buf = MessageBuf::with_body_capacity(513).expect("buffer");
    queue
        .recv(reply_mtype, &mut buf, Some(deadline_in_ms(DEADLINE_MS)))
        .expect("a classic reply");
    let reply = decode_classic_reply(reply_mtype, buf.body()).expect("well-formed");
    reply.text.as_str().to_owned()
}

fn keys(dir: &Path) -> [Key; 2] {
    let file = dir.join("keys");
    std::fs::write(&file, b"").expect("key file");
    let keys = [
        ftok(&file, b'w').expect("ftok"),
        ftok(&file, b'c').expect("ftok"),
    ];
    for key in keys {
        assert!(Queue::open(key).is_err(), "a queue already has key {key}");
    }
    keys
}

#[test]
fn a_classic_ok_survives_sigkill_and_sigterm_removes_both_queues() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = dir.path().join("journal");
    let mut guard = Guard {
        keys: keys(dir.path()),
        child: None,
    };
    guard.start(&journal);
    let (_, classic) = guard.ready();
    let ok = ask(
        classic,
        ClassicRequest::Reserve {
            id_spec: 0,
            nb_places: 3,
        },
    );
    assert_eq!(ok, "OK ! 3 places réservées pour Concert.");
    // The OK was sent: it must be on disk. SIGKILL leaves no time to write.
    guard.kill();
    guard.remove_queues();
    guard.start(&journal);
    let (client, classic) = guard.ready();
    assert_eq!(client.query(1).expect("wire v1 query").remaining, 7);
    assert_eq!(
        ask(classic, ClassicRequest::List),
        "\n--- SPECTACLES ---\n[0] Concert : 7 places\n[1] Opéra : 4 places\n"
    );
    let out = guard.terminate();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "serve after SIGTERM: {stderr}");
    assert!(
        stderr.contains("guichet: classic: 1 received, 1 listings"),
        "{stderr}"
    );
    for key in guard.keys {
        assert!(
            Queue::open(key).is_err(),
            "queue {key} left behind by SIGTERM"
        );
    }
}

#[test]
fn serve_refuses_an_existing_classic_key_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [key, classic] = keys(dir.path());
    let taken = guichet::sysv::OwnedQueue::create_exclusive(classic, guichet::sysv::Mode::DEFAULT)
        .expect("a queue of our own");
    let out = Command::new(env!("CARGO_BIN_EXE_guichet"))
        .args(["serve", "--key", &key.to_string()])
        .args(["--classic-key", &classic.to_string()])
        .stdin(Stdio::null())
        .output()
        .expect("run guichet serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "a message queue already exists for the classic key {classic}"
        )),
        "{stderr}"
    );
    assert!(
        Queue::open(key).is_err(),
        "the wire v1 queue was left behind"
    );
    taken.remove().expect("remove our queue");
}
