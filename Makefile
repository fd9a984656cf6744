# rfpm — build, run and test. Every target installs what it needs on Debian 12 (as root).
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:/usr/local/cargo/bin:$(PATH)
CARGO ?= cargo
# Honour CARGO_TARGET_DIR (parallel checkouts build into their own directories).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
export RFPM_BIN ?= $(abspath $(TARGET_DIR))/debug/rfpm

# Debian packages: the PHP embed library and headers (build), php-fpm8.2 and php-cli
# (the reference for differential tests and the php-src harness), nginx and curl
# (end-to-end tests), libclang (bindgen), dpkg-dev/xz-utils (php-src suite download), acl
# (getfacl, for the listen.acl_* tests), python3-prometheus-client (parses the openmetrics
# status page) and chromium (status.html).
DEB_PACKAGES := libphp8.2-embed php8.2-dev php8.2-cli php8.2-fpm nginx curl \
                libclang-dev clang pkg-config dpkg-dev xz-utils ca-certificates acl \
                python3-prometheus-client chromium

.PHONY: all deps build release run test unit integration conformance conformance-check lint layers clean bench

all: build

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi; \
	test -e /usr/lib/libphp8.2.so || { echo "/usr/lib/libphp8.2.so missing (libphp8.2-embed)" >&2; exit 1; }

build: deps
	$(CARGO) build --workspace

release: deps
	$(CARGO) build --release -p rfpm

# rfpm in the foreground on its built-in default configuration (pool www on 127.0.0.1:9000).
run: release
	$(TARGET_DIR)/release/rfpm -F

lint: deps layers
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The layers hold (DESIGN.md §3): rfpm-core depends on neither PHP nor libc, and every
# crate but sys, sapi and php-sys forbids unsafe code at its roots.
SAFE_ROOTS := crates/core/src/lib.rs crates/fcgi/src/lib.rs crates/conf/src/lib.rs \
              crates/rfpm/src/main.rs tests/src/lib.rs $(wildcard tests/tests/*.rs) \
              bench/src/lib.rs bench/src/main.rs $(wildcard bench/src/bin/*.rs bench/examples/*.rs)
layers:
	@if $(CARGO) tree -p rfpm-core -e normal,build --prefix none | grep -E '^(sapi|php-sys|libc|rfpm-sys) '; then \
	  echo "layers: rfpm-core must not depend on PHP or libc" >&2; exit 1; fi
	@missing=$$(grep -L '^#!\[forbid(unsafe_code)\]' $(SAFE_ROOTS)); \
	if [ -n "$$missing" ]; then echo "layers: no #![forbid(unsafe_code)] in: $$missing" >&2; exit 1; fi
	@echo "layers: ok"

unit: build
	$(CARGO) test --workspace --exclude integration

integration: build
	$(CARGO) test -p integration -- --test-threads=2

# php-src's own FPM test suite: the listed tests must pass.
conformance-check: build
	tests/php-src/run check $(TARGET_DIR)/debug/rfpm tests/php-src/expected-pass.txt

# The full table for all 122 tests, rfpm beside php-fpm8.2.
conformance: release
	tests/php-src/run table $(TARGET_DIR)/release/rfpm

test: lint unit integration conformance-check
	@echo "make test: all passed"

# Side-by-side benchmarks against php-fpm8.2 (bench/README.md); bounded, about 4 minutes.
# Writes bench/RESULTS.md and the README's summary table. BENCH_ARGS e.g. "--secs 1 --rounds 3".
DEB_PACKAGES += php8.2-cgi wrk
BENCH_ARGS ?=
bench: deps
	$(CARGO) build --release -p rfpm -p bench
	timeout 600 $(TARGET_DIR)/release/rfpm-bench --rfpm $(abspath $(TARGET_DIR))/release/rfpm \
	  --results bench/RESULTS.md --readme README.md $(BENCH_ARGS)

clean:
	$(CARGO) clean
