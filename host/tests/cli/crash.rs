//! Crash safety: `secrets import`, `rotate-master` and several concurrent
//! writers killed with SIGKILL at random moments, again and again. After
//! each kill the database passes SQLite's own check, what was reported done
//! is there and decrypts, nothing half-written is visible, and the audit
//! log verifies. The seed of the random moments is printed, and
//! `AIVAULT_CRASH_SEED` replays a run.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::{OPENAI_KEY, Vault};

/// A small deterministic generator: the test's randomness must be replayable.
struct Moments(u64);

impl Moments {
    fn new(test: &str) -> Self {
        let seed =
            std::env::var("AIVAULT_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
            });
        eprintln!("{test}: AIVAULT_CRASH_SEED={seed}");
        Moments(seed | 1)
    }

    /// A moment between zero and `max`.
    fn within(&mut self, max: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        max.mul_f64((self.0 % 10_000) as f64 / 10_000.0)
    }
}

fn kill_after(mut child: Child, after: Duration) -> bool {
    std::thread::sleep(after);
    let finished = child.try_wait().unwrap().is_some();
    let _ = child.kill(); // SIGKILL
    child.wait().unwrap();
    finished
}

/// The checks every kill must leave true.
fn assert_whole(vault: &Vault, what: &str) {
    let check: String = vault.db().query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok", "{what}: SQLite's integrity check");
    let (ok, out, err) = vault.run(&["doctor"]);
    assert!(ok, "{what}: doctor failed:\n{out}{err}");
    let (ok, out, err) = vault.run(&["audit", "verify"]);
    assert!(ok, "{what}: the audit log does not verify:\n{out}{err}");
}

fn secret_names(vault: &Vault, prefix: &str) -> usize {
    vault
        .db()
        .query_row("SELECT count(*) FROM secrets WHERE name LIKE ?1 || '%'", [prefix], |r| r.get(0))
        .unwrap()
}

