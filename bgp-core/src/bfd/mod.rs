//! Bidirectional Forwarding Detection (RFC 5880, Asynchronous mode; RFC 5881 single
//! hop), pure: [`packet`] is the Control packet codec with the RFC 5880 6.8.6 checks,
//! [`Session`] the per-session state machine. No sockets, no clocks: the I/O layer
//! (bgpd's `bfd` module) passes packets and expired timers in and performs the outputs.

pub mod packet;
mod session;
#[cfg(test)]
mod tests;

pub use packet::{ControlPacket, DecodeError, Diag};
pub use session::{Input, Output, SLOW_TX_US, Session, Timer, jittered};

/// RFC 5881 4: the destination port of single-hop Control packets.
pub const CONTROL_PORT: u16 = 3784;
/// RFC 5881 4: source ports are taken from this range.
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

/// RFC 5880 4.1 session states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    AdminDown,
    Down,
    Init,
    Up,
}

/// Our side's timing (RFC 5880 6.8.1 bfd.DesiredMinTxInterval,
/// bfd.RequiredMinRxInterval, bfd.DetectMult), in microseconds as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Config {
    pub desired_min_tx_us: u32,
    pub required_min_rx_us: u32,
    pub detect_mult: u8,
}

impl Default for Config {
    /// 100 ms x 3, as BIRD's examples and Calico's docs use.
    fn default() -> Self {
        Config {
            desired_min_tx_us: 100_000,
            required_min_rx_us: 100_000,
            detect_mult: 3,
        }
    }
}
