//! AF_PACKET ring tests over a veth pair between two private network
//! namespaces. They need root and skip (with a message) otherwise. Every loop
//! is bounded in count and time; no frame leaves the namespaces created here.

mod common;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{
    build_flow_frame, build_frame, flow_of, in_netns, join_all, parse_frame, run_id, set_kind, skip,
    spawn_in_netns, wait_flag, Parsed, Seen, VethNet, DATA, ECHO, WARMUP,
};
use lvs_dataplane::{Fanout, FanoutMode, FrameIo, MemIo, PacketSocket, RingConfig, RxConfig, TxConfig};

const SEC: Duration = Duration::from_secs(1);

/// RX ring big enough to hold every frame of a test run without reading.
fn big_rx() -> RxConfig {
    RxConfig {
        block_size: 1 << 16,
        block_count: 64,
        frame_size: 2048,
        retire_timeout_ms: 5,
        fill_rxhash: true,
    }
}

/// A deliberately small TX ring (32 slots) so the tests wrap it many times
/// and exercise the ring-full path.
fn small_tx() -> TxConfig {
    TxConfig { block_size: 1 << 14, block_count: 4, frame_size: 2048 }
}

fn rx_only(rx: RxConfig) -> RingConfig {
    RingConfig { rx: Some(rx), tx: None, poll_timeout: Duration::from_millis(20), ..RingConfig::default() }
}

fn tx_only(tx: TxConfig) -> RingConfig {
    RingConfig { rx: None, tx: Some(tx), ..RingConfig::default() }
}

