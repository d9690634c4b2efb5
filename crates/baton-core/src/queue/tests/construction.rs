//! Construction and configuration: queue kind by name, config updates.

use super::*;

// ---------------------------------------------------------------------------------------------
// Construction and configuration.

#[test]
fn queue_kind_must_match_its_name_and_cannot_change() {
    let fifo_config = QueueConfig {
        fifo: true,
        ..QueueConfig::default()
    };
    let standard_name = QueueName::new("q").unwrap();
    assert!(matches!(
        Queue::new(standard_name.clone(), fifo_config.clone(), QueueLimits::default(), 1),
        Err(QueueError::InvalidParameter { field, .. }) if field == "fifo"
    ));
    let mut queue = standard().queue();
    assert!(matches!(
        queue.update_config(fifo_config),
        Err(QueueError::InvalidParameter { field, .. }) if field == "fifo"
    ));
    assert!(!queue.is_fifo());
}

#[test]
fn updated_config_applies_to_later_operations() {
    let mut h = Harness::new(&standard());
    h.run("send a");
    let config = QueueConfig {
        visibility_timeout_ms: 10,
        delay_ms: 5,
        ..QueueConfig::default()
    };
    h.queue.update_config(config.clone()).unwrap();
    assert_eq!(h.queue.config(), &config);
    for (step, expected) in [
        ("recv 1", "a"),
        ("+10", ""),
        ("send b", "b"),
        ("recv 5", "a"),
        ("+5", ""),
        ("recv 5", "b"),
    ] {
        assert_eq!(h.run(step), expected, "{step}");
    }
}
