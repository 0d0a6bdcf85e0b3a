//! BFD's sockets (RFC 5881 single hop): one socket receiving on UDP 3784 that reports
//! each packet's TTL and arrival interface, and one connected socket per session
//! sending from a port in 49152-65535 with TTL 255.
//!
//! RFC 5881 5: "All BFD Control packets for a session MUST be sent with a TTL or Hop
//! Limit value of 255. All received BFD Control packets that are demultiplexed to the
//! session MUST be discarded if the received TTL or Hop Limit is not equal to 255."
//! IP_MINTTL is not enforced for UDP by Linux, so the TTL comes from the IP_RECVTTL
//! control message, which nix reads safely.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrIn, recvmsg, setsockopt, sockopt};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use bgp_core::bfd::SOURCE_PORTS;

/// One received datagram.
#[derive(Debug)]
pub struct Received {
    pub len: usize,
    pub from: IpAddr,
    /// IP TTL; `None` when the kernel gave no IP_TTL control message.
    pub ttl: Option<u8>,
    pub ifindex: Option<u32>,
}

/// The receiving socket, bound to UDP 3784 on every IPv4 address.
pub struct Receiver {
    sock: UdpSocket,
}

impl Receiver {
    pub fn bind(port: u16) -> io::Result<Receiver> {
        let sock = StdUdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))?;
        sock.set_nonblocking(true)?;
        setsockopt(&sock, sockopt::Ipv4RecvTtl, &true).map_err(io::Error::from)?;
        setsockopt(&sock, sockopt::Ipv4PacketInfo, &true).map_err(io::Error::from)?;
        Ok(Receiver {
            sock: UdpSocket::from_std(sock)?,
        })
    }

    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        self.sock
            .async_io(Interest::READABLE, || {
                recv_with_ttl(self.sock.as_raw_fd(), &mut *buf)
            })
            .await
    }
}

fn recv_with_ttl(fd: std::os::fd::RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut cmsg = nix::cmsg_space!(libc::c_int, libc::in_pktinfo);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrIn>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT)
        .map_err(io::Error::from)?;
    let mut r = Received {
        len: msg.bytes,
        from: IpAddr::V4(msg.address.map_or(Ipv4Addr::UNSPECIFIED, |a| a.ip())),
        ttl: None,
        ifindex: None,
    };
    for c in msg.cmsgs().map_err(io::Error::from)? {
        match c {
            ControlMessageOwned::Ipv4Ttl(t) => r.ttl = u8::try_from(t).ok(),
            ControlMessageOwned::Ipv4PacketInfo(i) => r.ifindex = u32::try_from(i.ipi_ifindex).ok(),
            _ => {}
        }
    }
    Ok(r)
}

/// A session's sending socket: bound to `local` (or any address) and a free port in
/// 49152-65535 (RFC 5881 4), connected to the peer's port 3784, TTL 255 (RFC 5881 5).
///
/// A plain non-blocking std socket: sends never wait (a full buffer drops the packet, as
/// a lossy link would), and tokio's readiness tracking, which reports a fresh socket as
/// not yet writable, would drop the first packets instead.
pub fn sender(peer: IpAddr, local: Option<IpAddr>, port: u16) -> io::Result<StdUdpSocket> {
    let local = local.unwrap_or(match peer {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    });
    let span = u32::from(SOURCE_PORTS.end() - SOURCE_PORTS.start()) + 1;
    let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no free BFD source port");
    for _ in 0..64 {
        let p = SOURCE_PORTS.start() + (rand::random::<u32>() % span) as u16;
        match StdUdpSocket::bind(SocketAddr::new(local, p)) {
            Ok(s) => {
                crate::peer::sockopt::set_ttl_255(&s, peer.is_ipv6())?;
                s.connect(SocketAddr::new(peer, port))?;
                s.set_nonblocking(true)?;
                return Ok(s);
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// The name of interface `ifindex` (BIRD's Interface column).
pub fn ifname(ifindex: u32) -> Option<String> {
    nix::net::if_::if_indextoname(ifindex)
        .ok()
        .and_then(|c| c.into_string().ok())
}
