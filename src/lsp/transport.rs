//! The stdio transport, with bounds. lsp-server's own reader allocates
//! whatever `Content-Length` says before reading a byte of the body, and
//! reads a header line of any length; a peer that is not an editor could
//! make the server allocate gigabytes. This reader caps the header lines,
//! their number and the body, reading only what arrives; the messages
//! then go through lsp-server's in-memory connection.

use std::io::{self, BufRead, Read, Write};
use std::thread::JoinHandle;

use lsp_server::{Connection, Message};

/// The largest message accepted: a document is at most 8 MiB of source
/// (`check::MAX_SOURCE_BYTES`), which JSON escaping can grow, but not
/// past this.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// The longest header line, and the most header lines of one message.
const MAX_HEADER_LINE: u64 = 1024;
const MAX_HEADERS: usize = 16;

/// The reader and writer threads of a stdio connection.
pub struct Threads {
    reader: JoinHandle<io::Result<()>>,
    writer: JoinHandle<io::Result<()>>,
}

impl Threads {
    /// Waits for both; the reader's error (a message too large or
    /// malformed) first.
    pub fn join(self) -> Result<(), String> {
        let reader = self
            .reader
            .join()
            .map_err(|_| "the reader failed".to_string())?;
        let writer = self
            .writer
            .join()
            .map_err(|_| "the writer failed".to_string())?;
        reader.map_err(|e| e.to_string())?;
        writer.map_err(|e| e.to_string())
    }
}

/// A connection over standard input and output.
pub fn stdio() -> (Connection, Threads) {
    let (server, client) = Connection::memory();
    let Connection {
        sender: to_server,
        receiver: from_server,
    } = client;
    let reader = std::thread::spawn(move || {
        let stdin = io::stdin();
        let mut stdin = stdin.lock();
        while let Some(msg) = read(&mut stdin, MAX_MESSAGE_BYTES)? {
            let exit = matches!(&msg, Message::Notification(n) if n.method == "exit");
            if to_server.send(msg).is_err() || exit {
                break;
            }
        }
        Ok(())
    });
    let writer = std::thread::spawn(move || {
        let stdout = io::stdout();
        let mut stdout = stdout.lock();
        for msg in from_server {
            msg.write(&mut stdout)?;
            stdout.flush()?;
        }
        Ok(())
    });
    (server, Threads { reader, writer })
}

/// Reads one message; `None` at the end of the input between messages.
/// A body over `max` bytes is an error before anything is allocated for
/// it; a body is read as it arrives, so a `Content-Length` larger than
/// what is sent costs only what is sent.
pub fn read(input: &mut impl BufRead, max: usize) -> io::Result<Option<Message>> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let mut length = None;
    let mut headers = 0;
    loop {
        let mut line = Vec::new();
        let n = input
            .by_ref()
            .take(MAX_HEADER_LINE)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            if headers == 0 {
                return Ok(None);
            }
            return Err(invalid("the input ended inside a message header".into()));
        }
        let Some(line) = line.strip_suffix(b"\r\n") else {
            return Err(invalid(format!(
                "malformed header line (not ended by CRLF within {MAX_HEADER_LINE} bytes)"
            )));
        };
        if line.is_empty() {
            break;
        }
        headers += 1;
        if headers > MAX_HEADERS {
            return Err(invalid(format!("more than {MAX_HEADERS} header lines")));
        }
        let line = String::from_utf8_lossy(line);
        let (name, value) = line
            .split_once(": ")
            .ok_or_else(|| invalid(format!("malformed header: {line:?}")))?;
        if name.eq_ignore_ascii_case("Content-Length") {
            length = Some(
                value
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| invalid(format!("malformed Content-Length: {value:?}")))?,
            );
        }
    }
    let length = length.ok_or_else(|| invalid("a message without Content-Length".into()))?;
    if length > max as u64 {
        return Err(invalid(format!(
            "a message of {length} bytes, more than the limit of {} MiB",
            max >> 20
        )));
    }
    let mut body = Vec::new();
    input.by_ref().take(length).read_to_end(&mut body)?;
    if (body.len() as u64) < length {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the input ended inside a message body",
        ));
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| invalid(format!("malformed message: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &str) -> String {
        format!("Content-Length: {}\r\n\r\n{body}", body.len())
    }

    #[test]
    fn reads_messages_in_turn_and_none_at_the_end() {
        let body = r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#;
        let text = frame(body).repeat(2);
        let mut input = text.as_bytes();
        for _ in 0..2 {
            let msg = read(&mut input, 1 << 20).unwrap().unwrap();
            assert!(matches!(msg, Message::Notification(n) if n.method == "initialized"));
        }
        assert!(read(&mut input, 1 << 20).unwrap().is_none());
    }

    #[test]
    fn a_length_over_the_limit_is_refused_before_reading_the_body() {
        let text = "Content-Length: 1500000000\r\n\r\n{}";
        let e = read(&mut text.as_bytes(), MAX_MESSAGE_BYTES).unwrap_err();
        assert!(
            e.to_string().contains("more than the limit of 64 MiB"),
            "{e}"
        );
    }

    #[test]
    fn a_length_larger_than_the_body_is_an_error_not_a_wait() {
        let text = "Content-Length: 1000\r\n\r\n{}";
        let e = read(&mut text.as_bytes(), MAX_MESSAGE_BYTES).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn endless_header_lines_are_refused() {
        let long = format!("X-Pad: {}\r\n\r\n", "a".repeat(5000));
        let e = read(&mut long.as_bytes(), MAX_MESSAGE_BYTES).unwrap_err();
        assert!(e.to_string().contains("malformed header line"), "{e}");
        let many = "X-Pad: a\r\n".repeat(100);
        let e = read(&mut many.as_bytes(), MAX_MESSAGE_BYTES).unwrap_err();
        assert!(e.to_string().contains("header lines"), "{e}");
    }
}
