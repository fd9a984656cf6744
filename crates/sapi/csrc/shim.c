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
#include "ext/spl/spl_exceptions.h"
#include "ext/session/php_session.h"
#include "ext/json/php_json.h"
#include "zend_smart_str.h"
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include "shim.h"

rfpm_shim_ini_t rfpm_shim_ini;

/* A worker script runs (worker mode): see the worker section at the end. */
static bool rfpm_worker_active = false;

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
	/* frankenphp_log()'s levels, as FrankenPHP names them (Go's slog levels). */
	REGISTER_LONG_CONSTANT("FRANKENPHP_LOG_LEVEL_DEBUG", -4, CONST_CS | CONST_PERSISTENT);
	REGISTER_LONG_CONSTANT("FRANKENPHP_LOG_LEVEL_INFO", 0, CONST_CS | CONST_PERSISTENT);
	REGISTER_LONG_CONSTANT("FRANKENPHP_LOG_LEVEL_WARN", 4, CONST_CS | CONST_PERSISTENT);
	REGISTER_LONG_CONSTANT("FRANKENPHP_LOG_LEVEL_ERROR", 8, CONST_CS | CONST_PERSISTENT);
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

/* One line of SG(sapi_headers).headers into frankenphp_response_headers()'s array, the
 * way the SAPIs that have apache_response_headers() list them: the name is what comes
 * before the first colon, less trailing blanks; the value what follows it, less leading
 * blanks. A name met again replaces the earlier value (keys are unique), in the
 * earlier one's place. A line without a name is left out. */
static void rfpm_response_header(void *data, void *arg)
{
	const sapi_header_struct *h = data;
	zval *arr = arg;
	const char *colon, *value, *end;
	size_t name_len;

	if (h->header == NULL || h->header_len == 0) {
		return;
	}
	colon = memchr(h->header, ':', h->header_len);
	if (colon == NULL) {
		return;
	}
	name_len = (size_t) (colon - h->header);
	while (name_len > 0 && (h->header[name_len - 1] == ' ' || h->header[name_len - 1] == '\t')) {
		name_len--;
	}
	if (name_len == 0) {
		return;
	}
	end = h->header + h->header_len;
	value = colon + 1;
	while (value < end && (*value == ' ' || *value == '\t')) {
		value++;
	}
	add_assoc_stringl_ex(arr, h->header, name_len, (char *) value, (size_t) (end - value));
}

PHP_FUNCTION(frankenphp_response_headers)
{
	ZEND_PARSE_PARAMETERS_NONE();
	array_init(return_value);
	zend_llist_apply_with_argument(&SG(sapi_headers).headers, rfpm_response_header, return_value);
}

/* frankenphp_log()'s context as one compact JSON object (keys in the array's order, an
 * integer key as its digits), values as json_encode() writes them with unescaped slashes
 * and Unicode; invalid UTF-8 becomes U+FFFD, and what cannot be encoded what
 * json_encode()'s partial output writes (null; 0 for INF and NAN), rather than the entry
 * being lost. json_last_error() is left as the script's own last json_encode() or
 * json_decode() set it. */
static void rfpm_context_json(smart_str *buf, HashTable *context)
{
	const int options = PHP_JSON_UNESCAPED_SLASHES | PHP_JSON_UNESCAPED_UNICODE
		| PHP_JSON_INVALID_UTF8_SUBSTITUTE | PHP_JSON_PARTIAL_OUTPUT_ON_ERROR;
	php_json_error_code saved = JSON_G(error_code);
	zend_string *key;
	zend_ulong index;
	zval *value;
	bool first = true;

	smart_str_appendc(buf, '{');
	ZEND_HASH_FOREACH_KEY_VAL(context, index, key, value) {
		zval name;
		if (!first) {
			smart_str_appendc(buf, ',');
		}
		first = false;
		if (key != NULL) {
			ZVAL_STR_COPY(&name, key);
		} else {
			/* Integer keys are signed, as PHP shows them. */
			ZVAL_STR(&name, zend_long_to_str((zend_long) index));
		}
		php_json_encode(buf, &name, options);
		zval_ptr_dtor(&name);
		smart_str_appendc(buf, ':');
		php_json_encode(buf, value, options);
		if (EG(exception) != NULL) {
			/* A JsonSerializable that threw: the exception goes to the script. */
			break;
		}
	} ZEND_HASH_FOREACH_END();
	smart_str_appendc(buf, '}');
	smart_str_0(buf);
	JSON_G(error_code) = saved;
}

