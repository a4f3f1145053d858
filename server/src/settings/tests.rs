//! The settings' sources, their order and their checks.

use super::*;

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .unwrap_or_else(|e| panic!("{e}"));
    std::io::Write::write_all(&mut f, text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    f
}

#[test]
fn a_gpu_device_takes_the_gpu_batch_defaults_unless_a_source_sets_them() {
    let gpu = Overrides {
        device: Some("cuda:0".into()),
        ..Overrides::default()
    };
    let s = Settings::load(None, &gpu).unwrap();
    assert_eq!(
        (s.limits.max_batch_rows, s.limits.max_batch_tokens),
        (512, 131_072)
    );
    // A file that names a GPU device gets them too; a value it sets stays.
    let f = file("device = \"cuda:1\"\n[limits]\nmax_batch_rows = 32\n");
    let s = Settings::load(Some(f.path()), &Overrides::default()).unwrap();
    assert_eq!(
        (s.limits.max_batch_rows, s.limits.max_batch_tokens),
        (32, 131_072)
    );
    let s = Settings::load(None, &Overrides::default()).unwrap();
    assert_eq!(
        (s.limits.max_batch_rows, s.limits.max_batch_tokens),
        (64, 16_384)
    );
    let f = file("dtype = \"fp8\"\n");
    let err = Settings::load(Some(f.path()), &Overrides::default()).unwrap_err();
    assert!(
        format!("{err:#}").contains("setting dtype \"fp8\": use auto, f32 or bf16"),
        "{err:#}"
    );
}

#[test]
fn a_file_overrides_defaults_and_flags_override_the_file() {
    let f = file("listen = \"127.0.0.1:7000\"\n[limits]\nmax_batch_rows = 8\n");
    let s =
        Settings::load(Some(f.path()), &Overrides::default()).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(s.listen, "127.0.0.1:7000");
    assert_eq!(s.limits.max_batch_rows, 8);
    assert_eq!(s.limits.max_batch_items, 256, "untouched defaults stay");
    let flags = Overrides {
        listen: Some("127.0.0.1:7001".into()),
        ..Overrides::default()
    };
    let s = Settings::load(Some(f.path()), &flags).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(s.listen, "127.0.0.1:7001");
}

#[test]
fn bad_settings_are_refused_naming_the_field() {
    let err = Settings::load(
        Some(file("[limits]\nmax_hops = 3\n").path()),
        &Overrides::default(),
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("limits.max_hops = 3"),
        "{err:#}"
    );
    let err =
        Settings::load(Some(file("listn = \"x\"\n").path()), &Overrides::default()).unwrap_err();
    assert!(format!("{err:#}").contains("listn"), "{err:#}");
    let err = Settings::load(
        Some(file("log_format = \"xml\"\n").path()),
        &Overrides::default(),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("log_format"), "{err:#}");
    // Redis TLS files with a plaintext URL: refused naming the URL, its password hidden.
    let err = Settings::load(
        Some(
            file(
                "[store]\nredis_url = \"redis://:hunter2@h:6379/\"\n\
                 redis_ca_cert = \"ca.pem\"\n",
            )
            .path(),
        ),
        &Overrides::default(),
    )
    .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("rediss://") && text.contains("redis://:***@h:6379/"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    let err = Settings::load(
        Some(file("[store]\nredis_client_cert = \"c.pem\"\n").path()),
        &Overrides::default(),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("redis_client_key"), "{err:#}");
}

/// deploy/copl-server.example.toml loads, and names every option (a new option
/// must be documented there).
#[test]
fn the_example_config_loads_and_names_every_option() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/copl-server.example.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let loaded =
        Settings::load(Some(&path), &Overrides::default()).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(loaded.store.backend, "embedded");
    let defaults = serde_json::to_value(Settings::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut missing = Vec::new();
    let mut keys = |section: &str, value: &serde_json::Value| {
        for (key, v) in value.as_object().into_iter().flatten() {
            if v.is_object() {
                continue;
            }
            // An option is named as `key =` (or commented out as `# key =`).
            if !text.lines().any(|l| {
                let l = l.trim_start_matches('#').trim();
                l.starts_with(&format!("{key} =")) || l.starts_with(&format!("{key}="))
            }) {
                missing.push(format!("{section}{key}"));
            }
        }
    };
    keys("", &defaults);
    for (section, value) in defaults.as_object().into_iter().flatten() {
        if value.is_object() {
            keys(&format!("{section}."), value);
            assert!(
                text.contains(&format!("[{section}]")),
                "no [{section}] section"
            );
        }
    }
    assert!(missing.is_empty(), "undocumented options: {missing:?}");
}

#[test]
fn a_redis_urls_password_is_never_shown() {
    assert_eq!(
        super::redacted("redis://:s3cret@h:6379/0"),
        "redis://:***@h:6379/0"
    );
    assert_eq!(super::redacted("rediss://u:p@ss@h/1"), "rediss://u:***@h/1");
    assert_eq!(super::redacted("redis://h:6379/"), "redis://h:6379/");
    assert_eq!(super::redacted("redis://user@h/"), "redis://user@h/");
    assert_eq!(super::redacted("not a url"), "not a url");
}
