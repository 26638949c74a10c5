//! The benchmark harness works end to end: every target answers the
//! workloads correctly and leaves no queue (or journal) behind. Speed is
//! never asserted here (see `guichet bench` and `benches/`).

use guichet_testkit::tools;

use guichet::server::Dispatch;
use guichet::sysv::{Mode, OwnedQueue, Queue};
use guichet::Client;
use guichet_bench::{
    compare_clients, drive, run, BenchError, CClientBuild, CWait, EchoFloor, JournalPlan,
    LibraryClient, Load, OriginalBuild, Plan, Target, Workload,
};
use tools::skip;

/// A tiny load: enough round trips to exercise every path, quickly.
const LOAD: Load = Load {
    clients: 2,
    warmup_ms: 10,
    duration_ms: 100,
    timeout_ms: 5_000,
};

#[test]
fn a_small_plan_measures_every_target_against_the_floor() {
    let journals = tempfile::tempdir().unwrap();
    let plan = Plan {
        targets: vec![
            Target::Floor(1),
            Target::Server(Dispatch::ThreadPerRequest),
            Target::Server(Dispatch::Pool(2)),
            Target::Server(Dispatch::Sequential),
            Target::DurableFloor,
            Target::Durable(Dispatch::ThreadPerRequest),
            Target::Durable(Dispatch::Pool(2)),
        ],
        workloads: Workload::ALL.to_vec(),
        durable_workloads: vec![Workload::Reserve, Workload::HoldConfirm],
        journal: JournalPlan {
            dir: Some(journals.path().to_owned()),
            ..JournalPlan::default()
        },
        clients: vec![1, 3],
        warmup_ms: 10,
        duration_ms: 50,
        rounds: 2,
        timeout_ms: 5_000,
    };
    let mut cells = 0;
    let report = run(&plan, &mut |p| {
        if matches!(p, guichet_bench::Progress::Cell { .. }) {
            cells += 1;
        }
    })
    .unwrap();
    assert_eq!(cells, plan.measurements());
    assert_eq!(report.rows.len(), plan.cells());
    for row in &report.rows {
        assert!(row.ops > 0, "{row:?}");
        assert_eq!(row.rounds, 2, "{row:?}");
        assert!(row.ops_per_s_min <= row.ops_per_s && row.ops_per_s <= row.ops_per_s_max);
        assert_eq!(row.errors, 0, "{row:?}");
        assert!(
            row.p50_ns <= row.p99_ns && row.p99_ns <= row.p999_ns,
            "{row:?}"
        );
        // The floors serve no holds: HOLD-CONFIRM has nothing to compare
        // with. Durable rows are compared with the durable floor.
        let holds = row.workload == Workload::HoldConfirm;
        assert_eq!(row.ops_vs_floor.is_some(), !holds, "{row:?}");
        if row.is_durable {
            // Only RESERVE and HOLD-CONFIRM, each OK after its changes were
            // synced: every fsync covers at least one change. (Not every
            // window has an fsync of its own: on a loaded machine its only
            // op may have been synced before the window began.)
            assert_ne!(row.workload, Workload::Query, "{row:?}");
            let fsyncs = row.fsyncs.unwrap_or_else(|| panic!("{row:?}"));
            assert_eq!(row.changes_per_fsync.is_some(), fsyncs > 0, "{row:?}");
            assert!(row.changes_per_fsync.is_none_or(|c| c >= 1.0), "{row:?}");
            assert!(row.ops_vs_plain.is_some(), "{row:?}");
        } else {
            assert_eq!(row.fsyncs, None, "{row:?}");
            assert_eq!(row.ops_vs_plain, None, "{row:?}");
        }
    }
    let durable = report.rows.iter().filter(|r| r.is_durable).count();
    // Two durable servers in two workloads, the durable floor in RESERVE.
    assert_eq!(durable, (2 * 2 + 1) * plan.clients.len());
    let setup = report.journal.as_ref().unwrap();
    assert_eq!(setup.dir, journals.path().display().to_string());
    let json = report.json();
    assert_eq!(json.matches("\"target\":").count(), plan.cells());
    assert_eq!(json.matches("\"durable\":true").count(), durable);
    // Every cell's journal directory was removed.
    let left: Vec<_> = std::fs::read_dir(journals.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Every OK of the durable floor follows an fdatasync that covered it, and
/// it leaves neither its queue nor its file.
#[test]
fn the_durable_floor_syncs_before_it_answers_and_removes_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let floor = EchoFloor::spawn_durable(dir.path()).unwrap();
    let id = floor.queue_id();
    // The loop counts a batch once its fdatasync returned, before it
    // replies: each OK is already counted when it arrives.
    let client = Client::from_id(id).with_timeout_ms(5_000);
    for call in 1..=20 {
        let reply = client.send(Workload::Reserve.operation()).unwrap();
        assert_eq!(reply.status, guichet::Status::Ok);
        let stats = floor.journal_stats().unwrap();
        assert_eq!(
            (stats.changes_synced, stats.fsyncs),
            (call, call),
            "{stats:?}"
        );
    }
    let load = Load { clients: 3, ..LOAD };
    let m = drive(id, Workload::Reserve, load).unwrap();
    assert_eq!(m.errors, 0, "{m:?}");
    let stats = floor.journal_stats().unwrap();
    // The warm-up's calls were synced too.
    assert!(
        stats.changes_synced >= m.ops && m.ops > 0,
        "{stats:?} {m:?}"
    );
    assert!(
        stats.fsyncs >= 1 && stats.fsyncs <= stats.changes_synced,
        "{stats:?}"
    );
    assert!(
        stats.largest_batch <= 3,
        "one change per client at most: {stats:?}"
    );
    assert!(EchoFloor::spawn(1).unwrap().journal_stats().is_none());
    drop(floor);
    assert!(Queue::from_id(id).stat().is_err(), "queue {id} left behind");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn the_floor_answers_real_clients_and_removes_its_queue() {
    let floor = EchoFloor::spawn(2).unwrap();
    let id = floor.queue_id();
    let client = Client::from_id(id).with_timeout_ms(5_000);
    let reply = client.send(Workload::Query.operation()).unwrap();
    assert_eq!(reply.status, guichet::Status::Ok);
    let m = drive(id, Workload::Reserve, LOAD).unwrap();
    assert_eq!(m.errors, 0, "{m:?}");
    assert_eq!(m.ops, m.latency_ns.count());
    drop(floor);
    assert!(Queue::from_id(id).stat().is_err(), "queue {id} left behind");
}

#[test]
fn the_original_c_server_books_and_refuses_like_the_protocol_says() {
    let build = match OriginalBuild::compile() {
        Ok(build) => build,
        // Only a missing compiler is a skip: a C server that no longer
        // compiles is a failure.
        Err(e @ BenchError::NoCompiler { .. }) => {
            return skip("bench_harness::the_original_c_server", &e.to_string());
        }
        Err(e) => panic!("{e}"),
    };
    let server = build.start(3).unwrap();
    let id = server.queue_id();
    let client = Client::from_id(id).with_timeout_ms(5_000);
    assert_eq!(client.query(1).unwrap().remaining, 3);
    assert_eq!(client.reserve(1, 2).unwrap().remaining, 1);
    assert!(matches!(
        client.reserve(1, 2),
        Err(guichet::ClientError::SoldOut { remaining: 1, .. })
    ));
    assert!(client.query(2).is_err());
    drop(server);
    assert!(Queue::from_id(id).stat().is_err(), "queue {id} left behind");
    let server = build.start(u32::MAX).unwrap();
    let m = drive(server.queue_id(), Workload::Reserve, LOAD).unwrap();
    assert_eq!(m.errors, 0, "{m:?}");
}

/// What `drive` booked of event 1 through `client`'s server, with what it
/// counted: (seats booked, operations answered OK, others).
fn booked_and_counted(client: &Client, drive: impl FnOnce() -> (u64, u64)) -> (u64, u64, u64) {
    let before = client.query(1).unwrap().remaining;
    let (ops, errors) = drive();
    let booked = before - client.query(1).unwrap().remaining;
    (u64::from(booked), ops, errors)
}

/// The library's side of `--compare-clients` counts as the C clients do:
/// the operations that started after the warm-up and were answered OK
/// (a checkout is one), and apart from them the others.
#[test]
fn the_library_client_counts_only_measured_operations_answered_ok() {
    let server = guichet::Server::builder()
        .event("E", 1_000_000)
        .spawn()
        .unwrap();
    // A warm-up long enough that a client makes calls in it however busy
    // the machine: they book seats and are not counted.
    let load = Load {
        warmup_ms: 500,
        duration_ms: 20,
        ..LOAD
    };
    for workload in [Workload::Reserve, Workload::HoldConfirm] {
        let library = LibraryClient::InProcess;
        let (booked, ops, errors) = booked_and_counted(&server.client(), || {
            library.drive(server.queue_id(), workload, load).unwrap()
        });
        assert_eq!(errors, 0, "{workload:?}");
        assert!(
            ops > 0 && booked > ops,
            "{workload:?}: {booked} booked, {ops} counted"
        );
    }
    drop(server);
    // Nobody serves this queue: every call times out, and none is an OK.
    // A call takes its 5 ms timeout, longer than the measured 1 ms, so each
    // client makes exactly one, however late it starts.
    let owned = OwnedQueue::create_private(Mode::DEFAULT).unwrap();
    let load = Load {
        clients: 64,
        warmup_ms: 0,
        duration_ms: 1,
        timeout_ms: 5,
    };
    let counted = LibraryClient::InProcess.drive(owned.queue().id(), Workload::Query, load);
    owned.remove().unwrap();
    let (ops, errors) = counted.unwrap();
    assert_eq!((ops, errors), (0, 64));
}

#[test]
fn the_c_clients_book_through_the_same_server_as_the_library() {
    let build = match CClientBuild::compile() {
        Ok(build) => build,
        // As above: only a missing compiler is a skip.
        Err(e @ BenchError::NoCompiler { .. }) => {
            return skip("bench_harness::the_c_clients", &e.to_string());
        }
        Err(e) => panic!("{e}"),
    };
    let server = guichet::Server::builder()
        .event("E", 1_000_000)
        .spawn()
        .unwrap();
    for wait in [CWait::Blocking, CWait::Spinning] {
        let (booked, ops, errors) = booked_and_counted(&server.client(), || {
            build
                .drive(server.queue_id(), wait, Workload::Reserve, LOAD)
                .unwrap()
        });
        assert_eq!(errors, 0, "{wait}");
        assert!(ops > 0, "{wait}: nothing booked");
        // Warm-up calls book too, so at least the measured ones.
        assert!(booked >= ops, "{wait}: {booked} booked, {ops} counted");
    }
    let plan = Plan {
        targets: vec![Target::Server(Dispatch::Sequential)],
        workloads: vec![Workload::Reserve],
        clients: vec![1],
        warmup_ms: 0,
        duration_ms: 20,
        rounds: 2,
        ..Plan::default()
    };
    let comparison = compare_clients(&plan, &mut |_| {}).unwrap();
    let row = &comparison.rows[0];
    assert!(comparison.skipped.is_none());
    assert!(row.ratio().is_some() && row.errors == 0, "{row:?}");
    assert_eq!(row.round_ratios.len(), 2, "{row:?}");
    assert!(comparison.table().contains("per round"));
}
