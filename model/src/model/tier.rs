//! `Tier`: an ordered group of policies. Felix
//! evaluates tiers in order; inside a tier, policies in order; `Pass` goes on to the
//! next tier, and a tier whose policies selected the endpoint but did not decide ends
//! with its `defaultAction`.

use serde::{Deserialize, Serialize};

use super::meta::ObjectMeta;
use super::object::{impl_resource, order_format};
use super::rule::Action;

/// The tier of policies without `spec.tier`.
pub const DEFAULT_TIER: &str = "default";
/// The `default` tier's order when it is not stored: Calico's `DefaultTierOrder`
/// (1,000,000; `kube-admin` sits at 1,000 and `kube-baseline` at 10,000,000).
pub const DEFAULT_TIER_ORDER: f64 = 1_000_000.0;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tier {
    pub metadata: ObjectMeta,
    pub spec: TierSpec,
}
impl_resource!(Tier, TierSpec, "Tier", "tiers", false);

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TierSpec {
    /// Lower first; unset sorts after every set order (then by name), as Calico.
    #[serde(
        default,
        serialize_with = "order_format::serialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub order: Option<f64>,
    /// `Deny` (the default) or `Pass`: what happens to traffic that the tier's
    /// policies selected but none decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<Action>,
}

impl TierSpec {
    /// The order used for sorting; unset sorts last.
    pub fn effective_order(&self) -> f64 {
        self.order.unwrap_or(f64::INFINITY)
    }

    /// `defaultAction`, Deny when unset.
    pub fn effective_default_action(&self) -> Action {
        self.default_action.unwrap_or(Action::Deny)
    }
}

impl Tier {
    /// The `default` tier as Calico creates it: order 1,000,000, default action Deny.
    pub fn default_tier() -> Tier {
        Tier::named(
            DEFAULT_TIER,
            TierSpec {
                order: Some(DEFAULT_TIER_ORDER),
                default_action: Some(Action::Deny),
            },
        )
    }
}
