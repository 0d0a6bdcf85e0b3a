//! `calicoctl node status`: asks the node's BGP daemon for `show protocols` over BIRD's CLI
//! protocol (our bgpd speaks it too) and prints Calico's peer tables.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::table::render_boxed;

/// One BGP session as calicoctl shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpPeer {
    pub peer_ip: String,
    pub peer_type: &'static str,
    pub state: String,
    pub since: String,
    pub info: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("cannot talk to the BGP daemon at {path}: {source}")]
    Socket {
        path: String,
        source: std::io::Error,
    },
    #[error("unexpected reply from the BGP daemon: {0:?}")]
    Protocol(String),
}

/// Parses BIRD's reply to `show protocols` the way calicoctl does: `0001` greeting, `2002`
/// headings, `1002-` first row, rows starting with a space, `0000` end. Rows that are not
/// Calico BGP sessions (other protocols, other names) are skipped.
pub fn parse_show_protocols(reply: &str) -> Result<Vec<BgpPeer>, StatusError> {
    let mut peers = Vec::new();
    for line in reply.lines() {
        if line.starts_with("0000") {
            break;
        } else if line.starts_with("0001") || line.starts_with("2002") {
            continue;
        } else if let Some(row) = line.strip_prefix("1002-") {
            peers.extend(parse_row(row));
        } else if let Some(row) = line.strip_prefix(' ') {
            peers.extend(parse_row(row));
        } else if line.is_empty() {
            continue;
        } else {
            return Err(StatusError::Protocol(line.to_string()));
        }
    }
    Ok(peers)
}

/// `name proto table state since info...`; the peer type and IP come from the name
/// (`Mesh_10_0_0_1`, `Node_...`, `Global_...`, `:` or `.` written as `_`).
fn parse_row(row: &str) -> Option<BgpPeer> {
    let columns: Vec<&str> = row.split_whitespace().collect();
    if columns.len() < 6 || columns[1] != "BGP" {
        return None;
    }
    let (prefix, ip) = columns[0].split_once('_')?;
    let peer_type = match prefix {
        "Mesh" => "node-to-node mesh",
        "Node" => "node specific",
        "Global" => "global",
        _ => return None,
    };
    // Calico writes both `.` (IPv4) and `:` (IPv6) as `_`; only one reading is an address.
    let dotted = ip.replace('_', ".");
    let peer_ip = if dotted.parse::<std::net::Ipv4Addr>().is_ok() {
        dotted
    } else {
        ip.replace('_', ":")
    };
    Some(BgpPeer {
        peer_ip,
        peer_type,
        state: columns[3].to_string(),
        since: columns[4].to_string(),
        info: columns[5..].join(" "),
    })
}

/// Renders the IPv4 and IPv6 sections of `calicoctl node status` below the process line.
pub fn render_peer_tables(peers: &[BgpPeer]) -> String {
    let mut out = String::new();
    for (family, is_v6) in [("4", false), ("6", true)] {
        out.push_str(&format!("\nIPv{family} BGP status\n"));
        let rows: Vec<Vec<String>> = peers
            .iter()
            .filter(|p| p.peer_ip.contains(':') == is_v6)
            .map(|p| {
                vec![
                    p.peer_ip.clone(),
                    p.peer_type.to_string(),
                    p.state.clone(),
                    p.since.clone(),
                    p.info.clone(),
                ]
            })
            .collect();
        if rows.is_empty() {
            out.push_str(&format!("No IPv{family} peers found.\n"));
        } else {
            out.push_str(&render_boxed(
                &["PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO"],
                &rows,
            ));
        }
        out.push('\n');
    }
    out
}

/// Sends `show protocols` to the daemon's control socket and returns the raw reply.
pub fn query_show_protocols(socket: &Path) -> Result<String, StatusError> {
    let socket_err = |source| StatusError::Socket {
        path: socket.display().to_string(),
        source,
    };
    let mut stream = UnixStream::connect(socket).map_err(socket_err)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(socket_err)?;
    let mut reader = BufReader::new(stream.try_clone().map_err(socket_err)?);
    let mut greeting = String::new();
    reader.read_line(&mut greeting).map_err(socket_err)?;
    if !greeting.starts_with("0001") {
        return Err(StatusError::Protocol(greeting.trim_end().to_string()));
    }
    stream.write_all(b"show protocols\n").map_err(socket_err)?;
    let mut reply = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(socket_err)? == 0 {
            return Err(StatusError::Protocol("connection closed mid-reply".into()));
        }
        let done = is_final_reply_line(&line);
        reply.push_str(&line);
        if done {
            return Ok(reply);
        }
    }
}

/// A reply ends with a line whose four-digit code is followed by a space (not `-`):
/// `0000 ` on success, `8xxx`/`9xxx` on errors.
fn is_final_reply_line(line: &str) -> bool {
    let bytes = line.as_bytes();
    bytes.len() >= 5
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b' '
        && !line.starts_with("0001")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIRD_REPLY: &str = "0001 BIRD 2.0.12 ready.\n\
2002-Name       Proto      Table      State  Since         Info\n\
1002-device1    Device     ---        up     06:01:02      \n \
kernel1    Kernel     master4    up     06:01:02      \n \
Mesh_172_17_8_102 BGP        ---        up     23:30:04      Established   \n \
Node_172_17_8_200 BGP        ---        start  23:30:05      Active        Socket: Connection refused\n \
Global_2001_db8__1 BGP       ---        start  23:30:06      Connect       \n\
0000 \n";

    #[test]
    fn parses_calico_sessions_and_skips_other_protocols() {
        let peers = parse_show_protocols(BIRD_REPLY).unwrap();
        assert_eq!(peers.len(), 3);
        assert_eq!(
            peers[0],
            BgpPeer {
                peer_ip: "172.17.8.102".into(),
                peer_type: "node-to-node mesh",
                state: "up".into(),
                since: "23:30:04".into(),
                info: "Established".into(),
            }
        );
        assert_eq!(peers[1].peer_type, "node specific");
        assert_eq!(peers[1].info, "Active Socket: Connection refused");
        assert_eq!(peers[2].peer_ip, "2001:db8::1");
        assert_eq!(peers[2].peer_type, "global");
    }

    #[test]
    fn renders_calico_layout() {
        let peers = parse_show_protocols(BIRD_REPLY).unwrap();
        let out = render_peer_tables(&peers[..1]);
        let want = "
IPv4 BGP status
+--------------+-------------------+-------+----------+-------------+
| PEER ADDRESS |     PEER TYPE     | STATE |  SINCE   |    INFO     |
+--------------+-------------------+-------+----------+-------------+
| 172.17.8.102 | node-to-node mesh | up    | 23:30:04 | Established |
+--------------+-------------------+-------+----------+-------------+


IPv6 BGP status
No IPv6 peers found.

";
        assert_eq!(out, want);
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        assert!(matches!(
            parse_show_protocols("0001 BIRD ready.\n9001 syntax error\n"),
            Err(StatusError::Protocol(_))
        ));
    }

    #[test]
    fn final_line_detection() {
        assert!(is_final_reply_line("0000 \n"));
        assert!(is_final_reply_line("9001 syntax error\n"));
        assert!(!is_final_reply_line("1002-device1 ...\n"));
        assert!(!is_final_reply_line(" Mesh_1 BGP\n"));
        assert!(!is_final_reply_line("0001 BIRD ready.\n"));
    }
}
