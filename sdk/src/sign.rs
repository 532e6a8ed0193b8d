//! Request signing for providers whose APIs want a signature rather than a
//! bearer token: AWS Signature Version 4, and an HMAC over a template of
//! the request (the webhook-style signatures many APIs use). Both need the
//! host's clock (contract 0.2.0 hands it over as [`Request::now`]) and the
//! body (declare them with [`crate::Auth`], which asks for the body).
//!
//! Pure Rust (SHA-256 and HMAC from RustCrypto): a component gets no clock,
//! randomness or network, and needs none to sign.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{InjectError, Request, Secrets};

/// Hex of SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `(YYYYMMDDTHHMMSSZ, YYYYMMDD)` in UTC for `now` (seconds since the Unix epoch).
pub fn utc_stamp(now: u64) -> (String, String) {
    let (days, secs) = (now / 86_400, now % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let date = format!("{year:04}{month:02}{day:02}");
    let time = format!("{:02}{:02}{:02}", secs / 3_600, secs / 60 % 60, secs % 60);
    (format!("{date}T{time}Z"), date)
}

/// RFC 3986 percent-encoding of everything but unreserved characters
/// (and `/` when `keep_slash`), as AWS canonicalises.
fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) || (keep_slash && byte == b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Where an AWS region comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Region {
    /// This one.
    Fixed(String),
    /// The host's second label, as in `bedrock-runtime.eu-west-1.amazonaws.com`.
    FromHost,
}

/// AWS Signature Version 4 (header form), for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigV4 {
    /// The signing name, e.g. `bedrock`, `s3`.
    pub service: String,
    /// Where the region comes from.
    pub region: Region,
    /// Placeholder of the access key id.
    pub access_key_id: String,
    /// Placeholder of the secret access key.
    pub secret_access_key: String,
}

/// What one signature covers, for [`SigV4::authorization`].
pub struct Canonical<'a> {
    /// Upper-case HTTP method.
    pub method: &'a str,
    /// The path as sent (percent-encoded once).
    pub path: &'a str,
    /// Decoded query pairs.
    pub query: &'a [(String, String)],
    /// Headers to sign: lower-case names, trimmed values, `host` included.
    pub headers: Vec<(String, String)>,
    /// Hex SHA-256 of the body.
    pub payload_hash: String,
}

impl SigV4 {
    /// The region of a request to `host`.
    pub fn region_for(&self, host: &str) -> Result<String, InjectError> {
        match &self.region {
            Region::Fixed(region) => Ok(region.clone()),
            Region::FromHost => host
                .split('.')
                .nth(1)
                .filter(|r| host.ends_with(".amazonaws.com") && r.contains('-'))
                .map(str::to_string)
                .ok_or_else(|| InjectError::Unsupported("the host names no AWS region".into())),
        }
    }

