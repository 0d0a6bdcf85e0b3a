//! TCP plumbing of a session: opening the outbound connection with the
//! configured options, and a writer task per connection so that sending
//! never blocks reading (two speakers both pushing a full table at each
//! other would otherwise deadlock on full socket buffers).

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Buf, Bytes};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

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
    writer: mpsc::UnboundedSender<Bytes>,
    /// Where the last message (a NOTIFICATION) goes: ahead of the queue.
    last: Option<oneshot::Sender<Bytes>>,
    /// Bytes handed to the writer and not yet taken up by it.
    queued: Arc<AtomicUsize>,
    limit: usize,
    /// The writer task; it ends once the socket is flushed (bounded in
    /// time) after the connection is closed.
    pub write_task: JoinHandle<()>,
    pub direction: Direction,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// The peer does not read fast enough: more than the limit is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("send queue over its limit: {queued} bytes queued, limit {limit}")]
pub(crate) struct QueueFull {
    pub queued: usize,
    pub limit: usize,
}

impl Conn {
    /// Split `stream` and start its writer; at most `limit` bytes wait in
    /// the send queue (a peer that stops reading must not make us buffer
    /// without bound).
    pub(crate) fn new(stream: TcpStream, direction: Direction, limit: usize) -> io::Result<Self> {
        let local = stream.local_addr()?;
        let remote = stream.peer_addr()?;
        let (reader, w) = stream.into_split();
        let (tx, rx) = mpsc::unbounded_channel();
        let (last_tx, last_rx) = oneshot::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let write_task = tokio::spawn(write_loop(w, rx, last_rx, queued.clone()));
        Ok(Conn {
            reader,
            writer: tx,
            last: Some(last_tx),
            queued,
            limit,
            write_task,
            direction,
            local,
            remote,
        })
    }

    /// Queue `b` (whole messages). A failed write shows up on the read side
    /// as a closed connection; a full queue is the caller's to handle.
    pub(crate) fn send(&self, b: Bytes) -> Result<(), QueueFull> {
        let queued = self.queued.load(Ordering::Relaxed);
        if queued.saturating_add(b.len()) > self.limit {
            return Err(QueueFull {
                queued,
                limit: self.limit,
            });
        }
        self.queued.fetch_add(b.len(), Ordering::Relaxed);
        let _ = self.writer.send(b);
        Ok(())
    }

    /// Send `b` (a NOTIFICATION) as the last message: after the message
    /// being written, ahead of everything still queued (RFC 4271 4.5: the
    /// connection is closed right after it, so nothing queued counts any
    /// more). The writer then shuts the socket down.
    pub(crate) fn send_last(&mut self, b: Bytes) {
        if let Some(tx) = self.last.take() {
            let _ = tx.send(b);
        }
    }
}

/// How long a closed connection may take to flush what is left.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(3);

/// Writes queued buffers in order, several per write (`writev`), keeping
/// track of where each message ends so that a last message can cut in at a
/// message boundary. When the session drops the connection, what is queued
/// is flushed for at most [`FLUSH_TIMEOUT`] and the socket shut down.
///
/// A reflector's flushes are small (one source's routes each) and many: one
/// write, one TCP segment (the socket has TCP_NODELAY) and one wakeup of the
/// peer per flush would cost both ends more than the routes themselves. The
/// buffers are not copied: a flush's bytes may be shared by every peer.
async fn write_loop(
    mut w: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    mut last: oneshot::Receiver<Bytes>,
    queued: Arc<AtomicUsize>,
) {
    // `last` resolved (polling it again would panic).
    let mut last_done = false;
    let mut deadline: Option<Instant> = None;
    // Whole messages, in order; the front one partly written.
    let mut pending: VecDeque<Bytes> = VecDeque::new();
    // Bytes of the message at the head of `pending` not yet written.
    let mut msg_left = 0usize;
    loop {
        if msg_left == 0
            && let Some(head) = pending.front()
        {
            msg_left = message_len(head);
        }
        let expire = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let slices: Vec<IoSlice<'_>> = pending
            .iter()
            .take(WRITE_BUFFERS)
            .map(|b| IoSlice::new(b))
            .collect();
        tokio::select! {
            biased;
            m = &mut last, if !last_done => {
                last_done = true;
                match m {
                    Ok(msg) => {
                        // Complete the message on the wire, then the last one.
                        let head = pending.front().map_or_else(Bytes::new, |b| b.slice(..msg_left));
                        let _ = tokio::time::timeout(FLUSH_TIMEOUT, async {
                            w.write_all(&head).await?;
                            w.write_all(&msg).await
                        })
                        .await;
                        break;
                    }
                    // The connection was dropped: flush the rest, bounded.
                    Err(_) => deadline = Some(Instant::now() + FLUSH_TIMEOUT),
                }
            }
            _ = expire => break,
            b = rx.recv(), if pending.is_empty() => match b {
                Some(b) => {
                    queued.fetch_sub(b.len(), Ordering::Relaxed);
                    pending.push_back(b);
                    // And what else is queued already, for the same write.
                    while pending.len() < WRITE_BUFFERS {
                        let Ok(b) = rx.try_recv() else { break };
                        queued.fetch_sub(b.len(), Ordering::Relaxed);
                        pending.push_back(b);
                    }
                }
                None if last_done => break,
                // Closed with no last message: wait for `last` to resolve.
                None => {}
            },
            r = w.write_vectored(&slices), if !pending.is_empty() => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    drop(slices);
                    msg_left = advance(&mut pending, msg_left, n);
                    // A burst grew the queue to up to WRITE_BUFFERS entries;
                    // an idle session gives that back (2 KiB, times every
                    // client of a route reflector).
                    if pending.is_empty() {
                        pending = VecDeque::new();
                    }
                }
            },
        }
    }
    let _ = tokio::time::timeout(FLUSH_TIMEOUT, w.shutdown()).await;
}

