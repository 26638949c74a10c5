//! `guichet serve` as a child process of a test.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus, Stdio};
use std::thread;
use std::time::Duration;

use guichet::sysv::{Key, Queue, QueueId};

use super::{fresh_key, guichet, wait_exit, KeyFile, PATIENCE};

/// A `guichet serve` process. Dropped while it still runs (a failing test),
/// it is killed and the queue it announced is removed.
pub struct ServeProcess {
    pub child: Child,
    pub key: Key,
    pub queue_id: QueueId,
    /// Lines of stdout read so far (the banner).
    pub stdout_lines: Vec<String>,
    stdout: BufReader<std::process::ChildStdout>,
    stderr_reader: Option<thread::JoinHandle<String>>,
}

/// Why `guichet serve` did not come up.
#[derive(Debug)]
pub struct ServeFailed {
    pub status: Option<ExitStatus>,
    pub stderr: String,
}

impl ServeProcess {
    /// Runs `guichet serve --key KEY ARGS…` and waits for its banner.
    pub fn start(key: Key, args: &[&str]) -> Result<ServeProcess, ServeFailed> {
        let mut child = guichet()
            .arg("serve")
            .arg("--key")
            .arg(key.to_string())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn guichet serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut stderr = child.stderr.take().expect("piped stderr");
        // Read stderr to its end on a thread, so the child never blocks on
        // a full pipe and the test can see everything it said.
        let stderr_reader = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut first = String::new();
        let read = stdout.read_line(&mut first).expect("read serve stdout");
        if read == 0 {
            let status = wait_exit(&mut child, PATIENCE);
            let stderr = stderr_reader.join().expect("stderr reader");
            return Err(ServeFailed { status, stderr });
        }
        // "guichet: serving key 0x… (queue id N), dispatch …, pid …"
        let queue_id = first
            .split("(queue id ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .and_then(|id| id.parse::<QueueId>().ok())
            .unwrap_or_else(|| panic!("unexpected banner {first:?}"));
        Ok(ServeProcess {
            child,
            key,
            queue_id,
            stdout_lines: vec![first.trim_end().to_owned()],
            stdout,
            stderr_reader: Some(stderr_reader),
        })
    }

    /// Runs `guichet serve` on a fresh key, retrying on key collisions.
    pub fn start_fresh(args: &[&str]) -> (ServeProcess, KeyFile) {
        for _ in 0..16 {
            let key_file = fresh_key();
            match ServeProcess::start(key_file.key, args) {
                Ok(serve) => return (serve, key_file),
                Err(failed) if failed.stderr.contains("already exists") => continue,
                Err(failed) => panic!("guichet serve failed: {failed:?}"),
            }
        }
        panic!("16 fresh keys were all taken");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit; returns its status, the rest of its
    /// stdout and all of its stderr.
    pub fn wait(mut self, within: Duration) -> (ExitStatus, String, String) {
        let status = wait_exit(&mut self.child, within)
            .unwrap_or_else(|| panic!("guichet serve still runs after {within:?}"));
        let mut rest = self.stdout_lines.join("\n");
        let mut tail = String::new();
        let _ = self.stdout.read_to_string(&mut tail);
        rest.push('\n');
        rest.push_str(&tail);
        let stderr = self
            .stderr_reader
            .take()
            .map(|h| h.join().expect("stderr reader"))
            .unwrap_or_default();
        (status, rest, stderr)
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            // Killed without its shutdown: remove the queue it announced
            // (ours: it created it exclusively on our fresh key).
            let _ = Queue::from_id(self.queue_id).remove();
        }
    }
}
