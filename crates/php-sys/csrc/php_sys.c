/* php-sys's C helpers: see php_sys.h. Only what Rust cannot do over the bindings:
 * zend_try, macros, static inline functions and static tables. */
#include "php.h"
#include "SAPI.h"
#include "php_main.h"
#include "php_output.h"
#include "php_ini_builder.h"
#include "http_status_codes.h"
#include "zend_constants.h"
#include "php_sys.h"

php_sys_result php_sys_output_write(const char *data, size_t len)
{
	/* volatile: set inside zend_try and read after a possible longjmp. */
	volatile php_sys_result r = PHP_SYS_OK;
	zend_try {
		php_output_write(data, len);
	} zend_catch {
		r = PHP_SYS_BAILOUT;
	} zend_end_try();
	return r;
}

int php_sys_exit_status(void)
{
	return EG(exit_status);
}

const char *php_sys_status_reason(int code)
{
	size_t n = sizeof(http_status_map) / sizeof(http_status_map[0]);
	for (size_t i = 0; i < n; i++) {
		if (http_status_map[i].code == code) {
			return http_status_map[i].str;
		}
	}
	return NULL;
}

char *php_sys_ini_entries(const char *const *defines, size_t n)
{
	struct php_ini_builder b;
	if (n == 0) {
		return NULL;
	}
	php_ini_builder_init(&b);
	for (size_t i = 0; i < n; i++) {
		php_ini_builder_define(&b, defines[i]);
	}
	return php_ini_builder_finish(&b);
}

void php_sys_array_init(void *zv)
{
	array_init((zval *) zv);
}

void php_sys_add_next_index_zval(void *arr, void *zv)
{
	add_next_index_zval((zval *) arr, (zval *) zv);
}

#define LAYOUT(T) do { out->size = sizeof(T); out->align = _Alignof(T); } while (0)
#define OFF(i, T, f) (out->offsets[(i)] = offsetof(T, f))

bool php_sys_layout(int which, php_sys_layout_t *out)
{
	memset(out, 0, sizeof(*out));
	switch (which) {
	case 0:
		LAYOUT(sapi_module_struct);
		OFF(0, sapi_module_struct, name); OFF(1, sapi_module_struct, ub_write);
		OFF(2, sapi_module_struct, send_headers); OFF(3, sapi_module_struct, read_post);
		OFF(4, sapi_module_struct, register_server_variables); OFF(5, sapi_module_struct, log_message);
		OFF(6, sapi_module_struct, php_ini_path_override); OFF(7, sapi_module_struct, php_ini_ignore);
		OFF(8, sapi_module_struct, input_filter); OFF(9, sapi_module_struct, ini_entries);
		OFF(10, sapi_module_struct, additional_functions); OFF(11, sapi_module_struct, input_filter_init);
		return true;
	case 1:
		LAYOUT(sapi_request_info);
		OFF(0, sapi_request_info, request_method); OFF(1, sapi_request_info, query_string);
		OFF(2, sapi_request_info, content_length); OFF(3, sapi_request_info, path_translated);
		OFF(4, sapi_request_info, request_uri); OFF(5, sapi_request_info, content_type);
		OFF(6, sapi_request_info, headers_only); OFF(7, sapi_request_info, auth_user);
		OFF(8, sapi_request_info, proto_num);
		return true;
	case 2:
		LAYOUT(sapi_headers_struct);
		OFF(0, sapi_headers_struct, headers); OFF(1, sapi_headers_struct, http_response_code);
		OFF(2, sapi_headers_struct, send_default_content_type); OFF(3, sapi_headers_struct, mimetype);
		OFF(4, sapi_headers_struct, http_status_line);
		return true;
	case 3:
		LAYOUT(sapi_header_struct);
		OFF(0, sapi_header_struct, header); OFF(1, sapi_header_struct, header_len);
		return true;
	case 4:
		LAYOUT(zend_file_handle);
		OFF(0, zend_file_handle, handle); OFF(1, zend_file_handle, filename);
		OFF(2, zend_file_handle, opened_path); OFF(3, zend_file_handle, type);
		return true;
	case 6:
		LAYOUT(sapi_globals_struct);
		OFF(0, sapi_globals_struct, server_context); OFF(1, sapi_globals_struct, request_info);
		OFF(2, sapi_globals_struct, sapi_headers); OFF(3, sapi_globals_struct, headers_sent);
		OFF(4, sapi_globals_struct, options);
		return true;
	case 7:
		LAYOUT(sapi_header_line);
		OFF(0, sapi_header_line, line); OFF(1, sapi_header_line, line_len);
		OFF(2, sapi_header_line, response_code);
		return true;
	default:
		return false;
	}
}

bool php_sys_path_exists(const char *path)
{
	char real[MAXPATHLEN];
	return tsrm_realpath(path, real) != NULL;
}

char *php_sys_constant_string(const char *name, size_t len)
{
	zval *value = zend_get_constant_str(name, len);
	zend_string *text;
	char *copy;

	if (value == NULL) {
		return NULL;
	}
	text = zval_get_string(value);
	copy = malloc(ZSTR_LEN(text) + 1);
	if (copy != NULL) {
		memcpy(copy, ZSTR_VAL(text), ZSTR_LEN(text));
		copy[ZSTR_LEN(text)] = '\0';
	}
	zend_string_release(text);
	return copy;
}

void php_sys_free(void *p)
{
	free(p);
}
