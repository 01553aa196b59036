//! The database goes away under two running nodes and comes back (its own test binary:
//! it stops the binary's PostgreSQL cluster, which no other test may share meanwhile).

mod common;

use std::time::{Duration, Instant};

use common::daemon::{keyward_ok, sign, simulate, Daemon};
use common::{pg, Env};

const CLIENTS: &str = r#"
[[clients]]
identity = "test-client"
wallets = ["*"]
operations = ["evm.message"]
"#;

/// The database stops while both nodes serve: signing answers 503 `store_unavailable`
/// (nothing returned unaudited), readiness turns 503 within 5 s, webhooks 503; when it
/// comes back both nodes recover without a restart.
#[test]
fn both_nodes_refuse_while_the_database_is_down_and_recover_when_it_returns() {
    let env = Env::with_extra(CLIENTS);
    pg::use_postgres(&env);
    let a = Daemon::start(&env);
    let b = Daemon::start(&env);
    let wallet = simulate(&env, &a, "delegation", None);
    let cluster = pg::shared();
    cluster.stop();
    let down = Instant::now();
    for d in [&a, &b] {
        assert_eq!(
            sign(&env, d, &wallet),
            (503, "store_unavailable".to_owned())
        );
        let (status, body) = common::daemon::http_get(&d.admin, "/readyz");
        assert_eq!(status, 503, "{body}");
        let out = common::daemon::simulate_output(&env, d, "delegation", None);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(" 503"),
            "{}",
            common::daemon::text(&out)
        );
    }
    assert!(down.elapsed() < Duration::from_secs(60));
    cluster.restart();
    cluster.wait_ready();
    for d in [&a, &b] {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, _) = common::daemon::http_get(&d.admin, "/readyz");
            if status == 200 {
                break;
            }
            assert!(Instant::now() < until, "a node never recovered");
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(sign(&env, d, &wallet), (200, String::new()));
    }
    let fresh = simulate(&env, &b, "delegation", None);
    assert_eq!(sign(&env, &a, &fresh), (200, String::new()));
    let out = keyward_ok(&env, &["audit", "verify"]);
    assert!(out.contains("audit chain OK"), "{out}");
}
