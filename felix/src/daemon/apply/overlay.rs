//! The overlay's devices, before the routes through them: `vxlan.calico` when a pool
//! uses VXLAN and this node's VTEP is known (its address, tunnel address and MAC, the
//! last two written to the Node by [`crate::daemon::tunnel_addr`]); removed once no
//! pool uses VXLAN. IPIP needs `tunl0`, which only the kernel's ipip module makes:
//! without it felix says so (an apply error, so readiness fails) and the routes through
//! `tunl0` wait for the device rather than half of the overlay being programmed.

use tracing::{info, warn};

use super::{Applier, ApplyError};
use crate::calc::overlay::{
    IPIP_DEVICE, OverlayNode, OverlayPlan, VXLAN_DEVICE, VXLAN_OVERHEAD, pod_mtu,
};
use crate::dataplane::vxlan::{self, DevicePlan, VxlanDevice};

/// What the devices were last made from (skips the link dumps when unchanged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct OverlayApplied {
    needs_vxlan: bool,
    needs_ipip: bool,
    local: OverlayNode,
}

impl OverlayApplied {
    /// The device was made (or waits for this node's VTEP).
    pub(super) fn wants_vxlan(&self) -> bool {
        self.needs_vxlan
    }
}

/// The MTU Calico uses when the host interface cannot be found.
const FALLBACK_HOST_MTU: u32 = 1500;

impl Applier {
    /// Makes the overlay's devices match `plan` (see the module doc). Recorded as the
    /// `overlay` phase.
    pub async fn apply_overlay(
        &mut self,
        plan: &OverlayPlan,
        force: bool,
    ) -> Result<(), ApplyError> {
        let mut clock = std::time::Instant::now();
        let result = self.sync_overlay(plan, force).await;
        self.phase("overlay", &mut clock);
        result
    }

    async fn sync_overlay(&mut self, plan: &OverlayPlan, force: bool) -> Result<(), ApplyError> {
        let now = OverlayApplied {
            needs_vxlan: plan.needs_vxlan,
            needs_ipip: plan.needs_ipip,
            local: plan.local.clone(),
        };
        if !force && self.last_overlay.as_ref() == Some(&now) {
            return Ok(());
        }
        self.last_overlay = None;
        let host_mtu = match plan.local.address {
            Some(a) => vxlan::host_mtu(&self.nl, a.addr()).await?,
            None => None,
        };
        self.apply_vxlan(plan, host_mtu).await?;
        if let Some(host) = host_mtu {
            self.write_pod_mtu(plan, host);
        }
        if plan.needs_ipip && self.nl.link_index(IPIP_DEVICE).await?.is_none() {
            return Err(ApplyError::Overlay(format!(
                "an IP pool uses IPIP but {IPIP_DEVICE} does not exist (the kernel has no ipip \
                 module?): blocks of IPIP pools are not routed"
            )));
        }
        self.last_overlay = Some(now);
        Ok(())
    }

    /// Writes the MTU pods should use (the host's less the overlay's overhead) where the
    /// CNI plugin reads it when its configuration sets none (Calico's
    /// `/var/lib/calico/mtu`). A failure is logged: the plugin then uses its default.
    fn write_pod_mtu(&mut self, plan: &OverlayPlan, host_mtu: u32) {
        let Some(path) = self.mtu_file.clone() else {
            return;
        };
        let mtu = match (plan.needs_vxlan, self.overlay_settings.vxlan_mtu) {
            (true, Some(configured)) => configured,
            _ => pod_mtu(host_mtu, plan),
        };
        if self.pod_mtu_written == Some(mtu) {
            return;
        }
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            // Written whole, then renamed: the plugin never reads half a number.
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, format!("{mtu}\n"))?;
            std::fs::rename(&tmp, &path)
        };
        match write() {
            Ok(()) => {
                info!(path = %path.display(), mtu, "pod MTU written");
                self.pod_mtu_written = Some(mtu);
            }
            Err(error) => warn!(path = %path.display(), %error, "cannot write the pod MTU"),
        }
    }

    async fn apply_vxlan(
        &mut self,
        plan: &OverlayPlan,
        host_mtu: Option<u32>,
    ) -> Result<(), ApplyError> {
        if !plan.needs_vxlan {
            if vxlan::remove(&self.nl, VXLAN_DEVICE).await? {
                info!(device = VXLAN_DEVICE, "no pool uses VXLAN; device removed");
            }
            return Ok(());
        }
        let local = &plan.local;
        let (Some(address), Some(tunnel_addr), Some(mac)) =
            (local.address, local.vxlan_tunnel_addr, local.vxlan_mac)
        else {
            // Not an error: the tunnel address is being allocated (or the Node has no
            // address yet); the Node's update brings a new plan.
            warn!(
                device = VXLAN_DEVICE,
                ?local,
                "a pool uses VXLAN but this node's address, tunnel address or VTEP MAC is \
                 not known yet; the device waits"
            );
            return Ok(());
        };
        let settings = self.overlay_settings;
        let mtu = match settings.vxlan_mtu {
            Some(mtu) => mtu,
            None => host_mtu
                .unwrap_or(FALLBACK_HOST_MTU)
                .saturating_sub(VXLAN_OVERHEAD),
        };
        let want = VxlanDevice {
            name: VXLAN_DEVICE.into(),
            vni: settings.vxlan_vni,
            port: settings.vxlan_port,
            local: address.addr(),
            mac,
            mtu,
            tunnel_addr,
        };
        match vxlan::ensure(&self.nl, &want).await {
            Ok(DevicePlan::Keep { .. }) => {}
            Ok(done) => info!(
                device = VXLAN_DEVICE,
                ?done,
                vni = want.vni,
                mtu,
                "VXLAN device set"
            ),
            Err(e) => {
                return Err(ApplyError::Overlay(format!("{VXLAN_DEVICE}: {e}")));
            }
        }
        Ok(())
    }
}
