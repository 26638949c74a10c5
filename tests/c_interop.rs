//! C (and Python) interoperability of wire v1: `include/guichet.h` against
//! `guichet::wire`, byte for byte, and the example clients.
//!
//! Uses the system C compiler (`$CC`, else `cc`) and C++ compiler (`$CXX`,
//! else `c++`), and `python3` for the Python example. A test whose tool is
//! missing prints `SKIPPED ...` on stderr and passes, unless
//! `GUICHET_REQUIRE_TOOLS=1` is set, which makes it fail instead (for CI).
//! Everything is built in a temporary directory. One test runs the C client
//! against a live server, on a queue keyed with ftok(3) on a file of its own
//! temporary directory (the C client needs a key); the server removes the
//! queue when it shuts down.

use guichet_testkit::tools;

use std::any::type_name_of_val;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::mem::{offset_of, size_of, size_of_val};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use guichet::ledger::BookingState;
use guichet::server::{Server, ServerError};
use guichet::sysv::{ftok, Key, Queue};
use guichet::wire::Op;
use guichet::wire::{
    self, ReplyBody, ReplyMessage, RequestBody, RequestMessage, ANSWERABLE_PREFIX, BODY_SIZE,
    MAGIC, MESSAGE_SIZE, MIN_REPLY_TO, REQUEST_MTYPE, SERVER_BOOKING_BIT, VERSION,
};
use guichet::{
    decode_reply, decode_request, BookingId, ClientBookingId, EventId, Operation, Reply, ReplyTo,
    Request, RequestId, Status,
};
use zerocopy::{FromBytes, IntoBytes};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn root(rel: &str) -> PathBuf {
    Path::new(ROOT).join(rel)
}

// ---- tools ------------------------------------------------------------------

/// A compiler command: the program and the leading arguments `$CC` may carry
/// (e.g. `CC="ccache gcc"`).
struct Tool {
    program: OsString,
    args: Vec<OsString>,
}

impl Tool {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        cmd
    }
}

/// `$var` if set and non-empty, else `default`, if it runs `--version`.
fn find_tool(var: &str, default: &str) -> Option<Tool> {
    let spec = std::env::var(var)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| default.to_owned());
    let mut words = spec.split_whitespace().map(OsString::from);
    let tool = Tool {
        program: words.next()?,
        args: words.collect(),
    };
    let ok = tool
        .command()
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(tool)
}

/// Reports a missing tool (see `tools::skip`).
fn skip(test: &str, what: &str) {
    tools::skip(&format!("c_interop::{test}"), what);
}

fn c_compiler(test: &str) -> Option<Tool> {
    let cc = find_tool("CC", "cc");
    if cc.is_none() {
        skip(test, "no C compiler ($CC, else `cc`, does not run)");
    }
    cc
}

fn cxx_compiler(test: &str) -> Option<Tool> {
    let cxx = find_tool("CXX", "c++");
    if cxx.is_none() {
        skip(test, "no C++ compiler ($CXX, else `c++`, does not run)");
    }
    cxx
}

fn python(test: &str) -> Option<Tool> {
    let py = find_tool("PYTHON3", "python3");
    if py.is_none() {
        skip(test, "no Python 3 ($PYTHON3, else `python3`, does not run)");
    }
    py
}

/// The strict flags every C file here must pass.
const C_FLAGS: &[&str] = &["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"];

