//! guichet: book seats over System V message queues.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
compile_error!(
    "guichet supports 64-bit Linux only: wire v1 fixes `long` (the SysV mtype) at 8 bytes \
     and relies on Linux's msgsnd(2)/msgrcv(2) semantics"
);

pub mod sysv;
