//! TCP plumbing of a session: opening the outbound connection with the
//! configured options, and a writer task per connection so that sending
//! never blocks reading (two speakers both pushing a full table at each
//! other would otherwise deadlock on full socket buffers).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

use super::Transport;
use super::sockopt;
use crate::fsm::Direction;

/// Open the TCP connection to the peer (RFC 4271 8: the active open),
/// with MD5, GTSM and source address applied before the SYN goes out.
pub(crate) async fn connect(t: Transport, timeout: Duration) -> io::Result<TcpStream> {
    let v6 = t.address.is_ipv6();
    let sock = if v6 {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    if let Some(pw) = &t.password {
        sockopt::set_md5(&sock, v6, t.address, Some(pw))?;
    }
    if let Some(hops) = t.ttl_security {
        sockopt::set_ttl_255(&sock, v6)?;
        sockopt::set_min_ttl(&sock, v6, hops)?;
    }
    if let Some(src) = t.source_address {
        sock.bind(SocketAddr::new(src, 0))?;
    }
    let stream = tokio::time::timeout(timeout, sock.connect(SocketAddr::new(t.address, t.port)))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Apply the per-peer options to an accepted connection (the listener holds
/// the MD5 key already; GTSM is per socket).
pub(crate) fn prepare_inbound(stream: &TcpStream, t: &Transport) -> io::Result<()> {
    stream.set_nodelay(true)?;
    if let Some(hops) = t.ttl_security {
        let v6 = stream.local_addr()?.is_ipv6();
        sockopt::set_ttl_255(stream, v6)?;
        sockopt::set_min_ttl(stream, v6, hops)?;
    }
    Ok(())
}

/// One established TCP connection of a session.
pub(crate) struct Conn {
    pub reader: OwnedReadHalf,
    pub writer: mpsc::UnboundedSender<Bytes>,
    pub direction: Direction,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream, direction: Direction) -> io::Result<Self> {
        let local = stream.local_addr()?;
        let remote = stream.peer_addr()?;
        let (reader, w) = stream.into_split();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(w, rx));
        Ok(Conn {
            reader,
            writer: tx,
            direction,
            local,
            remote,
        })
    }

    pub(crate) fn send(&self, b: Bytes) {
        // A failed write shows up on the read side as a closed connection.
        let _ = self.writer.send(b);
    }
}

/// Writes queued buffers in order; when the session drops its sender, the
/// queue (e.g. a final NOTIFICATION) is flushed and the socket shut down.
async fn write_loop(mut w: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Bytes>) {
    while let Some(b) = rx.recv().await {
        if w.write_all(&b).await.is_err() {
            return;
        }
    }
    let _ = w.shutdown().await;
}
