//! The PHP scripts of the scenarios, written into a document root, the requests that call
//! them (with the params nginx sends) and the exact answers they must give.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;

use fcgi::client::ClientRequest;

use crate::crc32;
use crate::load::{BodyCheck, Expect};

/// Service classes of the framework-like scenario; with the container, the base class and
/// the interface that makes [`FRAMEWORK_FILES`] class files.
pub const SERVICES: usize = 147;
pub const FRAMEWORK_FILES: usize = SERVICES + 3;
/// Records json.php encodes.
pub const JSON_RECORDS: usize = 200;
pub const POST_BYTES: usize = 1 << 20;
pub const UPLOAD_BYTES: usize = 5 << 20;
pub const BOUNDARY: &str = "----rfpmbench7d4a1f";

pub const HELLO: &str = "<?php\necho \"Hello, World!\\n\";\n";
pub const HELLO_BODY: &str = "Hello, World!\n";

const JSON_PHP: &str = r#"<?php
header('Content-Type: application/json');
$rows = [];
for ($i = 0; $i < 200; $i++) {
    $rows[] = [
        'id' => $i,
        'name' => "user$i",
        'email' => "user$i@example.com",
        'active' => $i % 3 === 0,
        'roles' => ['reader', $i % 2 ? 'writer' : 'guest'],
        'score' => $i * 37 % 1000,
    ];
}
echo json_encode($rows);
"#;