/// Sends warm-up frames until the peer reports one (`ready`), so the data
/// phase does not race the kernel activating the veth queues.
fn warm_up(sock: &mut PacketSocket, run: u32, ready: &AtomicBool) {
    let deadline = Instant::now() + 5 * SEC;
    let mut buf = Vec::new();
    let mut seq = 0;
    while !ready.load(Ordering::Acquire) {
        assert!(Instant::now() < deadline, "peer saw no warm-up frame within 5 s");
        build_frame(&mut buf, run, WARMUP, seq);
        seq += 1;
        if sock.try_send(&buf).expect("queue warm-up frame") {
            sock.flush().expect("kick warm-up frame");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends data frames `0..n` with batched kicks; returns the time taken until
/// the kernel released every TX slot.
fn send_all(sock: &mut PacketSocket, run: u32, n: u32) -> Duration {
    send_all_flows(sock, run, n, None)
}

/// Like [`send_all`]; with `Some(flows)`, frame `seq` is an IPv4/UDP packet of
/// flow `seq % flows`.
fn send_all_flows(sock: &mut PacketSocket, run: u32, n: u32, flows: Option<u16>) -> Duration {
    let t0 = Instant::now();
    let mut buf = Vec::new();
    for seq in 0..n {
        match flows {
            Some(f) => build_flow_frame(&mut buf, run, DATA, seq, (seq % u32::from(f)) as u16),
            None => build_frame(&mut buf, run, DATA, seq),
        }
        assert!(sock.send_wait(&buf, 5 * SEC).expect("send_wait"), "no free TX slot within 5 s at seq {seq}");
        // Kick every 48 frames: more than the 32-slot test ring holds, so the
        // ring-full path (flush + poll for a free slot) runs too.
        if seq % 48 == 47 {
            sock.flush().expect("flush");
        }
    }
    assert!(sock.wait_tx_complete(5 * SEC).expect("wait_tx_complete"), "TX ring did not drain within 5 s");
    t0.elapsed()
}

/// Sorts one received frame: warm-ups set `ready`, data frames of `kind` are
/// counted; corrupt frames fail the test.
fn classify(f: &[u8], run: u32, kind: u8, ready: &AtomicBool, seen: &mut Seen) -> bool {
    match parse_frame(f, run) {
        Parsed::Ours { kind: WARMUP, .. } => {
            ready.store(true, Ordering::Release);
            false
        }
        Parsed::Ours { kind: k, seq } if k == kind => {
            seen.add(seq);
            true
        }
        Parsed::Corrupt(e) => panic!("corrupt frame: {e}"),
        _ => false,
    }
}

/// Receives until all `n` data frames arrived (then lingers 100 ms to catch
/// duplicates) or `timeout` passes.
fn receive_all(sock: &mut PacketSocket, run: u32, n: u32, ready: &AtomicBool, timeout: Duration) -> Seen {
    let mut seen = Seen::new(n as usize);
    let deadline = Instant::now() + timeout;
    let mut complete_at: Option<Instant> = None;
    while Instant::now() < deadline {
        sock.recv(Duration::from_millis(20), |f| {
            classify(f, run, DATA, ready, &mut seen);
        })
        .expect("recv");
        if seen.complete() {
            let t = *complete_at.get_or_insert_with(Instant::now);
            if t.elapsed() > Duration::from_millis(100) {
                break;
            }
        }
    }
    seen
}

/// The future packet path in miniature, written against [`FrameIo`]: echo
/// every data frame back with its kind changed to ECHO.
fn echo_batch(
    io: &mut dyn FrameIo,
    run: u32,
    ready: &AtomicBool,
    seen: &mut Seen,
    scratch: &mut Vec<Vec<u8>>,
) -> io::Result<usize> {
    scratch.clear();
    io.recv_batch(&mut |f| {
        if classify(f, run, DATA, ready, seen) {
            let mut v = f.to_vec();
            set_kind(&mut v, ECHO);
            scratch.push(v);
        }
    })?;
    for f in scratch.iter() {
        if !io.send(f)? {
            return Err(io::Error::other("no free TX slot for an echo"));
        }
    }
    io.flush()?;
    Ok(scratch.len())
}

#[test]
fn test_frames_round_trip_and_detect_corruption() {
    let run = run_id();
    let mut buf = Vec::new();
    for seq in [0, 1, 37, 999] {
        build_frame(&mut buf, run, DATA, seq);
        assert_eq!(parse_frame(&buf, run), Parsed::Ours { kind: DATA, seq });
        assert_eq!(parse_frame(&buf, run ^ 1), Parsed::Foreign);
        build_flow_frame(&mut buf, run, WARMUP, seq, 5);
        assert_eq!(parse_frame(&buf, run), Parsed::Ours { kind: WARMUP, seq });
        assert_eq!(flow_of(&buf), Some(5));
        set_kind(&mut buf, ECHO);
        assert_eq!(parse_frame(&buf, run), Parsed::Ours { kind: ECHO, seq });
        let last = buf.len() - 1;
        buf[last] ^= 0xff;
        assert!(matches!(parse_frame(&buf, run), Parsed::Corrupt(_)));
        buf.pop();
        assert!(matches!(parse_frame(&buf, run), Parsed::Corrupt(_)));
    }
    assert_eq!(parse_frame(&[0u8; 60], run), Parsed::Foreign);
}

#[test]
fn echo_batch_runs_on_mem_io() {
    let run = run_id();
    let ready = AtomicBool::new(false);
    let mut io = MemIo::with_limits(8, 64);
    let mut buf = Vec::new();
    build_frame(&mut buf, run, WARMUP, 0);
    io.push_rx(buf.clone());
    for seq in 0..20 {
        build_frame(&mut buf, run, DATA, seq);
        io.push_rx(buf.clone());
    }
    io.push_rx(vec![0u8; 60]); // foreign frame
    let mut seen = Seen::new(20);
    let mut scratch = Vec::new();
    assert_eq!(echo_batch(&mut io, run, &ready, &mut seen, &mut scratch).unwrap(), 20);
    assert!(ready.load(Ordering::Acquire));
    seen.assert_exactly_once("MemIo echo");
    let sent = io.take_sent();
    assert_eq!(sent.len(), 20);
    for (seq, f) in sent.iter().enumerate() {
        assert_eq!(parse_frame(f, run), Parsed::Ours { kind: ECHO, seq: seq as u32 });
    }
}

/// A's TX ring sends N frames across the veth; B's RX ring receives every one
/// intact exactly once and echoes it through B's TX ring (same mapping as its
/// RX ring) back to A's RX ring (same mapping as A's TX ring).
#[test]
fn tx_ring_frames_cross_veth_intact_and_echo_back() {
    if skip("tx_ring_frames_cross_veth_intact_and_echo_back") {
        return;
    }
    const N: u32 = 1000;
    let net = VethNet::new("t");
    let run = run_id();
    let ready = AtomicBool::new(false);
    let b_open = AtomicBool::new(false);
    let both = |poll_ms| RingConfig {
        rx: Some(big_rx()),
        tx: Some(small_tx()),
        poll_timeout: Duration::from_millis(poll_ms),
        ..RingConfig::default()
    };
    let (b_res, a_res) = std::thread::scope(|s| {
        let b = spawn_in_netns(s, &net.b.name, || {
            let mut sock = PacketSocket::open(&net.if_b, &both(200)).expect("open B");
            assert_eq!(sock.mapping_len(), (1 << 16) * 64 + (1 << 14) * 4);
            assert_eq!(sock.tx_capacity(), 32);
            b_open.store(true, Ordering::Release);
            let mut seen = Seen::new(N as usize);
            let mut scratch = Vec::new();
            let deadline = Instant::now() + 20 * SEC;
            while !seen.complete() && Instant::now() < deadline {
                echo_batch(&mut sock, run, &ready, &mut seen, &mut scratch).expect("echo batch");
            }
            assert!(sock.wait_tx_complete(5 * SEC).expect("wait_tx_complete"), "B TX ring did not drain");
            (seen, sock.stats().expect("stats"), sock.counters())
        });
        let a = spawn_in_netns(s, &net.a.name, || {
            let mut sock = PacketSocket::open(&net.if_a, &both(20)).expect("open A");
            wait_flag(&b_open, 10 * SEC, "B's socket");
            warm_up(&mut sock, run, &ready);
            let tx_time = send_all(&mut sock, run, N);
            let mut echoes = Seen::new(N as usize);
            let deadline = Instant::now() + 20 * SEC;
            while !echoes.complete() && Instant::now() < deadline {
                sock.recv(Duration::from_millis(20), |f| {
                    classify(f, run, ECHO, &ready, &mut echoes);
                })
                .expect("recv echoes");
            }
            // Linger briefly to catch duplicated echoes.
            sock.recv(Duration::from_millis(50), |f| {
                classify(f, run, ECHO, &ready, &mut echoes);
            })
            .expect("recv echoes");
            (echoes, tx_time, sock.counters())
        });
        (b.join(), a.join())
    });
    let (b_seen, b_stats, b_counters) = b_res.unwrap_or_else(|p| std::panic::resume_unwind(p));
    let (echoes, tx_time, a_counters) = a_res.unwrap_or_else(|p| std::panic::resume_unwind(p));
    eprintln!(
        "A->B: {N} frames queued and released in {tx_time:?}; A counters {a_counters:?}; \
         B counters {b_counters:?}; B kernel stats {b_stats:?}"
    );
    b_seen.assert_exactly_once("B received");
    echoes.assert_exactly_once("A received echoes");
    assert_eq!(b_stats.drops, 0, "B's RX ring dropped frames");
    assert!(b_stats.packets >= u64::from(N), "B's kernel packet count {} < {N}", b_stats.packets);
    assert!(a_counters.tx_ring_full > 0, "the 32-slot TX ring should have filled up at least once");
    assert!(a_counters.tx_kicks < u64::from(N), "kicks are batched");
}

fn fanout_run(net: &VethNet, fanout: Fanout, n: u32, flows: Option<u16>) -> [Seen; 2] {
    let run = run_id();
    let ready = AtomicBool::new(false);
    let opened = [AtomicBool::new(false), AtomicBool::new(false)];
    let total = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let mut workers = Vec::new();
        for flag in &opened {
            let (ready, total) = (&ready, &total);
            workers.push(spawn_in_netns(s, &net.b.name, move || {
                let cfg = RingConfig { fanout: Some(fanout), ..rx_only(big_rx()) };
                let mut sock = PacketSocket::open(&net.if_b, &cfg).expect("open fanout member");
                flag.store(true, Ordering::Release);
                let mut seen = Seen::new(n as usize);
                let deadline = Instant::now() + 20 * SEC;
                let mut complete_at: Option<Instant> = None;
                while Instant::now() < deadline {
                    sock.recv(Duration::from_millis(20), |f| {
                        if classify(f, run, DATA, ready, &mut seen) {
                            total.fetch_add(1, Ordering::AcqRel);
                        }
                    })
                    .expect("recv");
                    if total.load(Ordering::Acquire) >= n as usize {
                        // Keep draining a little to catch duplicates.
                        let t = *complete_at.get_or_insert_with(Instant::now);
                        if t.elapsed() > Duration::from_millis(150) {
                            break;
                        }
                    }
                }
                seen
            }));
        }
        let sender = spawn_in_netns(s, &net.a.name, || {
            let mut sock = PacketSocket::open(&net.if_a, &tx_only(small_tx())).expect("open sender");
            for f in &opened {
                wait_flag(f, 10 * SEC, "fanout members");
            }
            warm_up(&mut sock, run, &ready);
            send_all_flows(&mut sock, run, n, flows);
        });
        join_all(vec![sender]);
        let seen = join_all(workers);
        [seen[0].clone(), seen[1].clone()]
    })
}

/// Two RX sockets in one fanout group (each driven by its own thread) receive
/// every frame exactly once in total: hash mode (the default) keeps each flow
/// on one socket and spreads 32 flows over both; round robin alternates.
#[test]
fn fanout_group_receives_each_frame_exactly_once() {
    if skip("fanout_group_receives_each_frame_exactly_once") {
        return;
    }
    const N: u32 = 1000;
    const FLOWS: u16 = 32;
    let net = VethNet::new("f");

    let [w0, w1] = fanout_run(&net, Fanout::hash(0x4c56), N, Some(FLOWS));
    eprintln!("fanout hash, {FLOWS} UDP flows: worker 0 got {}, worker 1 got {}", w0.distinct, w1.distinct);
    let mut all = w0.clone();
    all.merge(&w1);
    all.assert_exactly_once("hash fanout group");
    let flows_of =
        |w: &Seen| w.seqs().map(|s| s % u32::from(FLOWS)).collect::<std::collections::BTreeSet<_>>();
    let (f0, f1) = (flows_of(&w0), flows_of(&w1));
    assert!(f0.is_disjoint(&f1), "a flow was split across sockets: {:?}", f0.intersection(&f1));
    assert!(!f0.is_empty() && !f1.is_empty(), "{FLOWS} flows all hashed to one socket");

    let [w0, w1] = fanout_run(&net, Fanout::hash(0x4c57), N, None);
    eprintln!("fanout hash, one non-IP flow: worker 0 got {}, worker 1 got {}", w0.distinct, w1.distinct);
    let mut all = w0.clone();
    all.merge(&w1);
    all.assert_exactly_once("hash fanout group, non-IP");
    assert!(w0.distinct == 0 || w1.distinct == 0, "one flow must stay on one socket");

    let [w0, w1] = fanout_run(&net, Fanout::with_mode(0x4c58, FanoutMode::LoadBalance), N, None);
    eprintln!("fanout round robin: worker 0 got {}, worker 1 got {}", w0.distinct, w1.distinct);
    let mut all = w0.clone();
    all.merge(&w1);
    all.assert_exactly_once("round-robin fanout group");
    assert!(w0.distinct > 0 && w1.distinct > 0, "round robin must use both sockets");
}

/// TX with PACKET_QDISC_BYPASS still delivers every frame, and (as documented)
/// the bypassed frames are invisible to another packet socket on the sender.
#[test]
fn qdisc_bypass_tx_still_delivers() {
    if skip("qdisc_bypass_tx_still_delivers") {
        return;
    }
    const N: u32 = 1000;
    let net = VethNet::new("q");
    let run = run_id();
    let ready = AtomicBool::new(false);
    let b_open = AtomicBool::new(false);
    let (seen, observed) = std::thread::scope(|s| {
        let b = spawn_in_netns(s, &net.b.name, || {
            let mut sock = PacketSocket::open(&net.if_b, &rx_only(big_rx())).expect("open B");
            b_open.store(true, Ordering::Release);
            let seen = receive_all(&mut sock, run, N, &ready, 20 * SEC);
            (seen, sock.stats().expect("stats"))
        });
        let a = spawn_in_netns(s, &net.a.name, || {
            let mut observer = PacketSocket::open(&net.if_a, &rx_only(big_rx())).expect("open observer");
            let cfg = RingConfig { qdisc_bypass: true, ..tx_only(small_tx()) };
            let mut sock = PacketSocket::open(&net.if_a, &cfg).expect("open bypass sender");
            wait_flag(&b_open, 10 * SEC, "B's socket");
            warm_up(&mut sock, run, &ready);
            send_all(&mut sock, run, N);
            let mut observed = 0usize;
            observer
                .recv(Duration::from_millis(100), |f| {
                    if matches!(parse_frame(f, run), Parsed::Ours { .. }) {
                        observed += 1;
                    }
                })
                .expect("observer recv");
            observed
        });
        let seen = b.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        let observed = a.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        (seen, observed)
    });
    let (seen, stats) = seen;
    eprintln!("qdisc bypass: B stats {stats:?}, sender-side observer saw {observed}");
    seen.assert_exactly_once("B received (qdisc bypass)");
    assert_eq!(observed, 0, "bypassed frames must not reach other packet sockets on the sender");
}

/// A single small frame in an otherwise empty block is handed over when the
/// block retire timeout fires, within a bounded wait.
#[test]
fn block_retire_timeout_delivers_single_frame() {
    if skip("block_retire_timeout_delivers_single_frame") {
        return;
    }
    const TOV_MS: u32 = 30;
    let net = VethNet::new("r");
    let run = run_id();
    let ready = AtomicBool::new(false);
    let b_open = AtomicBool::new(false);
    let drained = AtomicBool::new(false);
    let (t0_tx, t0_rx) = mpsc::channel::<Instant>();
    let (ready, b_open, drained, net) = (&ready, &b_open, &drained, &net);
    let (latency, timed_out, pkts) = std::thread::scope(|s| {
        let b = spawn_in_netns(s, &net.b.name, move || {
            let rx = RxConfig { block_size: 1 << 18, block_count: 4, retire_timeout_ms: TOV_MS, ..big_rx() };
            let mut sock = PacketSocket::open(&net.if_b, &rx_only(rx)).expect("open B");
            b_open.store(true, Ordering::Release);
            let mut sink = Seen::new(1);
            let deadline = Instant::now() + 5 * SEC;
            while !ready.load(Ordering::Acquire) && Instant::now() < deadline {
                sock.recv(Duration::from_millis(20), |f| {
                    classify(f, run, DATA, ready, &mut sink);
                })
                .expect("recv warm-up");
            }
            // Drain until 100 ms pass with nothing (late warm-ups), bounded.
            let deadline = Instant::now() + 5 * SEC;
            while sock.recv(Duration::from_millis(100), |_| {}).expect("drain") > 0 {
                assert!(Instant::now() < deadline, "ring never went quiet");
            }
            drained.store(true, Ordering::Release);
            let block = sock.next_block(2 * SEC).expect("next_block").expect("a block within 2 s");
            let t1 = Instant::now();
            let frames: Vec<Parsed> = block.frames().map(|f| parse_frame(f.data, run)).collect();
            assert_eq!(frames, vec![Parsed::Ours { kind: DATA, seq: 7 }]);
            let (timed_out, pkts) = (block.timed_out(), block.len());
            drop(block);
            let t0 = t0_rx.recv_timeout(5 * SEC).expect("send time");
            (t1.saturating_duration_since(t0), timed_out, pkts)
        });
        let a = spawn_in_netns(s, &net.a.name, move || {
            let mut sock = PacketSocket::open(&net.if_a, &tx_only(small_tx())).expect("open A");
            wait_flag(b_open, 10 * SEC, "B's socket");
            warm_up(&mut sock, run, ready);
            wait_flag(drained, 10 * SEC, "B drained");
            let mut buf = Vec::new();
            build_frame(&mut buf, run, DATA, 7);
            let t0 = Instant::now();
            assert!(sock.try_send(&buf).expect("try_send"));
            sock.flush().expect("flush");
            t0_tx.send(t0).expect("send t0");
        });
        a.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        b.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    });
    eprintln!(
        "retire timeout {TOV_MS} ms: single frame delivered after {latency:?} (block timed out: {timed_out})"
    );
    assert_eq!(pkts, 1);
    assert!(timed_out, "a one-frame block can only have been retired by the timer");
    assert!(latency < SEC, "delivery took {latency:?} with a {TOV_MS} ms retire timeout");
}

/// When the RX ring is full the kernel drops, and PACKET_STATISTICS accounts
/// for it: `packets` counts every frame that reached the socket (delivered +
/// dropped), `drops` the ones that did not fit.
#[test]
fn stats_count_drops_when_rx_ring_is_full() {
    if skip("stats_count_drops_when_rx_ring_is_full") {
        return;
    }
    const N: u32 = 200;
    let net = VethNet::new("s");
    let run = run_id();
    let ready = AtomicBool::new(false);
    let b_open = AtomicBool::new(false);
    let drained = AtomicBool::new(false);
    let sent = AtomicBool::new(false);
    let (seen, delta) = std::thread::scope(|s| {
        let b = spawn_in_netns(s, &net.b.name, || {
            // Two 8 KiB blocks: room for a handful of test frames.
            let rx = RxConfig { block_size: 8192, block_count: 2, frame_size: 2048, ..big_rx() };
            let mut sock = PacketSocket::open(&net.if_b, &rx_only(rx)).expect("open B");
            b_open.store(true, Ordering::Release);
            let mut seen = Seen::new(N as usize);
            let deadline = Instant::now() + 5 * SEC;
            while !ready.load(Ordering::Acquire) && Instant::now() < deadline {
                sock.recv(Duration::from_millis(20), |f| {
                    classify(f, run, DATA, &ready, &mut seen);
                })
                .expect("recv warm-up");
            }
            let deadline = Instant::now() + 5 * SEC;
            while sock.recv(Duration::from_millis(100), |_| {}).expect("drain") > 0 {
                assert!(Instant::now() < deadline, "ring never went quiet");
            }
            let before = sock.stats().expect("stats");
            drained.store(true, Ordering::Release);
            // Do not read while A sends: the ring fills and the kernel drops.
            wait_flag(&sent, 20 * SEC, "A sent everything");
            std::thread::sleep(Duration::from_millis(50));
            for _ in 0..10 {
                sock.recv(Duration::from_millis(50), |f| {
                    classify(f, run, DATA, &ready, &mut seen);
                })
                .expect("recv");
            }
            let after = sock.stats().expect("stats");
            let delta = (after.packets - before.packets, after.drops - before.drops, after.freeze_q_cnt);
            (seen, delta)
        });
        let a = spawn_in_netns(s, &net.a.name, || {
            let mut sock = PacketSocket::open(&net.if_a, &tx_only(small_tx())).expect("open A");
            wait_flag(&b_open, 10 * SEC, "B's socket");
            warm_up(&mut sock, run, &ready);
            wait_flag(&drained, 10 * SEC, "B drained");
            send_all(&mut sock, run, N);
            sent.store(true, Ordering::Release);
        });
        a.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        b.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    });
    let (packets, drops, freezes) = delta;
    eprintln!(
        "full ring: delivered {} of {N}, kernel packets {packets}, drops {drops}, queue freezes {freezes}",
        seen.distinct
    );
    assert_eq!(seen.dupes, 0);
    assert!(seen.distinct > 0 && seen.distinct < N as usize, "expected a partial delivery");
    assert_eq!(packets, u64::from(N), "packets counts delivered + dropped");
    assert_eq!(drops, u64::from(N) - seen.distinct as u64);
    assert!(freezes > 0, "a full V3 ring freezes the queue");
}

/// recv on an idle ring returns nothing, no earlier than asked and not much later.
#[test]
fn idle_recv_returns_within_timeout() {
    if skip("idle_recv_returns_within_timeout") {
        return;
    }
    let net = VethNet::new("i");
    in_netns(&net.b.name, || {
        let rx = RxConfig { retire_timeout_ms: 10, ..big_rx() };
        let mut sock = PacketSocket::open(&net.if_b, &rx_only(rx)).expect("open B");

        let t = Instant::now();
        assert!(sock.next_block(Duration::ZERO).expect("next_block").is_none());
        assert!(t.elapsed() < Duration::from_millis(50), "a zero timeout must not block");

        let t = Instant::now();
        let n = sock.recv(Duration::from_millis(200), |f| panic!("unexpected frame {f:02x?}")).expect("recv");
        let waited = t.elapsed();
        eprintln!("idle recv(200 ms) returned {n} after {waited:?}");
        assert_eq!(n, 0);
        assert!(waited >= Duration::from_millis(190), "returned early after {waited:?}");
        assert!(waited < SEC, "took {waited:?}");

        sock.set_poll_timeout(Duration::from_millis(50));
        let t = Instant::now();
        let n =
            FrameIo::recv_batch(&mut sock, &mut |f| panic!("unexpected frame {f:02x?}")).expect("recv_batch");
        assert_eq!(n, 0);
        assert!(t.elapsed() < SEC);

        let e = sock.try_send(&[0u8; 60]).expect_err("RX-only socket has no TX ring");
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        assert_eq!(sock.stats().expect("stats").packets, 0);
    });
}

/// PACKET_IGNORE_OUTGOING hides locally sent frames; a socket without it on
/// the same interface sees them.
#[test]
fn ignore_outgoing_hides_local_tx() {
    if skip("ignore_outgoing_hides_local_tx") {
        return;
    }
    const N: u32 = 200;
    let net = VethNet::new("o");
    let run = run_id();
    let (seen, ignored) = in_netns(&net.a.name, || {
        let mut plain = PacketSocket::open(&net.if_a, &rx_only(big_rx())).expect("open plain observer");
        let cfg = RingConfig { ignore_outgoing: true, ..rx_only(big_rx()) };
        let mut ignoring = PacketSocket::open(&net.if_a, &cfg).expect("open ignoring observer");
        let mut sock = PacketSocket::open(&net.if_a, &tx_only(small_tx())).expect("open sender");
        let mut ignored = 0usize;
        let count_ignoring = |s: &mut PacketSocket| {
            let mut k = 0;
            s.recv(Duration::ZERO, |f| {
                if matches!(parse_frame(f, run), Parsed::Ours { .. }) {
                    k += 1;
                }
            })
            .expect("recv ignoring");
            k
        };
        // Warm up against the plain observer (same thread, so poll it inline).
        let ready = AtomicBool::new(false);
        let mut sink = Seen::new(1);
        let mut buf = Vec::new();
        let deadline = Instant::now() + 5 * SEC;
        while !ready.load(Ordering::Acquire) {
            assert!(Instant::now() < deadline, "plain observer saw no warm-up within 5 s");
            build_frame(&mut buf, run, WARMUP, 0);
            assert!(sock.send_wait(&buf, SEC).expect("send warm-up"));
            sock.flush().expect("flush");
            plain
                .recv(Duration::from_millis(20), |f| {
                    classify(f, run, DATA, &ready, &mut sink);
                })
                .expect("recv plain");
            ignored += count_ignoring(&mut ignoring);
        }
        send_all(&mut sock, run, N);
        let seen = receive_all(&mut plain, run, N, &ready, 10 * SEC);
        std::thread::sleep(Duration::from_millis(50));
        ignored += count_ignoring(&mut ignoring);
        (seen, ignored)
    });
    seen.assert_exactly_once("plain observer");
    assert_eq!(ignored, 0, "socket with PACKET_IGNORE_OUTGOING saw local TX");
}

/// The device's promiscuity counter as `ip -d link` reports it. (SIOCGIFFLAGS
/// does not show promiscuity taken by packet sockets: it only reports the
/// IFF_PROMISC a user set explicitly.)
fn promiscuity(ns: &str, ifname: &str) -> u32 {
    let out = std::process::Command::new("ip")
        .args(["-d", "-n", ns, "-o", "link", "show", "dev", ifname])
        .output()
        .expect("run ip -d link show");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "promiscuity" {
            return words.next().and_then(|v| v.parse().ok()).expect("promiscuity value");
        }
    }
    panic!("no promiscuity in `ip -d link` output: {text}");
}

