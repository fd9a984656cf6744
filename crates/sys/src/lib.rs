//! rfpm-sys: every `unsafe` of the rfpm binary, as small wrappers over system calls.
pub mod acl;
pub mod notify;
pub mod os;
pub mod signals;
pub mod title;
