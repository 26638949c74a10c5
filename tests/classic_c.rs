//! The classic protocol from C: `include/guichet_classic.h` against
//! `guichet::classic`, and a course-style menu client (`tests/c/classic_client.c`,
//! written from CLASSIC.md alone) in a whole session against a live server,
//! every reply checked byte for byte (text by this test, NUL and zero fill
//! by the client).
//!
//! Uses the system C compiler (`$CC`, else `cc`); without one the tests
//! print `SKIPPED ...` and pass, unless `GUICHET_REQUIRE_TOOLS=1`. The
//! classic queue's key is ftok(3) of a file in a temporary directory: never
//! the course's 12345, which is global to the machine.

use guichet_testkit::tools;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use guichet::classic::{
    ClassicReplyBody, ClassicReplyMessage, ClassicRequestBody, ClassicRequestMessage, COURSE_KEY,
    MTYPE_LIST, MTYPE_LIST_REPLY, MTYPE_QUIT, MTYPE_RESERVE, MTYPE_RESERVE_REPLY, REPLY_BODY_SIZE,
    REQUEST_BODY_SIZE,
};
use guichet::server::{Server, ServerError};
use guichet::sysv::{ftok, Key};

fn root(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// `$CC` (with its leading arguments) if set, else `cc`, if it runs.
fn c_compiler(test: &str) -> Option<(OsString, Vec<OsString>)> {
    let spec = std::env::var("CC")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "cc".to_owned());
    let mut words = spec.split_whitespace().map(OsString::from);
    let program = words.next()?;
    let args: Vec<OsString> = words.collect();
    let runs = Command::new(&program)
        .args(&args)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !runs {
        tools::skip(
            &format!("classic_c::{test}"),
            "no C compiler ($CC, else `cc`, does not run)",
        );
        return None;
    }
    Some((program, args))
}

