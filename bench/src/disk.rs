//! The disk's floor: what one durable change costs at the least, measured
//! the way the journal pays it: a small `write` into a preallocated file,
//! then `fdatasync`, in the journal's directory.
//!
//! With it, the best a durable target can do at N clients is
//! N / (floor + plain p50): each client's round trip costs at least one
//! fsync (its change's) plus what the plain server takes to answer it, and
//! a perfect group commit puts every waiting change in the next fsync.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

/// Samples the floor takes, each one write + fdatasync.
pub const DISK_FLOOR_SAMPLES: usize = 400;
/// Bytes of each write: one batch record of one change, about.
const WRITE_BYTES: usize = 38;
/// Bytes preallocated ahead, as the journal does by default: the writes
/// overwrite zeros in place, so the fdatasyncs need no size change.
const PREALLOCATED_BYTES: u64 = 1 << 20;

/// The median `write` + `fdatasync` of [`DISK_FLOOR_SAMPLES`] small writes
/// in a new temporary file in `dir` (removed afterwards), in ns.
///
/// # Examples
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let floor_ns = guichet_bench::disk_floor_ns(dir.path())?;
/// assert!(floor_ns > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// The file's creation, a write or an fdatasync failed.
pub fn disk_floor_ns(dir: &Path) -> io::Result<u64> {
    let file = tempfile::Builder::new()
        .prefix("guichet-bench-disk-floor-")
        .tempfile_in(dir)?;
    let f: &File = file.as_file();
    f.write_all_at(&vec![0; PREALLOCATED_BYTES as usize], 0)?;
    f.sync_all()?;
    let record = [0x5au8; WRITE_BYTES];
    let mut samples = Vec::with_capacity(DISK_FLOOR_SAMPLES);
    for i in 0..DISK_FLOOR_SAMPLES {
        let offset = (i * WRITE_BYTES) as u64 % (PREALLOCATED_BYTES - WRITE_BYTES as u64);
        let started = Instant::now();
        f.write_all_at(&record, offset)?;
        f.sync_data()?;
        samples.push(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    samples.sort_unstable();
    Ok(samples[samples.len() / 2])
}
