use super::*;

fn attrs(pod: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("pod".to_string(), pod.to_string())])
}

fn block() -> AllocationBlock {
    AllocationBlock::new("10.0.0.0/29".parse().unwrap(), Some("n1"), 10)
}

#[test]
fn new_block_is_all_free_in_order() {
    let b = block();
    assert_eq!(b.num_addresses(), 8);
    assert_eq!(b.unallocated, (0..8).collect::<Vec<_>>());
    assert!(b.is_empty());
    assert_eq!(b.host(), Some("n1"));
    assert!(b.structural_problems().is_empty());
}

#[test]
fn ordinal_math() {
    let b = block();
    assert_eq!(b.ordinal_of("10.0.0.5".parse().unwrap()), Some(5));
    assert_eq!(b.ordinal_of("10.0.0.8".parse().unwrap()), None);
    assert_eq!(b.ip_at(7).to_string(), "10.0.0.7");
    let v6 = AllocationBlock::new("fd00::40/122".parse().unwrap(), None, 0);
    assert_eq!(v6.ip_at(3).to_string(), "fd00::43");
    assert_eq!(v6.ordinal_of("fd00::7f".parse().unwrap()), Some(63));
}

#[test]
fn fifo_reuses_longest_free_first() {
    let mut b = block();
    assert_eq!(b.auto_assign(3, "h1", &attrs("a")), vec![0, 1, 2]);
    let r = b
        .release(&[OrdinalRelease {
            ordinal: 1,
            sequence_number: None,
            handle: None,
        }])
        .unwrap();
    assert_eq!(r.ordinals, vec![1]);
    // 3..8 have been free longer than 1, so 1 comes last.
    assert_eq!(b.auto_assign(6, "h2", &attrs("b")), vec![3, 4, 5, 6, 7, 1]);
    assert!(b.auto_assign(1, "h3", &attrs("c")).is_empty());
    assert!(b.structural_problems().is_empty());
}

#[test]
fn attributes_shared_and_compacted() {
    let mut b = block();
    b.auto_assign(2, "h1", &attrs("a"));
    b.auto_assign(1, "h2", &attrs("b"));
    b.auto_assign(1, "h1", &attrs("a"));
    assert_eq!(b.attributes.len(), 2);
    assert_eq!(b.allocations[3], Some(0));
    let r = b.release_by_handle("h1", None);
    assert_eq!(r.ordinals, vec![0, 1, 3]);
    assert_eq!(r.by_handle, BTreeMap::from([("h1".to_string(), 3)]));
    assert_eq!(b.attributes.len(), 1);
    assert_eq!(
        b.allocations[2],
        Some(0),
        "h2's index renumbered after compaction"
    );
    assert_eq!(b.attribute_of(2).unwrap().handle(), Some("h2"));
    assert!(b.structural_problems().is_empty());
}

#[test]
fn stale_sequence_number_refuses_release() {
    let mut b = block();
    b.auto_assign(1, "h1", &attrs("a"));
    let seq_first = b.sequence_of(0);
    b.bump_sequence();
    b.release(&[OrdinalRelease {
        ordinal: 0,
        sequence_number: Some(seq_first),
        handle: None,
    }])
    .unwrap();
    b.bump_sequence();
    // Ordinal 0 is at the back of the FIFO; take everything to reach it again.
    let got = b.auto_assign(8, "h2", &attrs("b"));
    assert_eq!(got.last(), Some(&0));
    assert_ne!(b.sequence_of(0), seq_first);
    let err = b
        .release(&[OrdinalRelease {
            ordinal: 0,
            sequence_number: Some(seq_first),
            handle: None,
        }])
        .unwrap_err();
    assert_eq!(
        err,
        ReleaseRefused::StaleSequence {
            ordinal: 0,
            requested: seq_first,
            current: b.sequence_of(0)
        }
    );
    assert!(
        b.attribute_of(0).is_some(),
        "refused release changed nothing"
    );
    let err = b
        .release(&[OrdinalRelease {
            ordinal: 0,
            sequence_number: None,
            handle: Some("h1".into()),
        }])
        .unwrap_err();
    assert!(matches!(err, ReleaseRefused::WrongHandle { .. }));
}

#[test]
fn release_of_free_ordinal_is_reported() {
    let mut b = block();
    let r = b
        .release(&[OrdinalRelease {
            ordinal: 4,
            sequence_number: None,
            handle: None,
        }])
        .unwrap();
    assert_eq!(r.not_allocated, vec![4]);
    assert_eq!(
        b.unallocated,
        (0..8).collect::<Vec<_>>(),
        "free ordinal not appended twice"
    );
}

#[test]
fn assign_specific_ordinal() {
    let mut b = block();
    assert!(b.assign(5, "h", &attrs("a")));
    assert!(!b.assign(5, "h", &attrs("a")));
    assert!(!b.assign(9, "h", &attrs("a")));
    assert!(!b.unallocated.contains(&5));
    assert!(b.structural_problems().is_empty());
}

#[test]
fn structural_problems_found() {
    let mut b = block();
    b.allocations[0] = Some(3);
    b.unallocated.push(2);
    b.unallocated.retain(|o| *o != 6);
    let p = b.structural_problems();
    assert_eq!(p.len(), 4, "{p:?}");
}
