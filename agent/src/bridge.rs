//! A TCP byte stream carried in WebSocket binary messages, as `adit access` and the
//! connector speak it. WebSocket has no half-close, so an empty binary message means "no
//! more bytes this way" (a `shutdown(WRITE)`); the other direction keeps flowing until it
//! ends too, and then the WebSocket closes normally.

use adit_transport::relay::read_chunk;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message, protocol::WebSocketConfig},
};

/// WebSocket settings for a bridged stream. tungstenite's default read buffer (128 KiB) is
/// filled in before the first read, so every idle stream would hold it; frames are written
/// as they are sent, since each carries what one read of the socket returned.
pub fn websocket_config(read_buffer: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .write_buffer_size(0)
}

/// Bytes moved each way: (WebSocket → TCP, TCP → WebSocket).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    pub to_tcp: u64,
    pub to_ws: u64,
}

/// Joins a WebSocket and a TCP-like stream until both directions have ended.
pub async fn bridge<W, T>(ws: WebSocketStream<W>, tcp: T) -> std::io::Result<Moved>
where
    W: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ws_out, mut ws_in) = ws.split();
    let (mut tcp_in, mut tcp_out) = tokio::io::split(tcp);
    let mut moved = Moved::default();

    let inbound = async {
        while let Some(message) = ws_in.next().await {
            match message.map_err(std::io::Error::other)? {
                Message::Binary(data) if data.is_empty() => break,
                Message::Binary(data) => {
                    tcp_out.write_all(&data).await?;
                    // Stdout (for ProxyCommand) buffers; a socket's flush is free.
                    tcp_out.flush().await?;
                    moved.to_tcp += data.len() as u64;
                }
                Message::Close(_) => break,
                // Pings are answered by tungstenite; text has no meaning here.
                _ => {}
            }
        }
        tcp_out.shutdown().await
    };
    let outbound = async {
        loop {
            // An empty chunk is the end of the TCP side, and as a message says just that.
            let chunk = read_chunk(&mut tcp_in).await?;
            let n = chunk.len() as u64;
            ws_out
                .send(Message::Binary(chunk))
                .await
                .map_err(std::io::Error::other)?;
            if n == 0 {
                break;
            }
            moved.to_ws += n;
        }
        Ok::<_, std::io::Error>(ws_out)
    };
    let (inbound, outbound) = tokio::join!(inbound, outbound);
    if let Ok(mut ws_out) = outbound {
        // Both halves are done: say goodbye properly. The peer may already be gone.
        let _ = ws_out.send(Message::Close(None)).await;
        let _ = ws_out.close().await;
    }
    inbound.map(|()| moved)
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use super::*;

    /// Two bridges back to back: bytes written at one TCP end come out at the other, and a
    /// half-close at either end reaches the far side while the reply still flows.
    #[tokio::test]
    async fn carries_bytes_and_half_close_both_ways() {
        let (ws_a, ws_b) = tokio::io::duplex(1024);
        let (client_tcp, bridge_a_tcp) = tokio::io::duplex(1024);
        let (bridge_b_tcp, origin_tcp) = tokio::io::duplex(1024);
        let a = tokio::spawn(async move {
            let ws = WebSocketStream::from_raw_socket(ws_a, Role::Client, None).await;
            bridge(ws, bridge_a_tcp).await
        });
        let b = tokio::spawn(async move {
            let ws = WebSocketStream::from_raw_socket(ws_b, Role::Server, None).await;
            bridge(ws, bridge_b_tcp).await
        });
        let origin = tokio::spawn(async move {
            let (mut r, mut w) = tokio::io::split(origin_tcp);
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap(); // ends only on the client's half-close
            w.write_all(format!("got {} bytes", got.len()).as_bytes())
                .await
                .unwrap();
            w.shutdown().await.unwrap();
        });
        let (mut r, mut w) = tokio::io::split(client_tcp);
        w.write_all(&vec![7u8; 300_000]).await.unwrap();
        w.shutdown().await.unwrap();
        let mut reply = String::new();
        r.read_to_string(&mut reply).await.unwrap();
        assert_eq!(reply, "got 300000 bytes");
        origin.await.unwrap();
        let a = a.await.unwrap().unwrap();
        let b = b.await.unwrap().unwrap();
        assert_eq!(a.to_ws, 300_000);
        assert_eq!(b.to_tcp, 300_000);
        assert_eq!(b.to_ws, 16);
    }
}
