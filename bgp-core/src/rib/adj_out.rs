//! Adj-RIB-Out of one peer (RFC 4271 3.2): what we still have to tell the
//! peer, and the packing of those changes into UPDATEs.
//!
//! What the peer already has is not stored: it is what export policy made
//! of the Loc-RIB's best path when the last change to it was sent, and the
//! caller computes that again for the path a change replaces. So a peer costs
//! memory for its pending changes only, not for every route it holds: a
//! route reflector with 1,000 clients and 4,000 routes would otherwise keep
//! 4 million entries.
//!
//! Changes are coalesced: a prefix changed twice before the next flush is
//! sent once, and a change back to what the peer already has is not sent.
//! Prefixes sharing an attribute set (interned, so a pointer compare) go
//! into the same UPDATE, as many as fit in the negotiated message size.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use foldhash::HashMap;
use ipnet::IpNet;

use super::attrs::Attrs;
use crate::wire::{
    EncodeContext, Family, MpReach, MpUnreach, NextHop, Nlri, Update, encode_to_vec,
};

/// Path identifier we send when ADD-PATH send is negotiated: one path per
/// prefix, so always the same id (RFC 7911 3 only requires uniqueness per prefix).
const SENT_PATH_ID: u32 = 1;

/// Octets kept free below the message limit when packing NLRI, covering the
/// attribute length growing from 1 to 2 octets (Extended Length).
const PACKING_MARGIN: usize = 8;

#[derive(Debug, Default)]
pub struct AdjRibOut {
    pending: BTreeMap<IpNet, Pending>,
    /// Prefixes the peer has from us.
    advertised: usize,
}

/// One prefix's change not yet sent.
#[derive(Debug)]
struct Pending {
    /// What the peer has (as of the last UPDATE sent for the prefix).
    has: Option<Attrs>,
    /// What it should have.
    want: Option<Attrs>,
    /// Send `want` even if the peer has it (it asked: route refresh).
    resend: bool,
}

fn same(a: Option<&Attrs>, b: Option<&Attrs>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.same(b),
        (None, None) => true,
        _ => false,
    }
}

impl AdjRibOut {
    pub fn new() -> Self {
        Self::default()
    }

    /// The peer has `from` for `prefix` (or, with a change already pending,
    /// what it had before that one) and should have `to` (`None`: nothing).
    pub fn change(&mut self, prefix: IpNet, from: Option<Attrs>, to: Option<Attrs>) {
        match self.pending.entry(prefix) {
            Entry::Occupied(mut e) => e.get_mut().want = to,
            Entry::Vacant(e) => {
                if !same(from.as_ref(), to.as_ref()) {
                    e.insert(Pending {
                        has: from,
                        want: to,
                        resend: false,
                    });
                }
            }
        }
    }

    /// The peer asked for our routes again (RFC 2918): `current` (what it has
    /// for `prefix` unless a change is pending) goes out again.
    pub fn refresh(&mut self, prefix: IpNet, current: Option<Attrs>) {
        match self.pending.entry(prefix) {
            Entry::Occupied(mut e) => e.get_mut().resend = true,
            Entry::Vacant(e) => {
                if current.is_some() {
                    e.insert(Pending {
                        has: current.clone(),
                        want: current,
                        resend: true,
                    });
                }
            }
        }
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Prefixes the peer has from us.
    pub fn advertised(&self) -> usize {
        self.advertised
    }

    /// Forget everything (the session went down: the peer dropped our routes).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.advertised = 0;
    }

    /// Turn the pending changes into UPDATE messages that fit `ctx`'s
    /// message size; the peer has them from then on. Withdrawals come first.
    pub fn take_updates(&mut self, ctx: &EncodeContext) -> Vec<Update> {
        self.take(ctx).updates(ctx)
    }

    /// The pending changes, grouped for sending; the peer has them from then
    /// on. Peers with equal [`Outbound`]s and contexts get the same UPDATEs.
    pub fn take(&mut self, ctx: &EncodeContext) -> Outbound {
        let pending = std::mem::take(&mut self.pending);
        let mut withdrawn: [Vec<Nlri>; 2] = [Vec::new(), Vec::new()];
        let mut groups: Vec<(Attrs, Vec<Nlri>)> = Vec::new();
        let mut group_of: HashMap<(usize, bool), usize> = HashMap::default();
        for (prefix, p) in pending {
            let fam = Family::of(&prefix);
            let v6 = fam == Family::IPV6_UNICAST;
            let nlri = || nlri_for(prefix, ctx.add_path_for(fam));
            match p.want {
                None => {
                    if p.has.is_some() {
                        // Saturating: a count is not worth a panic if policy changed
                        // what the peer was told since.
                        self.advertised = self.advertised.saturating_sub(1);
                        withdrawn[v6 as usize].push(nlri());
                    }
                }
                Some(a) => {
                    if !p.resend && same(p.has.as_ref(), Some(&a)) {
                        continue;
                    }
                    if p.has.is_none() {
                        self.advertised += 1;
                    }
                    let key = (a.id(), v6);
                    let g = *group_of.entry(key).or_insert_with(|| {
                        groups.push((a, Vec::new()));
                        groups.len() - 1
                    });
                    groups[g].1.push(nlri());
                }
            }
        }
        Outbound { withdrawn, groups }
    }
}

