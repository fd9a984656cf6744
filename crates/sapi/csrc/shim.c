/* rfpm C shim: see shim.h. Kept small on purpose: only what cannot be written in Rust. */
#include "php.h"
#include "SAPI.h"
#include "php_main.h"
#include "php_ini.h"
#include "php_output.h"
#include "fopen_wrappers.h"
#include "ext/standard/head.h"
#include "ext/standard/dl.h"
#include <time.h>
#include "ext/standard/info.h"
#include "zend_exceptions.h"
#include "zend_extensions.h"
#include "zend_ini_scanner.h"
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include "shim.h"

rfpm_shim_ini_t rfpm_shim_ini;

PHP_INI_BEGIN()
	STD_PHP_INI_BOOLEAN("cgi.rfc2616_headers", "0", PHP_INI_ALL, OnUpdateBool, rfc2616_headers, rfpm_shim_ini_t, rfpm_shim_ini)
	STD_PHP_INI_BOOLEAN("cgi.nph", "0", PHP_INI_ALL, OnUpdateBool, nph, rfpm_shim_ini_t, rfpm_shim_ini)
	STD_PHP_INI_BOOLEAN("cgi.force_redirect", "1", PHP_INI_SYSTEM, OnUpdateBool, force_redirect, rfpm_shim_ini_t, rfpm_shim_ini)
	STD_PHP_INI_ENTRY("cgi.redirect_status_env", NULL, PHP_INI_SYSTEM, OnUpdateString, redirect_status_env, rfpm_shim_ini_t, rfpm_shim_ini)
	STD_PHP_INI_BOOLEAN("cgi.fix_pathinfo", "1", PHP_INI_SYSTEM, OnUpdateBool, fix_pathinfo, rfpm_shim_ini_t, rfpm_shim_ini)
	STD_PHP_INI_BOOLEAN("cgi.discard_path", "0", PHP_INI_SYSTEM, OnUpdateBool, discard_path, rfpm_shim_ini_t, rfpm_shim_ini)
	STD_PHP_INI_BOOLEAN("fastcgi.logging", "1", PHP_INI_SYSTEM, OnUpdateBool, fastcgi_logging, rfpm_shim_ini_t, rfpm_shim_ini)
	STD_PHP_INI_ENTRY("fastcgi.error_header", NULL, PHP_INI_SYSTEM, OnUpdateString, error_header, rfpm_shim_ini_t, rfpm_shim_ini)
	STD_PHP_INI_ENTRY("fpm.config", NULL, PHP_INI_SYSTEM, OnUpdateString, fpm_config, rfpm_shim_ini_t, rfpm_shim_ini)
PHP_INI_END()

static PHP_MINIT_FUNCTION(rfpm)
{
	REGISTER_INI_ENTRIES();
	return SUCCESS;
}

static PHP_MSHUTDOWN_FUNCTION(rfpm)
{
	UNREGISTER_INI_ENTRIES();
	return SUCCESS;
}

static PHP_MINFO_FUNCTION(rfpm)
{
	php_info_print_table_start();
	php_info_print_table_row(2, "php-fpm", "active");
	php_info_print_table_end();
	DISPLAY_INI_ENTRIES();
}

PHP_FUNCTION(fastcgi_finish_request)
{
	ZEND_PARSE_PARAMETERS_NONE();
	if (!rfpm_rs_connection_open()) {
		RETURN_FALSE;
	}
	/* Everything buffered goes out now; the headers first if nothing was sent yet. */
	php_output_end_all();
	php_header();
	RETURN_BOOL(rfpm_rs_finish_request());
}

PHP_FUNCTION(apache_request_headers)
{
	ZEND_PARSE_PARAMETERS_NONE();
	array_init(return_value);
	rfpm_rs_request_headers(return_value);
}

PHP_FUNCTION(fpm_get_status)
{
	ZEND_PARSE_PARAMETERS_NONE();
	array_init(return_value);
	if (!rfpm_rs_status(return_value)) {
		zval_ptr_dtor(return_value);
		RETURN_FALSE;
	}
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_MASK_EX(arginfo_fpm_get_status, 0, 0, MAY_BE_ARRAY|MAY_BE_FALSE)
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_fastcgi_finish_request, 0, 0, _IS_BOOL, 0)
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_apache_request_headers, 0, 0, IS_ARRAY, 0)
ZEND_END_ARG_INFO()

