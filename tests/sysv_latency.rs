//! What `recv_timeout` (polling) costs compared with a blocking `recv`.
//!
//! A ping-pong between two threads on one private queue: the client sends a
//! 40-byte request (mtype 1) and waits for the echo (mtype 2), either with a
//! blocking `recv` or with `recv_timeout`. The echo thread always blocks.
//! Four echo behaviours are measured: an immediate echo, 50 µs of busy work
//! (which the scheduler tends to run on the client's CPU, preempting it), and
//! 50 µs / 500 µs of sleeping "I/O" before the echo (the client is then in its
//! sleeping backoff when the reply lands: the case that costs).
//!
//! The measurement is `#[ignore]`d (it takes a few seconds and its figures
//! mean little in a debug build); run it with
//!
//! ```text
//! cargo test --release --test sysv_latency -- --ignored --nocapture
//! ```
//!
//! A plain `recv` waiting in msgrcv(2) gets the reply handed over directly
//! by the sender; `recv_timeout` sees it at its next poll. With an immediate
//! echo the reply usually lands during the three yielding polls; with 50 µs
//! of work the client is in its first sleeps, whose real length on a
//! virtual machine is ~70 µs over the request (timer slack plus wake-up).
//!
//! The quick test below runs in every `cargo test` and only checks that both
//! modes complete a few round trips.

mod sysv_support;

use guichet_testkit::fixture::deadline_in_ms;
use std::thread;
use std::time::{Duration, Instant};

use guichet::sysv::{MessageBuf, Queue, SysvError};
use sysv_support::tracked;

// The echo receives with msgtyp = -QUIT (lowest type <= 2 first), so the
// reply type must be above QUIT or the echo would steal its own replies
// from a client that polls instead of blocking.
const REQUEST: i64 = 1;
const QUIT: i64 = 2;
const REPLY: i64 = 3;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Blocking,
    Polling,
}

/// What the echo does between a request and its reply.
#[derive(Clone, Copy, Debug)]
enum Work {
    Spin(Duration),
    Sleep(Duration),
}

/// Echoes every REQUEST as a REPLY after `work`, until QUIT.
fn echo(q: Queue, work: Work) -> Result<(), SysvError> {
    let mut buf = MessageBuf::with_body_capacity(41)?;
    loop {
        let got = q.recv(-QUIT, &mut buf, None)?;
        if got.mtype == QUIT {
            return Ok(());
        }
        match work {
            Work::Spin(d) => {
                let start = Instant::now();
                while start.elapsed() < d {
                    std::hint::spin_loop();
                }
            }
            Work::Sleep(d) => thread::sleep(d),
        }
        q.send(REPLY, buf.body(), None)?;
    }
}

/// Round-trip times of `rounds` ping-pongs, sorted.
fn ping_pong(q: Queue, mode: Mode, rounds: usize) -> Result<Vec<Duration>, SysvError> {
    let body = [0x5a_u8; 40];
    let mut buf = MessageBuf::with_body_capacity(40)?;
    let mut rtts = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        q.send(REQUEST, &body, None)?;
        let got = match mode {
            Mode::Blocking => q.recv(REPLY, &mut buf, None)?,
            Mode::Polling => q.recv(REPLY, &mut buf, Some(deadline_in_ms(5_000)))?,
        };
        rtts.push(start.elapsed());
        assert_eq!(got.body_len, 40);
    }
    rtts.sort_unstable();
    Ok(rtts)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Median and p99 round trip of `mode` against an echo doing `work`.
fn measure(mode: Mode, work: Work, rounds: usize) -> Result<(Duration, Duration), SysvError> {
    let mut out = (Duration::ZERO, Duration::ZERO);
    tracked(|created| {
        let owned = created.private()?;
        let q = owned.queue();
        let server = thread::spawn(move || echo(q, work));
        let warmup = ping_pong(q, mode, rounds / 10 + 1);
        let rtts = warmup.and_then(|_| ping_pong(q, mode, rounds));
        q.send(QUIT, b"", None)?;
        server.join().expect("echo thread panicked")?;
        let rtts = rtts?;
        out = (percentile(&rtts, 0.5), percentile(&rtts, 0.99));
        Ok(())
    })?;
    Ok(out)
}

#[test]
fn both_receive_modes_complete_round_trips() -> Result<(), SysvError> {
    for mode in [Mode::Blocking, Mode::Polling] {
        // The check is that every round trip completes (an error fails it);
        // a measured time of zero would mean nothing was timed.
        let (p50, _) = measure(mode, Work::Spin(Duration::ZERO), 20)?;
        assert!(p50 > Duration::ZERO, "{mode:?}");
    }
    Ok(())
}

#[test]
#[ignore = "measurement: run with --release -- --ignored --nocapture"]
fn measure_recv_timeout_latency_cost() -> Result<(), SysvError> {
    const ROUNDS: usize = 5_000;
    println!("ping-pong of 40-byte bodies, {ROUNDS} rounds per row, 2 threads");
    println!(
        "{:>12} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "echo work", "mode", "p50 (us)", "p99 (us)", "p50 ratio", "p99 ratio"
    );
    let us = Duration::from_micros;
    let rows = [
        ("none", Work::Spin(Duration::ZERO), ROUNDS),
        ("spin 50us", Work::Spin(us(50)), ROUNDS),
        ("sleep 50us", Work::Sleep(us(50)), ROUNDS),
        ("sleep 500us", Work::Sleep(us(500)), ROUNDS / 5),
    ];
    for (name, work, rounds) in rows {
        let (b50, b99) = measure(Mode::Blocking, work, rounds)?;
        let (p50, p99) = measure(Mode::Polling, work, rounds)?;
        for (mode, m50, m99) in [("blocking", b50, b99), ("polling", p50, p99)] {
            println!(
                "{:>12} {:>10} {:>10.1} {:>10.1} {:>10.2} {:>10.2}",
                name,
                mode,
                micros(m50),
                micros(m99),
                micros(m50) / micros(b50),
                micros(m99) / micros(b99),
            );
        }
    }
    Ok(())
}
