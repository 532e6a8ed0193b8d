//! Amazon Bedrock's runtime API, signed with AWS Signature Version 4: the
//! component signs each request (its body and the host's clock included)
//! with an access key; the region comes from the host, so a credential
//! names the regional endpoint it calls (`--host
//! bedrock-runtime.eu-west-1.amazonaws.com`).

use aivault_sdk::prelude::*;

struct AwsBedrock;

/// Regions with a Bedrock runtime endpoint.
const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-north-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
];

impl Provider for AwsBedrock {
    fn describe() -> Manifest {
        REGIONS
            .iter()
            .fold(Manifest::new("aws-bedrock", env!("CARGO_PKG_VERSION")), |manifest, region| {
                manifest.host(format!("bedrock-runtime.{region}.amazonaws.com"))
            })
            .description("Amazon Bedrock runtime (AWS Signature Version 4)")
            .secret("AWS_ACCESS_KEY_ID", "access_key_id", "an IAM user's access key id (AKIA…)")
            .secret("AWS_SECRET_ACCESS_KEY", "secret_access_key", "the secret access key issued with it")
            .auth(Auth::aws_sigv4("bedrock", "access_key_id", "secret_access_key"))
            .capability(
                Capability::new(
                    "aws-bedrock/models",
                    "Invoke and converse with foundation models (streams too)",
                )
                .methods(&["POST"])
                .prefix("/model/"),
            )
    }

    /// Long-term access keys are `AKIA` and 16 upper-case letters or
    /// digits; secret keys are 40 base64 characters.
    fn validate_secret(name: &str, value: &str) -> Result<(), SecretError> {
        let malformed = |why: &str| Err(SecretError::Malformed(why.into()));
        match name {
            "AWS_ACCESS_KEY_ID" if value.starts_with("ASIA") => malformed(
                "temporary credentials (ASIA…) need a session token, which this provider does not take; use an access key (AKIA…)",
            ),
            "AWS_ACCESS_KEY_ID"
                if value.len() != 20
                    || !value.starts_with("AKIA")
                    || !value.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) =>
            {
                malformed("an access key id is AKIA followed by 16 upper-case letters or digits")
            }
            "AWS_SECRET_ACCESS_KEY"
                if value.len() != 40
                    || !value.chars().all(|c| c.is_ascii_alphanumeric() || "/+=".contains(c)) =>
            {
                malformed("a secret access key is 40 characters of letters, digits, `/`, `+` and `=`")
            }
            _ => Ok(()),
        }
    }
}

aivault_sdk::export_provider!(AwsBedrock);

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    // The request is signed for bedrock in the host's region, over its body
    // and the time the host handed over.
    #[test]
    fn signs_for_the_hosts_region() {
        let secrets = Secrets::from_pairs([
            ("access_key_id".to_string(), KEY_ID.to_string()),
            ("secret_access_key".to_string(), SECRET.to_string()),
        ]);
        let mut req = Request::new("POST", "bedrock-runtime.eu-west-1.amazonaws.com", "/model/m/converse")
            .with_header("content-type", "application/json");
        req.body = Some(br#"{"messages":[]}"#.to_vec());
        req.now = 1_764_000_000;
        let out = AwsBedrock::inject(req.clone(), &secrets).unwrap();
        let auth = out.header("authorization").unwrap();
        assert!(
            auth.starts_with(&format!(
                "AWS4-HMAC-SHA256 Credential={KEY_ID}/20251124/eu-west-1/bedrock/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date, Signature="
            )),
            "{auth}"
        );
        assert_eq!(out.header("x-amz-date"), Some("20251124T160000Z"));
        // Another body, another signature.
        req.body = Some(br#"{"messages":[1]}"#.to_vec());
        assert_ne!(AwsBedrock::inject(req, &secrets).unwrap().header("authorization"), Some(auth));
    }

    // Key shapes are checked; temporary credentials are refused with why.
    #[test]
    fn validates_key_shapes() {
        assert_eq!(AwsBedrock::validate_secret("AWS_ACCESS_KEY_ID", KEY_ID), Ok(()));
        assert_eq!(AwsBedrock::validate_secret("AWS_SECRET_ACCESS_KEY", SECRET), Ok(()));
        let err = AwsBedrock::validate_secret("AWS_ACCESS_KEY_ID", "ASIAIOSFODNN7EXAMPLE").unwrap_err();
        assert!(err.to_string().contains("session token"), "{err}");
        assert!(AwsBedrock::validate_secret("AWS_ACCESS_KEY_ID", "akiaiosfodnn7example").is_err());
        assert!(AwsBedrock::validate_secret("AWS_SECRET_ACCESS_KEY", "short").is_err());
    }
}