static const zend_function_entry rfpm_functions[] = {
	ZEND_FE(fastcgi_finish_request, arginfo_fastcgi_finish_request)
	ZEND_FE(apache_request_headers, arginfo_apache_request_headers)
	ZEND_FE(fpm_get_status, arginfo_fpm_get_status)
	ZEND_FALIAS(getallheaders, apache_request_headers, arginfo_apache_request_headers)
	ZEND_FE_END
};

/* FPM's own module is listed as "cgi-fcgi" by `-m`, as php-fpm does. */
static zend_module_entry rfpm_module_entry = {
	STANDARD_MODULE_HEADER,
	"cgi-fcgi",
	rfpm_functions,
	PHP_MINIT(rfpm),
	PHP_MSHUTDOWN(rfpm),
	NULL,
	NULL,
	PHP_MINFO(rfpm),
	PHP_VERSION,
	STANDARD_MODULE_PROPERTIES
};

static void watch_chdir(void);

rfpm_shim_result rfpm_shim_module_startup(void *module)
{
	if (php_module_startup((sapi_module_struct *) module, &rfpm_module_entry) != SUCCESS) {
		return RFPM_SHIM_FAILED;
	}
	/* PHP builds chroot() in for the CLI, CGI and embed SAPIs only: php-fpm has none, and
	 * in a pool's worker it could only strand the process outside its document root.
	 * Removed the way disable_functions removes a function. */
	zend_disable_functions("chroot");
	watch_chdir();
	return RFPM_SHIM_OK;
}

static int rfpm_drop_module_constant(zval *el, void *arg)
{
	zend_constant *c = Z_PTR_P(el);
	return ZEND_CONSTANT_MODULE_NUMBER(c) == (uint32_t) *(int *) arg
		? ZEND_HASH_APPLY_REMOVE : ZEND_HASH_APPLY_KEEP;
}

bool rfpm_shim_hide_extension(const char *name)
{
	size_t len = strlen(name);
	zend_module_entry *module = zend_hash_str_find_ptr(&module_registry, name, len);
	if (module == NULL) {
		return false;
	}
	int number = module->module_number;
	if (module->functions != NULL) {
		zend_unregister_functions(module->functions, -1, CG(function_table));
	}
	zend_hash_apply_with_argument(EG(zend_constants), rfpm_drop_module_constant, &number);
	zend_unregister_ini_entries(number);
	/* Out of the registry without its destructor: the module stays started (its
	 * MSHUTDOWN is not run), only no longer listed. */
	dtor_func_t dtor = module_registry.pDestructor;
	module_registry.pDestructor = NULL;
	zend_hash_str_del(&module_registry, name, len);
	module_registry.pDestructor = dtor;
	return true;
}

#ifdef ZEND_SIGNALS
/* A worker's own signal handlers as Zend recorded them at its first request start. */
static __typeof__(SIGG(handlers)) rfpm_worker_handlers;
static bool rfpm_worker_handlers_saved = false;
#endif

rfpm_shim_result rfpm_shim_request_startup(void)
{
	/* volatile: set inside zend_try and read after a possible longjmp. */
	volatile rfpm_shim_result r = RFPM_SHIM_OK;
	/* The exit status of the previous request must not leak into this one (GH-9981). */
	EG(exit_status) = 0;
	zend_try {
		if (php_request_startup() == FAILURE) {
			r = RFPM_SHIM_FAILED;
		}
	} zend_catch {
		r = RFPM_SHIM_BAILOUT;
	} zend_end_try();
#ifdef ZEND_SIGNALS
	/* The first request start of a worker installed Zend's deferring handler for each of
	 * its signals (SIGPROF, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2). In a
	 * worker nothing else changes them: PHP code (pcntl included) goes through
	 * zend_sigaction(), which keeps the deferring handler installed, and rfpm's own handler
	 * only touches them on the way to dying. So later request starts need not query all
	 * seven again and re-install what is already there: 7 rt_sigaction calls per request,
	 * a quarter of a hello request's system calls (bench/RESULTS.md). */
	if (r == RFPM_SHIM_OK) {
		SIGG(reset) = 0;
		if (!rfpm_worker_handlers_saved) {
			memcpy(&rfpm_worker_handlers, &SIGG(handlers), sizeof(rfpm_worker_handlers));
			rfpm_worker_handlers_saved = true;
		}
	}
#endif
	return r;
}

