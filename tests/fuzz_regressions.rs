//! Every input the fuzzers ever crashed on, and every seed, replayed through
//! the same checks the fuzz targets run (`guichet_testkit::fuzz`), so a crash
//! found once stays fixed under a plain `cargo test`.
//!
//! A crash is kept as `fuzz/regressions/<target>/<name>` (the file libFuzzer
//! wrote under `fuzz/artifacts/<target>/`, renamed after what it found) and
//! gets its own named test below; the per-target tests replay the whole
//! directory, the named ones and any not yet named alike.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use guichet_testkit::fuzz::{Check, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn check_of(target: &str) -> Check {
    match TARGETS.iter().find(|(name, _)| *name == target) {
        Some(&(_, check)) => check,
        None => panic!("no fuzz target named {target}"),
    }
}

/// The files directly in `dir`, sorted; none if it does not exist.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `target`'s check on each file; fails naming every file that panics.
fn replay(target: &str, files: &[PathBuf]) {
    let check = check_of(target);
    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let bytes = fs::read(path).expect("readable input");
            let outcome = catch_unwind(AssertUnwindSafe(|| check(&bytes)));
            outcome.err().map(|panic| {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                format!("{}: {message}", path.display())
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "fuzz target {target} fails on:\n{}",
        failures.join("\n")
    );
}

/// Replays the seeds and regressions of `target`; the seeds must exist (a
/// target replaying nothing would pass without testing anything).
fn replay_all(target: &str) {
    let seeds = files_in(&fuzz_dir().join("seeds").join(target));
    assert!(!seeds.is_empty(), "fuzz/seeds/{target}/ has no seeds");
    replay(target, &seeds);
    replay(
        target,
        &files_in(&fuzz_dir().join("regressions").join(target)),
    );
}

/// Replays one named regression file.
fn regression(target: &str, name: &str) {
    let path = fuzz_dir().join("regressions").join(target).join(name);
    assert!(path.is_file(), "{} is missing", path.display());
    replay(target, &[path]);
}

#[test]
fn classic_seeds_and_regressions() {
    replay_all("classic");
}

#[test]
fn decode_seeds_and_regressions() {
    replay_all("decode");
}

#[test]
fn roundtrip_seeds_and_regressions() {
    replay_all("roundtrip");
}

#[test]
fn handle_seeds_and_regressions() {
    replay_all("handle");
}

#[test]
fn ledger_seeds_and_regressions() {
    replay_all("ledger");
}

/// Every check has a fuzz target calling it, and every target is a check:
/// the target files and `guichet_testkit::fuzz::TARGETS` cannot drift apart.
#[test]
fn every_check_has_a_fuzz_target_and_back() {
    let dir = fuzz_dir().join("fuzz_targets");
    let mut names: Vec<String> = files_in(&dir)
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
        .collect();
    names.sort();
    let mut expected: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    expected.sort();
    assert_eq!(names, expected);
    for (name, _) in TARGETS {
        let source = fs::read_to_string(dir.join(format!("{name}.rs"))).expect("readable");
        assert!(
            source.contains(&format!("guichet_testkit::fuzz::{name}(data)")),
            "fuzz/fuzz_targets/{name}.rs does not call guichet_testkit::fuzz::{name}"
        );
    }
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("readable");
    for (name, _) in TARGETS {
        assert!(
            manifest.contains(&format!("path = \"fuzz_targets/{name}.rs\"")),
            "fuzz/Cargo.toml has no [[bin]] for {name}"
        );
    }
}

/// Every directory under `fuzz/regressions/` is a target's, and holds only
/// files: an input kept under a misspelt name would never be replayed.
#[test]
fn every_regression_directory_is_a_target() {
    let Ok(entries) = fs::read_dir(fuzz_dir().join("regressions")) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("readable directory").path();
        if !path.is_dir() {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        assert!(
            TARGETS.iter().any(|(target, _)| *target == name),
            "{} is not a fuzz target's directory",
            path.display()
        );
        let nested: Vec<PathBuf> = fs::read_dir(&path)
            .expect("readable directory")
            .map(|e| e.expect("readable entry").path())
            .filter(|p| p.is_dir())
            .collect();
        assert!(
            nested.is_empty(),
            "nested directories are not replayed: {nested:?}"
        );
    }
}

/// A named regression whose file is gone fails instead of passing on nothing.
#[test]
fn a_missing_regression_file_fails() {
    let missing = catch_unwind(|| regression("decode", "no-such-file"));
    assert!(missing.is_err());
}
