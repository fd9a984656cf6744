//! rfpm-core: the pure part of rfpm. Policy (what the process manager, the timeouts and
//! the master's lifecycle decide) and formats (log levels, access lines, status pages,
//! `listen` forms, the command line), as plain functions over plain data.
//!
//! No `unsafe`, no libc, no PHP, no clock: time and entropy come in as parameters, so
//! every decision can be tested by a unit test on any machine, without libphp.
#![forbid(unsafe_code)]
// Numeric casts are conversions (`try_from`, `from`) or say why they are right.
#![cfg_attr(
    not(test),
    deny(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_possible_wrap,
        clippy::cast_lossless
    )
)]

pub mod access;
pub mod admin;
pub mod applog;
pub mod capture;
pub mod cli;
pub mod compat;
pub mod handoff;
pub mod json;
pub mod level;
pub mod lifecycle;
pub mod listen_addr;
pub mod logline;
pub mod metrics;
pub mod paths;
pub mod pm;
pub mod recycle;
pub mod request_id;
pub mod scoreboard;
pub mod shown;
pub mod status;
pub mod systemd;
pub mod timeouts;

pub use level::Level;
