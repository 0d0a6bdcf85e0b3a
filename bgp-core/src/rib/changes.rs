//! A batch of Loc-RIB changes, in the order they happened.
//!
//! Most changes on the receive path are new destinations from one UPDATE:
//! one peer, one attribute set, one path each. Those are kept as a run of
//! (prefix, path id) under a single attribute handle instead of one
//! [`Change`] each. A `Change` holds its own handle, and taking and dropping
//! that handle are two atomic operations per route on the same counter,
//! beside moving 80 bytes in and out of a vector. A million-route table
//! paid that a million times for a value every route of the UPDATE shares.

use std::net::IpAddr;

use ipnet::IpNet;

use super::attrs::Attrs;
use super::table::Path;
use super::{Best, Change, PeerId};

#[derive(Debug, Default)]
pub struct Changes {
    items: Vec<Item>,
    /// The (prefix, ADD-PATH id) of every [`Item::Added`] run, in order.
    added: Vec<(IpNet, u32)>,
}

#[derive(Debug)]
enum Item {
    Changed(Change),
    /// New destinations of one family whose only path is `peer`'s with
    /// `attrs`: the entries of `added` from `start` up to `end`.
    Added {
        peer: PeerId,
        attrs: Attrs,
        start: usize,
        end: usize,
    },
}

/// A piece of [`Changes`]: one change, or a run of new destinations that
/// share their source, attributes and family (so export policy says the
/// same of all of them).
#[derive(Debug, Clone, Copy)]
pub enum Run<'a> {
    Changed(&'a Change),
    Added {
        peer: PeerId,
        attrs: &'a Attrs,
        /// (prefix, ADD-PATH id), at least one.
        routes: &'a [(IpNet, u32)],
    },
}

impl Changes {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, c: Change) {
        self.items.push(Item::Changed(c));
    }

    /// A new destination with one path, `peer`'s with `attrs`: joins the
    /// last run when that run has the same source, attributes and family.
    pub fn push_added(&mut self, prefix: IpNet, path_id: u32, peer: PeerId, attrs: &Attrs) {
        let at = self.added.len();
        let v6 = prefix.addr().is_ipv6();
        if let Some(Item::Added {
            peer: p,
            attrs: a,
            start,
            end,
        }) = self.items.last_mut()
            && *p == peer
            && self.added[*start].0.addr().is_ipv6() == v6
            && a.same(attrs)
        {
            *end = at + 1;
        } else {
            self.items.push(Item::Added {
                peer,
                attrs: attrs.clone(),
                start: at,
                end: at + 1,
            });
        }
        self.added.push((prefix, path_id));
    }

    pub fn len(&self) -> usize {
        self.items
            .iter()
            .filter(|i| matches!(i, Item::Changed(_)))
            .count()
            + self.added.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The changes in order, a run of new destinations at a time.
    pub fn runs(&self) -> impl Iterator<Item = Run<'_>> {
        self.items.iter().map(|item| match item {
            Item::Changed(c) => Run::Changed(c),
            Item::Added {
                peer,
                attrs,
                start,
                end,
            } => Run::Added {
                peer: *peer,
                attrs,
                routes: &self.added[*start..*end],
            },
        })
    }

    /// Every change, in order.
    pub fn iter(&self) -> impl Iterator<Item = ChangeRef<'_>> {
        self.runs().flat_map(|run| {
            let (one, routes, source) = match run {
                Run::Changed(c) => (Some(ChangeRef::Changed(c)), &[][..], None),
                Run::Added {
                    peer,
                    attrs,
                    routes,
                } => (None, routes, Some((peer, attrs))),
            };
            let added = source.into_iter().flat_map(move |(peer, attrs)| {
                routes
                    .iter()
                    .map(move |&(prefix, path_id)| ChangeRef::Added {
                        prefix,
                        path_id,
                        peer,
                        attrs,
                    })
            });
            one.into_iter().chain(added)
        })
    }

    /// The changes as owned [`Change`]s (tests, and callers that keep them).
    pub fn into_vec(self) -> Vec<Change> {
        self.iter().map(|c| c.to_change()).collect()
    }
}

impl From<Vec<Change>> for Changes {
    fn from(v: Vec<Change>) -> Self {
        Changes {
            items: v.into_iter().map(Item::Changed).collect(),
            added: Vec::new(),
        }
    }
}

impl Extend<Change> for Changes {
    fn extend<I: IntoIterator<Item = Change>>(&mut self, it: I) {
        self.items.extend(it.into_iter().map(Item::Changed));
    }
}

/// One change of a [`Changes`], borrowed.
#[derive(Debug, Clone, Copy)]
pub enum ChangeRef<'a> {
    Changed(&'a Change),
    /// A destination that had no route and now has one path.
    Added {
        prefix: IpNet,
        path_id: u32,
        peer: PeerId,
        attrs: &'a Attrs,
    },
}

impl<'a> ChangeRef<'a> {
    pub fn prefix(&self) -> IpNet {
        match self {
            ChangeRef::Changed(c) => c.prefix,
            ChangeRef::Added { prefix, .. } => *prefix,
        }
    }

    /// The new best path's attributes and source; `None`: no route any more.
    pub fn best(&self) -> Option<(&'a Attrs, PeerId)> {
        match *self {
            ChangeRef::Changed(c) => c.best.as_ref().map(|b| (&b.path.attrs, b.path.peer)),
            ChangeRef::Added { attrs, peer, .. } => Some((attrs, peer)),
        }
    }

