//! End to end: Debian's nginx in front of the FPM (Unix socket), driven by curl.
#![forbid(unsafe_code)]

use integration::{both, wait_until, Fpm, HarnessError, Nginx, DEADLINE};

fn ok<T>(r: Result<T, HarnessError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

both!(nginx_end_to_end, |kind| {
    let fpm = ok(Fpm::builder(kind).start());
    let mut nginx = ok(Nginx::start(&fpm.addr(), &fpm.docroot()));

    let hello = ok(nginx.curl("/hello.php", &[]));
    assert_eq!(hello.status, 200, "{}", nginx.log());
    assert_eq!(hello.body_str(), "Hello, world!\n");
    assert_eq!(
        hello.header("Content-Type"),
        Some("text/html; charset=UTF-8")
    );
    let powered = hello.header("X-Powered-By").unwrap_or_default();
    assert!(
        powered.starts_with(&format!("PHP/{}.", integration::php_mm())),
        "X-Powered-By: {powered}"
    );

    let query = ok(nginx.curl("/query.php?a=1&b=two%20words", &[]));
    assert_eq!(query.status, 200);
    assert_eq!(
        query.body_str(),
        "QUERY_STRING=a=1&b=two%20words\na=1\nb=two words\n"
    );

    let post = ok(nginx.curl(
        "/post.php",
        &["--data-urlencode", "greeting=hello world", "-d", "n=42"],
    ));
    assert_eq!(post.status, 200);
    assert_eq!(
        post.body_str(),
        "REQUEST_METHOD=POST\ngreeting=hello world\nn=42\n"
    );

    let teapot = ok(nginx.curl("/headers.php", &[]));
    assert_eq!(teapot.status, 418);
    assert_eq!(teapot.header("X-Custom"), Some("custom-value"));

    let missing = ok(nginx.curl("/no-such-script.php", &[]));
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body_str(), "File not found.\n");
    // nginx logs the FastCGI stderr of the 404 in its error log.
    assert!(
        nginx.log().contains("Primary script unknown"),
        "{}",
        nginx.log()
    );

    // nginx writes its access-log line after the response: wait for it with a deadline.
    let expected = [
        "GET /hello.php ",
        "GET /query.php?a=1&b=two%20words ",
        "POST /post.php ",
        "GET /no-such-script.php ",
    ];
    wait_until(DEADLINE, || {
        let log = nginx.access_log();
        expected.iter().all(|p| log.contains(p))
    });
    let access = nginx.access_log();
    for path in expected {
        assert!(
            access.contains(path),
            "{path:?} not in access log:\n{access}"
        );
    }
    ok(nginx.stop());
});
