//! `UnitTree::from_toml` and `UnitTree::from_csv` on arbitrary text (the first byte chooses
//! the format). The units file is configuration edited by hand or exported from another
//! system: loading must never panic, and a tree that loads must be a tree: one root, every
//! unit under it exactly once, parents before children, no cycles.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;
use tonghop::domain::UnitTree;

fuzz_target!(|data: &[u8]| {
    let Some((&format, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let loaded = if format & 1 == 0 {
        UnitTree::from_toml(text)
    } else {
        UnitTree::from_csv(text)
    };
    let Ok(tree) = loaded else {
        return;
    };

    let root = tree.root();
    assert!(root.parent.is_none(), "the root has no parent");
    let all = tree.all();
    assert_eq!(all.iter().filter(|u| u.parent.is_none()).count(), 1);

    // The subtree of the root is every unit, each once, parents first.
    let order = tree.subtree(&root.code);
    assert_eq!(order.len(), all.len(), "every unit hangs under the root");
    let mut seen = HashSet::new();
    for unit in &order {
        if let Some(parent) = &unit.parent {
            assert!(
                seen.contains(parent),
                "{} listed before its parent",
                unit.code
            );
        }
        assert!(seen.insert(unit.code.clone()), "{} listed twice", unit.code);
    }

    let mut children = 0;
    for unit in all {
        assert_eq!(tree.find(unit.code.as_str()), Some(unit));
        assert!(tree.is_within(&unit.code, &root.code));
        assert!(tree.is_within(&unit.code, &unit.code));
        assert!(!unit.name.trim().is_empty() && !unit.level.trim().is_empty());
        for child in tree.children(&unit.code) {
            assert_eq!(child.parent.as_ref(), Some(&unit.code));
            children += 1;
        }
    }
    assert_eq!(
        children + 1,
        all.len(),
        "every unit but the root is someone's child"
    );
});