/// Compiles `sources` into `dir/out` with `flags` and `-Iinclude`; panics
/// with the compiler's output if it fails.
fn compile(tool: &Tool, flags: &[&str], sources: &[PathBuf], dir: &Path, out: &str) -> PathBuf {
    let exe = dir.join(out);
    let output = tool
        .command()
        .args(flags)
        .arg("-I")
        .arg(root("include"))
        .args(sources)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run the compiler");
    assert!(
        output.status.success(),
        "compiling {sources:?} with {flags:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

fn run(exe: &Path, args: &[String], stdin: &[u8]) -> Output {
    tools::run_with_input(Command::new(exe).args(args), stdin)
}

fn run_ok(exe: &Path, args: &[String], stdin: &[u8]) -> Vec<u8> {
    let out = run(exe, args, stdin);
    assert!(
        out.status.success(),
        "{} {args:?} failed ({}): {}",
        exe.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

// ---- layout -----------------------------------------------------------------

/// One line per field, as tests/c/layout.c prints it:
/// `field STRUCT.FIELD OFFSET SIZE TYPE`, offsets from the start of the message.
macro_rules! fields {
    ($lines:ident, $name:literal, $msg:ty, $body:ty, [$($f:ident),* $(,)?]) => {{
        let msg = <$msg>::default();
        $lines.insert(format!(
            "field {}.mtype {} {} {}",
            $name,
            offset_of!($msg, mtype),
            size_of_val(&msg.mtype),
            type_name_of_val(&msg.mtype),
        ));
        $(
            $lines.insert(format!(
                "field {}.{} {} {} {}",
                $name,
                stringify!($f),
                offset_of!($msg, body) + offset_of!($body, $f),
                size_of_val(&msg.body.$f),
                type_name_of_val(&msg.body.$f),
            ));
        )*
    }};
}

/// What tests/c/layout.c must print, computed from the Rust side.
fn rust_layout() -> BTreeSet<String> {
    let mut lines = BTreeSet::new();
    lines.insert(format!("sizeof long {}", size_of::<libc::c_long>()));
    lines.insert(format!("sizeof request {}", size_of::<RequestMessage>()));
    lines.insert(format!("sizeof reply {}", size_of::<ReplyMessage>()));
    fields!(
        lines,
        "request",
        RequestMessage,
        RequestBody,
        [magic, version, op, reply_to, request_id, booking_id, event_id, quantity]
    );
    fields!(
        lines,
        "reply",
        ReplyMessage,
        ReplyBody,
        [magic, version, status, request_id, booking_id, event_id, quantity, remaining, capacity]
    );
    let consts: [(&str, i128); 9] = [
        ("MAGIC", MAGIC.into()),
        ("VERSION", VERSION.into()),
        ("REQUEST_MTYPE", REQUEST_MTYPE.into()),
        ("MIN_REPLY_TO", MIN_REPLY_TO.into()),
        ("BODY_SIZE", BODY_SIZE as i128),
        ("MESSAGE_SIZE", MESSAGE_SIZE as i128),
        ("ANSWERABLE_PREFIX", ANSWERABLE_PREFIX as i128),
        ("SERVER_BOOKING_BIT", SERVER_BOOKING_BIT.into()),
        ("STATUS_COUNT", Status::ALL.len() as i128),
    ];
    for (name, value) in consts {
        lines.insert(format!("const {name} {value}"));
    }
    for op in [Op::Query, Op::Reserve, Op::Cancel, Op::Hold, Op::Confirm] {
        lines.insert(format!("op {op} {} {op}", op.code()));
    }
    for status in Status::ALL {
        lines.insert(format!(
            "status {} {} {}",
            status.name(),
            status.code(),
            status.name()
        ));
    }
    let statuses = (0..=u16::MAX)
        .filter(|&c| Status::from_code(c).is_some())
        .count();
    let ops = (0..=u16::MAX)
        .filter(|&c| Op::from_code(c).is_some())
        .count();
    lines.insert(format!("named statuses {statuses}"));
    lines.insert(format!("named ops {ops}"));
    lines
}

#[test]
fn header_layout_and_constants_match_rust() {
    let Some(cc) = c_compiler("header_layout_and_constants_match_rust") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = compile(
        &cc,
        C_FLAGS,
        &[root("tests/c/layout.c")],
        dir.path(),
        "layout",
    );
    let stdout = String::from_utf8(run_ok(&exe, &[], b"")).expect("utf-8");
    let c: BTreeSet<String> = stdout.lines().map(str::to_owned).collect();
    let rust = rust_layout();
    let only_c: Vec<_> = c.difference(&rust).collect();
    let only_rust: Vec<_> = rust.difference(&c).collect();
    assert!(
        only_c.is_empty() && only_rust.is_empty(),
        "guichet.h and guichet::wire disagree\n  C says:    {only_c:#?}\n  Rust says: {only_rust:#?}"
    );
    // Sanity: the comparison covered every field of both messages.
    assert_eq!(c.iter().filter(|l| l.starts_with("field ")).count(), 19);
    assert_eq!(c.iter().filter(|l| l.starts_with("status ")).count(), 11);
    assert_eq!(c.iter().filter(|l| l.starts_with("op ")).count(), 5);
}

// ---- the header compiles cleanly --------------------------------------------

/// A translation unit that includes the header twice (include guard) and
/// uses every helper.
const HEADER_TU: &str = r#"
#include "guichet.h"
#include "guichet.h"

int guichet_header_check(void);
int guichet_header_check(void)
{
    struct guichet_request rq = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    struct guichet_reply rp = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    rq.mtype = GUICHET_REQUEST_MTYPE;
    rq.magic = GUICHET_MAGIC;
    rq.version = GUICHET_VERSION;
    rq.op = GUICHET_OP_RESERVE;
    rq.reply_to = GUICHET_MIN_REPLY_TO;
    rq.booking_id = GUICHET_SERVER_BOOKING_BIT - 1u;
    rp.status = GUICHET_STATUS_SHUTTING_DOWN;
    return guichet_status_name(rp.status) != NULL && guichet_op_name(rq.op) != NULL &&
           sizeof rq == GUICHET_MESSAGE_SIZE;
}
"#;

/// Warnings on top of -Wall -Wextra: implicit padding in particular.
const EXTRA_WARNINGS: &[&str] = &[
    "-Wpadded",
    "-Wconversion",
    "-Wsign-conversion",
    "-Wshadow",
    "-Wundef",
    "-Wcast-align",
];

fn compile_header_tu(tool: &Tool, lang: &str, flags: &[&str], dir: &Path) {
    let src = dir.join(format!("tu.{lang}"));
    std::fs::write(&src, HEADER_TU).expect("write tu");
    let mut all: Vec<&str> = flags.to_vec();
    all.extend_from_slice(EXTRA_WARNINGS);
    all.push("-c");
    compile(tool, &all, &[src], dir, &format!("tu-{lang}.o"));
}

#[test]
fn header_compiles_as_strict_c11_and_c17() {
    let Some(cc) = c_compiler("header_compiles_as_strict_c11_and_c17") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    compile_header_tu(&cc, "c", C_FLAGS, dir.path());
    let c17 = ["-std=c17", "-Wall", "-Wextra", "-Werror", "-pedantic"];
    compile_header_tu(&cc, "c", &c17, dir.path());
}

#[test]
fn header_compiles_as_cxx11_and_cxx17() {
    let Some(cxx) = cxx_compiler("header_compiles_as_cxx11_and_cxx17") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    for std in ["-std=c++11", "-std=c++17"] {
        let flags = [
            "-x",
            "c++",
            std,
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-Wold-style-cast",
        ];
        compile_header_tu(&cxx, "cpp", &flags, dir.path());
    }
}

// ---- the C example client ---------------------------------------------------

#[test]
fn c_client_compiles_and_checks_its_arguments() {
    let Some(cc) = c_compiler("c_client_compiles_and_checks_its_arguments") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // The flags include/README.md documents, and -pedantic on top.
    let client = compile(
        &cc,
        C_FLAGS,
        &[root("examples/c/client.c")],
        dir.path(),
        "client",
    );

    let help = run(&client, &["--help".into()], b"");
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("usage:"));

    // Every one of these is refused before the client touches any queue.
    let bad: &[&[&str]] = &[
        &[],
        &["0x1234"],
        &["0x1234", "query"],
        &["0", "query", "1"], // IPC_PRIVATE would create a queue
        &["0x", "query", "1"],
        &["-5", "query", "1"],
        &["0x100000000", "query", "1"],
        &["12junk", "query", "1"],
        &["0x1234", "query", "1", "2"],
        &["0x1234", "query", "4294967296"],
        &["0x1234", "query", "0x1"], // EVENT is decimal
        &["0x1234", "reserve", "1"],
        &["0x1234", "reserve", "1", "-1"],
        &["0x1234", "reserve", "1", "2", "0x0x3"],
        &["0x1234", "reserve", "1", "2", "18446744073709551616"],
        &["0x1234", "cancel"],
        &["0x1234", "cancel", " 5"],
        &["0x1234", "frobnicate", "1"],
        &["-t", "0x1234", "query", "1"],
        &["-t", "86400001", "0x1234", "query", "1"],
    ];
    for args in bad {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let out = run(&client, &args, b"");
        assert_eq!(
            out.status.code(),
            Some(2),
            "client {args:?} should fail with 2"
        );
        assert!(out.stdout.is_empty(), "client {args:?} printed to stdout");
        assert!(!out.stderr.is_empty(), "client {args:?} gave no message");
    }
}

// ---- the C client against a live server -------------------------------------

/// A server with events Concert (3 seats) and Opera (1) on a new queue whose
/// key is ftok(3) of `path`: the first project id whose key no queue has.
fn serve_on_ftok_key(path: &Path) -> (Server, Key) {
    for proj_id in b'G'..=b'Z' {
        let key = ftok(path, proj_id).expect("ftok of a file that exists");
        let spawned = Server::builder()
            .key(key)
            .event("Concert", 3)
            .event("Opera", 1)
            .spawn();
        match spawned {
            Ok(server) => return (server, key),
            // Another queue happens to have this key: not ours to touch.
            Err(ServerError::QueueExists { .. }) => continue,
            Err(error) => panic!("start the server: {error}"),
        }
    }
    panic!(
        "every ftok key of {} names an existing queue",
        path.display()
    );
}

/// What one run of the C client printed: its exit code and the
/// `name=value` fields of its line.
struct CReply {
    code: Option<i32>,
    lines: usize,
    fields: BTreeMap<String, String>,
    stderr: String,
}

impl CReply {
    /// Asserts the exit code and the reply fields (all but `request_id`,
    /// which must be a number).
    #[track_caller]
    fn expect(&self, code: i32, status: &str, booking: &str, nums: [u32; 4]) {
        let [event, quantity, remaining, capacity] = nums.map(|n| n.to_string());
        let want: BTreeMap<String, String> = [
            ("status", status),
            ("booking_id", booking),
            ("event_id", event.as_str()),
            ("quantity", quantity.as_str()),
            ("remaining", remaining.as_str()),
            ("capacity", capacity.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(self.lines, 1, "one line per reply: {:?}", self.fields);
        let mut got = self.fields.clone();
        let request_id = got.remove("request_id");
        assert!(
            request_id.is_some_and(|id| id.parse::<u64>().is_ok()),
            "no numeric request_id: {:?}",
            self.fields
        );
        assert_eq!(
            (self.code, &got),
            (Some(code), &want),
            "stderr: {}",
            self.stderr
        );
    }
}

#[test]
fn c_client_against_a_live_server() {
    let Some(cc) = c_compiler("c_client_against_a_live_server") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let client = compile(
        &cc,
        C_FLAGS,
        &[root("examples/c/client.c")],
        dir.path(),
        "client",
    );
    let key_file = dir.path().join("queue-key");
    std::fs::write(&key_file, b"").expect("write the key file");
    let (server, key) = serve_on_ftok_key(&key_file);
    // The timeout is a liveness bound for a noisy machine, not a speed check.
    let call = |args: &[&str]| {
        let mut all = vec!["-t".to_owned(), "20000".to_owned(), key.to_string()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        let out = run(&client, &all, b"");
        let stdout = String::from_utf8(out.stdout).expect("utf-8");
        let fields = stdout
            .split_whitespace()
            .filter_map(|f| f.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        CReply {
            code: out.status.code(),
            lines: stdout.lines().count(),
            fields,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    const S1: &str = "0x8000000000000001";
    const S2: &str = "0x8000000000000002";

    call(&["query", "1"]).expect(0, "OK", "0x0", [1, 0, 3, 3]);
    call(&["reserve", "1", "2"]).expect(0, "OK", S1, [1, 2, 1, 3]);
    // Two seats of the one left: sold out, exit 1, nothing booked.
    call(&["reserve", "1", "2", "42"]).expect(1, "SOLD_OUT", "0x0", [1, 0, 1, 3]);
    call(&["reserve", "1", "1", "42"]).expect(0, "OK", "0x2a", [1, 1, 0, 3]);
    // The same id again (in hex): idempotent, the same booking.
    call(&["reserve", "1", "1", "0x2a"]).expect(0, "OK", "0x2a", [1, 1, 0, 3]);
    call(&["reserve", "1", "1"]).expect(1, "SOLD_OUT", "0x0", [1, 0, 0, 3]);
    call(&["cancel", S1]).expect(0, "OK", S1, [1, 2, 2, 3]);
    call(&["cancel", S1]).expect(0, "OK", S1, [1, 2, 2, 3]);
    call(&["cancel", "999"]).expect(1, "UNKNOWN_BOOKING", "0x3e7", [0, 0, 0, 0]);
    call(&["query", "7"]).expect(1, "UNKNOWN_EVENT", "0x0", [7, 0, 0, 0]);
    // Server ids are one sequence across events.
    call(&["reserve", "2", "1"]).expect(0, "OK", S2, [2, 1, 0, 1]);

    server
        .with_ledger(|ledger| {
            ledger.check_invariants().expect("invariants");
            let seats: Vec<_> = ledger.events().map(|e| e.seats.remaining).collect();
            assert_eq!(seats, [2, 0]);
            assert_eq!(ledger.booking_count(), 3);
            let booking = |raw: u64| ledger.booking(BookingId::new(raw).unwrap()).unwrap();
            let s1 = booking(SERVER_BOOKING_BIT | 1);
            assert_eq!(
                (s1.event.get(), s1.quantity.get(), s1.state),
                (1, 2, BookingState::Cancelled)
            );
            let b42 = booking(42);
            assert_eq!(
                (b42.event.get(), b42.quantity.get(), b42.state),
                (1, 1, BookingState::Active)
            );
            let s2 = booking(SERVER_BOOKING_BIT | 2);
            assert_eq!(
                (s2.event.get(), s2.quantity.get(), s2.state),
                (2, 1, BookingState::Active)
            );
        })
        .expect("ledger lock");
    let stats = server.shutdown().expect("clean shutdown");
    assert_eq!(stats.replies(Status::Ok), 7, "{stats:?}");
    assert_eq!(stats.replies(Status::SoldOut), 2, "{stats:?}");
    assert_eq!(stats.replies(Status::UnknownBooking), 1, "{stats:?}");
    assert_eq!(stats.replies(Status::UnknownEvent), 1, "{stats:?}");
    assert_eq!(stats.replies_sent(), 11, "{stats:?}");

    // The queue went with the server; the client says so and exits 2.
    assert!(Queue::open(key).is_err(), "the queue outlived the server");
    let gone = call(&["query", "1"]);
    assert_eq!(
        (gone.code, gone.lines),
        (Some(2), 0),
        "stderr: {}",
        gone.stderr
    );
    assert!(
        gone.stderr.contains("is the server running?"),
        "{}",
        gone.stderr
    );
}

// ---- bytes: C -> Rust and Rust -> C -------------------------------------------

/// Requests with distinctive values in every field, each a valid request.
fn sample_requests() -> Vec<Request> {
    let event = |n| EventId::new(n).expect("event");
    let seats = |n| NonZeroU32::new(n).expect("seats");
    vec![
        Request {
            reply_to: ReplyTo::new(0x1122_3344_5566_7788).expect("reply_to"),
            request_id: RequestId(0x0102_0304_0506_0708),
            operation: Operation::Query {
                event: event(0x0A0B_0C0D),
            },
        },
        Request {
            reply_to: ReplyTo::for_slot(4242, 1).expect("reply_to"),
            request_id: RequestId(u64::MAX),
            operation: Operation::Reserve {
                event: event(0xDEAD_BEEF),
                quantity: seats(0x0102_0304),
                booking: ClientBookingId::new(0x7FED_CBA9_8765_4321),
            },
        },
        Request {
            reply_to: ReplyTo::new(MIN_REPLY_TO).expect("reply_to"),
            request_id: RequestId(0),
            operation: Operation::Reserve {
                event: event(1),
                quantity: seats(u32::MAX),
                booking: None,
            },
        },
        Request {
            reply_to: ReplyTo::new(i64::MAX).expect("reply_to"),
            request_id: RequestId(0x8000_0000_0000_0000),
            operation: Operation::Cancel {
                booking: BookingId::server(0x0A0B_0C0D_0E0F).expect("booking"),
            },
        },
        Request {
            reply_to: ReplyTo::new(31_337).expect("reply_to"),
            request_id: RequestId(0xF0E1_D2C3_B4A5_9687),
            operation: Operation::Cancel {
                booking: BookingId::new(0x7FFF_FFFF_FFFF_FFFF).expect("booking"),
            },
        },
        Request {
            reply_to: ReplyTo::new(31_338).expect("reply_to"),
            request_id: RequestId(0x0F1E_2D3C_4B5A_6978),
            operation: Operation::Hold {
                event: event(0x0102_0304),
                quantity: seats(0x0A0B),
                booking: ClientBookingId::new(0x1234_5678_9ABC_DEF0),
            },
        },
        Request {
            reply_to: ReplyTo::new(31_339).expect("reply_to"),
            request_id: RequestId(7),
            operation: Operation::Confirm {
                booking: BookingId::server(0x0A0B).expect("booking"),
            },
        },
    ]
}

/// Replies with distinctive values, one per status, plus bare ones.
fn sample_replies() -> Vec<(i64, Reply)> {
    let mut replies = Vec::new();
    for (i, status) in (0u64..).zip(Status::ALL) {
        let low = u32::try_from(i).expect("small");
        replies.push((
            (0x4242_i64 << 32) | (i as i64 + 1),
            Reply {
                status,
                request_id: RequestId(0x0102_0304_0506_0700 | i),
                booking: BookingId::new(SERVER_BOOKING_BIT | 0x0A0B_0C0D_0E0F_1000 | i),
                event: EventId::new(0xCAFE_F000 | low),
                quantity: 0x1112_1310 | low,
                remaining: 0x2122_2320 | low,
                capacity: 0x3132_3330 | low,
            },
        ));
    }
    replies.push((2, Reply::bare(Status::BadMessage, RequestId(u64::MAX))));
    replies.push((i64::MAX, Reply::bare(Status::ShuttingDown, RequestId(0))));
    replies
}

fn request_message(request: &Request) -> RequestMessage {
    RequestMessage {
        mtype: REQUEST_MTYPE,
        body: request.to_wire(),
    }
}

fn reply_message(mtype: i64, reply: &Reply) -> ReplyMessage {
    ReplyMessage {
        mtype,
        body: reply.to_wire(),
    }
}

fn build_roundtrip(test: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    let cc = c_compiler(test)?;
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = compile(
        &cc,
        C_FLAGS,
        &[root("tests/c/roundtrip.c")],
        dir.path(),
        "roundtrip",
    );
    Some((dir, exe))
}

#[test]
fn c_built_requests_decode_in_rust() {
    let Some((_dir, exe)) = build_roundtrip("c_built_requests_decode_in_rust") else {
        return;
    };
    for request in sample_requests() {
        let raw = request.to_wire();
        let args = [
            "emit-request".to_owned(),
            raw.op.to_string(),
            raw.reply_to.to_string(),
            raw.request_id.to_string(),
            raw.booking_id.to_string(),
            raw.event_id.to_string(),
            raw.quantity.to_string(),
        ];
        let bytes = run_ok(&exe, &args, b"");
        assert_eq!(bytes.len(), MESSAGE_SIZE, "{request:?}");
        // The whole message, field by field, then the body through the codec.
        let message = RequestMessage::read_from_bytes(&bytes).expect("48 bytes");
        assert_eq!(message, request_message(&request));
        assert_eq!(&bytes[..8], REQUEST_MTYPE.to_ne_bytes().as_slice());
        let body = &bytes[size_of::<libc::c_long>()..];
        assert_eq!(body.len(), BODY_SIZE);
        assert_eq!(body, request.encode().as_slice(), "{request:?}");
        assert_eq!(decode_request(body), Ok(request));
    }
}

#[test]
fn c_built_replies_decode_in_rust() {
    let Some((_dir, exe)) = build_roundtrip("c_built_replies_decode_in_rust") else {
        return;
    };
    for (mtype, reply) in sample_replies() {
        let raw = reply.to_wire();
        let args = [
            "emit-reply".to_owned(),
            mtype.to_string(),
            raw.status.to_string(),
            raw.request_id.to_string(),
            raw.booking_id.to_string(),
            raw.event_id.to_string(),
            raw.quantity.to_string(),
            raw.remaining.to_string(),
            raw.capacity.to_string(),
        ];
        let bytes = run_ok(&exe, &args, b"");
        assert_eq!(bytes.len(), MESSAGE_SIZE, "{reply:?}");
        let message = ReplyMessage::read_from_bytes(&bytes).expect("48 bytes");
        assert_eq!(message, reply_message(mtype, &reply));
        let body = &bytes[size_of::<libc::c_long>()..];
        assert_eq!(body, reply.encode().as_slice(), "{reply:?}");
        assert_eq!(decode_reply(body), Ok(reply));
    }
}

#[test]
fn rust_encoded_requests_read_in_c() {
    let Some((_dir, exe)) = build_roundtrip("rust_encoded_requests_read_in_c") else {
        return;
    };
    for request in sample_requests() {
        let message = request_message(&request);
        let raw = message.body;
        let printed = run_ok(&exe, &["read-request".to_owned()], message.as_bytes());
        let expected = format!(
            "mtype={} magic={} version={} op={} op_name={} reply_to={} request_id={} \
             booking_id={} event_id={} quantity={}\n",
            message.mtype,
            raw.magic,
            raw.version,
            raw.op,
            request.operation.op(),
            raw.reply_to,
            raw.request_id,
            raw.booking_id,
            raw.event_id,
            raw.quantity,
        );
        assert_eq!(String::from_utf8_lossy(&printed), expected);
        assert_eq!(raw.magic, wire::MAGIC);
    }
}

#[test]
fn rust_encoded_replies_read_in_c() {
    let Some((_dir, exe)) = build_roundtrip("rust_encoded_replies_read_in_c") else {
        return;
    };
    for (mtype, reply) in sample_replies() {
        let message = reply_message(mtype, &reply);
        let raw = message.body;
        let printed = run_ok(&exe, &["read-reply".to_owned()], message.as_bytes());
        let expected = format!(
            "mtype={mtype} magic={} version={} status={} status_name={} request_id={} \
             booking_id={} event_id={} quantity={} remaining={} capacity={}\n",
            raw.magic,
            raw.version,
            raw.status,
            reply.status.name(),
            raw.request_id,
            raw.booking_id,
            raw.event_id,
            raw.quantity,
            raw.remaining,
            raw.capacity,
        );
        assert_eq!(String::from_utf8_lossy(&printed), expected);
    }
}

// ---- the Python example -------------------------------------------------------

/// Feeds `lines` to a Python driver that imports examples/python/client.py
/// (without sysv_ipc, which only its transport needs) and returns its output.
fn python_driver(py: &Tool, lines: &str) -> String {
    const DRIVER: &str = r#"
import sys
sys.path.insert(0, sys.argv[1])
import client
for line in sys.stdin:
    kind, *args = line.split()
    if kind == "req":
        print(client.encode_request(*map(int, args)).hex())
    else:
        try:
            print(client.format_reply(client.decode_reply(bytes.fromhex(args[0]))))
        except client.ProtocolError as e:
            print("error:", e)
"#;
    let out = tools::run_with_input(
        py.command()
            .arg("-B") // no __pycache__ in the source tree
            .arg("-c")
            .arg(DRIVER)
            .arg(root("examples/python")),
        lines.as_bytes(),
    );
    assert!(
        out.status.success(),
        "python driver failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn python_client_encodes_and_decodes_like_rust() {
    let Some(py) = python("python_client_encodes_and_decodes_like_rust") else {
        return;
    };
    let mut input = String::new();
    let mut expected = String::new();
    for request in sample_requests() {
        let raw = request.to_wire();
        input += &format!(
            "req {} {} {} {} {} {}\n",
            raw.op, raw.reply_to, raw.request_id, raw.booking_id, raw.event_id, raw.quantity
        );
        expected += &format!("{}\n", hex(&request.encode()));
    }
    for (_, reply) in sample_replies() {
        let raw = reply.to_wire();
        input += &format!("rep {}\n", hex(&reply.encode()));
        expected += &format!(
            "status={} booking_id={:#x} event_id={} quantity={} remaining={} capacity={} \
             request_id={}\n",
            reply.status.name(),
            raw.booking_id,
            raw.event_id,
            raw.quantity,
            raw.remaining,
            raw.capacity,
            raw.request_id
        );
    }
    // Malformed replies are refused, as decode_reply refuses them.
    let good = Reply::bare(Status::Ok, RequestId(1)).encode();
    let mut bad_magic = good;
    bad_magic[0] ^= 1;
    let mut bad_status = good;
    bad_status[6..8].copy_from_slice(&11u16.to_ne_bytes());
    for bad in [&good[..39], &bad_magic[..], &bad_status[..]] {
        assert!(decode_reply(bad).is_err());
        input += &format!("rep {}\n", hex(bad));
    }
    let printed = python_driver(&py, &input);
    let (ok, errors) = printed.split_at(expected.len().min(printed.len()));
    assert_eq!(ok, expected);
    assert_eq!(errors.lines().count(), 3, "{errors}");
    assert!(errors.lines().all(|l| l.starts_with("error: ")), "{errors}");
}

#[test]
fn python_client_help_and_usage_errors() {
    let Some(py) = python("python_client_help_and_usage_errors") else {
        return;
    };
    let script = root("examples/python/client.py");
    let run_py = |args: &[&str]| {
        py.command()
            .arg("-B")
            .arg(&script)
            .args(args)
            .output()
            .expect("run python")
    };
    let help = run_py(&["--help"]);
    assert_eq!(help.status.code(), Some(0), "{help:?}");
    assert!(String::from_utf8_lossy(&help.stdout).contains("usage:"));
    for args in [
        &[][..],
        &["0", "query", "1"],
        &["0x100000000", "query", "1"],
        &["0x1234", "query", "0x1"],
        &["0x1234", "reserve", "1", "-1"],
        &["0x1234", "cancel", "18446744073709551616"],
        &["0x1234", "frobnicate"],
    ] {
        let out = run_py(args);
        assert_eq!(out.status.code(), Some(2), "client.py {args:?}: {out:?}");
        assert!(out.stdout.is_empty());
    }
}