/* The directory a worker returns to after each script. PHP itself saves the working
 * directory with getcwd() before it moves into the script's directory and goes back by
 * name afterwards; a descriptor of it saves the getcwd() and the path walk on every
 * request. -2: not opened yet; -1: could not be opened (PHP's own way is used). */
static int home_fd = -2;
/* PHP's chdir() ran since home_fd was opened. A chdir() after the script (a shutdown
 * function, a destructor) moves the worker for good: PHP's getcwd() at the next script
 * finds the new directory, so home_fd is opened again then. */
static bool home_moved = false;
static zif_handler php_chdir_handler = NULL;

static ZEND_NAMED_FUNCTION(rfpm_chdir)
{
	php_chdir_handler(INTERNAL_FUNCTION_PARAM_PASSTHRU);
	home_moved = true;
}

/* Puts rfpm_chdir in front of PHP's chdir(). */
static void watch_chdir(void)
{
	zend_function *f = zend_hash_str_find_ptr(CG(function_table), "chdir", sizeof("chdir") - 1);
	if (f != NULL && f->type == ZEND_INTERNAL_FUNCTION) {
		php_chdir_handler = f->internal_function.handler;
		f->internal_function.handler = rfpm_chdir;
	}
}

/* The working directory as PHP would save it before the next script. */
static void open_home(void)
{
	if (home_fd == -2 || home_moved) {
		if (home_fd >= 0) {
			close(home_fd);
		}
		home_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (home_fd < 0) {
			home_fd = -1;
		}
		home_moved = false;
	}
	if (home_fd >= 0) {
		SG(options) |= SAPI_OPTION_NO_CHDIR;
	} else {
		SG(options) &= ~SAPI_OPTION_NO_CHDIR;
	}
}

/* PHP's move into the directory of the script (the part of the path before its last
 * slash; "/" for a file at the root); PHP ignores a failure too. */
static void chdir_to_script_dir(const char *path)
{
	char dir[MAXPATHLEN];
	const char *slash = strrchr(path, '/');
	size_t len;

	if (slash == NULL) {
		return;
	}
	len = slash == path ? 1 : (size_t) (slash - path);
	if (len >= sizeof(dir)) {
		return; /* longer than any path chdir() accepts */
	}
	memcpy(dir, path, len);
	dir[len] = '\0';
	php_ignore_value(chdir(dir));
}

rfpm_shim_result rfpm_shim_execute_primary(int *open_errno)
{
	/* volatile: set inside zend_try and read after a possible longjmp. */
	volatile rfpm_shim_result r = RFPM_SHIM_OK;
	zend_file_handle fh;
	volatile bool moved = false;

	open_home();
	*open_errno = 0;
	zend_stream_init_filename(&fh, SG(request_info).path_translated);
	zend_try {
		errno = 0;
		if (php_fopen_primary_script(&fh) == FAILURE) {
			/* 0 for a directory: php-fpm then logs "(Success)" and answers 404. */
			*open_errno = errno;
			r = RFPM_SHIM_FAILED;
		} else {
			if (home_fd >= 0 && fh.filename != NULL) {
				moved = true;
				chdir_to_script_dir(ZSTR_VAL(fh.filename));
			}
			php_execute_script(&fh);
		}
	} zend_catch {
		r = RFPM_SHIM_BAILOUT;
	} zend_end_try();
	if (moved) {
		/* Back home whatever the script did (PHP goes back to the saved directory). */
		php_ignore_value(fchdir(home_fd));
	}
	zend_destroy_file_handle(&fh);
	return r;
}

void rfpm_shim_request_shutdown(void)
{
	zend_try {
		php_request_shutdown(NULL);
	} zend_end_try();
#ifdef ZEND_SIGNALS
	/* Between requests Zend's deferring handler calls the handlers it recorded. A script
	 * that used pcntl_signal() leaves SIG_DFL there (pcntl's request end resets the
	 * signals it touched), so a graceful stop (SIGQUIT) of an idle worker would kill it
	 * by the default action until the next request start. Give the worker its own
	 * handlers back now. */
	if (rfpm_worker_handlers_saved) {
		memcpy(&SIGG(handlers), &rfpm_worker_handlers, sizeof(rfpm_worker_handlers));
	}
#endif
}

#define LAYOUT(T) do { out->size = sizeof(T); out->align = _Alignof(T); } while (0)
#define OFF(i, T, f) (out->offsets[(i)] = offsetof(T, f))

