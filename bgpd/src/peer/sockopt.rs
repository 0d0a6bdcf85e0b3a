//! Socket options no safe crate offers: TCP_MD5SIG (RFC 2385, Linux
//! `struct tcp_md5sig`) and the TTL options GTSM (RFC 5082) needs
//! (IP_TTL / IPV6_UNICAST_HOPS to send with 255, IP_MINTTL /
//! IPV6_MINHOPCOUNT to drop packets from further away). Neither nix 0.31 nor
//! socket2 0.6 has TCP_MD5SIG or IP_MINTTL, so this is the one module of
//! bgpd that calls `setsockopt` itself; everything unsafe is the single call
//! in [`setsockopt`].
#![allow(unsafe_code)]

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};

/// Linux `TCP_MD5SIG_MAXKEYLEN`.
pub const MAX_KEY_LEN: usize = 80;
/// `IPV6_MINHOPCOUNT` (linux/in6.h), not exported by libc 0.2.
const IPV6_MINHOPCOUNT: libc::c_int = 73;

/// `struct __kernel_sockaddr_storage`: 128 bytes, 8-aligned.
#[repr(C, align(8))]
struct SockaddrStorage([u8; 128]);

/// `struct tcp_md5sig` (linux/tcp.h).
#[repr(C)]
struct TcpMd5Sig {
    addr: SockaddrStorage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; MAX_KEY_LEN],
}

/// The peer address as the socket's family expects it: an IPv4 peer on an
/// IPv6 (dual-stack) socket is given as `::ffff:a.b.c.d`, which the kernel
/// files as an IPv4 key (tcp_v6_parse_md5_keys).
fn sockaddr(peer: IpAddr, socket_v6: bool) -> SockaddrStorage {
    let mut s = [0u8; 128];
    let peer = match (peer, socket_v6) {
        (IpAddr::V4(a), true) => IpAddr::V6(a.to_ipv6_mapped()),
        (p, _) => p,
    };
    match peer {
        IpAddr::V4(a) => {
            s[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            s[4..8].copy_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            s[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            s[8..24].copy_from_slice(&a.octets());
        }
    }
    SockaddrStorage(s)
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    let len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is a live, initialised `T` for the duration of the
    // call and `len` is exactly its size, so the kernel reads only memory
    // we own; `fd` is borrowed from a socket object the caller holds, so it
    // is open. setsockopt does not retain the pointer.
    let rc = unsafe { libc::setsockopt(fd, level, name, (value as *const T).cast(), len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Install (or with `key = None`, remove) the TCP MD5 key for `peer` on a
/// socket (a listener, or a socket before connect). `socket_v6`: the socket
/// is AF_INET6.
pub fn set_md5(
    sock: &impl AsRawFd,
    socket_v6: bool,
    peer: IpAddr,
    key: Option<&str>,
) -> io::Result<()> {
    let key_bytes = key.unwrap_or("").as_bytes();
    if key_bytes.len() > MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "TCP MD5 key is {} bytes, at most {MAX_KEY_LEN}",
                key_bytes.len()
            ),
        ));
    }
    let mut sig = TcpMd5Sig {
        addr: sockaddr(peer, socket_v6),
        flags: 0,
        prefixlen: 0,
        keylen: key_bytes.len() as u16,
        ifindex: 0,
        key: [0; MAX_KEY_LEN],
    };
    sig.key[..key_bytes.len()].copy_from_slice(key_bytes);
    setsockopt(sock.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_MD5SIG, &sig)
}

/// GTSM sending side: TTL / hop limit 255 on everything we send.
pub fn set_ttl_255(sock: &impl AsRawFd, socket_v6: bool) -> io::Result<()> {
    let v: libc::c_int = 255;
    if socket_v6 {
        setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_UNICAST_HOPS,
            &v,
        )?;
    }
    // A dual-stack socket talking IPv4 uses the IPv4 option.
    setsockopt(sock.as_raw_fd(), libc::IPPROTO_IP, libc::IP_TTL, &v)
        .or_else(|e| if socket_v6 { Ok(()) } else { Err(e) })
}

/// GTSM receiving side (RFC 5082 3): drop packets whose TTL is below
/// `256 - hops`, i.e. from further than `hops` hops away.
pub fn set_min_ttl(sock: &impl AsRawFd, socket_v6: bool, hops: u8) -> io::Result<()> {
    let min: libc::c_int = 256 - hops as libc::c_int;
    if socket_v6 {
        setsockopt(sock.as_raw_fd(), libc::IPPROTO_IPV6, IPV6_MINHOPCOUNT, &min)?;
    }
    setsockopt(sock.as_raw_fd(), libc::IPPROTO_IP, libc::IP_MINTTL, &min)
        .or_else(|e| if socket_v6 { Ok(()) } else { Err(e) })
}
