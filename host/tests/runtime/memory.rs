//! The memory cap covers a call's whole store: every linear memory and
//! every table of the component's instances, not each memory on its own.

use aivault::plugins::{Origin, Plugin, PluginError, Runtime, SandboxLimits};
use aivault_test_artifacts as artifacts;

use crate::support::{hosts, request, secrets};

const MIB: usize = 1 << 20;
const CAP: usize = 8 * MIB;

fn grow_memory() -> Plugin {
    let limits = SandboxLimits { memory_bytes: CAP, ..SandboxLimits::default() };
    let runtime = Runtime::new(limits, None).unwrap();
    let bytes = std::fs::read(artifacts::GROW_MEMORY).unwrap();
    runtime.load(Origin::File(artifacts::GROW_MEMORY.into()), &bytes).unwrap()
}

// A memory grown to exactly the cap would fit a per-memory cap, but the
// component's tables count too, so the store's total is refused as out of
// memory; a memory leaving room for the tables is served.
#[test]
fn cap_covers_memory_and_tables_together() {
    let plugin = grow_memory();
    let call = |bytes: usize| {
        let req = request(
            "grow-memory/any",
            "default",
            "GET",
            "api.grow-memory.test",
            &format!("/grow-to/{bytes}"),
        );
        plugin.measured_inject(&req, &secrets(&[("secret", "grow-memory-key")]), &hosts(&plugin), 0)
    };

    let (out, stats) = call(CAP - MIB);
    let memory: usize = out.unwrap().header("x-memory-bytes").unwrap().parse().unwrap();
    assert_eq!(memory, CAP - MIB, "the memory grew to exactly what was asked");
    assert!(stats.peak_memory_bytes > memory, "the peak counts the tables as well: {stats:?}");
    assert!(stats.peak_memory_bytes <= CAP, "{stats:?}");

    let (out, stats) = call(CAP);
    let err = out.unwrap_err();
    assert!(matches!(err, PluginError::OutOfMemory { limit_mib: 8, function: "inject", .. }), "{err}");
    assert!(err.to_string().contains("provider `grow-memory` 0.1.0"), "{err}");
    assert!(stats.peak_memory_bytes <= CAP, "nothing past the cap was granted: {stats:?}");
}
