//! ROUTE-REFRESH message (RFC 2918 3) with the Message Subtype of RFC 7313 3.

use bytes::{BufMut, BytesMut};

use super::error::DecodeError;
use super::nlri::Family;
use super::reader::Reader;

/// RFC 7313 3: the former Reserved octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefreshSubtype {
    /// 0: a plain route refresh request (RFC 2918).
    Request,
    /// 1: Beginning of Route Refresh.
    BeginOfRefresh,
    /// 2: End of Route Refresh.
    EndOfRefresh,
    /// 3..=255: RFC 7313 5 says to ignore such a message; kept for logs.
    Other(u8),
}

impl RefreshSubtype {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Request,
            1 => Self::BeginOfRefresh,
            2 => Self::EndOfRefresh,
            v => Self::Other(v),
        }
    }
    fn to_u8(self) -> u8 {
        match self {
            Self::Request => 0,
            Self::BeginOfRefresh => 1,
            Self::EndOfRefresh => 2,
            Self::Other(v) => v,
        }
    }
}

/// ```text
///  0       7      15      23      31
/// +-------+-------+-------+-------+
/// |      AFI      | Subt. | SAFI  |
/// +-------+-------+-------+-------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    pub family: Family,
    pub subtype: RefreshSubtype,
}

impl RouteRefresh {
    pub fn request(family: Family) -> Self {
        RouteRefresh {
            family,
            subtype: RefreshSubtype::Request,
        }
    }

    /// The caller has checked the length is exactly 4 (RFC 7313 5).
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let afi = r.u16()?;
        let subtype = RefreshSubtype::from_u8(r.u8()?);
        let safi = r.u8()?;
        Ok(RouteRefresh {
            family: Family::new(afi, safi),
            subtype,
        })
    }

    pub(crate) fn encode_body(&self, out: &mut BytesMut) {
        out.put_u16(self.family.afi.0);
        out.put_u8(self.subtype.to_u8());
        out.put_u8(self.family.safi.0);
    }
}
