//! IPAM garbage collection, as Calico's node controller does it (`ipam.go`,
//! `ipam_allocation.go`): an allocation is judged by the attributes the CNI plugin
//! stored with it (`node`, and for pods `namespace` + `pod`).
//!
//! * node attribute missing, or a Calico node that is not Kubernetes' (no k8s orchRef):
//!   not ours to judge, kept;
//! * its Kubernetes node is gone: leaked, released now (nothing can use it any more);
//! * a pod address whose pod is gone, or now runs on another node, or whose pod lists
//!   addresses without this one: a *candidate*; released once it has been a candidate
//!   for the grace period (Calico's `leakGracePeriod`, 15 min by default), so that an
//!   address the CNI plugin just allocated for a pod the API has not shown us yet, or a
//!   pod being re-created under the same name, is not freed under it. No grace period
//!   (`None`) disables this part, as Calico's `0` does;
//! * a handle is released only when every address of it is leaked (one pod, two IPs).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The CNI plugin's handle prefix (`<network>.<containerID>`).
pub const POD_HANDLE_PREFIX: &str = "k8s-pod-network.";

/// One allocated address, as read from its block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    pub ip: IpAddr,
    pub handle: Option<String>,
    /// The `secondary` attributes (`node`, `namespace`, `pod`, `type` ...).
    pub attrs: BTreeMap<String, String>,
    /// The block's sequence number for this address, so that a release cannot free an
    /// address that was re-allocated after it was read.
    pub sequence: Option<u64>,
}

impl Allocation {
    fn node(&self) -> Option<&str> {
        self.attrs
            .get("node")
            .map(String::as_str)
            .filter(|n| !n.is_empty())
    }

    fn pod(&self) -> Option<(&str, &str)> {
        let ns = self.attrs.get("namespace").filter(|s| !s.is_empty())?;
        let pod = self.attrs.get("pod").filter(|s| !s.is_empty())?;
        Some((ns, pod))
    }

    fn id(&self) -> (Option<String>, IpAddr) {
        (self.handle.clone(), self.ip)
    }
}

/// A pod as the collector needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodPlacement {
    /// `spec.nodeName`; empty while unscheduled.
    pub node: String,
    /// `status.podIPs`; empty until the kubelet reports them.
    pub ips: Vec<IpAddr>,
}

/// What the cluster looks like at the time of a collection.
#[derive(Clone, Debug, Default)]
pub struct ClusterView {
    pub k8s_nodes: BTreeSet<String>,
    /// Calico node name -> its Kubernetes node name (`None`: not a Kubernetes node).
    pub calico_nodes: BTreeMap<String, Option<String>>,
    /// `(namespace, name)` -> placement.
    pub pods: BTreeMap<(String, String), PodPlacement>,
}

/// The verdict on one allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    InUse,
    /// Possibly leaked; released after the grace period.
    Candidate,
    /// Leaked beyond doubt.
    Leaked,
}

/// Judges one allocation against the cluster.
pub fn judge(a: &Allocation, view: &ClusterView) -> Verdict {
    let Some(node) = a.node() else {
        return Verdict::InUse;
    };
    let k8s_node = match view.calico_nodes.get(node) {
        Some(Some(k)) => k.as_str(),
        Some(None) => return Verdict::InUse,
        None => node,
    };
    if !view.k8s_nodes.contains(k8s_node) {
        return Verdict::Leaked;
    }
    let Some((ns, pod)) = a.pod() else {
        return Verdict::InUse;
    };
    if !a
        .handle
        .as_deref()
        .is_some_and(|h| h.starts_with(POD_HANDLE_PREFIX))
    {
        return Verdict::InUse;
    }
    match view.pods.get(&(ns.to_string(), pod.to_string())) {
        None => Verdict::Candidate,
        Some(p) if !p.node.is_empty() && p.node != k8s_node => Verdict::Candidate,
        Some(p) if !p.ips.is_empty() && !p.ips.contains(&a.ip) => Verdict::Candidate,
        Some(_) => Verdict::InUse,
    }
}

