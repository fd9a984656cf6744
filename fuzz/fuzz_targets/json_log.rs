//! The JSON log writer (`log_format = json`, `access.log_format = json`): what it
//! escapes comes from outside (a worker's output, a client's URI, query and headers).
//! Whatever the bytes, every string must come out as JSON that a real parser reads back
//! as the input's lossy UTF-8, every entry as one object on one line, and an access entry
//! within its bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfpm_core::access::{self, Entry, JsonEntry};
use rfpm_core::json;
use rfpm_core::logline::{format_json_at, Cut, Format, JsonExtra, Record, Style};
use rfpm_core::Level;

fn one_line(out: &[u8]) -> serde_json::Value {
    let body = out.strip_suffix(b"\n").unwrap_or(out);
    assert!(!body.contains(&b'\n') && !body.contains(&b'\r'));
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) if v.is_object() => v,
        other => panic!("not one JSON object: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    // The input's own bytes, whole, as one string.
    let s = json::string(rest);
    let back: String = serde_json::from_slice(&s).expect("a JSON string");
    assert_eq!(back, String::from_utf8_lossy(rest));
    assert!(s.iter().all(|&b| b >= 0x20));

    // Split the rest in up to four fields at 0xFE bytes.
    let mut fields = rest.splitn(4, |&b| b == 0xfe);
    let (a, b, c, d) = (
        fields.next().unwrap_or_default(),
        fields.next().unwrap_or_default(),
        fields.next().unwrap_or_default(),
        fields.next().unwrap_or_default(),
    );

    // An error log entry (master message or captured line).
    let fmt = Format {
        style: Style::Master,
        debug: ctl & 1 != 0,
        limit: 512 + usize::from(ctl >> 1) * 16,
        pid: 7,
    };
    let rec = Record {
        level: Level::Warning,
        function: "f",
        line: 1,
        message: a,
        errno: (ctl & 2 != 0).then_some(2),
        cut: if ctl & 4 != 0 { Cut::Stream } else { Cut::OneShot },
    };
    let extra = JsonExtra {
        pool: (ctl & 8 != 0).then_some(b),
        child: None,
        stream: Some("stderr"),
        request_id: (ctl & 16 != 0).then_some(c),
    };
    let v = one_line(&format_json_at(&fmt, "t", &rec, &extra));
    assert!(v["msg"].is_string() && v["level"] == "warning");

    // An access entry whose strings are the fields.
    let param = |_: &[u8]| None;
    let e = Entry {
        remote: None,
        user: d,
        start_secs: 0,
        now_secs: 0,
        method: c,
        uri: a,
        query: b,
        status: i32::from(ctl),
        script: d,
        content_length: -1,
        duration_us: u64::MAX,
        memory: u64::MAX,
        cpu_user_us: u64::MAX,
        cpu_system_us: 1,
        pool: b"www",
        pid: -1,
        ppid: 1,
        param: &param,
        headers: &[],
    };
    let j = JsonEntry {
        time: "t",
        request_id: b,
        uri: a,
        query: rest,
        remote_addr: Some(c),
    };
    let (line, cut) = access::format_json(&e, &j);
    assert!(line.len() <= access::LINE_MAX);
    let v = one_line(&line);
    assert_eq!(v.get("truncated").is_some(), cut);
    assert_eq!(v["status"], i64::from(ctl));
});
