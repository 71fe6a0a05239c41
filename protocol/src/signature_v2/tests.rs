use super::*;
use crate::replay::ReplayCache;

const SECRET: &[u8] = b"s3cret";
const NONCE: &str = "00112233445566778899aabbccddeeff";

fn kill(path: &str, audience: &'static str) -> Target<'static> {
    let path: &'static str = Box::leak(path.to_string().into_boxed_str());
    Target {
        method: "POST",
        path_and_query: path,
        audience,
        body: b"",
    }
}

#[test]
fn the_signed_string_is_pinned() {
    let target = Target {
        method: "POST",
        path_and_query: "/v1/runs/r1/kill?x=1",
        audience: "http://10.0.0.5:7080/",
        body: b"",
    };
    assert_eq!(
        canonical(&target, 1000, NONCE),
        "cronmesh-executor-protocol/v2\nPOST\n/v1/runs/r1/kill?x=1\nhttp://10.0.0.5:7080\n\
         1000\n00112233445566778899aabbccddeeff\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let header = sign_with(&key(SECRET), &target, 1000, NONCE);
    assert!(header.starts_with("v2;t=1000;n=00112233445566778899aabbccddeeff;sig="));
}

#[test]
fn method_path_audience_body_and_key_are_each_bound() {
    let key = key(SECRET);
    let signed = kill("/v1/runs/r1/kill", "http://a:7080");
    let header = sign_with(&key, &signed, 1000, NONCE);
    let check = |target: &Target<'_>, key: &[u8; 32]| verify(key, Some(&header), target, 1010, 300);
    assert!(check(&signed, &key).is_ok());
    let mismatch = |audience: &str| {
        Err(V2Error::Mismatch {
            audience: audience.to_string(),
        })
    };
    assert_eq!(
        check(
            &Target {
                method: "GET",
                ..signed
            },
            &key
        ),
        mismatch("http://a:7080")
    );
    assert_eq!(
        check(&kill("/v1/runs/r2/kill", "http://a:7080"), &key),
        mismatch("http://a:7080")
    );
    assert_eq!(
        check(&kill("/v1/runs/r1/kill?x", "http://a:7080"), &key),
        mismatch("http://a:7080")
    );
    assert_eq!(
        check(&kill("/v1/runs/r1/kill", "http://b:7080"), &key),
        mismatch("http://b:7080")
    );
    // A trailing slash names the same receiver.
    assert!(check(&kill("/v1/runs/r1/kill", "http://a:7080/"), &key).is_ok());
    assert_eq!(
        check(
            &Target {
                body: b"{}",
                ..signed
            },
            &key
        ),
        mismatch("http://a:7080")
    );
    assert_eq!(
        check(&signed, &super::key(b"other")),
        mismatch("http://a:7080")
    );
    // The webhook key of the same secret opens nothing here.
    let webhook = keys::derive(SECRET, KeyUse::Webhook);
    assert_eq!(check(&signed, &webhook), mismatch("http://a:7080"));
}

#[test]
fn a_nonce_is_good_once() {
    let key = key(SECRET);
    let target = kill("/v1/runs/r1/kill", "http://a:7080");
    let cache = ReplayCache::new(100);
    let header = sign_with(&key, &target, 1000, NONCE);
    let accept = |now: i64| {
        verify(&key, Some(&header), &target, now, 300).and_then(|h| cache.admit(&h, now, 300))
    };
    assert_eq!(accept(1000), Ok(()));
    assert_eq!(accept(1001), Err(V2Error::Replayed));
    // A fresh nonce for the same request is another request.
    let again = sign(&key, &Target { ..target });
    let parsed = verify(
        &key,
        Some(&again),
        &target,
        chrono::Utc::now().timestamp(),
        300,
    );
    assert!(parsed.is_ok(), "{parsed:?}");
}

#[test]
fn stale_and_future_signatures_are_refused() {
    let key = key(SECRET);
    let target = kill("/v1/info", "http://a:7080");
    let header = sign_with(&key, &target, 1000, NONCE);
    assert_eq!(
        verify(&key, Some(&header), &target, 1301, 300),
        Err(V2Error::Stale)
    );
    assert_eq!(
        verify(&key, Some(&header), &target, 699, 300),
        Err(V2Error::Stale)
    );
    let far = sign_with(&key, &target, i64::MIN, NONCE);
    assert_eq!(
        verify(&key, Some(&far), &target, i64::MAX, 300),
        Err(V2Error::Stale)
    );
}

#[test]
fn malformed_headers_are_refused_without_reading_them_whole() {
    let key = key(SECRET);
    let target = kill("/v1/info", "http://a:7080");
    let good = sign_with(&key, &target, 1000, NONCE);
    let sig = good.rsplit("sig=").next().unwrap_or_default().to_string();
    let long = format!("v2;t=1000;n={NONCE};sig={sig}{}", "0".repeat(10_000));
    let cases = [
        String::new(),
        "v2".into(),
        "v2;".into(),
        format!("v2;n={NONCE};t=1000;sig={sig}"),
        format!("v2;t=1000;n={NONCE};sig={sig};x=1"),
        format!("v2;t=;n={NONCE};sig={sig}"),
        format!("v2;t=+1000;n={NONCE};sig={sig}"),
        format!("v2;t=99999999999999999999;n={NONCE};sig={sig}"),
        format!("v2;t=1000;n=0011;sig={sig}"),
        format!("v2;t=1000;n={};sig={sig}", "a".repeat(65)),
        format!("v2;t=1000;n={};sig={sig}", NONCE.to_uppercase()),
        format!("v2;t=1000;n={NONCE};sig=zz"),
        format!("v2;t=1000;n={NONCE};sig={}", &sig[..62]),
        format!("V2;t=1000;n={NONCE};sig={sig}"),
        long,
    ];
    for case in cases {
        assert_eq!(
            verify(&key, Some(&case), &target, 1000, 300),
            Err(V2Error::Malformed),
            "{case:?}"
        );
    }
    assert_eq!(
        verify(&key, None, &target, 1000, 300),
        Err(V2Error::Missing)
    );
    let v1 = crate::signature::sign(SECRET, 1000, b"");
    assert_eq!(
        verify(&key, Some(&v1), &target, 1000, 300),
        Err(V2Error::V1NotAccepted)
    );
}
