//! The fal provider: a fal API key sent as `Authorization: Key <key>` to the
//! fal queue. The key may be stored as `FAL_KEY` (fal's own name) or as
//! `FAL_API_KEY`; each forms its own credential kind.

use aivault_sdk::prelude::*;

struct Fal;

const HOST: &str = "queue.fal.run";

/// The credential kind of the alternative name `FAL_API_KEY`.
const ALTERNATIVE_KIND: &str = "fal-api-key";

fn image_to_3d() -> Capability {
    Capability::new("fal/image-to-3d", "Hunyuan3D image-to-3D: submit jobs and poll their requests")
        .methods(&["GET", "POST"])
        .prefixes(&[
            "/fal-ai/hunyuan-3d/requests",
            "/fal-ai/hunyuan-3d/v3.1/pro/image-to-3d",
            "/fal-ai/hunyuan-3d/v3.1/rapid/image-to-3d",
        ])
}

impl Provider for Fal {
    fn describe() -> Manifest {
        // Two explicit kinds rather than top-level declarations, which would
        // make one kind needing both secrets.
        Manifest::new("fal", env!("CARGO_PKG_VERSION"))
            .description("fal.ai queue API (Hunyuan3D image-to-3D)")
            .host(HOST)
            .secret("FAL_KEY", "secret", "API key from https://fal.ai/dashboard/keys")
            .secret("FAL_API_KEY", "api_key", "API key from https://fal.ai/dashboard/keys (alternative name)")
            .credential(
                CredentialKind::new("default", Auth::header("authorization", "Key {{secret}}"))
                    .secret("FAL_KEY")
                    .host(HOST)
                    .capability(image_to_3d()),
            )
            .credential(
                CredentialKind::new(ALTERNATIVE_KIND, Auth::header("authorization", "Key {{api_key}}"))
                    .secret("FAL_API_KEY")
                    .host(HOST)
                    .capability(image_to_3d()),
            )
    }
}

aivault_sdk::export_provider!(Fal);

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123abcd-4567-89ef-0123-456789abcdef:0123456789abcdef0123456789abcdef";

    // Either kind sends its own secret as `Key <key>`.
    #[test]
    fn both_kinds_inject_key_header() {
        for (kind, placeholder) in [("default", "secret"), (ALTERNATIVE_KIND, "api_key")] {
            let secrets = Secrets::from_pairs([(placeholder.into(), KEY.into())]);
            let mut req = Request::new("POST", HOST, "/fal-ai/hunyuan-3d/v3.1/pro/image-to-3d");
            req.credential_kind = kind.into();
            let out = Fal::inject(req, &secrets).unwrap();
            assert_eq!(out.header("authorization"), Some(format!("Key {KEY}").as_str()), "{kind}");
        }
    }
}
