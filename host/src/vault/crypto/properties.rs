//! Property tests of sealing: any value round-trips under its key and
//! binding, and any change to a byte of what is stored (the value's
//! ciphertext or the wrapped data key), to any field of the associated
//! data, or to the key, makes opening fail.

use proptest::prelude::*;

use super::*;
use crate::vault::scope::Scope;

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        Just(Scope::Global),
        "[a-z0-9-]{1,12}".prop_map(|workspace| Scope::Workspace { workspace }),
        ("[a-z0-9-]{1,12}", "[a-z0-9-]{1,12}")
            .prop_map(|(workspace, group)| Scope::Group { workspace, group }),
    ]
}

/// A binding's owned fields: id, scope, pinned provider, value version.
type Fields = (String, Scope, Option<String>, i64);

fn fields() -> impl Strategy<Value = Fields> {
    ("[a-zA-Z0-9_-]{0,24}", scope(), proptest::option::of("[a-z0-9-]{0,12}"), any::<i64>())
}

fn binding(f: &Fields) -> Binding<'_> {
    Binding { secret_id: &f.0, scope: &f.1, pinned_provider: f.2.as_deref(), value_version: f.3 }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trips(value in proptest::collection::vec(any::<u8>(), 0..2048), f in fields()) {
        let kek = Kek::generate();
        let sealed = seal(&kek, &binding(&f), &value);
        let opened = open(&kek, &binding(&f), &sealed).unwrap();
        prop_assert_eq!(opened.as_slice(), value.as_slice());
    }

    #[test]
    fn any_changed_byte_fails(
        value in proptest::collection::vec(any::<u8>(), 0..512),
        f in fields(),
        in_dek: bool,
        at: usize,
        flip in 1u8..,
    ) {
        let kek = Kek::generate();
        let mut sealed = seal(&kek, &binding(&f), &value);
        let bytes = if in_dek { &mut sealed.wrapped_dek } else { &mut sealed.ciphertext };
        let at = at % bytes.len();
        bytes[at] ^= flip;
        prop_assert_eq!(open(&kek, &binding(&f), &sealed), Err(DecryptError));
    }

    #[test]
    fn cut_or_extended_fails(value in proptest::collection::vec(any::<u8>(), 0..512), f in fields(), cut: bool) {
        let kek = Kek::generate();
        let mut sealed = seal(&kek, &binding(&f), &value);
        if cut { sealed.ciphertext.pop(); } else { sealed.ciphertext.push(0); }
        prop_assert_eq!(open(&kek, &binding(&f), &sealed), Err(DecryptError));
    }

    #[test]
    fn other_associated_data_fails(value in proptest::collection::vec(any::<u8>(), 0..256), f in fields(), g in fields()) {
        prop_assume!(f != g);
        let kek = Kek::generate();
        let sealed = seal(&kek, &binding(&f), &value);
        prop_assert_eq!(open(&kek, &binding(&g), &sealed), Err(DecryptError));
    }

    #[test]
    fn other_key_fails(value in proptest::collection::vec(any::<u8>(), 0..256), f in fields()) {
        let sealed = seal(&Kek::generate(), &binding(&f), &value);
        prop_assert_eq!(open(&Kek::generate(), &binding(&f), &sealed), Err(DecryptError));
    }
}
