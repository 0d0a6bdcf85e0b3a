use super::*;

fn want() -> VxlanDevice {
    VxlanDevice {
        name: "vxlan.calico".into(),
        vni: 4096,
        port: 4789,
        local: "10.0.1.1".parse().unwrap(),
        mac: [0x66, 1, 2, 3, 4, 5],
        mtu: 1450,
        tunnel_addr: "10.65.0.1".parse().unwrap(),
    }
}

/// The link the kernel would report for a device built as `ensure` builds it.
fn as_built(w: &VxlanDevice) -> ObservedLink {
    let mut msg = LinkVxlan::new(&w.name, w.vni)
        .port(w.port)
        .local(w.local)
        .learning(false)
        .address(w.mac.to_vec())
        .mtu(w.mtu)
        .up()
        .build();
    msg.header.index = 7;
    observe(&msg)
}

#[test]
fn the_built_device_reads_back_as_wanted() {
    let seen = as_built(&want());
    assert_eq!(
        seen,
        ObservedLink {
            index: 7,
            is_vxlan: true,
            vni: Some(4096),
            port: Some(4789),
            local: Some(want().local),
            learning: Some(false),
            mac: Some(want().mac.to_vec()),
            mtu: Some(1450),
            up: true,
        }
    );
    assert_eq!(plan(&want(), Some(&seen)), DevicePlan::Keep { index: 7 });
    assert_eq!(plan(&want(), None), DevicePlan::Create);
}

#[test]
fn settings_fixed_at_creation_recreate_the_device() {
    let seen = as_built(&want());
    let recreated = |w: VxlanDevice, seen: &ObservedLink| match plan(&w, Some(seen)) {
        DevicePlan::Recreate { index: 7, why } => why,
        other => panic!("{other:?}"),
    };
    let why = recreated(
        VxlanDevice {
            vni: 4097,
            ..want()
        },
        &seen,
    );
    assert!(why.contains("VNI"), "{why}");
    let why = recreated(
        VxlanDevice {
            port: 8472,
            ..want()
        },
        &seen,
    );
    assert!(why.contains("port"), "{why}");
    let moved = VxlanDevice {
        local: "10.0.9.9".parse().unwrap(),
        ..want()
    };
    assert!(recreated(moved, &seen).contains("local"));
    let learning = ObservedLink {
        learning: Some(true),
        ..seen.clone()
    };
    assert!(recreated(want(), &learning).contains("learning"));
    let veth = ObservedLink {
        is_vxlan: false,
        ..seen
    };
    assert!(recreated(want(), &veth).contains("not a VXLAN"));
}

#[test]
fn mac_mtu_and_state_are_set_in_place() {
    let seen = ObservedLink {
        mac: Some(vec![0; 6]),
        mtu: Some(1500),
        up: false,
        ..as_built(&want())
    };
    assert_eq!(
        plan(&want(), Some(&seen)),
        DevicePlan::Adjust {
            index: 7,
            what: vec!["mac", "mtu", "up"]
        }
    );
}
