//! rfpm's benchmarks: a FastCGI load generator that validates every response
//! ([`load`]), the PHP scripts and their expected answers ([`scripts`]), /proc memory
//! readings ([`mem`]), statistics ([`stats`]) and wrk output parsing ([`wrk`]).
//! The driver (`rfpm-bench`) runs rfpm and php-fpm8.2 side by side; nothing here is a test
//! of speed — the unit tests check the arithmetic and the parsers only.
#![forbid(unsafe_code)]

pub mod crc32;
pub mod load;
pub mod mem;
pub mod scripts;
pub mod stats;
pub mod wrk;
