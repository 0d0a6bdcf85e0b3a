//! The subset of BIRD's CLI grammar bgpd answers.

use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    ShowStatus,
    ShowProtocols {
        all: bool,
        name: Option<String>,
    },
    ShowRoute {
        for_ip: Option<IpAddr>,
        all: bool,
        count: bool,
    },
    /// `show bfd sessions`.
    ShowBfdSessions,
    Quit,
    /// Empty line: no reply.
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("syntax error, unexpected {0}")]
    Unexpected(String),
    #[error("syntax error, {0}")]
    BadAddress(String),
}

/// Parse one command line. BIRD accepts unambiguous abbreviations
/// (`sh pro`); so do we, by prefix.
pub fn parse(line: &str) -> Result<Command, ParseError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let is = |w: &str, kw: &str, min: usize| w.len() >= min && kw.starts_with(w);
    match words.as_slice() {
        [] => Ok(Command::Nothing),
        [q] if is(q, "quit", 1) || is(q, "exit", 2) => Ok(Command::Quit),
        [s, rest @ ..] if is(s, "show", 1) => match rest {
            [st] if is(st, "status", 2) => Ok(Command::ShowStatus),
            [b, s] if is(b, "bfd", 1) && is(s, "sessions", 1) => Ok(Command::ShowBfdSessions),
            [p, args @ ..] if is(p, "protocols", 1) => {
                let mut all = false;
                let mut name = None;
                for a in args {
                    if is(a, "all", 1) && !all && name.is_none() {
                        all = true;
                    } else if name.is_none() {
                        name = Some(a.trim_matches('"').to_string());
                    } else {
                        return Err(ParseError::Unexpected((*a).to_string()));
                    }
                }
                Ok(Command::ShowProtocols { all, name })
            }
            [r, args @ ..] if is(r, "route", 1) => {
                let (mut for_ip, mut all, mut count) = (None, false, false);
                let mut it = args.iter();
                while let Some(a) = it.next() {
                    if is(a, "for", 1) {
                        let v = it
                            .next()
                            .ok_or_else(|| ParseError::Unexpected("end of line".into()))?;
                        // `for PREFIX` is accepted too: its address is looked up.
                        let addr = v.split('/').next().unwrap_or(v);
                        for_ip = Some(addr.parse().map_err(|_| {
                            ParseError::BadAddress(format!("{v} is not an address"))
                        })?);
                    } else if is(a, "all", 1) {
                        all = true;
                    } else if is(a, "count", 1) {
                        count = true;
                    } else {
                        return Err(ParseError::Unexpected((*a).to_string()));
                    }
                }
                Ok(Command::ShowRoute { for_ip, all, count })
            }
            [w, ..] => Err(ParseError::Unexpected((*w).to_string())),
            [] => Err(ParseError::Unexpected("end of line".into())),
        },
        [w, ..] => Err(ParseError::Unexpected((*w).to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_calicoctl_and_birdc_send() {
        assert_eq!(
            parse("show protocols"),
            Ok(Command::ShowProtocols {
                all: false,
                name: None
            })
        );
        assert_eq!(
            parse("sh pro all Mesh_10_0_0_2"),
            Ok(Command::ShowProtocols {
                all: true,
                name: Some("Mesh_10_0_0_2".into())
            })
        );
        assert_eq!(parse("show status"), Ok(Command::ShowStatus));
        assert_eq!(parse("show bfd sessions"), Ok(Command::ShowBfdSessions));
        assert_eq!(parse("sh b s"), Ok(Command::ShowBfdSessions));
        assert_eq!(
            parse("show route for 10.1.2.3 all"),
            Ok(Command::ShowRoute {
                for_ip: Some("10.1.2.3".parse().unwrap()),
                all: true,
                count: false
            })
        );
        assert_eq!(
            parse("show route count"),
            Ok(Command::ShowRoute {
                for_ip: None,
                all: false,
                count: true
            })
        );
        assert_eq!(parse(""), Ok(Command::Nothing));
        assert!(parse("bogus").is_err());
        assert!(parse("show route for nope").is_err());
    }
}
