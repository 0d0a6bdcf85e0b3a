//! Connection collision detection (RFC 4271 6.8, RFC 6286 2.3).

use std::net::Ipv4Addr;

use super::State;

/// Who initiated a TCP connection, seen from the local speaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The peer connected to us.
    Inbound,
    /// We connected to the peer.
    Outbound,
}

/// Which of two connections to the same peer survives.
///
/// RFC 4271 6.8: the connection initiated by the speaker with the higher BGP
/// Identifier is kept. RFC 6286 2.3: with equal identifiers (possible
/// between ASes), the one initiated by the speaker with the larger AS wins.
pub fn collision_winner(
    local_id: Ipv4Addr,
    local_as: u32,
    remote_id: Ipv4Addr,
    remote_as: u32,
) -> Direction {
    let (l, r) = (u32::from(local_id), u32::from(remote_id));
    let local_wins = if l == r { local_as > remote_as } else { l > r };
    if local_wins {
        Direction::Outbound
    } else {
        Direction::Inbound
    }
}

/// Whether a connection in `state` takes part in collision resolution.
/// RFC 4271 6.8: OpenConfirm always, OpenSent once the peer's identifier
/// is known by other means; an Established connection is kept and the new
/// one closed (CollisionDetectEstablishedState is not enabled here).
pub fn collision_relevant(state: State) -> bool {
    matches!(state, State::OpenSent | State::OpenConfirm)
}
