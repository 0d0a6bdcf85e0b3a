//! How a kernel answer to a write is read: the errno of a NACK ([`errno`], the
//! one copy felix, bgpd and the CNI plugin use) and what it means for the
//! owner ([`Outcome::of`], pure).

/// `ENOENT`: missing neighbour entry (and missing route on some paths).
pub const ENOENT: i32 = 2;
/// `ESRCH`: "no such process", what the kernel answers for a missing route.
pub const ESRCH: i32 = 3;
/// `EEXIST`: an exclusive add found its slot held.
pub const EEXIST: i32 = 17;
/// `ENODEV`: the interface (index) does not exist.
pub const ENODEV: i32 = 19;
/// `ENETDOWN`: IPv4 refuses a device route through an interface that is down.
pub const ENETDOWN: i32 = 100;

/// The positive errno of a kernel NACK, `None` for other failures.
pub fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| c.get().abs()),
        _ => None,
    }
}

/// One kind of write (see the ownership contract in the crate documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteOp {
    /// `NLM_F_CREATE | NLM_F_EXCL`: into an empty slot only.
    Add,
    /// `NLM_F_CREATE | NLM_F_REPLACE`: over our own route in the slot.
    Replace,
    /// `RTM_DELROUTE` of the route as given.
    Delete,
}

/// How one write went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Written; also a delete of a route that was not there (the goal is met).
    Done,
    /// An exclusive add found the slot held (by a route another owner wrote
    /// since the last look, or by a foreign one): not written.
    SlotTaken,
    /// The route's interface is gone or down: the route waits for it.
    NoLink,
    /// Anything else the kernel refused.
    Failed { errno: Option<i32>, message: String },
}

impl Outcome {
    /// Classifies the kernel's answer to `op`.
    pub fn of(op: RouteOp, result: Result<(), rtnetlink::Error>) -> Self {
        let Err(e) = result else {
            return Outcome::Done;
        };
        Self::of_errno(op, errno(&e), || e.to_string())
    }

    /// [`Outcome::of`] for a NACK with this errno (pure, unit-tested).
    pub fn of_errno(op: RouteOp, errno: Option<i32>, message: impl FnOnce() -> String) -> Self {
        match (op, errno) {
            (RouteOp::Delete, Some(ESRCH | ENOENT)) => Outcome::Done,
            (RouteOp::Add, Some(EEXIST)) => Outcome::SlotTaken,
            (RouteOp::Add | RouteOp::Replace, Some(ENODEV | ENETDOWN)) => Outcome::NoLink,
            (_, errno) => Outcome::Failed {
                errno,
                message: message(),
            },
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(op: RouteOp, errno: i32) -> Outcome {
        Outcome::of_errno(op, Some(errno), || format!("errno {errno}"))
    }

    #[test]
    fn classification() {
        assert_eq!(Outcome::of(RouteOp::Add, Ok(())), Outcome::Done);
        assert_eq!(of(RouteOp::Delete, ESRCH), Outcome::Done);
        assert_eq!(of(RouteOp::Delete, ENOENT), Outcome::Done);
        assert_eq!(of(RouteOp::Add, EEXIST), Outcome::SlotTaken);
        assert_eq!(of(RouteOp::Add, ENODEV), Outcome::NoLink);
        assert_eq!(of(RouteOp::Replace, ENETDOWN), Outcome::NoLink);
        // A replace never meets EEXIST; if it did, it is a plain failure.
        assert!(matches!(
            of(RouteOp::Replace, EEXIST),
            Outcome::Failed {
                errno: Some(EEXIST),
                ..
            }
        ));
        assert!(matches!(of(RouteOp::Add, ESRCH), Outcome::Failed { .. }));
        assert!(matches!(
            Outcome::of_errno(RouteOp::Delete, None, || "io".into()),
            Outcome::Failed { errno: None, .. }
        ));
    }
}