/// Remembers candidates across collections.
#[derive(Debug)]
pub struct LeakTracker {
    grace: Option<Duration>,
    candidates: HashMap<(Option<String>, IpAddr), Instant>,
}

impl LeakTracker {
    pub fn new(grace: Option<Duration>) -> Self {
        LeakTracker {
            grace: grace.filter(|g| !g.is_zero()),
            candidates: HashMap::new(),
        }
    }

    /// The allocations to release now, out of all allocations read at `now`.
    pub fn collect(
        &mut self,
        now: Instant,
        allocations: &[Allocation],
        view: &ClusterView,
    ) -> Vec<Allocation> {
        let mut confirmed: Vec<(&Allocation, bool)> = Vec::with_capacity(allocations.len());
        let mut seen = std::collections::HashSet::new();
        for a in allocations {
            seen.insert(a.id());
            let leaked = match judge(a, view) {
                Verdict::InUse => {
                    self.candidates.remove(&a.id());
                    false
                }
                Verdict::Leaked => true,
                Verdict::Candidate => {
                    let since = *self.candidates.entry(a.id()).or_insert(now);
                    self.grace
                        .is_some_and(|g| now.saturating_duration_since(since) >= g)
                }
            };
            confirmed.push((a, leaked));
        }
        // Forget candidates whose allocation went away by itself.
        self.candidates.retain(|id, _| seen.contains(id));
        // A handle goes only when every address of it goes.
        let mut handle_ok: HashMap<&str, bool> = HashMap::new();
        for (a, leaked) in &confirmed {
            if let Some(h) = a.handle.as_deref() {
                let all = handle_ok.entry(h).or_insert(true);
                *all &= *leaked;
            }
        }
        confirmed
            .into_iter()
            .filter(|(a, leaked)| *leaked && a.handle.as_deref().is_none_or(|h| handle_ok[h]))
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// The allocation was released: stop tracking it.
    pub fn forget(&mut self, a: &Allocation) {
        self.candidates.remove(&a.id());
    }

    /// How many allocations are currently candidates.
    pub fn candidates(&self) -> usize {
        self.candidates.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(ip: &str, handle: &str, attrs: &[(&str, &str)]) -> Allocation {
        Allocation {
            ip: ip.parse().unwrap(),
            handle: Some(handle.to_string()).filter(|h| !h.is_empty()),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            sequence: Some(1),
        }
    }

    fn pod_alloc(ip: &str, cid: &str, node: &str, ns: &str, pod: &str) -> Allocation {
        alloc(
            ip,
            &format!("{POD_HANDLE_PREFIX}{cid}"),
            &[("node", node), ("namespace", ns), ("pod", pod)],
        )
    }

    fn view() -> ClusterView {
        ClusterView {
            k8s_nodes: ["n1".to_string()].into(),
            calico_nodes: [
                ("n1".to_string(), Some("n1".to_string())),
                ("rr".to_string(), None),
            ]
            .into(),
            pods: [(
                ("prod".to_string(), "web".to_string()),
                PodPlacement {
                    node: "n1".into(),
                    ips: vec![],
                },
            )]
            .into(),
        }
    }

    #[test]
    fn verdicts() {
        let v = view();
        assert_eq!(
            judge(&pod_alloc("10.0.0.1", "c1", "n1", "prod", "web"), &v),
            Verdict::InUse
        );
        assert_eq!(
            judge(&pod_alloc("10.0.0.2", "c2", "n1", "prod", "gone"), &v),
            Verdict::Candidate
        );
        assert_eq!(
            judge(&pod_alloc("10.0.0.3", "c3", "n2", "prod", "web"), &v),
            Verdict::Leaked,
            "node n2 is gone"
        );
        assert_eq!(
            judge(
                &alloc("10.0.0.4", "ipip-tunnel-addr-n2", &[("node", "n2")]),
                &v
            ),
            Verdict::Leaked
        );
        assert_eq!(
            judge(&alloc("10.0.0.5", "x", &[("node", "rr")]), &v),
            Verdict::InUse
        );
        assert_eq!(judge(&alloc("10.0.0.6", "manual", &[]), &v), Verdict::InUse);
        let mut moved = v.clone();
        moved.pods.values_mut().for_each(|p| p.node = "n9".into());
        moved.k8s_nodes.insert("n9".into());
        assert_eq!(
            judge(&pod_alloc("10.0.0.1", "c1", "n1", "prod", "web"), &moved),
            Verdict::Candidate,
            "the pod of that name now runs elsewhere"
        );
        let mut other_ip = v.clone();
        other_ip
            .pods
            .values_mut()
            .for_each(|p| p.ips = vec!["10.0.0.9".parse().unwrap()]);
        assert_eq!(
            judge(&pod_alloc("10.0.0.1", "c1", "n1", "prod", "web"), &other_ip),
            Verdict::Candidate
        );
    }

    #[test]
    fn candidates_are_released_after_the_grace_period_only() {
        let mut t = LeakTracker::new(Some(Duration::from_secs(60)));
        let t0 = Instant::now();
        let a = pod_alloc("10.0.0.2", "c2", "n1", "prod", "gone");
        assert!(t.collect(t0, std::slice::from_ref(&a), &view()).is_empty());
        assert_eq!(t.candidates(), 1);
        assert!(
            t.collect(
                t0 + Duration::from_secs(59),
                std::slice::from_ref(&a),
                &view()
            )
            .is_empty()
        );
        assert_eq!(
            t.collect(
                t0 + Duration::from_secs(60),
                std::slice::from_ref(&a),
                &view()
            ),
            [a]
        );
    }

    #[test]
    fn a_candidate_that_comes_back_starts_over() {
        let mut t = LeakTracker::new(Some(Duration::from_secs(60)));
        let t0 = Instant::now();
        let a = pod_alloc("10.0.0.2", "c2", "n1", "prod", "web2");
        t.collect(t0, std::slice::from_ref(&a), &view());
        let mut back = view();
        back.pods
            .insert(("prod".into(), "web2".into()), PodPlacement::default());
        assert!(
            t.collect(
                t0 + Duration::from_secs(30),
                std::slice::from_ref(&a),
                &back
            )
            .is_empty()
        );
        assert_eq!(t.candidates(), 0);
        assert!(
            t.collect(
                t0 + Duration::from_secs(61),
                std::slice::from_ref(&a),
                &view()
            )
            .is_empty()
        );
    }

    #[test]
    fn without_grace_period_only_addresses_of_gone_nodes_are_released() {
        let mut t = LeakTracker::new(None);
        let t0 = Instant::now();
        let gone_pod = pod_alloc("10.0.0.2", "c2", "n1", "prod", "gone");
        let gone_node = pod_alloc("10.0.0.3", "c3", "n2", "prod", "web");
        let later = t0 + Duration::from_secs(3600);
        t.collect(t0, &[gone_pod.clone(), gone_node.clone()], &view());
        assert_eq!(
            t.collect(later, &[gone_pod, gone_node.clone()], &view()),
            [gone_node]
        );
    }

    #[test]
    fn a_handle_goes_only_with_all_its_addresses() {
        let mut t = LeakTracker::new(Some(Duration::from_secs(1)));
        let t0 = Instant::now();
        let v4 = pod_alloc("10.0.0.3", "c3", "n2", "prod", "web");
        let mut v6 = v4.clone();
        v6.ip = "fd00::3".parse().unwrap();
        v6.attrs.insert("node".into(), "n1".into());
        v6.attrs.insert("pod".into(), "web".into());
        // n2's address is leaked, but the handle still has an address in use on n1.
        assert!(t.collect(t0, &[v4.clone(), v6.clone()], &view()).is_empty());
    }
}