bool rfpm_shim_layout(int which, rfpm_shim_layout_t *out)
{
	memset(out, 0, sizeof(*out));
	switch (which) {
	case 0:
		LAYOUT(rfpm_shim_ini_t);
		OFF(0, rfpm_shim_ini_t, rfc2616_headers); OFF(1, rfpm_shim_ini_t, fix_pathinfo);
		OFF(2, rfpm_shim_ini_t, discard_path); OFF(3, rfpm_shim_ini_t, fastcgi_logging);
		OFF(4, rfpm_shim_ini_t, redirect_status_env); OFF(5, rfpm_shim_ini_t, error_header);
		OFF(6, rfpm_shim_ini_t, fpm_config);
		return true;
	default:
		return false;
	}
}

size_t rfpm_shim_ub_write(const char *str, size_t len)
{
	if (!rfpm_rs_write(str, len)) {
		php_handle_aborted_connection();
	}
	return len;
}

size_t rfpm_shim_read_post(char *buf, size_t count)
{
	const char *warning = NULL;
	size_t n = rfpm_rs_read_post(buf, count, &warning);
	if (warning != NULL) {
		zend_error(E_WARNING, "%s", warning);
	}
	return n;
}

void rfpm_shim_flush(void *server_context)
{
	(void) server_context;
	if (!rfpm_rs_flush()) {
		php_handle_aborted_connection();
	}
}

static int module_name_cmp(Bucket *f, Bucket *s)
{
	return strcasecmp(((zend_module_entry *) Z_PTR(f->val))->name,
	                  ((zend_module_entry *) Z_PTR(s->val))->name);
}

static void print_zend_extension(zend_extension *ext)
{
	php_printf("%s\n", ext->name);
}

char *rfpm_shim_version_text(void)
{
#if PHP_VERSION_ID >= 80400
	char *text = php_get_version(&sapi_module);
	char *copy;

	if (text == NULL) {
		return NULL;
	}
	copy = strdup(text);
	efree(text);
	return copy;
#else
	return NULL;
#endif
}

void rfpm_shim_cli_info(int what)
{
	SG(headers_sent) = 1;
	SG(request_info).no_headers = 1;
	zend_try {
		if (php_request_startup() == FAILURE) {
			return;
		}
		if (what == 0) {
			HashTable sorted;
			zend_module_entry *module;
			zend_hash_init(&sorted, 64, NULL, NULL, 0);
			zend_hash_copy(&sorted, &module_registry, NULL);
			zend_hash_sort(&sorted, module_name_cmp, 0);
			php_printf("[PHP Modules]\n");
			ZEND_HASH_FOREACH_PTR(&sorted, module) {
				php_printf("%s\n", module->name);
			} ZEND_HASH_FOREACH_END();
			zend_hash_destroy(&sorted);
			php_printf("\n[Zend Modules]\n");
			zend_llist_apply(&zend_extensions, (llist_apply_func_t) print_zend_extension);
			php_printf("\n");
		} else {
			sapi_module.phpinfo_as_text = 1;
			php_print_info(PHP_INFO_ALL & ~PHP_INFO_CREDITS);
		}
		php_request_shutdown(NULL);
	} zend_end_try();
}

bool rfpm_shim_ini_set_master(const char *name, size_t name_len, const char *value, size_t value_len, bool admin)
{
	zend_ini_entry *entry;
	zend_string *v;

	if (name_len == sizeof("extension") - 1 && memcmp(name, "extension", name_len) == 0) {
		zval ret;
		php_dl(value, MODULE_PERSISTENT, &ret, 1);
		return Z_TYPE(ret) == IS_TRUE;
	}
	entry = zend_hash_str_find_ptr(EG(ini_directives), name, name_len);
	if (entry == NULL) {
		return false;
	}
	if (name_len == sizeof("disable_functions") - 1 && memcmp(name, "disable_functions", name_len) == 0) {
		/* Disabled in addition to php.ini's; the entry shows the pool's value. */
		zend_disable_functions(value);
	} else if (name_len == sizeof("disable_classes") - 1 && memcmp(name, "disable_classes", name_len) == 0) {
		char *list = estrndup(value, value_len), *s = list, *e;
		while (*s) {
			while (*s == ' ' || *s == ',' || *s == '\t') s++;
			e = s;
			while (*e && *e != ' ' && *e != ',' && *e != '\t') e++;
			if (e > s) {
				char saved = *e;
				*e = '\0';
				zend_disable_class(s, e - s);
				*e = saved;
			}
			s = e;
		}
		efree(list);
	}
	v = zend_string_init(value, value_len, 1);
	if (entry->on_modify &&
	    entry->on_modify(entry, v, entry->mh_arg1, entry->mh_arg2, entry->mh_arg3, ZEND_INI_STAGE_ACTIVATE) != SUCCESS) {
		/* A value the directive refuses is dropped silently, like php-fpm does: only an
		 * unknown directive is an error. */
		zend_string_release_ex(v, 1);
		return true;
	}
	if (entry->value) {
		zend_string_release_ex(entry->value, 1);
	}
	entry->value = v;
	if (admin) {
		entry->modifiable = ZEND_INI_SYSTEM;
	}
	return true;
}