    /// Distinct next hops of the new entry (see [`Best::next_hops`]); empty
    /// if it has no route.
    pub fn next_hops(&self) -> Vec<IpAddr> {
        match self {
            ChangeRef::Changed(c) => c.best.as_ref().map(Best::next_hops).unwrap_or_default(),
            ChangeRef::Added { attrs, .. } => vec![attrs.next_hop_addr()],
        }
    }

    /// The best path this change replaces.
    pub fn before(&self) -> Option<&'a Path> {
        match *self {
            ChangeRef::Changed(c) => c.before.as_ref(),
            ChangeRef::Added { .. } => None,
        }
    }

    pub fn to_change(&self) -> Change {
        match *self {
            ChangeRef::Changed(c) => c.clone(),
            ChangeRef::Added {
                prefix,
                path_id,
                peer,
                attrs,
            } => Change {
                prefix,
                best: Some(Best {
                    path: Path {
                        attrs: attrs.clone(),
                        peer,
                        path_id,
                    },
                    multipath: Vec::new(),
                }),
                before: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rib::RouteAttrs;
    use crate::wire::{NextHop, PathAttributes};

    fn attrs(nh: &str) -> Attrs {
        let nh = NextHop::V4(nh.parse().unwrap());
        Attrs::unshared(RouteAttrs::new(PathAttributes::default(), nh))
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn withdrawn(prefix: &str, a: &Attrs) -> Change {
        Change {
            prefix: net(prefix),
            best: None,
            before: Some(Path {
                attrs: a.clone(),
                peer: PeerId(2),
                path_id: 0,
            }),
        }
    }

    /// A change as the tests compare it: prefix, (attributes, source) of
    /// the best path, next hops, whether it replaces a path.
    type Seen = (String, Option<(usize, PeerId)>, Vec<IpAddr>, bool);

    #[test]
    fn runs_share_one_handle_and_keep_the_order() {
        let (a, b) = (attrs("192.0.2.1"), attrs("192.0.2.2"));
        let mut c = Changes::new();
        assert!(c.is_empty());
        c.push_added(net("10.0.0.0/24"), 0, PeerId(1), &a);
        c.push_added(net("10.0.1.0/24"), 0, PeerId(1), &a);
        c.push(withdrawn("10.0.9.0/24", &b));
        c.push_added(net("10.0.2.0/24"), 7, PeerId(1), &a);
        // Another source or other attributes start a new run.
        c.push_added(net("10.0.3.0/24"), 0, PeerId(3), &a);
        c.push_added(net("10.0.4.0/24"), 0, PeerId(3), &b);
        assert_eq!(c.len(), 6);
        // The runs hold one handle each: a has this test's, the three runs' of it.
        assert_eq!(a.share_count(), 4);

        let seen: Vec<Seen> = c
            .iter()
            .map(|r| {
                (
                    r.prefix().to_string(),
                    r.best().map(|(x, p)| (x.id(), p)),
                    r.next_hops(),
                    r.before().is_some(),
                )
            })
            .collect();
        // A new destination: its attributes and source, their next hop, nothing replaced.
        let added = |prefix: &str, x: &Attrs, peer: u32| -> Seen {
            let nh = x.next_hop_addr();
            (prefix.into(), Some((x.id(), PeerId(peer))), vec![nh], false)
        };
        assert_eq!(
            seen,
            vec![
                added("10.0.0.0/24", &a, 1),
                added("10.0.1.0/24", &a, 1),
                ("10.0.9.0/24".into(), None, vec![], true),
                added("10.0.2.0/24", &a, 1),
                added("10.0.3.0/24", &a, 3),
                added("10.0.4.0/24", &b, 3),
            ]
        );
        assert_eq!(b.next_hop_addr().to_string(), "192.0.2.2");

        let owned = c.into_vec();
        assert_eq!(owned.len(), 6);
        let third = &owned[3];
        let best = third.best.as_ref().unwrap();
        assert_eq!((best.path.peer, best.path.path_id), (PeerId(1), 7));
        assert!(best.path.attrs.same(&a) && best.multipath.is_empty());
        assert!(third.before.is_none());
    }

    #[test]
    fn a_run_holds_one_family() {
        let a = attrs("192.0.2.1");
        let mut c = Changes::new();
        for p in [
            "10.0.0.0/24",
            "10.0.1.0/24",
            "2001:db8::/48",
            "2001:db8:1::/48",
        ] {
            c.push_added(net(p), 0, PeerId(1), &a);
        }
        c.push(withdrawn("10.0.9.0/24", &a));
        let runs: Vec<Vec<String>> = c
            .runs()
            .map(|r| match r {
                Run::Added {
                    routes,
                    peer,
                    attrs,
                } => {
                    assert!(peer == PeerId(1) && attrs.same(&a));
                    routes.iter().map(|(p, _)| p.to_string()).collect()
                }
                Run::Changed(ch) => vec![format!("changed {}", ch.prefix)],
            })
            .collect();
        assert_eq!(
            runs,
            [
                vec!["10.0.0.0/24", "10.0.1.0/24"],
                vec!["2001:db8::/48", "2001:db8:1::/48"],
                vec!["changed 10.0.9.0/24"],
            ]
        );
    }

    #[test]
    fn built_from_changes_is_those_changes() {
        let b = attrs("192.0.2.2");
        let mut c: Changes = vec![withdrawn("10.0.9.0/24", &b)].into();
        c.extend([withdrawn("10.0.8.0/24", &b)]);
        let prefixes: Vec<String> = c.iter().map(|r| r.prefix().to_string()).collect();
        assert_eq!(prefixes, ["10.0.9.0/24", "10.0.8.0/24"]);
        assert_eq!(c.len(), 2);
        assert!(Changes::from(Vec::new()).is_empty());
    }
}
