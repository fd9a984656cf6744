//! Sends one request and prints the records received:
//! `fcgi_probe <addr> <script> [query] [body-bytes]`.
use fcgi::client::{Addr, Client, ClientRequest};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: fcgi_probe <addr> <script> [query] [body-bytes]");
        std::process::exit(2);
    }
    let q = args.get(3).cloned().unwrap_or_default();
    let body_len: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(0);
    let req = ClientRequest::new()
        .param("SCRIPT_FILENAME", &args[2])
        .param("QUERY_STRING", &q)
        .param("REQUEST_METHOD", if body_len > 0 { "POST" } else { "GET" })
        .param("CONTENT_LENGTH", body_len.to_string())
        .body(vec![b'b'; body_len]);
    let r = Client::connect(&Addr::parse(&args[1])).and_then(|mut c| {
        c.request(&req)
            .map_err(|e| std::io::Error::other(e.to_string()))
    });
    match r {
        Ok(r) => {
            for (t, l, p) in &r.records {
                println!("{} {} {}", fcgi::record::type_name(*t), l, p);
            }
            println!(
                "status={} app={} proto={}",
                r.status(),
                r.app_status,
                r.protocol_status
            );
            println!("stderr={:?}", r.stderr_str());
            if std::env::var_os("SHOW_BODY").is_some() {
                println!("{}", r.stdout_str());
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
