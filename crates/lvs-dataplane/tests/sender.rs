//! `PacketSender` (batched `sendmmsg` TX) over a veth pair between two private network
//! namespaces. Needs root and skips (with a message) otherwise. Every loop is bounded in count
//! and time; no frame leaves the namespaces created here.

mod common;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{
    build_frame, parse_frame, run_id, skip, spawn_in_netns, wait_flag, Parsed, Seen, VethNet, DATA,
};
use lvs_dataplane::{PacketSender, PacketSocket, RingConfig, RxConfig};

const SEC: Duration = Duration::from_secs(1);

#[test]
fn sender_batches_arrive_intact_exactly_once() {
    if skip("sender_batches_arrive_intact_exactly_once") {
        return;
    }
    const N: u32 = 1000;
    const SLOTS: usize = 32;
    let net = VethNet::new("pf");
    let run = run_id();
    let rx_open = AtomicBool::new(false);
    let rx_cfg = RingConfig {
        rx: Some(RxConfig {
            block_size: 1 << 16,
            block_count: 64,
            retire_timeout_ms: 5,
            ..RxConfig::default()
        }),
        tx: None,
        ..RingConfig::default()
    };
    let (seen, counters) = std::thread::scope(|s| {
        let b = spawn_in_netns(s, &net.b.name, || {
            let mut sock = PacketSocket::open(&net.if_b, &rx_cfg).expect("open RX");
            rx_open.store(true, Ordering::Release);
            let mut seen = Seen::new(N as usize);
            let deadline = Instant::now() + 20 * SEC;
            while !seen.complete() && Instant::now() < deadline {
                sock.recv(Duration::from_millis(20), |f| match parse_frame(f, run) {
                    Parsed::Ours { kind: DATA, seq } => seen.add(seq),
                    Parsed::Corrupt(why) => panic!("corrupt frame: {why}"),
                    _ => {}
                })
                .expect("recv");
            }
            seen
        });
        let a = spawn_in_netns(s, &net.a.name, || {
            let mut tx = PacketSender::open(&net.if_a, SLOTS, 2048, true).expect("open sender");
            wait_flag(&rx_open, 10 * SEC, "the receiver");
            let big = vec![0u8; tx.max_frame_len() + 1];
            let e = tx.try_send(&big).expect_err("a frame longer than the link takes is refused");
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
            assert_eq!(tx.pending(), 0, "a refused frame is not queued");
            let mut buf = Vec::new();
            for seq in 0..N {
                build_frame(&mut buf, run, DATA, seq);
                let mut queued = false;
                for _ in 0..1000 {
                    if tx.try_send(&buf).expect("try_send") {
                        queued = true;
                        break;
                    }
                    assert_eq!(tx.pending(), SLOTS, "only a full queue refuses a frame");
                    tx.flush().expect("flush");
                    std::thread::sleep(Duration::from_micros(100));
                }
                assert!(queued, "frame {seq}: no slot became free");
            }
            let deadline = Instant::now() + 5 * SEC;
            while tx.pending() > 0 && Instant::now() < deadline {
                tx.flush().expect("flush");
                std::thread::sleep(Duration::from_millis(1));
            }
            assert_eq!(tx.pending(), 0, "the queue drained");
            tx.counters()
        });
        let counters = a.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        (b.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), counters)
    });
    eprintln!("sender counters {counters:?}");
    seen.assert_exactly_once("frames sent through PacketSender");
    assert_eq!(counters.frames, u64::from(N));
    assert_eq!(counters.errors, 0);
    // One system call per full batch (plus retries on back-pressure), never one per frame.
    assert!(counters.kicks < u64::from(N) / 4, "{counters:?}");
}
