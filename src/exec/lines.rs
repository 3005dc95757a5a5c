//! The JSON-lines protocol every Python worker speaks (the code sessions' `worker.py`, the grader's
//! `grader.py`): one compact JSON object per line each way, a reply read with a size cap so a
//! runaway writer cannot exhaust memory.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest reply line read (a bigger one is cut there and fails to parse).
pub const MAX_LINE_BYTES: u64 = 64 << 20;

/// Writes `message` as one line and flushes it.
pub async fn send(to: &mut (impl AsyncWrite + Unpin), message: &impl Serialize) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    line.push(b'\n');
    to.write_all(&line).await?;
    to.flush().await
}

/// Why no reply was read.
#[derive(Debug)]
pub enum ReadError {
    /// The worker closed its output (it ended).
    Closed,
    Io(std::io::Error),
    /// A line that is not the reply expected.
    Unreadable(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Closed => f.write_str("end of output"),
            ReadError::Io(e) => write!(f, "reading the worker's reply failed: {e}"),
            ReadError::Unreadable(e) => write!(f, "the worker sent an unreadable reply ({e})"),
        }
    }
}

/// Reads one reply line.
pub async fn receive<T: DeserializeOwned>(from: &mut (impl AsyncBufRead + Unpin)) -> Result<T, ReadError> {
    let mut line = String::new();
    match from.take(MAX_LINE_BYTES).read_line(&mut line).await {
        Ok(0) => Err(ReadError::Closed),
        Ok(_) => serde_json::from_str(&line).map_err(|e| ReadError::Unreadable(e.to_string())),
        Err(e) => Err(ReadError::Io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_message_per_line_each_way() {
        let mut wire = Vec::new();
        send(&mut wire, &serde_json::json!({"id": 1})).await.unwrap();
        send(&mut wire, &serde_json::json!({"id": 2})).await.unwrap();
        wire.extend_from_slice(b"not json\n");
        let mut reader = tokio::io::BufReader::new(&wire[..]);
        let first: serde_json::Value = receive(&mut reader).await.unwrap();
        let second: serde_json::Value = receive(&mut reader).await.unwrap();
        assert_eq!((first["id"].as_u64(), second["id"].as_u64()), (Some(1), Some(2)));
        assert!(matches!(receive::<serde_json::Value>(&mut reader).await, Err(ReadError::Unreadable(_))));
        assert!(matches!(receive::<serde_json::Value>(&mut reader).await, Err(ReadError::Closed)));
    }
}
