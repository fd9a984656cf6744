//! FastCGI wire format for rfpm: records, name-value pairs, the blocking server side
//! used by workers, and a small blocking client.
//!
//! The server side follows php-fpm 8.2's framing rules (reference §6.4), including the
//! exact layout of response records, so rfpm's output can be compared byte for byte
//! with php-fpm's. A worker uses it like this:
//!
//! 1. `ServerConn::new(stream)`; the 5-second wait for the first byte after `accept()`
//!    is the caller's (socket read timeout or `poll`; check
//!    [`ServerConn::has_buffered_input`] before polling a kept connection).
//! 2. [`ServerConn::read_request`] → `Some(Request)` or `None` (close silently).
//! 3. The SAPI's `read_post(buf, count)` callback maps to one
//!    [`ServerConn::fill_stdin`] call (php-fpm's exact read semantics); other readers can
//!    use [`ServerConn::read_stdin`].
//! 4. Output: [`ServerConn::write_stdout`] / [`ServerConn::write_stderr`] /
//!    [`ServerConn::flush`], then [`ServerConn::end_request`].
//! 5. [`ServerConn::keep_alive`] says whether to read the next request on the same
//!    connection; otherwise shut down the sending side, read until the peer closes, close.
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

pub mod client;
pub mod params;
pub mod record;
pub mod server;

pub use params::Params;
pub use server::{CloseReason, Error, Request, Role, ServerConn};
