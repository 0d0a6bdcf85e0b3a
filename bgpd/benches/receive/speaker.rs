//! A minimal BGP speaker for the receive benchmark, run as a child process
//! of the bench binary inside a namespace (`<bench> --speaker ...`):
//!
//! - `record FILE LOCAL PEER AS`: peer with a BIRD sender, store the
//!   UPDATE messages it sends after the OPEN/KEEPALIVE exchange (KEEPALIVEs
//!   dropped) up to and including the IPv4 End-of-RIB, then leave.
//! - `replay FILE LOCAL PEER AS`: peer with a receiver and write the
//!   recorded bytes as fast as the socket takes them, reading (and
//!   dropping) what the receiver sends and keeping the session up with
//!   KEEPALIVEs until killed.
//!
//! Both connect actively (the receivers are configured passive) and
//! advertise what the recording was made with: IPv4 unicast (RFC 4760),
//! route refresh (RFC 2918) and 4-octet AS numbers (RFC 6793), so BIRD's
//! encoding is what every receiver negotiated too. Progress goes to stdout
//! one line at a time: `established`, then `recorded N BYTES` / `sent BYTES`.

use std::io::{self, BufWriter, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::bgp_msg::{HEADER, KEEPALIVE, NOTIFICATION, OPEN, UPDATE, message, open};

/// Our OPEN's hold time; the receiver's keepalive interval follows from it.
const HOLD: u16 = 240;

pub fn main(args: &[String]) -> Result<(), String> {
    let [mode, file, local, peer, asn] = args else {
        return Err(format!(
            "usage: --speaker record|replay FILE LOCAL PEER AS, got {args:?}"
        ));
    };
    let local: Ipv4Addr = local.parse().map_err(|e| format!("LOCAL {local}: {e}"))?;
    let peer: Ipv4Addr = peer.parse().map_err(|e| format!("PEER {peer}: {e}"))?;
    let asn: u32 = asn.parse().map_err(|e| format!("AS {asn}: {e}"))?;
    let mut s = connect(peer, Duration::from_secs(60))?;
    handshake(&mut s, local, asn).map_err(|e| format!("handshake: {e}"))?;
    say("established");
    match mode.as_str() {
        "record" => record(&mut s, file),
        "replay" => replay(s, file),
        m => Err(format!("mode {m}: expected record or replay")),
    }
}

fn say(line: &str) {
    let mut o = io::stdout().lock();
    let _ = writeln!(o, "{line}");
    let _ = o.flush();
}

/// Connect to `peer`:179 (the namespace has one address on the link, so
/// the source is the LOCAL the peer expects), retrying while the peer's
/// listener is not up yet.
fn connect(peer: Ipv4Addr, within: Duration) -> Result<TcpStream, String> {
    let deadline = Instant::now() + within;
    loop {
        match TcpStream::connect_timeout(&SocketAddr::from((peer, 179)), Duration::from_secs(2)) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= deadline => return Err(format!("connect {peer}: {e}")),
            // Retry back-off while the peer starts listening.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Read one whole message (header included).
fn read_message(s: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut m = vec![0; HEADER];
    s.read_exact(&mut m)?;
    let len = u16::from_be_bytes([m[16], m[17]]) as usize;
    if !(HEADER..=65535).contains(&len) || m[..16] != [0xff; 16] {
        return Err(io::Error::other(format!("bad header {m:02x?}")));
    }
    m.resize(len, 0);
    s.read_exact(&mut m[HEADER..])?;
    if m[18] == NOTIFICATION {
        return Err(io::Error::other(format!(
            "NOTIFICATION from peer: {:02x?}",
            &m[HEADER..]
        )));
    }
    Ok(m)
}

/// OPEN both ways, then KEEPALIVE both ways (RFC 4271 8.2.2): after it
/// both sides are Established.
fn handshake(s: &mut TcpStream, id: Ipv4Addr, asn: u32) -> io::Result<()> {
    s.write_all(&open(id, asn, HOLD))?;
    let m = read_message(s)?;
    if m[18] != OPEN {
        return Err(io::Error::other(format!(
            "expected OPEN, got type {}",
            m[18]
        )));
    }
    s.write_all(&message(KEEPALIVE, &[]))?;
    loop {
        if read_message(s)?[18] == KEEPALIVE {
            return Ok(());
        }
    }
}

/// IPv4 End-of-RIB (RFC 4724 2): an UPDATE with nothing in it.
fn is_eor(m: &[u8]) -> bool {
    m.len() == HEADER + 4 && m[18] == UPDATE && m[HEADER..] == [0, 0, 0, 0]
}

fn record(s: &mut TcpStream, file: &str) -> Result<(), String> {
    let f = std::fs::File::create(file).map_err(|e| format!("{file}: {e}"))?;
    let mut out = BufWriter::new(f);
    let mut r = io::BufReader::with_capacity(1 << 20, s.try_clone().map_err(|e| e.to_string())?);
    let (mut n, mut bytes) = (0u64, 0u64);
    loop {
        let m = read_message(&mut r).map_err(|e| format!("after {n} UPDATEs: {e}"))?;
        if m[18] != UPDATE {
            continue;
        }
        out.write_all(&m).map_err(|e| e.to_string())?;
        n += 1;
        bytes += m.len() as u64;
        if is_eor(&m) {
            break;
        }
    }
    out.flush().map_err(|e| e.to_string())?;
    // Cease / administrative shutdown (RFC 4486), so BIRD logs a clean stop.
    let _ = s.write_all(&message(NOTIFICATION, &[6, 2]));
    say(&format!("recorded {n} {bytes}"));
    Ok(())
}

fn replay(s: TcpStream, file: &str) -> Result<(), String> {
    let data = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
    // Drain whatever the receiver sends so its writes never block.
    let mut rd = s.try_clone().map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while matches!(rd.read(&mut buf), Ok(n) if n > 0) {}
    });
    let mut w = s;
    for chunk in data.chunks(1 << 18) {
        w.write_all(chunk).map_err(|e| format!("write: {e}"))?;
    }
    say(&format!("sent {}", data.len()));
    // Keep the session up (hold time 240 s / 3) until the bench kills us.
    loop {
        std::thread::sleep(Duration::from_secs(HOLD as u64 / 3));
        if w.write_all(&message(KEEPALIVE, &[])).is_err() {
            return Ok(());
        }
    }
}
