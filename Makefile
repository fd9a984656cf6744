# rfpm — build, run and test. Every target installs what it needs on Debian 12 (as root).
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:/usr/local/cargo/bin:$(PATH)
CARGO ?= cargo
# Honour CARGO_TARGET_DIR (parallel checkouts build into their own directories).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
export RFPM_BIN ?= $(abspath $(TARGET_DIR))/debug/rfpm

# The PHP version rfpm is built for: php-config's (the same one crates/php-sys/build.rs
# takes: $PHP_CONFIG, else the first of php-config8.4, php-config8.2, php-config), and
# before any is installed the Debian release's (12: 8.2, 13: 8.4). PHP_V=8.2 forces one.
PHP_CONFIG_FOUND := $(or $(PHP_CONFIG),$(firstword $(foreach c,php-config8.4 php-config8.2 php-config,$(shell command -v $(c) 2>/dev/null))))
DEBIAN_RELEASE := $(shell cut -d. -f1 /etc/debian_version 2>/dev/null)
ifeq ($(origin PHP_V),undefined)
PHP_V := $(or $(shell $(PHP_CONFIG_FOUND) --version 2>/dev/null | cut -d. -f1,2),$(if $(filter 13,$(DEBIAN_RELEASE)),8.4,8.2))
endif

# Debian packages. To build and run (make run, make release, make install): the PHP
# embed library and headers, libclang (bindgen), a C compiler and linker.
RUN_PACKAGES := libphp$(PHP_V)-embed php$(PHP_V)-dev libclang-dev clang gcc pkg-config ca-certificates
# To test, in addition: php-fpm and php-cli of the same PHP (the reference for differential tests and
# the php-src harness), nginx and curl (end-to-end tests), dpkg-dev/xz-utils (php-src
# suite download, make deb), acl (getfacl, for the listen.acl_* tests),
# python3-prometheus-client (parses the openmetrics status page), chromium
# (status.html, the admin page), prometheus (a real scrape of the admin listener, and
# promtool check metrics), and for the package's test systemd (systemd-analyze),
# logrotate and man-db; Symfony 5.4 (framework bundle, runtime) for the worker-mode
# application (tests/fixtures/symfony).
DEB_PACKAGES := $(RUN_PACKAGES) php$(PHP_V)-cli php$(PHP_V)-fpm nginx curl dpkg-dev xz-utils acl \
                python3-prometheus-client chromium prometheus systemd logrotate man-db \
                php-symfony-framework-bundle php-symfony-runtime
# To benchmark, in addition.
BENCH_PACKAGES := $(DEB_PACKAGES) php$(PHP_V)-cgi wrk

# Installs the Debian packages of $(1) that are missing.
define install_packages
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi; \
	test -e /usr/lib/libphp$(PHP_V).so || { echo "/usr/lib/libphp$(PHP_V).so missing (libphp$(PHP_V)-embed)" >&2; exit 1; }
endef

.PHONY: all deps deps-run deps-bench build release run install deb test test-php84 unit integration conformance conformance-check lint layers clean bench bench-reload bench-capture bench-slowloris bench-access-log bench-admin bench-worker chaos chaos-short

all: build

deps:
	$(call install_packages,$(DEB_PACKAGES))

deps-run:
	$(call install_packages,$(RUN_PACKAGES))

deps-bench:
	$(call install_packages,$(BENCH_PACKAGES))

build: deps
	$(CARGO) build --workspace

