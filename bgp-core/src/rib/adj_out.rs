//! Adj-RIB-Out of one peer (RFC 4271 3.2): what we told the peer, what we
//! still have to tell it, and the packing of those changes into UPDATEs.
//!
//! Changes are coalesced: a prefix changed twice before the next flush is
//! sent once, and a change back to what the peer already has is not sent.
//! Prefixes sharing an attribute set (interned, so a pointer compare) go
//! into the same UPDATE, as many as fit in the negotiated message size.

use std::collections::{BTreeMap, HashMap};

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
    sent: BTreeMap<IpNet, Attrs>,
    pending: BTreeMap<IpNet, Option<Attrs>>,
}

impl AdjRibOut {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record what the peer should have for `prefix` (`None`: nothing).
    pub fn set(&mut self, prefix: IpNet, attrs: Option<Attrs>) {
        let unchanged = match (self.sent.get(&prefix), &attrs) {
            (Some(s), Some(a)) => s.same(a),
            (None, None) => true,
            _ => false,
        };
        if unchanged {
            self.pending.remove(&prefix);
        } else {
            self.pending.insert(prefix, attrs);
        }
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Prefixes the peer has from us.
    pub fn advertised(&self) -> usize {
        self.sent.len()
    }

    pub fn get(&self, prefix: &IpNet) -> Option<&Attrs> {
        self.sent.get(prefix)
    }

    /// Forget everything (the session went down: the peer dropped our routes).
    pub fn clear(&mut self) {
        self.sent.clear();
        self.pending.clear();
    }

    /// Turn the pending changes into UPDATE messages that fit `ctx`'s
    /// message size, and mark them sent. Withdrawals come first.
    pub fn take_updates(&mut self, ctx: &EncodeContext) -> Vec<Update> {
        let pending = std::mem::take(&mut self.pending);
        let mut withdrawn: [Vec<Nlri>; 2] = [Vec::new(), Vec::new()];
        let mut groups: Vec<(Attrs, Vec<Nlri>)> = Vec::new();
        let mut group_of: HashMap<(usize, bool), usize> = HashMap::new();
        for (prefix, attrs) in pending {
            let fam = Family::of(&prefix);
            let v6 = fam == Family::IPV6_UNICAST;
            let nlri = nlri_for(prefix, ctx.add_path_for(fam));
            match attrs {
                None => {
                    if self.sent.remove(&prefix).is_some() {
                        withdrawn[v6 as usize].push(nlri);
                    }
                }
                Some(a) => {
                    let key = (a.id(), v6);
                    let g = *group_of.entry(key).or_insert_with(|| {
                        groups.push((a.clone(), Vec::new()));
                        groups.len() - 1
                    });
                    groups[g].1.push(nlri);
                    self.sent.insert(prefix, a);
                }
            }
        }
        let max = ctx.max_message_len() - PACKING_MARGIN;
        let mut out = Vec::new();
        for (i, w) in withdrawn.into_iter().enumerate() {
            if w.is_empty() {
                continue;
            }
            let family = [Family::IPV4_UNICAST, Family::IPV6_UNICAST][i];
            let base = withdraw_update(family, Vec::new());
            let base_len = encoded_len(&base, ctx);
            for chunk in chunks(&w, base_len, max) {
                out.push(withdraw_update(family, chunk.to_vec()));
            }
        }
        for (attrs, nlri) in groups {
            let family = Family::of(&nlri[0].prefix);
            let Some(base) = announce_update(&attrs, family, Vec::new()) else {
                continue;
            };
            let base_len = encoded_len(&base, ctx);
            for chunk in chunks(&nlri, base_len, max) {
                if let Some(u) = announce_update(&attrs, family, chunk.to_vec()) {
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
