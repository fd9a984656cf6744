//! The README's nginx site, as it stands in README.md, in front of the FPM: it serves a
//! PHP page, keeps scripts that do not exist away from PHP, and answers the status and
//! ping pages to this machine only (a client from another address gets 403).
#![forbid(unsafe_code)]

use integration::helpers::{ok, start};
use integration::{both, fixtures_dir, workspace_dir, Fpm, Nginx};

/// The ```nginx block under "## Behind nginx" in README.md.
fn readme_block() -> String {
    let readme = ok(std::fs::read_to_string(workspace_dir().join("README.md")));
    let section = &readme[readme.find("## Behind nginx").unwrap_or(0)..];
    let start = section.find("```nginx\n").map(|i| i + "```nginx\n".len());
    let Some(start) = start else {
        panic!("no ```nginx block under \"## Behind nginx\" in README.md");
    };
    let end = section[start..].find("\n```").map(|i| start + i);
    let Some(end) = end else {
        panic!("the README's nginx block does not end");
    };
    section[start..end].to_string()
}

both!(the_readme_nginx_site_serves_php_and_guards_status, |kind| {
    let fpm = start(
        Fpm::builder(kind)
            .pool_line("pm.status_path = /status")
            .pool_line("ping.path = /ping"),
    );
    let block = readme_block();
    for needed in [
        "listen 80;",
        "root /srv/www;",
        "unix:/run/rfpm/www.sock",
        "include fastcgi_params;",
    ] {
        assert!(block.contains(needed), "the README's block lost {needed:?}");
    }
    let sock = fpm.addr();
    let docroot = fixtures_dir().display().to_string();
    let nginx = ok(Nginx::start_server(|port| {
        block
            .replace("listen 80;", &format!("listen {port};"))
            .replace("root /srv/www;", &format!("root {docroot};"))
            .replace("unix:/run/rfpm/www.sock", &format!("unix:{sock}"))
            .replace(
                "include fastcgi_params;",
                "include /etc/nginx/fastcgi_params;",
            )
    }));
    let r = ok(nginx.curl("/hello.php", &[]));
    assert_eq!(
        (r.status, r.body_str()),
        (200, "Hello, world!\n".to_string())
    );
    // A script that does not exist never reaches PHP: nginx's own 404.
    let r = ok(nginx.curl("/no-such-script.php", &[]));
    assert_eq!(r.status, 404);
    let r = ok(nginx.curl("/hello.php/x.php", &[]));
    assert_eq!(r.status, 200, "PATH_INFO after an existing script");
    // Status and ping: from this machine yes.
    let r = ok(nginx.curl("/status", &[]));
    assert_eq!(r.status, 200, "{}", nginx.log());
    assert!(r.body_str().starts_with("pool:"), "{}", r.body_str());
    let r = ok(nginx.curl("/ping", &[]));
    assert_eq!((r.status, r.body_str()), (200, "pong".to_string()));
    // From another address (127.0.0.2 is not 127.0.0.1 to nginx's `allow`): refused.
    for page in ["/status", "/ping"] {
        let r = ok(nginx.curl(page, &["--interface", "127.0.0.2"]));
        assert_eq!(r.status, 403, "{page} from 127.0.0.2");
    }
});
