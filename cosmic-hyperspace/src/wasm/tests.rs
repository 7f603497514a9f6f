use super::*;

#[test]
fn absorbed_answers_are_empty_oks() -> Result<(), WasmError> {
    let core = decode_reflected(&Wire::default(), None)?;
    assert_eq!(core, ReflectedCore::ok(Substance::Empty));
    Ok(())
}

#[test]
fn only_abnormal_returns_break_a_guest() {
    let trap = WasmError::Trap {
        call: "mechtron_handle",
        reason: "unreachable".to_string(),
    };
    assert!(trap.breaks_guest());
    let fuel = WasmError::FuelExhausted {
        call: "mechtron_handle",
        fuel: 10,
    };
    assert!(fuel.breaks_guest());
    let frame = WasmError::OutOfBounds {
        what: "output",
        ptr: 1,
        len: 2,
        memory: 0,
    };
    assert!(!frame.breaks_guest());
    assert_eq!(frame.to_core().status.as_u16(), 500);
}

#[test]
fn percentiles() {
    let mut samples: Vec<u64> = (1..=100).collect();
    let report = FloorReport::of(&mut samples);
    assert_eq!(report.p50_ns, 51);
    assert_eq!(report.p99_ns, 99);
    assert_eq!(FloorReport::of(&mut []).p50_ns, 0);
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<WasmHost>();
    check::<Guest>();
    check::<PongReply>();
    check::<GuestModule>();
}
