//! The System V message-queue layer (placeholder; see issue 3).