release: deps-run
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
              $(wildcard tests/src/bin/*.rs) bench/src/lib.rs bench/src/main.rs $(wildcard bench/src/bin/*.rs bench/examples/*.rs)
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

# php-src's own FPM test suite: the tests listed for this PHP version must pass.
conformance-check: build
	tests/php-src/run check $(TARGET_DIR)/debug/rfpm tests/php-src/expected-pass-$(PHP_V).txt

# The full table for all tests, rfpm beside php-fpm of the same PHP.
conformance: deps release
	tests/php-src/run table $(TARGET_DIR)/release/rfpm

# The fault-injection suite (issue 19; tests/src/bin/chaos.rs), rfpm beside php-fpm:
# malformed FastCGI, vanishing clients, workers killed under load, a soak with fds and
# RSS, a worker overwriting the scoreboard through FFI, mutated configurations. One line
# per check and "N passed, M failed". `chaos` is the full run (under 10 minutes),
# `chaos-short` the one `make test` runs (about a minute). CHAOS_ARGS e.g. "--seed 7" or
# "--only kill".
CHAOS_ARGS ?=
chaos: build
	timeout 600 $(TARGET_DIR)/debug/chaos $(CHAOS_ARGS)

chaos-short: build
	timeout 120 $(TARGET_DIR)/debug/chaos --short $(CHAOS_ARGS)

test: lint unit integration conformance-check chaos-short
	@echo "make test: all passed"

# rfpm built and tested against PHP 8.4 (Debian 13) in a chroot of this Debian 12
# machine: `make test` inside it, php-fpm8.4 the reference (.ci/php84; the chroot is made
# once, in RFPM_TRIXIE_ROOT, default /var/lib/rfpm/trixie). About 15 minutes cold.
test-php84:
	.ci/php84

# Side-by-side benchmarks against php-fpm8.2 (bench/README.md); bounded, about 4 minutes.
# Writes bench/RESULTS.md (with the admin listener's cost per scrape, admin-scrape) and
# the README's summary table. BENCH_ARGS e.g. "--secs 1 --rounds 3".
BENCH_ARGS ?=
bench: deps-bench
	$(CARGO) build --release -p rfpm -p bench
	timeout 600 $(TARGET_DIR)/release/rfpm-bench --rfpm $(abspath $(TARGET_DIR))/release/rfpm \
	  --results bench/RESULTS.md --readme README.md $(BENCH_ARGS)
	timeout 300 $(TARGET_DIR)/release/worker-symfony --rfpm $(abspath $(TARGET_DIR))/release/rfpm \
	  --out bench/WORKER-table.md --readme README.md

# Worker mode on a Symfony app: php-fpm8.2 classic, rfpm classic, rfpm worker mode side
# by side, and a worker's RSS over 3,000 requests (bench/WORKER.md); about a minute.
bench-worker: deps-bench
	$(CARGO) build --release -p rfpm -p bench
	timeout 300 $(TARGET_DIR)/release/worker-symfony --rfpm $(abspath $(TARGET_DIR))/release/rfpm \
	  --out bench/WORKER-table.md --readme README.md

# A reload's cost to the requests that arrive during it, rfpm beside php-fpm8.2
# (bench/RELOAD.md); bounded, about a minute.
bench-reload: deps-bench
	$(CARGO) build --release -p rfpm -p bench
	timeout 300 $(TARGET_DIR)/release/reload-latency --rfpm $(abspath $(TARGET_DIR))/release/rfpm \
	  --rounds 3 --out bench/RELOAD-table.md

# What a worker's output costs the master, rfpm beside php-fpm8.2 (bench/CAPTURE.md).
bench-capture: deps-bench
	$(CARGO) build --release -p rfpm -p bench
	timeout 300 $(TARGET_DIR)/release/capture-cpu --rfpm $(abspath $(TARGET_DIR))/release/rfpm \
	  --rounds 3 --out bench/CAPTURE-table.md

# What a scrape of the admin listener costs the master: /metrics and /status of static
# pools of 1, 8 and 32 workers, before and after 20,000 requests (bench/ADMIN.md); about
# 30 seconds. `make bench` runs it too (rfpm-bench's `--only admin-scrape`).
bench-admin: deps-bench
	$(CARGO) build --release -p rfpm -p bench
	timeout 300 $(TARGET_DIR)/release/admin-scrape --rfpm $(abspath $(TARGET_DIR))/release/rfpm \
	  --out bench/ADMIN-table.md

# What a JSON access log costs per request against the plain line (bench/ACCESS-LOG.md);
# bounded, about 40 seconds.
bench-access-log: deps-bench
	$(CARGO) build --release -p rfpm -p bench
	timeout 300 $(TARGET_DIR)/release/access-log --rfpm $(abspath $(TARGET_DIR))/release/rfpm \
	  --rounds 5 --out bench/ACCESS-LOG-table.md

# Slow-loris clients against php-fpm8.2 and rfpm with and without request_read_timeout
# (bench/SLOWLORIS.md); bounded, about a minute.
bench-slowloris: deps-bench
	$(CARGO) build --release -p rfpm -p bench
	timeout 300 $(TARGET_DIR)/release/slowloris --rfpm $(abspath $(TARGET_DIR))/release/rfpm --loris 200
	timeout 300 $(TARGET_DIR)/release/slowloris --rfpm $(abspath $(TARGET_DIR))/release/rfpm --loris 8

# Installation. PREFIX for the program, the manual and the documentation; the
# configuration, the systemd unit, logrotate and the log directory go where Debian
# looks for them. DESTDIR stages it all below a directory (packaging). BIN: the
# binary to install (the release build unless given; built when missing).
PREFIX ?= /usr/local
DESTDIR ?=
BIN ?= $(TARGET_DIR)/release/rfpm
SBINDIR := $(PREFIX)/sbin
MAN8DIR := $(PREFIX)/share/man/man8
DOCDIR := $(PREFIX)/share/doc/rfpm
SYSCONFDIR ?= /etc
UNITDIR ?= /lib/systemd/system
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d

install:
	@test -x "$(BIN)" || $(MAKE) release
	install -D -m 0755 "$(BIN)" "$(DESTDIR)$(SBINDIR)/rfpm"
	install -D -m 0644 dist/man/rfpm.8 "$(DESTDIR)$(MAN8DIR)/rfpm.8"
	gzip -9nf "$(DESTDIR)$(MAN8DIR)/rfpm.8"
	install -D -m 0644 README.md "$(DESTDIR)$(DOCDIR)/README.md"
	install -D -m 0644 dist/systemd/php-fpm-dropin.conf.in \
	  "$(DESTDIR)$(DOCDIR)/examples/php$(PHP_V)-fpm.service.d/rfpm.conf"
	sed -i 's|@SBINDIR@|$(SBINDIR)|g; s|@PHP_VERSION@|$(PHP_V)|g' \
	  "$(DESTDIR)$(DOCDIR)/examples/php$(PHP_V)-fpm.service.d/rfpm.conf"
	install -D -m 0644 dist/systemd/rfpm.service.in "$(DESTDIR)$(UNITDIR)/rfpm.service"
	sed -i 's|@SBINDIR@|$(SBINDIR)|g' "$(DESTDIR)$(UNITDIR)/rfpm.service"
	install -D -m 0644 dist/logrotate/rfpm "$(DESTDIR)$(SYSCONFDIR)/logrotate.d/rfpm"
	install -D -m 0644 dist/tmpfiles/rfpm.conf "$(DESTDIR)$(TMPFILESDIR)/rfpm.conf"
	@# An existing configuration is kept.
	for f in php-fpm.conf pool.d/www.conf; do \
	  test -e "$(DESTDIR)$(SYSCONFDIR)/rfpm/$$f" || install -D -m 0644 "dist/etc/$$f" "$(DESTDIR)$(SYSCONFDIR)/rfpm/$$f"; \
	done
	install -d -m 0755 "$(DESTDIR)/var/log/rfpm"

# A Debian package in DEB_OUT (default: the target directory), from BIN.
DEB_OUT ?= $(TARGET_DIR)
deb:
	@test -x "$(BIN)" || $(MAKE) release
	dist/deb/build "$(BIN)" "$(DEB_OUT)"

clean:
	$(CARGO) clean
