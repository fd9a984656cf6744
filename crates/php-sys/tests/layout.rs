//! Every struct Rust shares with C: size, alignment and the offsets we use, as gcc
//! compiled them into the C helpers (`php_sys_layout`), against Rust's view of the
//! bindgen-generated types.
use php_sys::*;
use std::mem::{align_of, offset_of, size_of};

fn c_layout(which: i32) -> php_sys_layout_t {
    let mut out = php_sys_layout_t::default();
    // SAFETY: `out` is a valid, writable struct of the type the shim fills.
    let known = unsafe { php_sys_layout(which, &raw mut out) };
    assert!(known, "shim does not know layout {which}");
    out
}

fn check(which: i32, size: usize, align: usize, offsets: &[usize]) {
    let c = c_layout(which);
    assert_eq!(c.size, size, "size of layout {which}");
    assert_eq!(c.align, align, "alignment of layout {which}");
    for (i, off) in offsets.iter().enumerate() {
        assert_eq!(c.offsets[i], *off, "offset #{i} of layout {which}");
    }
}

#[test]
fn sapi_module_struct_matches_c() {
    type T = sapi_module_struct;
    check(
        0,
        size_of::<T>(),
        align_of::<T>(),
        &[
            offset_of!(T, name),
            offset_of!(T, ub_write),
            offset_of!(T, send_headers),
            offset_of!(T, read_post),
            offset_of!(T, register_server_variables),
            offset_of!(T, log_message),
            offset_of!(T, php_ini_path_override),
            offset_of!(T, php_ini_ignore),
            offset_of!(T, input_filter),
            offset_of!(T, ini_entries),
            offset_of!(T, additional_functions),
            offset_of!(T, input_filter_init),
        ],
    );
}

#[test]
fn sapi_request_info_matches_c() {
    type T = sapi_request_info;
    check(
        1,
        size_of::<T>(),
        align_of::<T>(),
        &[
            offset_of!(T, request_method),
            offset_of!(T, query_string),
            offset_of!(T, content_length),
            offset_of!(T, path_translated),
            offset_of!(T, request_uri),
            offset_of!(T, content_type),
            offset_of!(T, headers_only),
            offset_of!(T, auth_user),
            offset_of!(T, proto_num),
        ],
    );
}

#[test]
fn sapi_headers_match_c() {
    type T = sapi_headers_struct;
    type H = sapi_header_struct;
    check(
        2,
        size_of::<T>(),
        align_of::<T>(),
        &[
            offset_of!(T, headers),
            offset_of!(T, http_response_code),
            offset_of!(T, send_default_content_type),
            offset_of!(T, mimetype),
            offset_of!(T, http_status_line),
        ],
    );
    check(
        3,
        size_of::<H>(),
        align_of::<H>(),
        &[offset_of!(H, header), offset_of!(H, header_len)],
    );
}

#[test]
fn zend_file_handle_matches_c() {
    type T = zend_file_handle;
    check(
        4,
        size_of::<T>(),
        align_of::<T>(),
        &[
            offset_of!(T, handle),
            offset_of!(T, filename),
            offset_of!(T, opened_path),
            offset_of!(T, type_),
        ],
    );
}

#[test]
fn sapi_globals_match_c() {
    type T = sapi_globals_struct;
    check(
        6,
        size_of::<T>(),
        align_of::<T>(),
        &[
            offset_of!(T, server_context),
            offset_of!(T, request_info),
            offset_of!(T, sapi_headers),
            offset_of!(T, headers_sent),
            offset_of!(T, options),
        ],
    );
}

#[test]
fn sapi_header_line_matches_c() {
    type T = sapi_header_line;
    check(
        7,
        size_of::<T>(),
        align_of::<T>(),
        &[
            offset_of!(T, line),
            offset_of!(T, line_len),
            offset_of!(T, response_code),
        ],
    );
}

#[test]
fn unknown_layout_is_refused() {
    let mut out = php_sys_layout_t::default();
    // SAFETY: valid out-pointer.
    // SAFETY: valid out-pointer, as above.
    assert!(!unsafe { php_sys_layout(5, &raw mut out) });
    // SAFETY: valid out-pointer, as above.
    assert!(!unsafe { php_sys_layout(99, &raw mut out) });
}
