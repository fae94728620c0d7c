//! A scripted model server on loopback for the `llm` generator's tests:
//! HTTP/1.1, one thread per connection, answers taken from a script in
//! order (the last one repeats). Every request is recorded, and the most
//! requests in flight at once counted. Dropping the server stops it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Answer with the request's `Authorization` header in the body, as a
    /// careless server would.
    pub echo_auth: bool,
    /// How the echoed header is written into the body (JSON-escaped,
    /// URL-encoded, base64, …); as it is when `None`.
    pub echo_as: Option<fn(&str) -> String>,
}

impl Reply {
    pub fn status(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into(),
            delay: Duration::ZERO,
            echo_auth: false,
            echo_as: None,
        }
    }

    /// An OpenAI-style chat completion answering `text`.
    pub fn chat(text: &str) -> Reply {
        let body = serde_json::json!({
            "id": "c1",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        });
        Reply::status(200, body.to_string())
    }

    /// An Ollama `/api/generate` answer.
    pub fn ollama(text: &str) -> Reply {
        let body = serde_json::json!({
            "model": "m", "response": text, "done": true,
            "prompt_eval_count": 5, "eval_count": 3,
        });
        Reply::status(200, body.to_string())
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn delayed(mut self, by: Duration) -> Reply {
        self.delay = by;
        self
    }

    pub fn echoing_auth(mut self) -> Reply {
        self.echo_auth = true;
        self
    }

    /// Echoes the `Authorization` header written by `encode` as the body
    /// (no JSON around it, so the encoding is exactly what is sent).
    pub fn echoing_auth_as(mut self, encode: fn(&str) -> String) -> Reply {
        self.echo_auth = true;
        self.echo_as = Some(encode);
        self
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

pub struct ModelServer {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    flight: Arc<Flight>,
}

/// Requests between being read and answered: now, and the most ever.
#[derive(Default)]
struct Flight {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl ModelServer {
    pub fn start(script: Vec<Reply>) -> ModelServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds loopback");
        let addr = listener.local_addr().expect("address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let script = Arc::new(Mutex::new((script, 0usize)));
        let flight = Arc::new(Flight::default());
        let (s, st, fl) = (seen.clone(), stop.clone(), flight.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (s, script, fl) = (s.clone(), script.clone(), fl.clone());
                thread::spawn(move || serve(conn, &s, &script, &fl));
            }
        });
        ModelServer {
            addr,
            seen,
            stop,
            flight,
        }
    }

    /// The most requests that were in flight (read, not yet answered) at
    /// once.
    pub fn most_in_flight(&self) -> usize {
        self.flight.most.load(Ordering::SeqCst)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // wake the accept loop
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// A loopback port that nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("binds");
    l.local_addr().expect("address").port()
}

type Script = Mutex<(Vec<Reply>, usize)>;

fn serve(conn: TcpStream, seen: &Mutex<Vec<Seen>>, script: &Script, flight: &Flight) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len.min(16 << 20)];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let request = Seen {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let auth = request.header("authorization").unwrap_or("").to_string();
    let now = flight.now.fetch_add(1, Ordering::SeqCst) + 1;
    flight.most.fetch_max(now, Ordering::SeqCst);
    seen.lock().unwrap_or_else(|e| e.into_inner()).push(request);
    let reply = {
        let mut s = script.lock().unwrap_or_else(|e| e.into_inner());
        let (replies, next) = &mut *s;
        let i = (*next).min(replies.len().saturating_sub(1));
        *next += 1;
        replies
            .get(i)
            .cloned()
            .unwrap_or_else(|| Reply::status(500, "{\"error\": \"empty script\"}"))
    };
    thread::sleep(reply.delay);
    let body = if let (true, Some(encode)) = (reply.echo_auth, reply.echo_as) {
        encode(&auth)
    } else if reply.echo_auth {
        format!("{{\"error\": {{\"message\": \"bad key: {auth}\"}}}}")
    } else {
        reply.body.clone()
    };
    let mut out = format!(
        "HTTP/1.1 {} Scripted\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        body.len()
    );
    for (n, v) in &reply.headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&body);
    // answered from here: counted out before the client can read the
    // answer and send its next request (counting after the write let a
    // loaded machine see one request too many in flight)
    flight.now.fetch_sub(1, Ordering::SeqCst);
    let mut conn = conn;
    let _ = conn.write_all(out.as_bytes());
    let _ = conn.flush();
}
