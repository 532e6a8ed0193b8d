//! A component built for `aivault:provider@0.0.1`, which no aivault supports.

wit_bindgen::generate!({ path: "wit", world: "provider-component" });

struct Old;

impl exports::aivault::provider::provider::Guest for Old {
    fn describe() -> String {
        "old".to_string()
    }
}

export!(Old);