fn compile(cc: &(OsString, Vec<OsString>), source: &str, dir: &Path) -> PathBuf {
    let exe = dir.join(Path::new(source).file_stem().expect("a file name"));
    let output = Command::new(&cc.0)
        .args(&cc.1)
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-O2",
        ])
        .arg("-I")
        .arg(root("include"))
        .arg(root(source))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run the compiler");
    assert!(
        output.status.success(),
        "compiling {source} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

fn run(exe: &Path, args: &[String], stdin: &[u8]) -> Output {
    tools::run_with_input(Command::new(exe).args(args), stdin)
}

/// What tests/c/classic_layout.c must print, from the Rust side.
fn rust_layout() -> BTreeSet<String> {
    let mut lines = BTreeSet::new();
    lines.insert(format!(
        "sizeof request {}",
        size_of::<ClassicRequestMessage>()
    ));
    lines.insert(format!("sizeof reply {}", size_of::<ClassicReplyMessage>()));
    let body = offset_of!(ClassicRequestMessage, body);
    for (field, offset, size) in [
        ("mtype", offset_of!(ClassicRequestMessage, mtype), 8),
        ("action", body + offset_of!(ClassicRequestBody, action), 4),
        ("id_spec", body + offset_of!(ClassicRequestBody, id_spec), 4),
        (
            "nb_places",
            body + offset_of!(ClassicRequestBody, nb_places),
            4,
        ),
    ] {
        lines.insert(format!("field request.{field} {offset} {size}"));
    }
    lines.insert(format!(
        "field reply.mtype {} 8",
        offset_of!(ClassicReplyMessage, mtype)
    ));
    lines.insert(format!(
        "field reply.texte {} {}",
        offset_of!(ClassicReplyMessage, body) + offset_of!(ClassicReplyBody, texte),
        REPLY_BODY_SIZE
    ));
    for (name, value) in [
        ("COURSE_KEY", i64::from(COURSE_KEY)),
        ("MTYPE_LIST", MTYPE_LIST),
        ("MTYPE_RESERVE", MTYPE_RESERVE),
        ("MTYPE_QUIT", MTYPE_QUIT),
        ("MTYPE_LIST_REPLY", MTYPE_LIST_REPLY),
        ("MTYPE_RESERVE_REPLY", MTYPE_RESERVE_REPLY),
        ("REQUEST_SIZE", REQUEST_BODY_SIZE as i64),
        ("REPLY_SIZE", REPLY_BODY_SIZE as i64),
    ] {
        lines.insert(format!("const {name} {value}"));
    }
    lines
}

#[test]
fn classic_header_layout_and_constants_match_rust() {
    let Some(cc) = c_compiler("classic_header_layout_and_constants_match_rust") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = compile(&cc, "tests/c/classic_layout.c", dir.path());
    let out = run(&exe, &[], b"");
    assert!(out.status.success(), "classic_layout failed");
    let c: BTreeSet<String> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect();
    let rust = rust_layout();
    assert_eq!(c, rust, "guichet_classic.h and guichet::classic disagree");
    assert_eq!(c.iter().filter(|l| l.starts_with("field ")).count(), 6);
}

/// A server with Concert (10 seats) and Opéra (5) serving the classic
/// protocol on an ftok(3) key of `path`: the first project id no queue has.
fn serve_classic(path: &Path) -> (Server, Key) {
    for proj_id in b'c'..=b'z' {
        let key = ftok(path, proj_id).expect("ftok of a file that exists");
        let spawned = Server::builder()
            .event("Concert", 10)
            .event("Opéra", 5)
            .classic_key(key)
            .spawn();
        match spawned {
            Ok(server) => return (server, key),
            // Another queue happens to have this key: not ours to touch.
            Err(ServerError::ClassicQueueExists { .. }) => continue,
            Err(error) => panic!("start the server: {error}"),
        }
    }
    panic!("every ftok key of {} names a queue", path.display());
}

const MENU: &str = "--- MENU ---\n1. Voir les spectacles\n2. Réserver\n3. Quitter\nChoix : ";

/// The menu session of the issue: list, book, too many, unknown id, list,
/// quit; what the client's stdin holds and what it must print.
fn session() -> (&'static str, String) {
    let stdin = "1\n2\n0\n3\n2\n1\n9\n2\n7\n1\n1\n3\n";
    let book = |id: i32, n: i32, text: &str| {
        format!("{MENU}2\nNuméro du spectacle : {id}\nNombre de places : {n}\n{text}\n")
    };
    let list = |concert: u32, opera: u32| {
        format!(
            "{MENU}1\n\n--- SPECTACLES ---\n[0] Concert : {concert} places\n[1] Opéra : {opera} places\n\n"
        )
    };
    let expected = [
        list(10, 5),
        book(0, 3, "OK ! 3 places réservées pour Concert."),
        book(1, 9, "ECHEC : Pas assez de places (Reste: 5)."),
        book(7, 1, "ECHEC : ID Invalide."),
        list(7, 5),
        format!("{MENU}3\nAu revoir.\n"),
    ]
    .concat();
    (stdin, expected)
}

#[test]
fn a_course_menu_session_gets_every_reply_byte_for_byte() {
    let Some(cc) = c_compiler("a_course_menu_session_gets_every_reply_byte_for_byte") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = compile(&cc, "tests/c/classic_client.c", dir.path());
    let keyfile = dir.path().join("key");
    std::fs::write(&keyfile, b"").expect("key file");
    let (server, key) = serve_classic(&keyfile);
    let (stdin, expected) = session();
    let out = run(&exe, &[key.raw().to_string()], stdin.as_bytes());
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        out.status.success(),
        "client failed ({}): {}\nstdout:\n{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, expected);
    if std::env::var_os("GUICHET_SHOW_TRANSCRIPT").is_some() {
        tools::note(&format!("--- transcript ---\n{stdout}--- end ---"));
    }
    // The same ledger as wire v1; the quit was consumed, not obeyed.
    assert_eq!(
        server.client().query(1).expect("wire v1 query").remaining,
        7
    );
    let stats = server.shutdown().expect("shutdown");
    let classic = stats.classic.expect("classic counters");
    assert_eq!(
        (
            classic.received,
            classic.listings_sent,
            classic.reservations_sent
        ),
        (6, 2, 3)
    );
    assert_eq!((classic.quits_ignored, classic.dropped), (1, 0));
    // The queue is gone: a client started now says so instead of hanging.
    let out = run(&exe, &[key.raw().to_string()], b"1\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Serveur non lancé.\n");
}