/// Buffers handed to one `writev`.
const WRITE_BUFFERS: usize = 64;

/// Drops `n` written bytes from the front of `pending`, where `msg_left`
/// bytes of the head message were unwritten; returns that count for the
/// message the write stopped in (0 at a boundary).
fn advance(pending: &mut VecDeque<Bytes>, mut msg_left: usize, mut n: usize) -> usize {
    while n > 0 {
        let Some(head) = pending.front_mut() else {
            break;
        };
        if msg_left == 0 {
            msg_left = message_len(head);
        }
        let k = n.min(msg_left);
        head.advance(k);
        msg_left -= k;
        n -= k;
        if head.is_empty() {
            pending.pop_front();
        }
    }
    msg_left
}

/// Length of the BGP message at the head of `b` (RFC 4271 4.1: octets 16-17
/// of the header); all of `b` if that is not a sane length.
fn message_len(b: &[u8]) -> usize {
    match b.get(16..18) {
        Some(&[hi, lo]) => {
            let n = u16::from_be_bytes([hi, lo]) as usize;
            if (crate::wire::HEADER_LEN..=b.len()).contains(&n) {
                n
            } else {
                b.len()
            }
        }
        _ => b.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A syntactically framed BGP message of `len` bytes and type `kind`.
    fn frame(len: usize, kind: u8, fill: u8) -> Bytes {
        let mut v = vec![fill; len];
        v[..16].fill(0xff);
        v[16..18].copy_from_slice(&(len as u16).to_be_bytes());
        v[18] = kind;
        Bytes::from(v)
    }

    #[test]
    fn message_len_reads_the_header_and_falls_back_to_all() {
        assert_eq!(message_len(&frame(4096, 2, 0)), 4096);
        let two = [frame(19, 4, 0), frame(23, 2, 0)].concat();
        assert_eq!(message_len(&two), 19);
        // A length beyond the buffer or below the header is not trusted.
        let mut bad = frame(40, 2, 0).to_vec();
        bad[16..18].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(message_len(&bad), 40);
        assert_eq!(message_len(&[0u8; 10]), 10);
    }

    #[test]
    fn advance_steps_over_written_messages_and_buffers() {
        let mut pending: VecDeque<Bytes> = [
            [frame(19, 4, 0), frame(30, 2, 0)].concat().into(),
            frame(25, 2, 0),
        ]
        .into();
        // Into the second message of the first buffer.
        assert_eq!(advance(&mut pending, 0, 24), 25);
        assert_eq!(pending.len(), 2);
        // The rest of that message and the first 5 bytes of the next buffer.
        assert_eq!(advance(&mut pending, 25, 30), 20);
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].len(), 20);
        // To the end: nothing left, at a boundary.
        assert_eq!(advance(&mut pending, 20, 20), 0);
        assert!(pending.is_empty());
    }

    /// A peer that stops reading: the queue stops at its limit, and the last
    /// message still arrives whole, after a whole message, once the peer
    /// reads again; nothing queued after the cut is sent.
    #[tokio::test]
    async fn full_queue_is_refused_and_last_message_cuts_in_at_a_boundary() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), l.accept());
        let mut peer = server.unwrap().0;
        let limit = 1 << 20;
        let mut conn = Conn::new(client.unwrap(), Direction::Outbound, limit).unwrap();
        let mut sent = 0usize;
        let full = loop {
            assert!(sent < 100_000, "queue never filled");
            match conn.send(frame(4096, 2, (sent % 251) as u8)) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            tokio::task::yield_now().await;
        };
        assert_eq!(full.limit, limit);
        assert!(full.queued + 4096 > limit, "{full:?}");
        conn.send_last(frame(21, 3, 0));
        let writer = conn.write_task;
        drop(conn.writer);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        // Whole messages only, in order, the NOTIFICATION last.
        let mut rest = &got[..];
        let mut updates = 0usize;
        let last = loop {
            let n = message_len(rest);
            assert!(n == 4096 || n == 21, "cut message of {n} bytes");
            let (m, tail) = rest.split_at(n);
            rest = tail;
            if m[18] == 3 {
                break m;
            }
            assert_eq!(
                m[19],
                (updates % 251) as u8,
                "message {updates} out of order"
            );
            updates += 1;
        };
        assert_eq!(last.len(), 21);
        assert!(
            rest.is_empty(),
            "{} bytes after the NOTIFICATION",
            rest.len()
        );
        assert!(
            updates < sent,
            "queued messages were not dropped: {updates} of {sent}"
        );
    }
}
