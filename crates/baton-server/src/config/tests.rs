//! Tests of the configuration: defaults, the file, the environment and every range.

use super::*;

#[test]
fn env_overrides_file_and_defaults() {
    let dir = std::env::temp_dir().join(format!("baton-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("baton.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:7000\"\nmax_waiting_receives = 5\n",
    )
    .expect("write");
    let env = vec![("BATON_MAX_WAITING_RECEIVES".to_string(), "7".to_string())];
    let config = ServerConfig::load(Some(&file), env).expect("valid");
    assert_eq!(config.listen, "127.0.0.1:7000");
    assert_eq!(config.max_waiting_receives, 7);
    assert_eq!(config.tick_interval_ms, 100);
    let env = vec![
        ("BATON_ENGINE".to_string(), "memory".to_string()),
        ("BATON_FSYNC".to_string(), "interval=5".to_string()),
        ("BATON_REPAIR".to_string(), "true".to_string()),
    ];
    let config = ServerConfig::load(None, env).expect("valid");
    assert_eq!((config.engine, config.repair), (EngineKind::Memory, true));
    assert_eq!(
        config.sync_policy().expect("valid"),
        SyncPolicy::Interval(std::time::Duration::from_millis(5))
    );
}

#[test]
fn the_memory_watermark_defaults_to_a_share_of_the_memory_available() {
    let available = baton_engine::available_memory().expect("procfs");
    let config = ServerConfig::default();
    assert_eq!(config.memory_high_watermark(), available / 100 * 40);
    let env = vec![(
        "BATON_MEMORY_HIGH_WATERMARK_PERCENT".to_string(),
        "10".to_string(),
    )];
    let config = ServerConfig::load(None, env).expect("valid");
    assert_eq!(config.memory_high_watermark(), available / 100 * 10);
    let env = vec![("BATON_MEMORY_HIGH_WATERMARK".to_string(), "0".to_string())];
    let config = ServerConfig::load(None, env).expect("valid");
    assert_eq!(
        config.memory_high_watermark(),
        0,
        "0 switches the alarm off"
    );
}

#[test]
fn unknown_keys_and_bad_ranges_are_refused() {
    let dir = std::env::temp_dir().join(format!("baton-config-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("baton.toml");
    std::fs::write(&file, "lisen = \"x\"\n").expect("write");
    assert!(matches!(
        ServerConfig::load(Some(&file), vec![]),
        Err(ConfigError::Parse(_))
    ));
    let env = vec![("BATON_TICK_INTERVAL_MS".to_string(), "1".to_string())];
    assert!(matches!(
        ServerConfig::load(None, env),
        Err(ConfigError::Invalid {
            key: "tick_interval_ms",
            ..
        })
    ));
    let env = vec![("BATON_FSYNC".to_string(), "sometimes".to_string())];
    assert!(matches!(
        ServerConfig::load(None, env),
        Err(ConfigError::Invalid { key: "fsync", .. })
    ));
    let env = vec![("BATON_ENGINE".to_string(), "paper".to_string())];
    assert!(matches!(
        ServerConfig::load(None, env),
        Err(ConfigError::Parse(_))
    ));
    for (key, value, name) in [
        ("BATON_CALLBACK_MAX_RETRIES", "101", "callback_max_retries"),
        (
            "BATON_CALLBACK_RETRY_DELAY_MS",
            "0",
            "callback_retry_delay_ms",
        ),
        ("BATON_PUSH_BREAKER_FAILURES", "0", "push_breaker_failures"),
        ("BATON_EVENTS_WORKERS", "257", "events_workers"),
        (
            "BATON_MEMORY_HIGH_WATERMARK_PERCENT",
            "0",
            "memory_high_watermark_percent",
        ),
        (
            "BATON_MEMORY_HIGH_WATERMARK",
            "2251799813685248",
            "memory_high_watermark",
        ),
        ("BATON_OUTBOUND_ALLOW", "10.0.0.0/33", "outbound_allow"),
        ("BATON_OUTBOUND_DENY", "not a host", "outbound_deny"),
    ] {
        let env = vec![(key.to_string(), value.to_string())];
        assert!(
            matches!(ServerConfig::load(None, env), Err(ConfigError::Invalid { key, .. }) if key == name),
            "{key}"
        );
    }
    let env = vec![(
        "BATON_OUTBOUND_ALLOW".to_string(),
        "hooks.example.com,10.0.0.0/8".to_string(),
    )];
    assert_eq!(
        ServerConfig::load(None, env).expect("valid").outbound_allow,
        "hooks.example.com,10.0.0.0/8"
    );
    let env = vec![("BATON_LISTEN".to_string(), "nowhere".to_string())];
    assert!(matches!(
        ServerConfig::load(None, env),
        Err(ConfigError::Invalid { key: "listen", .. })
    ));
}

#[test]
fn live_streams_max_is_read_and_bounded() {
    let env = vec![("BATON_LIVE_STREAMS_MAX".to_string(), "3".to_string())];
    assert_eq!(
        ServerConfig::load(None, env)
            .expect("valid")
            .live_streams_max,
        3
    );
    for bad in ["0", "10001"] {
        let env = vec![("BATON_LIVE_STREAMS_MAX".to_string(), bad.to_string())];
        assert!(matches!(
            ServerConfig::load(None, env),
            Err(ConfigError::Invalid {
                key: "live_streams_max",
                ..
            })
        ));
    }
}

#[test]
fn wire_listen_is_auto_off_or_an_address() {
    let http: SocketAddr = "127.0.0.1:9324".parse().expect("address");
    let with = |value: &str| ServerConfig {
        wire_listen: value.to_string(),
        ..ServerConfig::default()
    };
    assert_eq!(
        with("auto").wire_addr(http).expect("valid"),
        Some("127.0.0.1:9325".parse().expect("address"))
    );
    let any_port: SocketAddr = "127.0.0.1:0".parse().expect("address");
    assert_eq!(
        with("auto").wire_addr(any_port).expect("valid"),
        Some(any_port)
    );
    assert_eq!(with("off").wire_addr(http).expect("valid"), None);
    assert_eq!(
        with("0.0.0.0:7000").wire_addr(http).expect("valid"),
        Some("0.0.0.0:7000".parse().expect("address"))
    );
    let last: SocketAddr = "127.0.0.1:65535".parse().expect("address");
    assert!(matches!(
        with("auto").wire_addr(last),
        Err(ConfigError::Invalid {
            key: "wire_listen",
            ..
        })
    ));
    let env = vec![("BATON_WIRE_LISTEN".to_string(), "nowhere".to_string())];
    assert!(matches!(
        ServerConfig::load(None, env),
        Err(ConfigError::Invalid {
            key: "wire_listen",
            ..
        })
    ));
    for bad in ["0", "1000001"] {
        let env = vec![("BATON_WIRE_MAX_INFLIGHT".to_string(), bad.to_string())];
        assert!(matches!(
            ServerConfig::load(None, env),
            Err(ConfigError::Invalid {
                key: "wire_max_inflight",
                ..
            })
        ));
    }
}
