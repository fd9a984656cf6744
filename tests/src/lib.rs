//! Integration-test harness: starts real FPM binaries (rfpm or php-fpm8.2).
