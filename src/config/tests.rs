use super::validate::{self, valid_selector};
use super::*;

const MINIMAL: &str = r#"
[pkcs11]
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "keyward"
pin = { env = "KEYWARD_PIN" }
[store]
path = "keyward.db"
"#;

#[test]
fn minimal_config_gets_defaults() {
    let c = Config::parse(MINIMAL, Path::new("k.toml")).unwrap();
    c.validate().unwrap();
    assert_eq!(c.api.listen.to_string(), "127.0.0.1:8443");
    assert_eq!(c.webhook.listen.to_string(), "0.0.0.0:8444");
    assert_eq!(c.webhook.allowed_sources.len(), 5);
    assert_eq!(c.webhook.max_event_age, Duration::from_secs(30 * 86400));
    assert_eq!(c.pkcs11.rsa_oaep, OaepMode::Auto);
}

fn dynamic(extra: &str) -> Result<Config, ConfigError> {
    let text = format!(
        "{MINIMAL}\n[engines.dynamic]\nenvironment_id = \"3f1c2a9e-0d4b-4c55-9a57-2f1e8b6c7d90\"\n{extra}"
    );
    let c = Config::parse(&text, Path::new("k.toml"))?;
    c.validate().map(|()| c)
}

#[test]
fn dynamic_relay_is_a_bare_host_port() {
    for ok in [
        "relay.dynamicauth.com",
        "relay.dynamic-preprod.xyz:443",
        "127.0.0.1:9443",
        "[::1]:9443",
        "localhost",
    ] {
        dynamic(&format!("relay_base_url = \"{ok}\"\n")).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for (bad, says) in [
        ("https://relay.dynamicauth.com", "has a scheme"),
        ("http://127.0.0.1:9", "has a scheme"),
        ("wss://relay.dynamicauth.com", "has a scheme"),
        ("relay.dynamicauth.com/x", "is not a host[:port]"),
        ("user@relay.dynamicauth.com", "is not a host[:port]"),
        ("relay.dynamicauth.com:", "is not a host[:port]"),
        ("relay.dynamicauth.com:https", "is not a host[:port]"),
        ("relay.dynamicauth.com:70000", "is not a host[:port]"),
        ("relay .com", "is not a host[:port]"),
        ("", "is not a host[:port]"),
    ] {
        let e = dynamic(&format!("relay_base_url = \"{bad}\"\n"))
            .err()
            .unwrap_or_else(|| panic!("accepted {bad:?}"))
            .to_string();
        assert!(e.contains("engines.dynamic.relay_base_url"), "{e}");
        assert!(
            e.contains(says) && e.contains("without a scheme"),
            "{bad:?}: {e}"
        );
    }
}

#[test]
fn dynamic_api_is_https_except_loopback() {
    for ok in [
        "https://app.dynamicauth.com",
        "https://10.0.0.1:8443",
        "http://127.0.0.1:9",
        "http://127.8.9.10",
        "http://[::1]:80",
        "http://localhost:8080",
        "http://LOCALHOST",
    ] {
        dynamic(&format!("api_base_url = \"{ok}\"\n")).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        "http://app.dynamicauth.com",
        "http://10.0.0.1",
        "http://localhost.example.com",
        "http://128.0.0.1",
        "ftp://127.0.0.1",
        "app.dynamicauth.com",
        "https://",
    ] {
        let e = dynamic(&format!("api_base_url = \"{bad}\"\n"))
            .err()
            .unwrap_or_else(|| panic!("accepted {bad:?}"))
            .to_string();
        assert!(
            e.contains("engines.dynamic.api_base_url") && e.contains("expected an https URL"),
            "{e}"
        );
    }
}

#[test]
fn dynamic_rounds_and_derivation_path() {
    let c = dynamic("").unwrap();
    let d = c.engines.dynamic.unwrap();
    assert_eq!(d.max_concurrent_rounds, 8);
    assert_eq!(d.derivation_path, "m/44'/60'/0'/0/0");
    // the SDK's own constant for that path
    assert_eq!(d.derivation_indices().unwrap(), vec![44, 60, 0, 0, 0]);
    let d = dynamic("max_concurrent_rounds = 2\nderivation_path = \"m/44h/60h/1h/0/7\"\n")
        .unwrap()
        .engines
        .dynamic
        .unwrap();
    assert_eq!(d.max_concurrent_rounds, 2);
    assert_eq!(d.derivation_indices().unwrap(), vec![44, 60, 1, 0, 7]);
    for (bad, key) in [
        (
            "max_concurrent_rounds = 0",
            "engines.dynamic.max_concurrent_rounds",
        ),
        (
            "max_concurrent_rounds = 5000",
            "engines.dynamic.max_concurrent_rounds",
        ),
        (
            "derivation_path = \"44'/60'\"",
            "engines.dynamic.derivation_path",
        ),
        (
            "derivation_path = \"m/44'/x/0\"",
            "engines.dynamic.derivation_path",
        ),
        (
            "derivation_path = \"m/44''\"",
            "engines.dynamic.derivation_path",
        ),
        (
            "derivation_path = \"m/2147483648\"",
            "engines.dynamic.derivation_path",
        ),
        (
            "derivation_path = \"m/\"",
            "engines.dynamic.derivation_path",
        ),
        (
            "derivation_path = \"m/-1\"",
            "engines.dynamic.derivation_path",
        ),
    ] {
        let e = dynamic(&format!("{bad}\n"))
            .err()
            .unwrap_or_else(|| panic!("accepted {bad}"))
            .to_string();
        assert!(e.contains(key), "{bad}: {e}");
    }
}

#[test]
fn unknown_key_names_file_and_path() {
    let text = format!("{MINIMAL}\n[webhook]\nlisten_addr = \"x\"\n");
    let e = Config::parse(&text, Path::new("/etc/k.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/etc/k.toml: key `webhook"), "{e}");
    assert!(e.contains("listen_addr"), "{e}");
}

#[test]
fn wrong_type_names_key() {
    let text = MINIMAL.replace(
        "token_label = \"keyward\"",
        "token_label = \"k\"\npool_size = \"many\"",
    );
    let e = Config::parse(&text, Path::new("k.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("pkcs11.pool_size"), "{e}");
}

#[test]
fn inline_pin_is_refused() {
    let text = MINIMAL.replace("pin = { env = \"KEYWARD_PIN\" }", "pin = \"1234\"");
    let e = Config::parse(&text, Path::new("k.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("pkcs11.pin"), "{e}");
    assert!(
        !e.contains("1234"),
        "the refused value must not be echoed: {e}"
    );
}

#[test]
fn bad_values_are_refused() {
    for (from, to, key) in [
        (
            "token_label = \"keyward\"",
            "token_label = \"k\"\nrsa_bits = 2048",
            "pkcs11.rsa_bits",
        ),
        (
            "path = \"keyward.db\"",
            "path = \"k.db\"\n[admin]\nlisten = \"0.0.0.0:9100\"",
            "admin.listen",
        ),
    ] {
        let c = Config::parse(&MINIMAL.replace(from, to), Path::new("k.toml")).unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains(key), "{e}");
    }
}

#[test]
fn log_level_must_be_a_filter_that_logs_keyward() {
    for ok in [
        "info",
        "WARN",
        "debug,hyper=warn",
        "info,keyward=debug",
        "keyward::webhook=trace",
        "off",
    ] {
        assert_eq!(validate::log_level_problem(ok), None, "{ok}");
    }
    for (bad, says) in [
        ("", "is empty"),
        (" , ", "is empty"),
        ("loud", "\"loud\" is not a level"),
        ("verbose,keyward=debug", "\"verbose\" is not a level"),
        ("keyward=loud", "does not parse"),
        ("info,[", "does not parse"),
        ("=info", "does not parse"),
        // the filter does not trim around `=`: serve would drop this directive
        ("info, keyward=debug", "does not parse"),
    ] {
        let m = validate::log_level_problem(bad).unwrap_or_else(|| panic!("accepted {bad:?}"));
        assert!(
            m.contains(says) && m.contains("expected a tracing filter"),
            "{bad:?}: {m}"
        );
    }
    let text = format!("{MINIMAL}\n[log]\nlevel = \"verbose\"\n");
    let e = Config::parse(&text, Path::new("k.toml"))
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("key `log.level`: \"verbose\" is not a level"),
        "{e}"
    );
}

#[test]
fn shipped_configs_pass_the_pure_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for name in ["keyward.example.toml", "keyward.dev.toml"] {
        let text = std::fs::read_to_string(root.join(name)).unwrap();
        let c = Config::parse(&text, &root.join(name)).unwrap();
        assert_eq!(c.empty_path_problem(), None, "{name}");
        assert_eq!(validate::log_level_problem(&c.log.level), None, "{name}");
    }
}

#[test]
fn empty_paths_are_refused_by_key_before_resolution() {
    for (from, to, key) in [
        ("path = \"keyward.db\"", "path = \"\"", "store.path"),
        (
            "module = \"/usr/lib/softhsm/libsofthsm2.so\"",
            "module = \"\"",
            "pkcs11.module",
        ),
        (
            "pin = { env = \"KEYWARD_PIN\" }",
            "pin = { file = \"\" }",
            "pkcs11.pin",
        ),
        (
            "pin = { env = \"KEYWARD_PIN\" }",
            "pin = { env = \"\" }",
            "pkcs11.pin",
        ),
        (
            "path = \"keyward.db\"",
            "path = \"k.db\"\n[api]\nclient_ca = [\"ca.pem\", \"\"]",
            "api.client_ca[1]",
        ),
        (
            "path = \"keyward.db\"",
            "path = \"k.db\"\n[webhook]\ncert = \"\"",
            "webhook.cert",
        ),
        (
            "path = \"keyward.db\"",
            "path = \"k.db\"\n[policy]\nfile = \"\"",
            "policy.file",
        ),
    ] {
        let text = MINIMAL.replace(from, to);
        let c = Config::parse(&text, Path::new("k.toml")).unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains(&format!("key `{key}`: expected ")), "{to}: {e}");
        // load refuses it the same way (not as the directory it would resolve to)
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.toml");
        std::fs::write(&file, &text).unwrap();
        let e = Config::load(&file).unwrap_err().to_string();
        assert!(e.contains(&format!("key `{key}`: expected ")), "{to}: {e}");
    }
}

#[test]
fn check_files_names_every_missing_file_by_key_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pin = d.join("pin");
    std::fs::write(&pin, "1234\n").unwrap();
    std::fs::set_permissions(&pin, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::write(d.join("ca.pem"), "x").unwrap();
    let text = r#"
[pkcs11]
module = "no-such-module.so"
token_label = "keyward"
pin = { file = "pin" }
[store]
path = "no-such-dir/keyward.db"
[api]
cert = "api.pem"
key = "api.key"
client_ca = ["ca.pem", "no-such-ca.pem"]
crls = ["no-such.crl"]
[webhook]
key = "hook.key"
secrets = [{ file = "no-such-secret" }]
"#;
    let file = d.join("k.toml");
    std::fs::write(&file, text).unwrap();
    let c = Config::load(&file).expect("the file itself is valid");
    let e = c.check_files().unwrap_err();
    let ConfigError::Several(all) = &e else {
        panic!("{e}")
    };
    let keys: Vec<String> = all
        .iter()
        .map(|e| match e {
            ConfigError::Invalid { key, .. } => key.clone(),
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(
        keys,
        [
            "webhook.cert",
            "pkcs11.module",
            "store.path",
            "api.cert",
            "api.key",
            "webhook.key",
            "api.client_ca[1]",
            "api.crls[0]",
            "webhook.secrets[0]",
        ]
    );
    let text = e.to_string();
    for (key, path) in [
        ("pkcs11.module", "no-such-module.so"),
        ("api.client_ca[1]", "no-such-ca.pem"),
        ("store.path", "no-such-dir"),
        ("webhook.secrets[0]", "no-such-secret"),
    ] {
        let line = format!(
            "{}: key `{key}`: {}",
            file.display(),
            d.join(path).display()
        );
        assert!(
            text.lines().any(|l| l.starts_with(&line)
                || l.contains(&format!(
                    "key `{key}`: secret file {}",
                    d.join(path).display()
                ))),
            "{line}\n{text}"
        );
    }
    assert!(!text.contains("1234"), "{text}");
}

#[test]
fn selectors() {
    for ok in ["*", "chain:evm", "label:hot", "0b5c1f7e-1234"] {
        assert!(valid_selector(ok), "{ok}");
    }
    for bad in ["chain:btc", "label:", "", "a b"] {
        assert!(!valid_selector(bad), "{bad}");
    }
}

#[test]
fn redacted_output_has_no_secret_source_values_inline() {
    let c = Config::parse(MINIMAL, Path::new("k.toml")).unwrap();
    let out = c.redacted_toml();
    assert!(out.contains("<redacted>"), "{out}");
}