/// Changes taken from an [`AdjRibOut`] to be sent: withdrawals per family
/// (IPv4, IPv6) and announcements per attribute set.
#[derive(Debug, Default)]
pub struct Outbound {
    withdrawn: [Vec<Nlri>; 2],
    groups: Vec<(Attrs, Vec<Nlri>)>,
}

impl PartialEq for Outbound {
    /// The same routes with the same (interned) attributes.
    fn eq(&self, other: &Self) -> bool {
        self.withdrawn == other.withdrawn
            && self.groups.len() == other.groups.len()
            && self
                .groups
                .iter()
                .zip(&other.groups)
                .all(|((a, x), (b, y))| a.same(b) && x == y)
    }
}

impl Outbound {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.withdrawn.iter().all(Vec::is_empty)
    }

    /// The UPDATE messages, each within `ctx`'s message size; withdrawals first.
    pub fn updates(&self, ctx: &EncodeContext) -> Vec<Update> {
        let max = ctx.max_message_len() - PACKING_MARGIN;
        let mut out = Vec::new();
        for (i, w) in self.withdrawn.iter().enumerate() {
            if w.is_empty() {
                continue;
            }
            let family = [Family::IPV4_UNICAST, Family::IPV6_UNICAST][i];
            let base = withdraw_update(family, Vec::new());
            let base_len = encoded_len(&base, ctx);
            for chunk in chunks(w, base_len, max) {
                out.push(withdraw_update(family, chunk.to_vec()));
            }
        }
        for (attrs, nlri) in &self.groups {
            let family = Family::of(&nlri[0].prefix);
            let Some(base) = announce_update(attrs, family, Vec::new()) else {
                continue;
            };
            let base_len = encoded_len(&base, ctx);
            for chunk in chunks(nlri, base_len, max) {
                if let Some(u) = announce_update(attrs, family, chunk.to_vec()) {
                    out.push(u);
                }
            }
        }
        out
    }
}

fn nlri_for(prefix: IpNet, add_path: bool) -> Nlri {
    if add_path {
        Nlri::with_path_id(prefix, SENT_PATH_ID)
    } else {
        Nlri::new(prefix)
    }
}

fn encoded_len(u: &Update, ctx: &EncodeContext) -> usize {
    // Attributes were validated when interned; an attribute set that cannot
    // be encoded gets a maximal length so it is sent alone and the encoder
    // reports the error where the message is written.
    encode_to_vec(&crate::wire::Message::Update(Box::new(u.clone())), ctx)
        .map_or(usize::MAX / 2, |v| v.len())
}

/// Split `nlri` into runs whose encoding fits in `max - base` octets.
fn chunks(nlri: &[Nlri], base: usize, max: usize) -> Vec<&[Nlri]> {
    let room = max.saturating_sub(base).max(1);
    let mut out = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (i, n) in nlri.iter().enumerate() {
        let l = n.encoded_len();
        if used + l > room && i > start {
            out.push(&nlri[start..i]);
            start = i;
            used = 0;
        }
        used += l;
    }
    if start < nlri.len() {
        out.push(&nlri[start..]);
    }
    out
}

fn withdraw_update(family: Family, nlri: Vec<Nlri>) -> Update {
    let mut u = Update::default();
    if family == Family::IPV4_UNICAST {
        u.withdrawn = nlri;
    } else {
        u.attributes.mp_unreach = Some(MpUnreach {
            family,
            withdrawn: nlri,
        });
    }
    u
}

