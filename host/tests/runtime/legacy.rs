//! Components built for the frozen contract 0.1.0 (`tests/legacy`: the
//! Telegram example and the hostile component, from the same sources as
//! their 0.2.0 builds) still load and work beside 0.2.0 ones.

use aivault_test_artifacts as artifacts;

use crate::support::{hosts, load_test_component, request, secrets};

const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

// Each source builds for both contracts, and the host tells them apart.
#[test]
fn both_contracts_load() {
    for (component, expected) in [
        (artifacts::TELEGRAM_V0_1_0, "0.1.0"),
        (artifacts::EXAMPLE_TELEGRAM, "0.2.0"),
        (artifacts::HOSTILE_V0_1_0, "0.1.0"),
        (artifacts::HOSTILE, "0.2.0"),
    ] {
        let plugin = load_test_component(component).unwrap();
        assert_eq!(plugin.wit_version(), expected, "{component}");
    }
}

// The 0.1.0 Telegram provider validates and injects exactly as its 0.2.0
// build does, and declares nothing to refresh.
#[test]
fn a_0_1_0_provider_still_works() {
    let [legacy, current] =
        [artifacts::TELEGRAM_V0_1_0, artifacts::EXAMPLE_TELEGRAM].map(|c| load_test_component(c).unwrap());
    assert_eq!(legacy.manifest(), current.manifest());
    assert!(legacy.manifest().credential_kinds.iter().all(|k| k.derived.is_empty()));
    legacy.validate_secret("TELEGRAM_BOT_TOKEN", TOKEN).unwrap();
    let err = legacy.validate_secret("TELEGRAM_BOT_TOKEN", "not-a-token").unwrap_err();
    assert!(err.to_string().contains("a Telegram bot token looks like"), "{err}");
    let req = request("telegram/bot", "default", "GET", "api.telegram.org", "/getMe");
    let out = [&legacy, &current].map(|p| p.inject(&req, &secrets(&[("token", TOKEN)]), &hosts(p)).unwrap());
    assert_eq!(out[0].path, format!("/bot{TOKEN}/getMe"));
    assert_eq!(out[0], out[1]);
}
