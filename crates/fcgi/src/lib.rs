//! FastCGI wire format for rfpm: records, name-value pairs, the blocking server side
//! used by workers, and a small blocking client.
//!
//! The server side follows php-fpm 8.2's framing rules exactly (reference §6.4),
//! including the layout of response records, so that rfpm's output can be compared
//! byte for byte with php-fpm's.
#![forbid(unsafe_code)]

pub mod client;
pub mod params;
pub mod record;
pub mod server;

pub use params::Params;
pub use server::{CloseReason, Error, Request, Role, ServerConn};
