//! Building the bench's C programs (the original server, the C clients):
//! one way to compile a source against `include/guichet.h`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::BenchError;

const HEADER: &str = include_str!("../../include/guichet.h");

/// `source`, written as `name.c` beside the header in a new owner-only
/// temporary directory (removed when the `TempDir` drops), compiled with
/// `$CC` (default `cc`) `-O2 -pthread` into `name`.
///
/// # Errors
///
/// [`BenchError::NoCompiler`] if the compiler cannot be run;
/// [`BenchError::Compile`] if it fails; [`BenchError::Io`] for the
/// directory and its files.
pub(crate) fn compile(
    name: &str,
    source: &str,
) -> Result<(tempfile::TempDir, PathBuf), BenchError> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("guichet-bench-{name}-"))
        .tempdir()
        .map_err(BenchError::Io)?;
    let source_path = dir.path().join(format!("{name}.c"));
    std::fs::write(&source_path, source).map_err(BenchError::Io)?;
    std::fs::write(dir.path().join("guichet.h"), HEADER).map_err(BenchError::Io)?;
    let binary = dir.path().join(name);
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let output = Command::new(&cc)
        .args(["-O2", "-pthread", "-I"])
        .arg(dir.path())
        .arg("-o")
        .arg(&binary)
        .arg(&source_path)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| BenchError::NoCompiler {
            cc: cc.to_string_lossy().into_owned(),
            error,
        })?;
    if !output.status.success() {
        return Err(BenchError::Compile(
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ));
    }
    Ok((dir, binary))
}