/// The UPDATE announcing `nlri` with `attrs`: NEXT_HOP for IPv4 over an IPv4
/// next hop, MP_REACH_NLRI otherwise (RFC 4760 3). `None` if the next hop
/// cannot be expressed for the family (IPv6 prefixes need an IPv6 next hop).
fn announce_update(attrs: &Attrs, family: Family, nlri: Vec<Nlri>) -> Option<Update> {
    let mut u = Update {
        attributes: attrs.attrs.clone(),
        ..Default::default()
    };
    match (family == Family::IPV4_UNICAST, attrs.next_hop) {
        (true, NextHop::V4(a)) => {
            u.attributes.next_hop = Some(a);
            u.nlri = nlri;
        }
        (false, nh @ NextHop::V6 { .. }) => {
            u.attributes.mp_reach = Some(MpReach {
                family,
                next_hop: nh,
                nlri,
            });
        }
        _ => return None,
    }
    Some(u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rib::attrs::{Interner, RouteAttrs};
    use crate::wire::attribute::{Origin, PathAttributes};

    fn attrs(i: &mut Interner, local_pref: u32) -> Attrs {
        let a = PathAttributes {
            origin: Some(Origin::Igp),
            local_pref: Some(local_pref),
            ..Default::default()
        };
        i.intern(RouteAttrs::new(a, NextHop::V4("10.0.0.1".parse().unwrap())))
    }

    fn p(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    /// (withdrawn prefixes, announced (local_pref, prefixes)) of the UPDATEs.
    fn sent(out: &mut AdjRibOut) -> (Vec<IpNet>, Vec<(u32, Vec<IpNet>)>) {
        let mut w = Vec::new();
        let mut a = Vec::new();
        for u in out.take_updates(&EncodeContext::default()) {
            w.extend(u.withdrawn.iter().map(|n| n.prefix));
            if !u.nlri.is_empty() {
                let lp = u.attributes.local_pref.unwrap();
                a.push((lp, u.nlri.iter().map(|n| n.prefix).collect()));
            }
        }
        (w, a)
    }

    #[test]
    fn changes_are_sent_once_and_counted() {
        let mut i = Interner::new();
        let (a, b) = (attrs(&mut i, 100), attrs(&mut i, 200));
        let mut out = AdjRibOut::new();
        out.change(p("10.1.0.0/26"), None, Some(a.clone()));
        out.change(p("10.1.0.64/26"), None, Some(a.clone()));
        out.change(p("10.1.0.128/26"), None, Some(b.clone()));
        let (w, ann) = sent(&mut out);
        assert!(w.is_empty());
        assert_eq!(
            ann,
            vec![
                (100, vec![p("10.1.0.0/26"), p("10.1.0.64/26")]),
                (200, vec![p("10.1.0.128/26")])
            ]
        );
        assert_eq!(out.advertised(), 3);
        assert!(!out.has_pending());

        // Replaced: announced again, not counted again; withdrawn: counted down.
        out.change(p("10.1.0.0/26"), Some(a.clone()), Some(b.clone()));
        out.change(p("10.1.0.64/26"), Some(a.clone()), None);
        let (w, ann) = sent(&mut out);
        assert_eq!(w, vec![p("10.1.0.64/26")]);
        assert_eq!(ann, vec![(200, vec![p("10.1.0.0/26")])]);
        assert_eq!(out.advertised(), 2);
    }

    #[test]
    fn a_change_back_before_the_flush_sends_nothing() {
        let mut i = Interner::new();
        let (a, b) = (attrs(&mut i, 100), attrs(&mut i, 200));
        let mut out = AdjRibOut::new();
        // The peer has `a`; it changes to `b` and back before the flush.
        out.change(p("10.1.0.0/26"), Some(a.clone()), Some(b.clone()));
        out.change(p("10.1.0.0/26"), Some(b.clone()), Some(a.clone()));
        // Never had it; announced and withdrawn before the flush.
        out.change(p("10.2.0.0/26"), None, Some(a.clone()));
        out.change(p("10.2.0.0/26"), Some(a.clone()), None);
        // A change that changes nothing is not even kept.
        out.change(p("10.3.0.0/26"), Some(b.clone()), Some(b.clone()));
        out.change(p("10.4.0.0/26"), None, None);
        assert_eq!(sent(&mut out), (vec![], vec![]));
        assert_eq!(out.advertised(), 0);
    }

    #[test]
    fn refresh_sends_what_the_peer_has_and_what_is_pending() {
        let mut i = Interner::new();
        let (a, b) = (attrs(&mut i, 100), attrs(&mut i, 200));
        let mut out = AdjRibOut::new();
        out.change(p("10.1.0.0/26"), None, Some(a.clone()));
        out.change(p("10.1.0.64/26"), None, Some(a.clone()));
        sent(&mut out);
        // A withdrawal is pending when the peer asks for everything.
        out.change(p("10.1.0.64/26"), Some(a.clone()), None);
        out.refresh(p("10.1.0.0/26"), Some(a.clone()));
        out.refresh(p("10.9.0.0/26"), None);
        let (w, ann) = sent(&mut out);
        assert_eq!(w, vec![p("10.1.0.64/26")]);
        assert_eq!(ann, vec![(100, vec![p("10.1.0.0/26")])]);
        assert_eq!(out.advertised(), 1);
        // The pending replacement is what a refresh sends.
        out.change(p("10.1.0.0/26"), Some(a.clone()), Some(b.clone()));
        out.refresh(p("10.1.0.0/26"), Some(a));
        assert_eq!(sent(&mut out).1, vec![(200, vec![p("10.1.0.0/26")])]);
        assert_eq!(out.advertised(), 1);
    }

    #[test]
    fn clear_forgets_pending_changes_and_the_count() {
        let mut i = Interner::new();
        let a = attrs(&mut i, 100);
        let mut out = AdjRibOut::new();
        out.change(p("10.1.0.0/26"), None, Some(a.clone()));
        sent(&mut out);
        out.change(p("10.1.0.64/26"), None, Some(a));
        out.clear();
        assert!(!out.has_pending());
        assert_eq!(out.advertised(), 0);
    }
}
