//! rfpm-sys: every `unsafe` of the rfpm binary, as small wrappers over system calls
//! that do nothing clever. Above this crate the binary is `#![forbid(unsafe_code)]`.
//!
//! Rules of this crate:
//! * descriptors are `OwnedFd` (who closes) and `BorrowedFd` (who uses); nothing closes
//!   a descriptor by number, except the signal handler's write end (see `signals`);
//! * every `unsafe` block has a `SAFETY:` comment that says why it is sound: who owns
//!   the memory or the descriptor, and for how long;
//! * pointer casts are `.cast()`/`ptr::from_mut`, numeric casts are checked or explained.
// Numeric casts between C and Rust types are where truncation and sign bugs hide:
// here they are conversions (`try_from`, `from`) or explained.
#![deny(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]

pub mod acl;
pub mod epoll;
pub mod errno;
pub mod fd;
pub mod identity;
pub mod net;
pub mod notify;
pub mod process;
pub mod procfs;
pub mod random;
pub mod shm;
pub mod signals;
pub mod syslog;
pub mod time;
pub mod title;

pub use errno::{strerror, syserr};