/// Promiscuous mode is on while the socket is open and off after it is dropped.
#[test]
fn promiscuous_mode_follows_socket_lifetime() {
    if skip("promiscuous_mode_follows_socket_lifetime") {
        return;
    }
    let net = VethNet::new("p");
    let (ns, ifname) = (&net.b.name, &net.if_b);
    assert_eq!(promiscuity(ns, ifname), 0);
    let sock = in_netns(ns, || {
        let cfg = RingConfig { promiscuous: true, ..rx_only(big_rx()) };
        PacketSocket::open(ifname, &cfg).expect("open promiscuous")
    });
    assert_eq!(promiscuity(ns, ifname), 1, "promiscuity not taken while open");
    drop(sock);
    // The kernel may drop the membership a moment after close() returns (seen under load):
    // wait for it, at most one second.
    let mut left = promiscuity(ns, ifname);
    for _ in 0..50 {
        if left == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        left = promiscuity(ns, ifname);
    }
    assert_eq!(left, 0, "promiscuity still held a second after drop");
}

/// Without CAP_NET_RAW, open fails with PermissionDenied and says why.
/// (Capabilities are per thread: only this test's thread drops it.)
#[test]
fn open_without_cap_net_raw_says_so() {
    if skip("open_without_cap_net_raw_says_so") {
        return;
    }
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const CAP_V3: u32 = 0x2008_0522;
    const CAP_NET_RAW: u32 = 13;
    let net = VethNet::new("c");
    let err = in_netns(&net.b.name, || {
        let mut hdr = CapHeader { version: CAP_V3, pid: 0 };
        let mut data = [CapData::default(); 2];
        // SAFETY: capget with a v3 header and two data words, as the ABI requires.
        let rc = unsafe { libc::syscall(libc::SYS_capget, &mut hdr as *mut CapHeader, data.as_mut_ptr()) };
        assert_eq!(rc, 0, "capget: {}", io::Error::last_os_error());
        data[0].effective &= !(1 << CAP_NET_RAW);
        // SAFETY: as above; pid 0 = this thread only.
        let rc = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
        assert_eq!(rc, 0, "capset: {}", io::Error::last_os_error());
        PacketSocket::open(&net.if_b, &RingConfig::default()).expect_err("open must fail without CAP_NET_RAW")
    });
    eprintln!("without CAP_NET_RAW: {err}");
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    assert!(err.to_string().contains("CAP_NET_RAW"), "{err}");
}
