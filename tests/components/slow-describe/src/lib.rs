//! A provider that never finishes describing itself.

use aivault_sdk::prelude::*;

struct SlowDescribe;

impl Provider for SlowDescribe {
    fn describe() -> Manifest {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

aivault_sdk::export_provider!(SlowDescribe);
