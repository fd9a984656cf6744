//! Requests as nginx would send them, through the project's FastCGI client.

use std::path::Path;

use fcgi::client::{Addr, Client, ClientRequest, Response};

use crate::{Fpm, HarnessError, DEADLINE};

/// One request to a script of the document root, described the way a web server sees it.
#[derive(Debug, Clone)]
pub struct Req {
    script: String,
    method: String,
    query: String,
    content_type: String,
    body: Vec<u8>,
    extra: Vec<(String, String)>,
    keep_conn: bool,
}

impl Req {
    /// `GET /<script>`.
    pub fn get(script: &str) -> Req {
        Req {
            script: script.trim_start_matches('/').to_string(),
            method: "GET".into(),
            query: String::new(),
            content_type: String::new(),
            body: Vec::new(),
            extra: Vec::new(),
            keep_conn: false,
        }
    }

    /// `POST /<script>` with a body of the given content type.
    pub fn post(script: &str, content_type: &str, body: Vec<u8>) -> Req {
        let mut r = Req::get(script);
        r.method = "POST".into();
        r.content_type = content_type.into();
        r.body = body;
        r
    }

    /// The query string (without `?`).
    pub fn query(mut self, q: &str) -> Req {
        self.query = q.into();
        self
    }

    /// An extra param, sent after the standard ones (so it replaces a standard one of the
    /// same name, as FPM keeps the last value).
    pub fn param(mut self, k: &str, v: &str) -> Req {
        self.extra.push((k.into(), v.into()));
        self
    }

    pub fn keep_conn(mut self, k: bool) -> Req {
        self.keep_conn = k;
        self
    }

    /// The FastCGI request, with params as nginx's `fastcgi_params` plus `SCRIPT_FILENAME`.
    pub fn build(&self, docroot: &Path) -> ClientRequest {
        let mut req = ClientRequest::new().keep_conn(self.keep_conn);
        let content_length = if self.body.is_empty() && self.method == "GET" {
            String::new()
        } else {
            self.body.len().to_string()
        };
        for (k, v) in nginx_params(
            docroot,
            &self.script,
            &self.method,
            &self.query,
            &self.content_type,
            &content_length,
        ) {
            req = req.param(k, v);
        }
        for (k, v) in &self.extra {
            req = req.param(k, v);
        }
        req.body(self.body.clone())
    }
}

/// The params nginx sends for `<method> /<script>?<query>` with Debian's
/// `/etc/nginx/fastcgi_params` and `SCRIPT_FILENAME $document_root$fastcgi_script_name`.
pub fn nginx_params(
    docroot: &Path,
    script: &str,
    method: &str,
    query: &str,
    content_type: &str,
    content_length: &str,
) -> Vec<(String, String)> {
    let root = docroot.display().to_string();
    let script_name = format!("/{}", script.trim_start_matches('/'));
    let uri = if query.is_empty() {
        script_name.clone()
    } else {
        format!("{script_name}?{query}")
    };
    [
        ("QUERY_STRING", query.to_string()),
        ("REQUEST_METHOD", method.to_string()),
        ("CONTENT_TYPE", content_type.to_string()),
        ("CONTENT_LENGTH", content_length.to_string()),
        ("SCRIPT_NAME", script_name.clone()),
        ("REQUEST_URI", uri),
        ("DOCUMENT_URI", script_name.clone()),
        ("DOCUMENT_ROOT", root.clone()),
        ("SERVER_PROTOCOL", "HTTP/1.1".to_string()),
        ("REQUEST_SCHEME", "http".to_string()),
        ("GATEWAY_INTERFACE", "CGI/1.1".to_string()),
        ("SERVER_SOFTWARE", "nginx/1.22.1".to_string()),
        ("REMOTE_ADDR", "127.0.0.1".to_string()),
        ("REMOTE_PORT", "54321".to_string()),
        ("REMOTE_USER", String::new()),
        ("SERVER_ADDR", "127.0.0.1".to_string()),
        ("SERVER_PORT", "80".to_string()),
        ("SERVER_NAME", "localhost".to_string()),
        ("REDIRECT_STATUS", "200".to_string()),
        ("HTTP_HOST", "localhost".to_string()),
        ("SCRIPT_FILENAME", format!("{root}{script_name}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

impl Fpm {
    /// The listen address of pool `www` as a client address.
    pub fn fcgi_addr(&self) -> Addr {
        Addr::parse(&self.addr())
    }

    /// A new connection to pool `www`, with a 10 s read/write timeout.
    pub fn client(&self) -> Result<Client, HarnessError> {
        connect(&self.fcgi_addr())
    }

    /// `GET /<script>` with `extra` params on a new connection.
    pub fn request(&self, script: &str, extra: &[(&str, &str)]) -> Result<Response, HarnessError> {
        let mut req = Req::get(script);
        for (k, v) in extra {
            req = req.param(k, v);
        }
        self.send(&req)
    }

    /// Sends `req` on a new connection and reads the response.
    pub fn send(&self, req: &Req) -> Result<Response, HarnessError> {
        let mut client = self.client()?;
        send_on(&mut client, &self.docroot(), req)
    }
}

/// Connects to `addr` with a 10 s timeout on reads and writes.
pub fn connect(addr: &Addr) -> Result<Client, HarnessError> {
    let mut client =
        Client::connect(addr).map_err(|e| HarnessError::io(format!("connecting to {addr}"), e))?;
    client
        .set_timeout(Some(DEADLINE))
        .map_err(|e| HarnessError::io("setting the client timeout", e))?;
    Ok(client)
}

/// Sends `req` on an existing connection (e.g. a kept-alive one).
pub fn send_on(client: &mut Client, docroot: &Path, req: &Req) -> Result<Response, HarnessError> {
    client
        .request(&req.build(docroot))
        .map_err(|e| HarnessError::Client(e.to_string()))
}
