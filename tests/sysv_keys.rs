//! ftok(3) keys and opening/creating queues by key.
//!
//! Keys are machine-wide names, so the tests that create queues under a key
//! are `#[serial]` and derive their key from a fresh tempfile.

mod sysv_support;

use guichet::sysv::{ftok, Key, Mode, OwnedQueue, Queue, SysvError};
use serial_test::serial;
use sysv_support::tracked;

#[test]
fn ftok_on_a_tempfile_is_stable_and_depends_on_proj_id() -> Result<(), Box<dyn std::error::Error>> {
    let file = tempfile::NamedTempFile::new()?;
    let a = ftok(file.path(), b'G')?;
    assert_eq!(ftok(file.path(), b'G')?, a);
    assert_ne!(ftok(file.path(), b'H')?, a);
    assert!(!a.is_private());
    // ftok(3) puts proj_id in the top byte.
    assert_eq!((a.raw() as u32) >> 24, u32::from(b'G'));
    assert_eq!(a.to_string().parse::<Key>()?, a);
    Ok(())
}

#[test]
fn ftok_on_a_missing_path_is_not_found_with_errno() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("no-such-file");
    let err = ftok(&missing, b'G').unwrap_err();
    assert!(
        matches!(
            err,
            SysvError::NotFound {
                op: "ftok",
                errno: libc::ENOENT
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.errno(), Some(libc::ENOENT));
    let err = ftok(&dir.path().join("a/b"), b'G').unwrap_err();
    assert!(matches!(err, SysvError::NotFound { .. }), "{err:?}");
    Ok(())
}

#[test]
fn ftok_refuses_proj_id_zero() -> Result<(), Box<dyn std::error::Error>> {
    let file = tempfile::NamedTempFile::new()?;
    let err = ftok(file.path(), 0).unwrap_err();
    assert!(matches!(err, SysvError::InvalidArgument { .. }), "{err:?}");
    Ok(())
}

#[test]
#[serial]
fn exclusive_create_twice_on_one_key_is_exists() -> Result<(), Box<dyn std::error::Error>> {
    let file = tempfile::NamedTempFile::new()?;
    let key = ftok(file.path(), b'E')?;
    // ftok(3) keys can collide with an unrelated queue on this machine; say
    // so rather than report a confusing failure.
    if let Ok(q) = Queue::open(key) {
        panic!(
            "key {key} from a fresh tempfile already names queue {}",
            q.id()
        );
    }
    tracked(|created| {
        let first = created.record(OwnedQueue::create_exclusive(key, Mode::DEFAULT)?);
        let second = OwnedQueue::create_exclusive(key, Mode::DEFAULT);
        assert!(
            matches!(
                second,
                Err(SysvError::Exists {
                    op: "msgget",
                    errno: libc::EEXIST
                })
            ),
            "{second:?}"
        );
        assert_eq!(first.stat()?.key, key);

        // Opening by key finds the same queue, and it is usable.
        let opened = Queue::open(key)?;
        assert_eq!(opened.id(), first.id());
        opened.send(1, b"by key", None)?;
        assert_eq!(first.stat()?.messages, 1);

        // Once removed, the key is free again and names nothing.
        first.remove()?;
        let err = Queue::open(key).unwrap_err();
        assert!(
            matches!(
                err,
                SysvError::NotFound {
                    op: "msgget",
                    errno: libc::ENOENT
                }
            ),
            "{err:?}"
        );
        let again = created.record(OwnedQueue::create_exclusive(key, Mode::DEFAULT)?);
        assert_ne!(again.id(), opened.id(), "a new queue gets a new id");
        Ok(())
    })?;
    Ok(())
}

#[test]
fn private_key_is_refused_where_it_would_create_a_queue() {
    assert!(matches!(
        Queue::open(Key::PRIVATE),
        Err(SysvError::InvalidArgument { .. })
    ));
    assert!(matches!(
        OwnedQueue::create_exclusive(Key::PRIVATE, Mode::DEFAULT),
        Err(SysvError::InvalidArgument { .. })
    ));
    assert!(matches!("0".parse::<Key>(), Ok(Key::PRIVATE)));
}