// A 5,000-entry import, killed part-way again and again: each import is
// one transaction, so after a kill either all of it is there (and every
// value decrypts) or none of it.
#[test]
fn import_killed_at_random_moments() {
    let vault = Vault::new();
    vault.ok(&["secrets", "create", "--name", "BEFORE_IMPORTS", "--value", "before-imports-1"]);
    let dir = tempfile::tempdir().unwrap();
    // How long a whole import takes here, to kill inside it.
    let timed = |round: usize| {
        let file = dir.path().join(format!("round{round}.env"));
        let text: String =
            (0..5000).map(|i| format!("CRASH_{round}_{i:04}=value-{round}-{i:04}-abcdef\n")).collect();
        std::fs::write(&file, text).unwrap();
        file
    };
    let first = timed(0);
    let started = Instant::now();
    vault.ok(&["secrets", "import", "--env-file", first.to_str().unwrap()]);
    let whole = started.elapsed();
    assert_eq!(secret_names(&vault, "CRASH_0_"), 5000);

    let mut moments = Moments::new("import_killed_at_random_moments");
    let mut cut = 0;
    for round in 1..=6 {
        let file = timed(round);
        let child = vault
            .std_cmd(&["secrets", "import", "--env-file", file.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Past start-up (a fifth of the whole) and up to a little after the end.
        let after = whole / 5 + moments.within(whole);
        let finished = kill_after(child, after);
        let what = format!("import round {round}");
        let present = secret_names(&vault, &format!("CRASH_{round}_"));
        eprintln!("{what}: killed after {after:?} of {whole:?}: {present} of 5000 visible");
        cut += usize::from(present == 0);
        assert!(present == 0 || present == 5000, "{what}: {present} of 5000 entries are visible");
        if finished {
            assert_eq!(present, 5000, "{what}: the import finished but its entries are missing");
        }
        assert_whole(&vault, &what);
    }
    assert!(cut > 0, "no import was cut short: the moments missed every import");
    let listed = vault.ok(&["secrets", "list"]);
    assert!(listed.contains("BEFORE_IMPORTS") && listed.contains("CRASH_0_4999"));
}

// rotate-master killed at random moments (the tests in sealed.rs stop it
// at each named step; these stop it anywhere): the vault always opens with
// the key its database names and every value decrypts.
#[test]
fn rotate_master_killed_at_random_moments() {
    let vault = Vault::new();
    for i in 0..200 {
        vault.ok(&[
            "secrets",
            "create",
            "--name",
            &format!("ROTATED_{i:03}"),
            "--value",
            &format!("rotated-value-{i:03}"),
        ]);
    }
    let started = Instant::now();
    vault.ok(&["rotate-master"]);
    let whole = started.elapsed();
    let mut moments = Moments::new("rotate_master_killed_at_random_moments");
    for round in 1..=6 {
        let child =
            vault.std_cmd(&["rotate-master"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        kill_after(child, moments.within(whole.mul_f64(1.2)));
        let what = format!("rotate-master round {round}");
        assert_whole(&vault, &what);
        let (ok, out, _) = vault.run(&["doctor"]);
        assert!(ok && out.contains("200 of 200 values decrypt"), "{what}: {out}");
    }
    vault.ok(&["rotate-master"]);
    assert_whole(&vault, "a rotation after the kills");
}

// Several processes create and rotate secrets at once while one of them
// is killed at a random moment, round after round; one of the creates
// is a provider's key, which also provisions a credential. Every create
// that reported success is there (with its credential), every value
// decrypts (a rotation is whole or absent), no credential is missing a
// secret, and the log verifies.
#[test]
fn concurrent_writers_killed_at_random_moments() {
    let vault = Vault::new();
    for name in ["ROTATED_A", "ROTATED_B"] {
        vault.ok(&["secrets", "create", "--name", name, "--value", &format!("{name}-value-0")]);
    }
    let id_of = |name: &str| -> String {
        vault.db().query_row("SELECT id FROM secrets WHERE name = ?1", [name], |r| r.get(0)).unwrap()
    };
    let ids = [id_of("ROTATED_A"), id_of("ROTATED_B")];
    let mut moments = Moments::new("concurrent_writers_killed_at_random_moments");
    let mut reported: Vec<String> = Vec::new();
    for round in 0..6 {
        let mut children = Vec::new();
        let workspace = format!("ws-{round}");
        let provider_key = ["secrets", "create", "--name", "OPENAI_API_KEY", "--value", OPENAI_KEY];
        let mut create = vault.std_cmd(&provider_key);
        create.args(["--scope", "workspace", "--workspace-id", &workspace]);
        children.push((Some(format!("OPENAI_API_KEY@{workspace}")), create));
        for (w, id) in ids.iter().enumerate() {
            let name = format!("CREATED_{round}_{w}");
            let value = format!("{name}-value");
            let create = vault.std_cmd(&["secrets", "create", "--name", &name, "--value", &value]);
            children.push((Some(name), create));
            let value = format!("rotated-{round}-{w}-value");
            children.push((None, vault.std_cmd(&["secrets", "rotate", "--id", id, "--value", &value])));
        }
        let mut running: Vec<_> = children
            .into_iter()
            .map(|(name, mut cmd)| (name, cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()))
            .collect();
        // One of them is killed at a random moment; the others run on.
        let victim = round % running.len();
        std::thread::sleep(moments.within(Duration::from_millis(300)));
        let _ = running[victim].1.kill(); // SIGKILL
        for (i, (name, child)) in running.iter_mut().enumerate() {
            let done = child.wait().unwrap().success();
            match name {
                Some(name) if done && i != victim => reported.push(name.clone()),
                None if i != victim => assert!(done, "a rotation that was not killed failed"),
                _ => {}
            }
        }
        let what = format!("writers round {round}");
        assert_whole(&vault, &what);
        for name in &reported {
            let found: usize = match name.split_once('@') {
                Some((name, workspace)) => vault
                    .db()
                    .query_row(
                        "SELECT count(*) FROM secrets s JOIN credential_secrets c ON c.secret_id = s.id
                         WHERE s.name = ?1 AND s.workspace_id = ?2",
                        [name, workspace],
                        |r| r.get(0),
                    )
                    .unwrap(),
                None => secret_names(&vault, name),
            };
            assert_eq!(found, 1, "{what}: {name} was reported created but is missing (or has no credential)");
        }
        let half_written: usize = vault
            .db()
            .query_row(
                "SELECT count(*) FROM credentials c WHERE NOT EXISTS
                     (SELECT 1 FROM credential_secrets s WHERE s.credential_id = c.id)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(half_written, 0, "{what}: a credential without its secret");
        let total: usize = vault.db().query_row("SELECT count(*) FROM secrets", [], |r| r.get(0)).unwrap();
        let (ok, out, _) = vault.run(&["doctor"]);
        assert!(ok && out.contains(&format!("{total} of {total} values decrypt")), "{what}: {out}");
    }
    assert!(reported.len() >= 6, "most creates should have succeeded: {reported:?}");
    vault.assert_nowhere(OPENAI_KEY);
}
