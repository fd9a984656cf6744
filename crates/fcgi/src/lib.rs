//! FastCGI wire format for rfpm: records, name-value pairs, the blocking server side
//! used by workers, and a small blocking client.
//!
//! The server side follows php-fpm 8.2's framing rules exactly (reference §6.4).
#![forbid(unsafe_code)]

pub mod client;
pub mod record;
