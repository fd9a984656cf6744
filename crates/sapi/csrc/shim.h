/* rfpm's C shim over Debian's libphp8.x: the parts of the embedding that must be C
 * (setjmp-based zend_try, PHP_FUNCTION/INI macros, static inline helpers).
 * Everything declared here is our own interface; Rust sees it through bindgen. */
#ifndef RFPM_SHIM_H
#define RFPM_SHIM_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

/* Outcome of a guarded call into PHP. */
typedef enum {
	RFPM_SHIM_OK = 0,
	RFPM_SHIM_FAILED = 1,  /* PHP reported failure without a bailout */
	RFPM_SHIM_BAILOUT = 2  /* zend_bailout() was caught (fatal error, exit()) */
} rfpm_shim_result;

/* Values of the INI entries our SAPI module registers (cgi.*, fastcgi.*, fpm.config). */
typedef struct {
	bool rfc2616_headers;
	bool nph;
	bool fix_pathinfo;
	bool discard_path;
	bool force_redirect;
	bool fastcgi_logging;
	char *redirect_status_env;
	char *error_header;
	char *fpm_config;
} rfpm_shim_ini_t;

extern rfpm_shim_ini_t rfpm_shim_ini;

/* Layout of our own structs as the C compiler sees it, for the Rust-side layout test.
 * which: 0 rfpm_shim_ini_t. Returns false for an unknown id. */
typedef struct {
	size_t size;
	size_t align;
	size_t offsets[16];
} rfpm_shim_layout_t;
bool rfpm_shim_layout(int which, rfpm_shim_layout_t *out);


/* php_module_startup() with our additional module ("cgi-fcgi": FPM functions, INI). */
rfpm_shim_result rfpm_shim_module_startup(void *sapi_module_struct_ptr);

/* Removes a loaded extension from what scripts see, as if it had never been loaded: its
 * functions, constants and INI entries, and its entry in the module registry
 * (extension_loaded(), get_loaded_extensions(), -m, phpinfo()). Its request hooks still
 * run (PHP keeps them in arrays built at start-up): harmless for what is removed. Call
 * outside any request. false: no such extension. */
bool rfpm_shim_hide_extension(const char *name);

/* Per request, each inside zend_try. */
rfpm_shim_result rfpm_shim_request_startup(void);
/* Opens the primary script like FPM does (SG(request_info).path_translated, doc_root,
 * user_dir) and executes it. On open failure returns RFPM_SHIM_FAILED with *open_errno set. */
rfpm_shim_result rfpm_shim_execute_primary(int *open_errno);
void rfpm_shim_request_shutdown(void);

/* `-v`'s text as the library writes it (php_get_version(), PHP >= 8.4), malloc'ed (free
 * with free()); NULL before PHP 8.4, where the SAPI writes it itself. After start-up. */
char *rfpm_shim_version_text(void);

/* -m and -i: a request-less activation whose output goes to stdout.
 * what: 0 = module list (php-fpm's -m format), 1 = phpinfo() as text. */
void rfpm_shim_cli_info(int what);

/* Pool php_value/php_admin_value (and per-request PHP_VALUE): changes the entry's
 * master value, so it stays for every later request of this worker; admin also locks
 * it against ini_set() and .user.ini. `extension` loads the extension,
 * `disable_functions`/`disable_classes` disable in addition. false: unknown entry (or an
 * extension that does not load); a value the entry's handler refuses is dropped silently
 * (true), as php-fpm does. */
bool rfpm_shim_ini_set_master(const char *name, size_t name_len, const char *value, size_t value_len, bool admin);

/* PHP_VALUE / PHP_ADMIN_VALUE (reference 7.8): str (NUL-terminated) goes through PHP's INI
 * parser; cb is called for every entry in order: classic = a `name=value` or bare `name`
 * entry (has_value false for the latter), otherwise a section or `name[]=` entry (key and
 * value NULL). Syntax errors are printed by PHP on stderr ("PHP:  syntax error, ...") and end
 * the parse (RFPM_SHIM_FAILED); entries before the error have been passed on already. */
typedef void (*rfpm_shim_ini_entry_cb)(void *ctx, bool classic, const char *key, size_t key_len,
                                       const char *value, size_t value_len, bool has_value);
rfpm_shim_result rfpm_shim_parse_ini_string(const char *str, rfpm_shim_ini_entry_cb cb, void *ctx);

/* Per-directory configuration at request activation (reference §7.12): php.ini
 * [PATH=] sections for the script's directory, [HOST=] for the host (lower-cased
 * here), and the user INI files (user_ini.filename) from the document root down to
 * the script's directory (only that directory when the script is outside the
 * document root), cached per directory for user_ini.cache_ttl seconds. */