typedef struct {
	time_t expires;
	HashTable config;
} rfpm_user_ini_t;

/* Directory -> parsed user INI entries (persistent memory, lives as long as the worker). */
static HashTable *user_ini_cache;

static void user_ini_entry_dtor(zval *zv)
{
	rfpm_user_ini_t *e = Z_PTR_P(zv);
	zend_hash_destroy(&e->config);
	free(e);
}

/* Parses the user INI file of every directory from doc_root down to dir (or of dir
 * alone when dir is not below doc_root) into target; deeper files come later and win. */
static void parse_user_ini_chain(const char *dir, size_t dir_len, const char *doc_root, size_t doc_root_len,
                                 HashTable *target)
{
	char *path = estrndup(dir, dir_len);
	const char *fname = PG(user_ini_filename);

	while (doc_root_len > 1 && doc_root[doc_root_len - 1] == '/') {
		doc_root_len--;
	}
	if (doc_root_len > 0 && dir_len >= doc_root_len && memcmp(dir, doc_root, doc_root_len) == 0
	    && (dir_len == doc_root_len || dir[doc_root_len] == '/')) {
		size_t i = doc_root_len;
		for (;;) {
			char saved = path[i];
			path[i] = '\0';
			php_parse_user_ini_file(path, fname, target);
			path[i] = saved;
			if (i >= dir_len) {
				break;
			}
			i++;
			while (i < dir_len && path[i] != '/') {
				i++;
			}
		}
	} else {
		php_parse_user_ini_file(path, fname, target);
	}
	efree(path);
}

void rfpm_shim_activate_dir_config(const char *dir, size_t dir_len, const char *doc_root, size_t doc_root_len,
                                   const char *host, size_t host_len)
{
	if (dir_len > 0 && php_ini_has_per_dir_config()) {
		/* With a trailing slash, so the script's own directory is matched too. */
		char *p = emalloc(dir_len + 2);
		memcpy(p, dir, dir_len);
		size_t n = dir_len;
		if (p[n - 1] != '/') {
			p[n++] = '/';
		}
		p[n] = '\0';
		php_ini_activate_per_dir_config(p, n);
		efree(p);
	}
	if (host_len > 0 && php_ini_has_per_host_config()) {
		char *h = zend_str_tolower_dup(host, host_len);
		php_ini_activate_per_host_config(h, host_len);
		efree(h);
	}
	if (dir_len == 0 || PG(user_ini_filename) == NULL || *PG(user_ini_filename) == '\0') {
		return;
	}
	if (user_ini_cache == NULL) {
		user_ini_cache = malloc(sizeof(HashTable));
		if (user_ini_cache == NULL) {
			return;
		}
		zend_hash_init(user_ini_cache, 8, NULL, user_ini_entry_dtor, 1);
	}
	time_t now = time(NULL);
	rfpm_user_ini_t *entry = zend_hash_str_find_ptr(user_ini_cache, dir, dir_len);
	if (entry == NULL || entry->expires <= now) {
		if (entry != NULL) {
			zend_hash_str_del(user_ini_cache, dir, dir_len);
		}
		entry = malloc(sizeof(*entry));
		if (entry == NULL) {
			return;
		}
		zend_hash_init(&entry->config, 8, NULL, config_zval_dtor, 1);
		parse_user_ini_chain(dir, dir_len, doc_root, doc_root_len, &entry->config);
		entry->expires = now + PG(user_ini_cache_ttl);
		zend_hash_str_update_ptr(user_ini_cache, dir, dir_len, entry);
	}
	php_ini_activate_config(&entry->config, PHP_INI_PERDIR, PHP_INI_STAGE_HTACCESS);
}

