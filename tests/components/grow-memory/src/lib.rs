//! A provider whose `inject` grows its linear memory to exactly the number
//! of bytes the request path names (`/grow-to/<bytes>`), and aborts if the
//! host refuses. With the cap set to that number, the memory alone fits it;
//! the host must still refuse because the component's tables count too.

use aivault_sdk::prelude::*;

struct GrowMemory;

const PAGE: usize = 64 * 1024;

impl Provider for GrowMemory {
    fn describe() -> Manifest {
        Manifest::new("grow-memory", "0.1.0")
            .description("grows its memory on request")
            .host("api.grow-memory.test")
            .secret("GROW_MEMORY_KEY", "secret", "any value")
            .auth(Auth::bearer("secret"))
            .capability(Capability::new("grow-memory/any", "grow to a size").methods(&["GET"]).prefix("/"))
    }

    fn inject(req: Request, secrets: &Secrets) -> Result<Request, InjectError> {
        let secret = secrets.get("secret")?.to_string();
        let req = req.with_bearer(&secret);
        let target: usize = req
            .path
            .strip_prefix("/grow-to/")
            .and_then(|bytes| bytes.parse().ok())
            .ok_or_else(|| InjectError::Unsupported("the path must be /grow-to/<bytes>".into()))?;
        let current = pages::size() * PAGE;
        // A refused growth aborts, as a failed allocation does; the host
        // reports that as running out of memory.
        if target > current && !pages::grow((target - current).div_ceil(PAGE)) {
            std::process::abort();
        }
        let size = pages::size() * PAGE;
        Ok(req.with_header("x-memory-bytes", size.to_string()))
    }
}

/// Linear memory 0, in 64 KiB pages.
#[cfg(target_arch = "wasm32")]
mod pages {
    pub fn size() -> usize {
        core::arch::wasm32::memory_size(0)
    }

    /// Whether the host let memory grow by `delta` pages.
    pub fn grow(delta: usize) -> bool {
        core::arch::wasm32::memory_grow(0, delta) != usize::MAX
    }
}

/// `cargo test --workspace` also builds this crate for the host, where it
/// only has to compile.
#[cfg(not(target_arch = "wasm32"))]
mod pages {
    pub fn size() -> usize {
        0
    }

    pub fn grow(_delta: usize) -> bool {
        false
    }
}

aivault_sdk::export_provider!(GrowMemory);