    /// The `authorization` header for `canonical`, signed at `amz_date`
    /// (`YYYYMMDDTHHMMSSZ`) in `region`.
    pub fn authorization(
        &self,
        canonical: &Canonical<'_>,
        key_id: &str,
        secret: &str,
        region: &str,
        amz_date: &str,
    ) -> String {
        let date = &amz_date[..8];
        // Every service but S3 signs the path encoded a second time.
        let uri =
            if self.service == "s3" { canonical.path.to_string() } else { uri_encode(canonical.path, true) };
        let mut query: Vec<(String, String)> =
            canonical.query.iter().map(|(n, v)| (uri_encode(n, false), uri_encode(v, false))).collect();
        query.sort();
        let query = query.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("&");
        let mut headers = canonical.headers.clone();
        headers.sort();
        let signed = headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(";");
        let header_block: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
        let request = format!(
            "{}\n{uri}\n{query}\n{header_block}\n{signed}\n{}",
            canonical.method, canonical.payload_hash
        );
        let scope = format!("{date}/{region}/{}/aws4_request", self.service);
        let to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", sha256_hex(request.as_bytes()));
        let mut key = Zeroizing::new(hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes()));
        for part in [region, self.service.as_str(), "aws4_request"] {
            *key = hmac_sha256(&*key, part.as_bytes());
        }
        let signature = hex(&hmac_sha256(&*key, to_sign.as_bytes()));
        format!("AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={signed}, Signature={signature}")
    }

    /// Signs `req`: adds `x-amz-date` (and `x-amz-content-sha256` for S3)
    /// and `authorization`, over the host, the content type if any, and
    /// those headers.
    pub fn apply(&self, req: Request, secrets: &Secrets) -> Result<Request, InjectError> {
        if req.now == 0 {
            return Err(InjectError::Unsupported("signing needs the host's clock (contract 0.2.0)".into()));
        }
        let (amz_date, _) = utc_stamp(req.now);
        let payload_hash = sha256_hex(req.body.as_deref().unwrap_or_default());
        let mut req = req.with_header("x-amz-date", amz_date.clone());
        if self.service == "s3" {
            req = req.with_header("x-amz-content-sha256", payload_hash.clone());
        }
        let mut headers = vec![("host".to_string(), req.host.clone())];
        for (name, value) in &req.headers {
            let name = name.to_ascii_lowercase();
            if name == "content-type" || name.starts_with("x-amz-") {
                headers.push((name, value.trim().to_string()));
            }
        }
        let region = self.region_for(&req.host)?;
        let canonical =
            Canonical { method: &req.method, path: &req.path, query: &req.query, headers, payload_hash };
        let key_id = secrets.get(&self.access_key_id)?;
        let secret = secrets.get(&self.secret_access_key)?;
        let authorization = self.authorization(&canonical, key_id, secret, &region, &amz_date);
        Ok(req.with_header("authorization", authorization))
    }
}

/// How an HMAC signature is written into its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Lower-case hex.
    Hex,
    /// Standard base64.
    Base64,
}

/// An HMAC-SHA256 over a template of the request, in a header, with the
/// timestamp it covers in another: what webhook-style APIs verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmacSignature {
    /// Placeholder of the signing secret.
    pub secret: String,
    /// What is signed; `{timestamp}`, `{method}`, `{path}` and `{body}`
    /// are replaced (e.g. `{timestamp}.{body}`).
    pub message: String,
    /// The header the signature goes in.
    pub header: String,
    /// Text in front of the signature in that header (e.g. `v1=`).
    pub prefix: String,
    /// The header the timestamp (seconds since the Unix epoch) goes in, if any.
    pub timestamp_header: Option<String>,
    /// How the signature is written.
    pub encoding: Encoding,
}