const FRAMEWORK_PHP: &str = r#"<?php
spl_autoload_register(function (string $class): void {
    if (strncmp($class, 'App\\', 4) !== 0) {
        return;
    }
    $file = __DIR__ . '/fw/' . str_replace('\\', '/', substr($class, 4)) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
$container = new App\Container();
$sum = 0;
for ($i = 1; $i <= SERVICES; $i++) {
    $svc = $container->get(sprintf('App\\Service\\S%03d', $i));
    $sum += $svc->handle($i);
}
echo 'framework ok services=', count($container->all()), ' sum=', $sum, "\n";
"#;

const CONTAINER_PHP: &str = r#"<?php
namespace App;

final class Container
{
    /** @var array<string, object> */
    private array $services = [];

    public function get(string $id): object
    {
        return $this->services[$id] ??= new $id($this);
    }

    public function has(string $id): bool
    {
        return isset($this->services[$id]);
    }

    /** @return array<string, object> */
    public function all(): array
    {
        return $this->services;
    }
}
"#;

const BASE_PHP: &str = r#"<?php
namespace App\Service;

use App\Container;

abstract class AbstractService implements ServiceInterface
{
    protected array $options = ['a' => 1, 'b' => 'two', 'c' => [1, 2, 3]];

    public function __construct(protected Container $container)
    {
    }

    protected function compute(int $x): int
    {
        $t = 0;
        foreach ($this->options['c'] as $v) {
            $t += $v * $x;
        }
        return $t;
    }

    public function name(): string
    {
        return static::class;
    }
}
"#;

const INTERFACE_PHP: &str = r#"<?php
namespace App\Service;

interface ServiceInterface
{
    public function handle(int $x): int;
    public function name(): string;
}
"#;

fn service_php(i: usize) -> String {
    format!(
        r#"<?php
namespace App\Service;

final class S{i:03} extends AbstractService
{{
    public const ID = {i};
    private const ROUTES = ['/s{i}/index', '/s{i}/show/{{id}}', '/s{i}/edit/{{id}}', '/s{i}/delete/{{id}}'];

    public function handle(int $x): int
    {{
        return $this->compute($x) + $x;
    }}

    public function routes(): array
    {{
        $out = [];
        foreach (self::ROUTES as $n => $r) {{
            $out[$r] = sprintf('%s::action%d', static::class, $n);
        }}
        return $out;
    }}

    public function describe(): string
    {{
        return sprintf('%s#%d with %d routes', $this->name(), self::ID, count(self::ROUTES));
    }}

    public function validate(array $input): array
    {{
        $errors = [];
        foreach (['id' => 'int', 'title' => 'string', 'tags' => 'array'] as $field => $type) {{
            if (!array_key_exists($field, $input)) {{
                $errors[$field] = 'missing';
            }} elseif (get_debug_type($input[$field]) !== $type) {{
                $errors[$field] = 'expected ' . $type;
            }}
        }}
        return $errors;
    }}

    public function render(array $rows): string
    {{
        $html = '<table class="s{i}">';
        foreach ($rows as $row) {{
            $html .= '<tr><td>' . htmlspecialchars((string) ($row['title'] ?? '')) . '</td></tr>';
        }}
        return $html . '</table>';
    }}
}}
"#
    )
}

const POST_PHP: &str = r#"<?php
$b = file_get_contents('php://input');
echo 'len=', strlen($b), ' crc=', hash('crc32b', $b), "\n";
"#;

const UPLOAD_PHP: &str = r#"<?php
$f = $_FILES['f'] ?? null;
if (!is_array($f) || $f['error'] !== UPLOAD_ERR_OK) {
    http_response_code(500);
    echo 'upload failed: ', json_encode($f), "\n";
    exit;
}
echo 'name=', $f['name'], ' size=', $f['size'], ' crc=', hash_file('crc32b', $f['tmp_name']), ' field=', $_POST['title'] ?? '', "\n";
"#;

const FINISH_PHP: &str = r#"<?php
echo "finished\n";
fastcgi_finish_request();
usleep(20000);
"#;

/// Pure PHP work for the in-process floor only: no I/O, next to nothing of the SAPI's.
const CPU_PHP: &str = r#"<?php
function fib(int $n): int { return $n < 2 ? $n : fib($n - 1) + fib($n - 2); }
$a = [];
for ($i = 0; $i < 20000; $i++) {
    $a[] = strlen(str_repeat('x', $i % 50)) + $i * 3;
}
$s = 0;
foreach ($a as $k => $v) {
    $s += $v ^ $k;
}
echo 'cpu ok ', $s, ' ', fib(20), "\n";
"#;

const SLEEP_PHP: &str = r#"<?php
usleep(20000);
echo "slept\n";
"#;

/// Writes every script into `root`.
pub fn write_docroot(root: &Path) -> io::Result<()> {
    fs::create_dir_all(root.join("fw/Service"))?;
    fs::write(root.join("hello.php"), HELLO)?;
    fs::write(root.join("json.php"), JSON_PHP)?;
    fs::write(
        root.join("framework.php"),
        FRAMEWORK_PHP.replace("SERVICES", &SERVICES.to_string()),
    )?;
    fs::write(root.join("fw/Container.php"), CONTAINER_PHP)?;
    fs::write(root.join("fw/Service/AbstractService.php"), BASE_PHP)?;
    fs::write(root.join("fw/Service/ServiceInterface.php"), INTERFACE_PHP)?;
    for i in 1..=SERVICES {
        fs::write(root.join(format!("fw/Service/S{i:03}.php")), service_php(i))?;
    }
    fs::write(root.join("post.php"), POST_PHP)?;
    fs::write(root.join("upload.php"), UPLOAD_PHP)?;
    fs::write(root.join("finish.php"), FINISH_PHP)?;
    fs::write(root.join("sleep.php"), SLEEP_PHP)?;
    fs::write(root.join("cpu.php"), CPU_PHP)?;
    Ok(())
}

/// What json.php prints.
pub fn json_body() -> String {
    let mut s = String::from("[");
    for i in 0..JSON_RECORDS {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            r#"{{"id":{i},"name":"user{i}","email":"user{i}@example.com","active":{},"roles":["reader","{}"],"score":{}}}"#,
            i % 3 == 0,
            if i % 2 == 1 { "writer" } else { "guest" },
            i * 37 % 1000
        );
    }
    s.push(']');
    s
}

/// What framework.php prints: each service returns 6x + x for handle(x).
pub fn framework_body() -> String {
    let sum: usize = (1..=SERVICES).map(|i| 7 * i).sum();
    format!("framework ok services={SERVICES} sum={sum}\n")
}

/// What cpu.php prints (the same arithmetic).
pub fn cpu_body() -> String {
    fn fib(n: u64) -> u64 {
        if n < 2 {
            n
        } else {
            fib(n - 1) + fib(n - 2)
        }
    }
    let sum: u64 = (0..20_000u64).map(|i| (i % 50 + i * 3) ^ i).sum();
    format!("cpu ok {sum} {}\n", fib(20))
}

/// Deterministic, not very compressible payload bytes.
pub fn payload(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// A multipart/form-data body with a `title` field and a file `f`.
pub fn multipart(file: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(file.len() + 512);
    b.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nbench\r\n\
             --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"data.bin\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    b.extend_from_slice(file);
    b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    b
}

/// A request for `/<script>` with the params nginx's fastcgi_params sends.
pub fn request(
    docroot: &Path,
    script: &str,
    method: &str,
    content_type: &str,
    body: Vec<u8>,
) -> ClientRequest {
    let root = docroot.display().to_string();
    let uri = format!("/{script}");
    let len = if body.is_empty() && method == "GET" {
        String::new()
    } else {
        body.len().to_string()
    };
    ClientRequest::new()
        .param("SCRIPT_FILENAME", format!("{root}/{script}"))
        .param("QUERY_STRING", "")
        .param("REQUEST_METHOD", method)
        .param("CONTENT_TYPE", content_type)
        .param("CONTENT_LENGTH", len)
        .param("SCRIPT_NAME", &uri)
        .param("REQUEST_URI", &uri)
        .param("DOCUMENT_URI", &uri)
        .param("DOCUMENT_ROOT", &root)
        .param("SERVER_PROTOCOL", "HTTP/1.1")
        .param("REQUEST_SCHEME", "http")
        .param("GATEWAY_INTERFACE", "CGI/1.1")
        .param("SERVER_SOFTWARE", "rfpm-bench")
        .param("REMOTE_ADDR", "127.0.0.1")
        .param("REMOTE_PORT", "40000")
        .param("SERVER_ADDR", "127.0.0.1")
        .param("SERVER_PORT", "80")
        .param("SERVER_NAME", "localhost")
        .param("REDIRECT_STATUS", "200")
        .param("HTTP_HOST", "localhost")
        .param("HTTP_USER_AGENT", "rfpm-bench")
        .param("HTTP_ACCEPT", "*/*")
        .body(body)
}

/// A scenario's request and expected answer.
pub struct Call {
    pub request: ClientRequest,
    pub expect: Expect,
}

fn exact(s: impl Into<Vec<u8>>) -> Expect {
    Expect {
        status: 200,
        body: BodyCheck::Exact(s.into()),
    }
}

pub fn hello(root: &Path) -> Call {
    Call {
        request: request(root, "hello.php", "GET", "", Vec::new()),
        expect: exact(HELLO_BODY),
    }
}

pub fn json(root: &Path) -> Call {
    Call {
        request: request(root, "json.php", "GET", "", Vec::new()),
        expect: exact(json_body()),
    }
}

pub fn framework(root: &Path) -> Call {
    Call {
        request: request(root, "framework.php", "GET", "", Vec::new()),
        expect: exact(framework_body()),
    }
}

pub fn post(root: &Path) -> Call {
    let body = payload(POST_BYTES);
    let want = format!("len={} crc={}\n", body.len(), crc32::hex(&body));
    Call {
        request: request(root, "post.php", "POST", "application/octet-stream", body),
        expect: exact(want),
    }
}

pub fn upload(root: &Path) -> Call {
    let file = payload(UPLOAD_BYTES);
    let want = format!(
        "name=data.bin size={} crc={} field=bench\n",
        file.len(),
        crc32::hex(&file)
    );
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    Call {
        request: request(root, "upload.php", "POST", &ct, multipart(&file)),
        expect: exact(want),
    }
}

pub fn finish(root: &Path) -> Call {
    Call {
        request: request(root, "finish.php", "GET", "", Vec::new()),
        expect: exact("finished\n"),
    }
}

pub fn sleep(root: &Path) -> Call {
    Call {
        request: request(root, "sleep.php", "GET", "", Vec::new()),
        expect: exact("slept\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docroot_has_the_framework_files() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        write_docroot(dir.path()).unwrap_or_else(|e| panic!("write: {e}"));
        let n = fs::read_dir(dir.path().join("fw/Service"))
            .map(|d| d.count())
            .unwrap_or(0)
            + 1;
        assert_eq!(n, FRAMEWORK_FILES);
        assert!(dir.path().join("hello.php").is_file());
    }

    #[test]
    fn expected_bodies() {
        let j = json_body();
        assert!(j.starts_with(r#"[{"id":0,"name":"user0","email":"user0@example.com","active":true,"roles":["reader","guest"],"score":0},{"id":1,"#));
        assert!(j.ends_with(r#""score":363}]"#)); // 199 * 37 % 1000
        assert_eq!(framework_body(), "framework ok services=147 sum=76146\n");
        // What php-cgi8.2 prints for cpu.php.
        assert_eq!(cpu_body(), "cpu ok 496351184 6765\n");
        let m = multipart(b"xyz");
        assert!(m.ends_with(format!("xyz\r\n--{BOUNDARY}--\r\n").as_bytes()));
        assert_eq!(payload(16), payload(16));
        assert_ne!(payload(16)[..8], payload(16)[8..]);
    }
}