void rfpm_shim_activate_dir_config(const char *dir, size_t dir_len, const char *doc_root, size_t doc_root_len,
                                   const char *host, size_t host_len);

/* $_SERVER/$_ENV import (reference 7.10): when the other of the two arrays ($_ENV first, then
 * $_SERVER) is already built and not empty, arr (an initialised array) becomes a copy of it
 * and true is returned; false: arr must be filled from the environment and the params. */
bool rfpm_shim_import_env_copy(void *arr_zval);

/* Whether arr is $_ENV's array being built (its params then go through the input filter as
 * PARSE_ENV: with PARSE_SERVER, ext/filter would store them in $_SERVER's array instead). */
bool rfpm_shim_is_env_array(const void *arr_zval);

/* SAPI callbacks that may have to bail out (a vanished client aborts the script unless
 * ignore_user_abort): they call Rust, then php_handle_aborted_connection() from C, so no
 * Rust frame is ever jumped over. */
size_t rfpm_shim_ub_write(const char *str, size_t len);
void rfpm_shim_flush(void *server_context);
/* SAPI read_post: the body from Rust; a warning Rust hands back (REQUEST_BODY_FILE that
 * cannot be opened) is raised as a PHP warning here, after Rust has returned. */
size_t rfpm_shim_read_post(char *buf, size_t count);

/* Where a worker's PHP stack lives, for the master's slow log (reference §3.7): the
 * address of executor_globals (the same in every forked worker) and the offsets and
 * constants the walk needs, as the C compiler lays them out. */
typedef struct {
	uintptr_t eg_address;
	size_t eg_current_execute_data;
	size_t ex_opline;
	size_t ex_func;
	size_t ex_this_type_info;
	size_t ex_prev_execute_data;
	size_t fn_type;
	size_t fn_common_function_name;
	size_t op_array_filename;
	size_t op_lineno;
	size_t str_len;
	size_t str_val;
	uint32_t call_kind_mask;
	uint32_t call_top_code;
	uint32_t call_nested_code;
} rfpm_shim_stack_layout_t;

void rfpm_shim_stack_layout(rfpm_shim_stack_layout_t *out);

/* Worker mode (worker.script). enter: before the worker script runs (ignore_user_abort
 * on, the boot sends no headers); leave: after it ended. */
void rfpm_shim_worker_enter(void);
void rfpm_shim_worker_leave(void);
/* One served request, SG(request_info) and SG(server_context) set: the request's state
 * as at a request start, then the handler (fci/fcc: zend_fcall_info and its cache).
 * OK; FAILED: exit() (held until frankenphp_handle_request returns); BAILOUT: a fatal
 * error (frankenphp_handle_request re-raises it after the response). */
rfpm_shim_result rfpm_shim_worker_call(void *fci, void *fcc);
/* The end of a served request: output and headers out, session closed, SAPI state
 * (uploads, php://input) released. */
void rfpm_shim_worker_end(void);

/* What rfpm_rs_worker_handle tells frankenphp_handle_request. */
typedef enum {
	RFPM_SHIM_WORKER_STOP = 0,    /* return false: the worker must stop */
	RFPM_SHIM_WORKER_SERVED = 1,  /* return true */
	RFPM_SHIM_WORKER_EXIT = 2,    /* the handler called exit(): the script unwinds */
	RFPM_SHIM_WORKER_BAILOUT = 3  /* a fatal error: re-raised */
} rfpm_shim_worker_status;

/* Implemented in Rust (crate sapi). */
extern rfpm_shim_worker_status rfpm_rs_worker_handle(void *fci, void *fcc);
extern bool rfpm_rs_write(const char *str, size_t len);
extern bool rfpm_rs_flush(void);
extern size_t rfpm_rs_read_post(char *buf, size_t count, const char **warning);
extern bool rfpm_rs_finish_request(void);
extern bool rfpm_rs_connection_open(void);
extern void rfpm_rs_request_headers(void *return_value_zval);
/* frankenphp_log(): whether an entry of this (FrankenPHP) level is written at all; the
 * entry, its context a compact JSON object (NULL when the array was empty). */
extern bool rfpm_rs_app_log_enabled(int64_t level);
extern void rfpm_rs_app_log(int64_t level, const char *msg, size_t len, const char *context, size_t context_len);
/* Fills fpm_get_status()'s (initialised) array; false: no status available. */
extern bool rfpm_rs_status(void *return_value_zval);

#endif