impl HmacSignature {
    /// Signs `req`.
    pub fn apply(&self, req: Request, secrets: &Secrets) -> Result<Request, InjectError> {
        if req.now == 0 {
            return Err(InjectError::Unsupported("signing needs the host's clock (contract 0.2.0)".into()));
        }
        let timestamp = req.now.to_string();
        let body = String::from_utf8_lossy(req.body.as_deref().unwrap_or_default()).into_owned();
        let message = self
            .message
            .replace("{timestamp}", &timestamp)
            .replace("{method}", &req.method)
            .replace("{path}", &req.path)
            .replace("{body}", &body);
        let mac = hmac_sha256(secrets.get(&self.secret)?.as_bytes(), message.as_bytes());
        let signature = match self.encoding {
            Encoding::Hex => hex(&mac),
            Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(mac),
        };
        let mut req = req.with_header(&self.header, format!("{}{signature}", self.prefix));
        if let Some(header) = &self.timestamp_header {
            req = req.with_header(header, timestamp);
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_ID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    /// 2015-08-30T12:36:00Z, the AWS test suite's moment.
    const SUITE_NOW: u64 = 1_440_938_160;

    fn suite() -> SigV4 {
        SigV4 {
            service: "service".into(),
            region: Region::Fixed("us-east-1".into()),
            access_key_id: "id".into(),
            secret_access_key: "secret".into(),
        }
    }

    fn secrets() -> Secrets {
        Secrets::from_pairs([
            ("id".to_string(), KEY_ID.to_string()),
            ("secret".to_string(), SECRET.to_string()),
        ])
    }

    fn signed(method: &str, query: &[(&str, &str)], headers: &[(&str, &str)], body: Option<&str>) -> String {
        let mut req = Request::new(method, "example.amazonaws.com", "/");
        req.query = query.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        req.headers = headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        req.body = body.map(|b| b.as_bytes().to_vec());
        req.now = SUITE_NOW;
        let out = suite().apply(req, &secrets()).unwrap();
        assert_eq!(out.header("x-amz-date"), Some("20150830T123600Z"));
        out.header("authorization").unwrap().to_string()
    }

    fn expected(signed_headers: &str, signature: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential={KEY_ID}/20150830/us-east-1/service/aws4_request, \
             SignedHeaders={signed_headers}, Signature={signature}"
        )
    }

    // The published AWS Signature Version 4 test suite (get-vanilla,
    // post-vanilla, get-vanilla-query-order-key-case,
    // post-vanilla-empty-query-value, post-x-www-form-urlencoded).
    #[test]
    fn matches_the_aws_test_suite() {
        let plain = "host;x-amz-date";
        assert_eq!(
            signed("GET", &[], &[], None),
            expected(plain, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        );
        assert_eq!(
            signed("POST", &[], &[], None),
            expected(plain, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")
        );
        assert_eq!(
            signed("GET", &[("Param2", "value2"), ("Param1", "value1")], &[], None),
            expected(plain, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
        );
        assert_eq!(
            signed("POST", &[("Param1", "value1")], &[], None),
            expected(plain, "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11")
        );
        assert_eq!(
            signed(
                "POST",
                &[],
                &[("content-type", "application/x-www-form-urlencoded")],
                Some("Param1=value1")
            ),
            expected(
                "content-type;host;x-amz-date",
                "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
            )
        );
    }

    // post-header-key-sort: any header can be signed, in sorted order.
    #[test]
    fn signs_extra_headers_in_order() {
        let canonical = Canonical {
            method: "POST",
            path: "/",
            query: &[],
            headers: vec![
                ("my-header1".into(), "value1".into()),
                ("x-amz-date".into(), "20150830T123600Z".into()),
                ("host".into(), "example.amazonaws.com".into()),
            ],
            payload_hash: sha256_hex(b""),
        };
        assert_eq!(
            suite().authorization(&canonical, KEY_ID, SECRET, "us-east-1", "20150830T123600Z"),
            expected(
                "host;my-header1;x-amz-date",
                "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"
            )
        );
    }

    // Dates come out right across months, leap days and years.
    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(0), ("19700101T000000Z".to_string(), "19700101".to_string()));
        assert_eq!(utc_stamp(SUITE_NOW).0, "20150830T123600Z");
        assert_eq!(utc_stamp(951_782_400).0, "20000229T000000Z");
        assert_eq!(utc_stamp(1_798_761_599).0, "20261231T235959Z");
    }

    // The region comes from a regional AWS host, or the signer refuses.
    #[test]
    fn region_from_host() {
        let bedrock = SigV4 { region: Region::FromHost, ..suite() };
        assert_eq!(bedrock.region_for("bedrock-runtime.eu-west-1.amazonaws.com").unwrap(), "eu-west-1");
        assert!(bedrock.region_for("example.com").is_err());
    }

    // An HMAC over `{timestamp}.{body}`, hex, with the timestamp beside it
    // (checked against an independent HMAC computation of RFC 4231 case 2).
    #[test]
    fn hmac_signature() {
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let signer = HmacSignature {
            secret: "secret".into(),
            message: "{timestamp}.{body}".into(),
            header: "x-signature".into(),
            prefix: "v1=".into(),
            timestamp_header: Some("x-timestamp".into()),
            encoding: Encoding::Hex,
        };
        let mut req = Request::new("POST", "api.example.com", "/hooks");
        req.body = Some(b"{\"a\":1}".to_vec());
        req.now = 1_700_000_000;
        let out = signer.apply(req, &secrets()).unwrap();
        let expected = hex(&hmac_sha256(SECRET.as_bytes(), b"1700000000.{\"a\":1}"));
        assert_eq!(out.header("x-signature"), Some(format!("v1={expected}").as_str()));
        assert_eq!(out.header("x-timestamp"), Some("1700000000"));
        let mut stale = Request::new("POST", "api.example.com", "/hooks");
        stale.now = 0;
        assert!(signer.apply(stale, &secrets()).is_err(), "signed without a clock");
    }
}