PHP_FUNCTION(frankenphp_log)
{
	zend_string *message;
	zend_long level = 0;
	HashTable *context = NULL;
	smart_str json = {0};

	ZEND_PARSE_PARAMETERS_START(1, 3)
		Z_PARAM_STR(message)
		Z_PARAM_OPTIONAL
		Z_PARAM_LONG(level)
		Z_PARAM_ARRAY_HT(context)
	ZEND_PARSE_PARAMETERS_END();
	/* An entry below log_level costs no encoding. */
	if (!rfpm_rs_app_log_enabled((int64_t) level)) {
		return;
	}
	if (context != NULL && zend_hash_num_elements(context) > 0) {
		rfpm_context_json(&json, context);
		if (EG(exception) != NULL) {
			smart_str_free(&json);
			RETURN_THROWS();
		}
	}
	rfpm_rs_app_log((int64_t) level, ZSTR_VAL(message), ZSTR_LEN(message),
	                json.s != NULL ? ZSTR_VAL(json.s) : NULL, json.s != NULL ? ZSTR_LEN(json.s) : 0);
	smart_str_free(&json);
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

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_frankenphp_response_headers, 0, 0, IS_ARRAY, 0)
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_frankenphp_log, 0, 1, IS_VOID, 0)
	ZEND_ARG_TYPE_INFO(0, message, IS_STRING, 0)
	ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, level, IS_LONG, 0, "FRANKENPHP_LOG_LEVEL_INFO")
	ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, context, IS_ARRAY, 0, "[]")
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_frankenphp_handle_request, 0, 1, _IS_BOOL, 0)
	ZEND_ARG_TYPE_INFO(0, callback, IS_CALLABLE, 0)
ZEND_END_ARG_INFO()

static PHP_FUNCTION(frankenphp_handle_request);

