//! `reap`: removes the private queues of this user's servers whose process
//! died before it could (see `guichet::server::reap_orphans`), and lists
//! private queues nobody recorded. Exit status 0 done; 1 an orphan could
//! not be removed; 2 the registry directory cannot be used.

use std::process::ExitCode;

use guichet::server::{reap_orphans, registry_dir};

use super::{err, out, EXIT_REFUSED, EXIT_WRONG};

/// `guichet reap`'s options.
#[derive(Debug, clap::Args)]
pub struct ReapArgs {
    /// List the orphans without removing them.
    #[arg(long)]
    dry_run: bool,
}

pub fn reap(args: &ReapArgs) -> ExitCode {
    let reaped = match reap_orphans(args.dry_run) {
        Ok(reaped) => reaped,
        Err(e) => {
            err(format_args!("guichet: {e}"));
            return ExitCode::from(EXIT_WRONG);
        }
    };
    let verb = if args.dry_run { "orphan" } else { "removed" };
    for orphan in &reaped.orphans {
        out(format_args!("{verb}: {orphan}"));
    }
    for queue in &reaped.unrecorded {
        out(format_args!(
            "not recorded, left alone: private queue {queue} (its last users are gone; \
             `ipcrm -q {queue}` removes it if you know it is unused)"
        ));
    }
    for (queue, error) in &reaped.failures {
        err(format_args!("guichet: queue {queue}: {error}"));
    }
    out(format_args!(
        "{} orphan(s) {}, {} queue(s) of live processes left alone, {} stale record(s) dropped ({})",
        reaped.orphans.len(),
        if args.dry_run { "found" } else { "removed" },
        reaped.live,
        reaped.stale_records,
        registry_dir().display()
    ));
    if reaped.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_REFUSED)
    }
}
