//! A small W3C WebDriver client for chromedriver: blocking HTTP/1.1 over a
//! `TcpStream`, JSON bodies. Only what the end-to-end test needs.

#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

/// A chromedriver listening on `addr`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Driver {
    addr: SocketAddr,
}

/// One browser, started by chromedriver; closed on drop.
#[derive(Debug)]
pub(crate) struct Session {
    driver: Driver,
    id: String,
}

impl Driver {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self { addr }
    }

    /// Whether chromedriver answers `/status` as ready.
    pub(crate) fn ready(&self) -> bool {
        self.call("GET", "/status", None)
            .is_ok_and(|v| v["ready"].as_bool() == Some(true))
    }

    /// Starts a browser with `binary` and `args`.
    pub(crate) fn session(&self, binary: &str, args: &[String]) -> Result<Session, String> {
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": { "binary": binary, "args": args },
                }
            }
        });
        let value = self.call("POST", "/session", Some(&caps))?;
        let id = value["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session id in {value}"))?
            .to_owned();
        Ok(Session { driver: *self, id })
    }

    /// One WebDriver command: the answer's `value`, or its error.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
            .map_err(|e| format!("chromedriver at {}: {e}", self.addr))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(|e| e.to_string())?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let (status, payload) =
            read_answer(&mut stream).map_err(|e| format!("{method} {path}: {e}"))?;
        let answer: Value = serde_json::from_str(&payload)
            .map_err(|e| format!("{method} {path}: {status}: {e}: {payload}"))?;
        let value = answer["value"].clone();
        // WebDriver reports errors with a 4xx/5xx status.
        if status != "200" {
            return Err(format!(
                "{method} {path}: {status}: {}: {}",
                value["error"].as_str().unwrap_or("?"),
                value["message"].as_str().unwrap_or(&payload)
            ));
        }
        Ok(value)
    }
}

/// Reads one HTTP answer: its status and body. chromedriver may keep the
/// connection open, so the body is read by its `Content-Length` (or chunks).
fn read_answer(stream: &mut TcpStream) -> Result<(String, String), String> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 << 10];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before the answer's head".into());
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap_or("?").to_owned();
    let length = head.lines().find_map(|l| {
        l.strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<usize>().ok())
    });
    let chunked = head.contains("transfer-encoding: chunked");
    let mut body = raw.split_off(head_end);
    loop {
        let complete = match length {
            Some(len) => body.len() >= len,
            None if chunked => body.windows(5).any(|w| w == b"0\r\n\r\n"),
            None => false,
        };
        if complete {
            break;
        }
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    Ok((status, if chunked { dechunk(&body) } else { body }))
}

/// The body of a chunked HTTP answer.
fn dechunk(mut text: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = text.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        text = rest[size..].trim_start_matches("\r\n");
    }
    out
}

impl Session {
    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.id)
    }

    pub(crate) fn goto(&self, url: &str) -> Result<(), String> {
        self.driver
            .call("POST", &self.path("/url"), Some(&json!({ "url": url })))
            .map(drop)
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub(crate) fn eval(&self, script: &str) -> Result<Value, String> {
        self.driver.call(
            "POST",
            &self.path("/execute/sync"),
            Some(&json!({ "script": script, "args": [] })),
        )
    }

    /// Runs `script` (an async function body; its `return` is awaited).
    pub(crate) fn eval_async(&self, script: &str) -> Result<Value, String> {
        let wrapped = format!(
            "const done = arguments[arguments.length - 1];\n\
             (async () => {{ {script} }})().then(done, (e) => done({{ error: String(e && e.message || e) }}));"
        );
        self.driver.call(
            "POST",
            &self.path("/execute/async"),
            Some(&json!({ "script": wrapped, "args": [] })),
        )
    }

    /// Reloads the page.
    pub(crate) fn refresh(&self) -> Result<(), String> {
        self.driver
            .call("POST", &self.path("/refresh"), Some(&json!({})))
            .map(drop)
    }

    /// Sends a DevTools protocol command (ChromeDriver's extension).
    pub(crate) fn cdp(&self, cmd: &str, params: Value) -> Result<Value, String> {
        self.driver.call(
            "POST",
            &self.path("/goog/cdp/execute"),
            Some(&json!({ "cmd": cmd, "params": params })),
        )
    }

    pub(crate) fn set_window(&self, width: u32, height: u32) -> Result<(), String> {
        self.driver
            .call(
                "POST",
                &self.path("/window/rect"),
                Some(&json!({ "width": width, "height": height })),
            )
            .map(drop)
    }

    /// Saves a PNG of the viewport.
    pub(crate) fn screenshot(&self, file: &Path) -> Result<(), String> {
        let value = self.driver.call("GET", &self.path("/screenshot"), None)?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().ok_or("screenshot is not a string")?)
            .map_err(|e| e.to_string())?;
        std::fs::write(file, png).map_err(|e| format!("{}: {e}", file.display()))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.driver.call("DELETE", &self.path(""), None);
    }
}