static const zend_function_entry rfpm_functions[] = {
	ZEND_FE(fastcgi_finish_request, arginfo_fastcgi_finish_request)
	ZEND_FE(apache_request_headers, arginfo_apache_request_headers)
	ZEND_FE(fpm_get_status, arginfo_fpm_get_status)
	ZEND_FALIAS(getallheaders, apache_request_headers, arginfo_apache_request_headers)
	ZEND_FE(frankenphp_handle_request, arginfo_frankenphp_handle_request)
	ZEND_FALIAS(frankenphp_finish_request, fastcgi_finish_request, arginfo_fastcgi_finish_request)
	/* FrankenPHP's helpers beyond its worker API, in every pool as FrankenPHP has them in
	 * both of its modes. (Not headers_send(): FastCGI has no interim response.) */
	ZEND_FALIAS(frankenphp_request_headers, apache_request_headers, arginfo_apache_request_headers)
	ZEND_FE(frankenphp_response_headers, arginfo_frankenphp_response_headers)
	ZEND_FE(frankenphp_log, arginfo_frankenphp_log)
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
	/* A worker script's $_ENV is the boot's and persists: a request's $_SERVER is never
	 * a copy of it. */
	if (rfpm_worker_active) {
		return false;
	}
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

/* ---- Worker mode (worker.script): one long PHP request, the boot, inside which
 * frankenphp_handle_request() serves FastCGI requests one by one. Each served request
 * gets the per-request state a fresh request would have: SAPI state (headers, status,
 * body, cookies, uploads), output buffering, superglobals, session. What persists by
 * design: globals, statics, ini changes, $_ENV. */

/* Inside the handler of frankenphp_handle_request() (no nested call). */
static bool rfpm_worker_in_handler = false;
/* zlib.output_compression as the boot left it (at the first frankenphp_handle_request()),
 * a copy of the INI text; NULL before, or without the entry. */
static char *rfpm_worker_zlib_value = NULL;
static size_t rfpm_worker_zlib_len = 0;
static bool rfpm_worker_zlib_saved = false;
/* exit() inside the handler: its unwind exception, held while the response ends. */
static zend_object *rfpm_worker_exit = NULL;

void rfpm_shim_worker_enter(void)
{
	rfpm_worker_active = true;
	/* A client that goes away must not end the application. */
	zend_string *name = zend_string_init("ignore_user_abort", sizeof("ignore_user_abort") - 1, 0);
	zend_alter_ini_entry_chars(name, "1", 1, PHP_INI_USER, PHP_INI_STAGE_RUNTIME);
	zend_string_release(name);
	/* The boot has no response: its output goes to the worker's output unaltered. */
	SG(request_info).no_headers = 1;
}

void rfpm_shim_worker_leave(void)
{
	rfpm_worker_active = false;
	rfpm_worker_in_handler = false;
	free(rfpm_worker_zlib_value);
	rfpm_worker_zlib_value = NULL;
	rfpm_worker_zlib_saved = false;
}

#define RFPM_ZLIB_OC "zlib.output_compression"

/* The boot is over (the script asks for its first request): what it left in
 * zlib.output_compression is what every request starts from. */
static void rfpm_worker_zlib_snapshot(void)
{
	zend_ini_entry *entry;

	if (rfpm_worker_zlib_saved) {
		return;
	}
	rfpm_worker_zlib_saved = true;
	entry = zend_hash_str_find_ptr(EG(ini_directives), RFPM_ZLIB_OC, sizeof(RFPM_ZLIB_OC) - 1);
	if (entry == NULL || entry->value == NULL) {
		return;
	}
	rfpm_worker_zlib_value = malloc(ZSTR_LEN(entry->value) + 1);
	if (rfpm_worker_zlib_value != NULL) {
		memcpy(rfpm_worker_zlib_value, ZSTR_VAL(entry->value), ZSTR_LEN(entry->value) + 1);
		rfpm_worker_zlib_len = ZSTR_LEN(entry->value);
	}
}

/* ext/zlib's request hooks: its start negotiates the request's encoding and starts
 * output compression when zlib.output_compression is on; its end forgets the handler
 * and ob_gzhandler()'s state. */
static void rfpm_worker_zlib_hook(bool start)
{
	zend_module_entry *zlib = zend_hash_str_find_ptr(&module_registry, "zlib", sizeof("zlib") - 1);

	if (zlib == NULL) {
		return;
	}
	if (start && zlib->request_startup_func != NULL) {
		zlib->request_startup_func(zlib->type, zlib->module_number);
	} else if (!start && zlib->request_shutdown_func != NULL) {
		zlib->request_shutdown_func(zlib->type, zlib->module_number);
	}
}

/* Output compression as a request start has it. The encoding is the one this request's
 * client accepts (ext/zlib would keep the first one it negotiated, and gzip a response
 * for a client that asked for none). zlib.output_compression starts from the value the
 * boot left: unlike other INI changes, which persist (as in FrankenPHP), an ini_set()
 * of it compresses the response of the request that made it, as in a classic pool, and
 * not every response after it. */
static void rfpm_worker_zlib_begin(void)
{
	if (rfpm_worker_zlib_value != NULL) {
		zend_ini_entry *entry = zend_hash_str_find_ptr(EG(ini_directives), RFPM_ZLIB_OC, sizeof(RFPM_ZLIB_OC) - 1);
		if (entry != NULL && (entry->value == NULL
		    || !zend_string_equals_cstr(entry->value, rfpm_worker_zlib_value, rfpm_worker_zlib_len))) {
			zend_string *name = zend_string_init(RFPM_ZLIB_OC, sizeof(RFPM_ZLIB_OC) - 1, 0);
			/* Not at runtime's stage, which would start compression at once; as a
			 * user's change (an admin's would lock the entry against ini_set()). */
			zend_alter_ini_entry_chars_ex(name, rfpm_worker_zlib_value, rfpm_worker_zlib_len,
			                              PHP_INI_USER, PHP_INI_STAGE_ACTIVATE, 1);
			zend_string_release(name);
		}
	}
	rfpm_worker_zlib_hook(true);
}

/* Output of the time between requests (and of the boot) goes out now, unbuffered from
 * here on, to the connection SG(server_context) names. */
static void rfpm_worker_output_idle(void)
{
	zend_try {
		php_output_end_all();
	} zend_end_try();
	zend_try {
		php_output_deactivate();
	} zend_end_try();
	php_output_activate();
}

/* The superglobals of the request, built as at a request start: the arrays of the
 * previous request are released first. $_ENV stays. */
static void rfpm_worker_globals(void)
{
	static const int tracks[] = { TRACK_VARS_GET, TRACK_VARS_POST, TRACK_VARS_COOKIE, TRACK_VARS_SERVER, TRACK_VARS_FILES };
	static const char *const names[] = { "_GET", "_POST", "_COOKIE", "_SERVER", "_FILES", "_REQUEST" };
	for (size_t i = 0; i < sizeof(tracks) / sizeof(tracks[0]); i++) {
		zval_ptr_dtor(&PG(http_globals)[tracks[i]]);
		ZVAL_UNDEF(&PG(http_globals)[tracks[i]]);
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		zend_auto_global *ag = zend_hash_str_find_ptr(CG(auto_globals), names[i], strlen(names[i]));
		if (ag != NULL && ag->auto_global_callback != NULL) {
			ag->armed = ag->auto_global_callback(ag->name);
		}
	}
	/* No session before session_start(): the previous request's is not visible. */
	zend_hash_str_del(&EG(symbol_table), "_SESSION", sizeof("_SESSION") - 1);
}

/* The session of the request ends with it (written and closed); the next request starts
 * without one. Save handlers set at boot stay. */
static void rfpm_worker_session_end(void)
{
	if (PS(session_status) == php_session_active) {
		zend_try {
			php_session_flush(1);
		} zend_end_try();
	}
	if (!Z_ISUNDEF(PS(http_session_vars))) {
		zval_ptr_dtor(&PS(http_session_vars));
		ZVAL_UNDEF(&PS(http_session_vars));
	}
	if (PS(mod_data) != NULL && PS(mod) != NULL) {
		zend_try {
			PS(mod)->s_close(&PS(mod_data));
		} zend_end_try();
		PS(mod_data) = NULL;
	}
	if (PS(id) != NULL) {
		zend_string_release(PS(id));
		PS(id) = NULL;
	}
	if (PS(session_vars) != NULL) {
		zend_string_release(PS(session_vars));
		PS(session_vars) = NULL;
	}
	PS(session_status) = php_session_none;
	PS(in_save_handler) = 0;
	PS(mod_user_is_open) = 0;
	PS(define_sid) = 1;
	zend_hash_str_del(&EG(symbol_table), "_SESSION", sizeof("_SESSION") - 1);
}

/* The extensions that keep per-request copies of the request's variables: ext/filter
 * keeps the raw values (filter_input()) in arrays its request shutdown frees and the
 * SAPI's input_filter_init (called by sapi_activate) forgets without freeing. Ended here
 * as a request end would, before the next request's copies are made. */
static void rfpm_worker_input_copies_end(void)
{
	zend_module_entry *filter = zend_hash_str_find_ptr(&module_registry, "filter", sizeof("filter") - 1);
	if (filter != NULL && filter->request_shutdown_func != NULL) {
		filter->request_shutdown_func(filter->type, filter->module_number);
	}
}

/* The start of a served request: SG(request_info) and SG(server_context) are set. */
static void rfpm_worker_begin(void)
{
	EG(exit_status) = 0;
	PG(connection_status) = PHP_CONNECTION_NORMAL;
	zend_memory_reset_peak_usage();
	rfpm_worker_input_copies_end();
	sapi_activate();
	/* A fresh request's headers, as php_request_startup() gives a classic request. */
	if (PG(expose_php)) {
		sapi_add_header(SAPI_PHP_VERSION_HEADER, sizeof(SAPI_PHP_VERSION_HEADER) - 1, 1);
	}
	if (PG(output_handler) && PG(output_handler)[0]) {
		zval oh;
		ZVAL_STRING(&oh, PG(output_handler));
		php_output_start_user(&oh, 0, PHP_OUTPUT_HANDLER_STDFLAGS);
		zval_ptr_dtor(&oh);
	} else if (PG(output_buffering)) {
		php_output_start_user(NULL, PG(output_buffering) > 1 ? PG(output_buffering) : 0, PHP_OUTPUT_HANDLER_STDFLAGS);
	} else if (PG(implicit_flush)) {
		php_output_set_implicit_flush(1);
	}
	rfpm_worker_globals();
	/* After the superglobals: the encoding is read from this request's $_SERVER. */
	rfpm_worker_zlib_begin();
	/* max_execution_time counts the request only, from its current value. */
	zend_set_timeout(EG(timeout_seconds), 0);
}

rfpm_shim_result rfpm_shim_worker_call(void *fci_p, void *fcc_p)
{
	zend_fcall_info *fci = fci_p;
	zend_fcall_info_cache *fcc = fcc_p;
	/* volatile: set inside zend_try and read after a possible longjmp. */
	volatile rfpm_shim_result r = RFPM_SHIM_OK;
	zend_try {
		zval retval;
		rfpm_worker_begin();
		ZVAL_UNDEF(&retval);
		fci->retval = &retval;
		fci->params = NULL;
		fci->param_count = 0;
		fci->named_params = NULL;
		rfpm_worker_in_handler = true;
		zend_call_function(fci, fcc);
		rfpm_worker_in_handler = false;
		zval_ptr_dtor(&retval);
		if (EG(exception) != NULL) {
			if (zend_is_unwind_exit(EG(exception)) || zend_is_graceful_exit(EG(exception))) {
				/* exit(): held until the response is out, then the script unwinds. */
				rfpm_worker_exit = EG(exception);
				EG(exception) = NULL;
				r = RFPM_SHIM_FAILED;
			} else {
				/* A 500 (before the message, which display_errors may print), and
				 * the report of an uncaught exception of a script (a fatal error in
				 * the log), without ending the application. */
				if (!SG(headers_sent)) {
					SG(sapi_headers).http_response_code = 500;
				}
				zend_exception_error(EG(exception), E_ERROR);
				EG(exception) = NULL;
			}
		}
	} zend_catch {
		r = RFPM_SHIM_BAILOUT;
	} zend_end_try();
	rfpm_worker_in_handler = false;
	zend_unset_timeout();
	return r;
}

void rfpm_shim_worker_end(void)
{
	/* Output, then the headers if none were sent, to the client. */
	zend_try {
		php_output_end_all();
	} zend_end_try();
	rfpm_worker_zlib_hook(false);
	zend_try {
		php_output_deactivate();
	} zend_end_try();
	zend_try {
		rfpm_worker_session_end();
	} zend_end_try();
	if (!Z_ISUNDEF(SG(callback_func))) {
		zval_ptr_dtor(&SG(callback_func));
		ZVAL_UNDEF(&SG(callback_func));
	}
	/* php://input's temporary stream belongs to the request. */
	if (SG(request_info).request_body != NULL) {
		php_stream_close(SG(request_info).request_body);
		SG(request_info).request_body = NULL;
	}
	/* Headers, status, the unread body, auth, uploaded files (deleted). */
	zend_try {
		sapi_deactivate();
	} zend_end_try();
	SG(request_info).cookie_data = NULL;
	php_output_activate();
	/* Between requests there is no response to change. */
	SG(headers_sent) = 1;
	SG(request_info).no_headers = 0;
	if (EG(exception) != NULL) {
		if (rfpm_worker_exit != NULL) {
			zend_clear_exception();
		} else {
			/* Thrown while the response ended (an output handler, a session save
			 * handler): reported like the handler's own, not into the script. */
			zend_exception_error(EG(exception), E_ERROR);
			EG(exception) = NULL;
		}
	}
}

static PHP_FUNCTION(frankenphp_handle_request)
{
	zend_fcall_info fci;
	zend_fcall_info_cache fcc;
	ZEND_PARSE_PARAMETERS_START(1, 1)
		Z_PARAM_FUNC(fci, fcc)
	ZEND_PARSE_PARAMETERS_END();
	if (!rfpm_worker_active) {
		zend_throw_exception(spl_ce_RuntimeException, "frankenphp_handle_request() called while not in worker mode", 0);
		RETURN_THROWS();
	}
	if (rfpm_worker_in_handler) {
		zend_throw_exception(spl_ce_RuntimeException, "frankenphp_handle_request() called from its own handler", 0);
		RETURN_THROWS();
	}
	/* Waiting is not the request's time. */
	zend_unset_timeout();
	rfpm_worker_zlib_snapshot();
	rfpm_worker_output_idle();
	switch (rfpm_rs_worker_handle(&fci, &fcc)) {
	case RFPM_SHIM_WORKER_STOP:
		RETURN_FALSE;
	case RFPM_SHIM_WORKER_BAILOUT:
		/* The fatal error of the handler ends the script, its response delivered. */
		zend_bailout();
		RETURN_FALSE;
	case RFPM_SHIM_WORKER_EXIT:
		if (rfpm_worker_exit != NULL) {
			EG(exception) = rfpm_worker_exit;
			rfpm_worker_exit = NULL;
		}
		RETURN_TRUE;
	default:
		RETURN_TRUE;
	}
}