void rfpm_shim_stack_layout(rfpm_shim_stack_layout_t *out)
{
	out->eg_address = (uintptr_t) &executor_globals;
	out->eg_current_execute_data = offsetof(zend_executor_globals, current_execute_data);
	out->ex_opline = offsetof(zend_execute_data, opline);
	out->ex_func = offsetof(zend_execute_data, func);
	out->ex_this_type_info = offsetof(zend_execute_data, This) + offsetof(zval, u1.type_info);
	out->ex_prev_execute_data = offsetof(zend_execute_data, prev_execute_data);
	out->fn_type = offsetof(zend_function, type);
	out->fn_common_function_name = offsetof(zend_function, common.function_name);
	out->op_array_filename = offsetof(zend_function, op_array.filename);
	out->op_lineno = offsetof(zend_op, lineno);
	out->str_len = offsetof(zend_string, len);
	out->str_val = offsetof(zend_string, val);
	out->call_kind_mask = ZEND_CALL_CODE | ZEND_CALL_TOP;
	out->call_top_code = ZEND_CALL_TOP_CODE;
	out->call_nested_code = ZEND_CALL_NESTED_CODE;
}

typedef struct {
	rfpm_shim_ini_entry_cb cb;
	void *ctx;
} rfpm_ini_parse_ctx;

static void rfpm_ini_parser_cb(zval *arg1, zval *arg2, zval *arg3, int callback_type, void *arg)
{
	rfpm_ini_parse_ctx *c = arg;
	(void) arg3;
	if (arg1 == NULL) {
		return;
	}
	if (callback_type != ZEND_INI_PARSER_ENTRY) {
		c->cb(c->ctx, false, NULL, 0, NULL, 0, false);
		return;
	}
	if (Z_TYPE_P(arg1) != IS_STRING || (arg2 != NULL && Z_TYPE_P(arg2) != IS_STRING)) {
		c->cb(c->ctx, false, NULL, 0, NULL, 0, false);
		return;
	}
	/* C strings, as FPM sees them: cut at the first NUL. */
	c->cb(c->ctx, true, Z_STRVAL_P(arg1), strlen(Z_STRVAL_P(arg1)),
	      arg2 ? Z_STRVAL_P(arg2) : NULL, arg2 ? strlen(Z_STRVAL_P(arg2)) : 0, arg2 != NULL);
}

rfpm_shim_result rfpm_shim_parse_ini_string(const char *str, rfpm_shim_ini_entry_cb cb, void *ctx)
{
	/* volatile: set inside zend_try and read after a possible longjmp. */
	volatile rfpm_shim_result r = RFPM_SHIM_OK;
	rfpm_ini_parse_ctx c = { cb, ctx };
	zend_try {
		if (zend_parse_ini_string((char *) str, 1, ZEND_INI_SCANNER_NORMAL, rfpm_ini_parser_cb, &c) == FAILURE) {
			r = RFPM_SHIM_FAILED;
		}
	} zend_catch {
		r = RFPM_SHIM_BAILOUT;
	} zend_end_try();
	return r;
}

bool rfpm_shim_import_env_copy(void *arr_zval)
{
	zval *arr = arr_zval;
	int tracks[2] = { TRACK_VARS_ENV, TRACK_VARS_SERVER };
	for (int i = 0; i < 2; i++) {
		zval *other = &PG(http_globals)[tracks[i]];
		if (Z_TYPE_P(other) == IS_ARRAY && Z_TYPE_P(arr) == IS_ARRAY && Z_ARR_P(arr) != Z_ARR_P(other)
		    && zend_hash_num_elements(Z_ARRVAL_P(other)) > 0) {
			zend_array_destroy(Z_ARR_P(arr));
			ZVAL_ARR(arr, zend_array_dup(Z_ARR_P(other)));
			return true;
		}
	}
	return false;
}

bool rfpm_shim_is_env_array(const void *arr_zval)
{
	const zval *arr = arr_zval;
	const zval *env = &PG(http_globals)[TRACK_VARS_ENV];
	return Z_TYPE_P(arr) == IS_ARRAY && Z_TYPE_P(env) == IS_ARRAY && Z_ARR_P(arr) == Z_ARR_P(env);
}
