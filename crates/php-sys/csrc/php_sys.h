#ifndef PHP_SYS_H
#define PHP_SYS_H

#include <stddef.h>
#include <stdbool.h>

/* Generic helpers over Debian's libphp8.x, for any embedder (nothing FPM-specific): zend_try
 * around a call that may bail out, and what PHP only offers as macros, static inline
 * functions or static tables. Prefix php_sys_. */

/* Outcome of a guarded call into PHP. */
typedef enum {
	PHP_SYS_OK = 0,
	PHP_SYS_BAILOUT = 1  /* zend_bailout() was caught (fatal error, exit()) */
} php_sys_result;

/* php_output_write() inside zend_try (headers are sent first; output handlers may bail
 * out). */
php_sys_result php_sys_output_write(const char *data, size_t len);
/* EG(exit_status): the exit status of the last script (255 after a fatal error). */
int php_sys_exit_status(void);
/* Reason phrase of an HTTP status from PHP's table, or NULL. */
const char *php_sys_status_reason(int code);
/* The given `name=value` (or `name`) definitions as one INI string (php_ini_builder, as
 * the CLI's -d does), malloc'ed; NULL if n == 0. */
char *php_sys_ini_entries(const char *const *defines, size_t n);
/* Whether a path exists, asked through PHP's realpath cache (tsrm_realpath): no system
 * call while the path is cached. */
bool php_sys_path_exists(const char *path);
/* array_init() of a zval, and appending a zval to a list (add_next_index_zval; the zval
 * is moved into the list). */
void php_sys_array_init(void *zv);
void php_sys_add_next_index_zval(void *arr, void *zv);

/* The PHP constant `name` (a constant of the engine or of a loaded extension) as the
 * string the INI scanner substitutes for it (its value converted to a string),
 * malloc'ed (free with php_sys_free); NULL when there is no such constant. After module
 * start-up, outside a request. */
char *php_sys_constant_string(const char *name, size_t len);
/* free() for what the helpers above malloc'ed. */
void php_sys_free(void *p);

/* Layout of a PHP struct as the C compiler sees it, for the Rust-side layout test. */
typedef struct {
	size_t size;
	size_t align;
	size_t offsets[16];
} php_sys_layout_t;
/* which: 0 sapi_module_struct, 1 sapi_request_info, 2 sapi_headers_struct,
 * 3 sapi_header_struct, 4 zend_file_handle, 6 sapi_globals_struct, 7 sapi_header_line.
 * Returns false for an unknown id. */
bool php_sys_layout(int which, php_sys_layout_t *out);

#endif
