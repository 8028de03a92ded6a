#!/usr/bin/env bash
# Packet-rate baselines for lvs: how many 64-byte UDP packets per second a forwarder moves between
# two veth links, lvs and the kernel measured in the same run on the same machine.
#
#   generator ns --veth--> forwarder ns --veth--> sink ns
#   (trafgen, CPU 0)       (CPU 1: RPS)           (drops at netdev ingress, counts)
#
# Scenarios (--only takes a comma list; default: gen,kernel,nft, plus lvs-* when LVS_FORWARDER is set):
#   gen      the generator's own maximum: generator wired straight to the sink (no forwarder)
#   kernel   the kernel forwarding (ip_forward=1), no balancing
#   nft      the kernel with an nftables DNAT balancer: numgen inc mod 2 over two sink addresses
#   lvs-dr   lvs as the forwarder, direct routing, one worker   } the slot for lvs: see
#   lvs-nat  lvs as the forwarder, NAT, one worker              } run_lvs_forwarder below
#   lvs-dr-xdp, lvs-nat-xdp  the same over AF_XDP (LVS_BENCH_XDP=1 in the forwarder's environment)
#
# Traffic: Ethernet/IPv4/UDP frames of 60 bytes (64 on a wire with the FCS) from 10.200.1.2 to the
# VIP 10.200.3.1:9 (plain forwarding: to the sink 10.200.2.2), source ports cycling over --flows
# values (default 1024 flows). Each scenario gets a fresh topology, a warm-up (default 1 s) and a
# fixed measuring window (default 5 s); the rate is the sink interface's rx_packets delta over the
# window. The generator runs on CPU 0; RPS steers the forwarder's and the sink's receive
# processing to CPU 1, so the system+softirq time of CPU 1 is the kernel forwarder's cost (there is
# no forwarder process); for lvs the forwarder process's own CPU time (utime+stime) is added and
# also reported alone. User time on CPU 1 in a kernel scenario is other load: each scenario first
# waits (bounded) for a quiet machine and is flagged "(busy machine)" if it never came, and
# "(steal N%)" when the hypervisor took more than 5% of the vCPUs' time during the window.
#
# Generator: trafgen (netsniff-ng; the default when installed) in sendto mode, or udpgen, the
# AF_PACKET TX-ring generator in crates/lvs-dataplane/examples (built here with cargo;
# LVS_UDPGEN=path uses a prebuilt one; it pushes in bursts and overloads the forwarder, see
# benches/README.md). Needs root, iproute2, nftables and taskset; creates namespaces only
# (lvsb-*-PID), removes them on exit, also on failure or Ctrl-C. Every wait is bounded.
#
# With --rounds N every scenario is measured N times (interleaved) and the round that forwarded
# the most is reported (preferring rounds not flagged busy): on a shared machine that is the
# least disturbed one. All rounds are printed on stderr.
#
# The generator sends as fast as it can. If that overloads the forwarder (drops at the forwarding
# CPU's backlog queue, shown per row), the overload itself costs the forwarding CPU (enqueue
# attempts, lock contention, IPIs) and the forwarded rate falls well below the forwarder's
# capacity; compare forwarders in the same run with the same generator, or fix the offered load
# with --rate PPS (forwarded = offered means the forwarder kept up).
#
# Usage: benches/net/run.sh [--duration S] [--warmup S] [--flows N] [--only LIST] [--rounds N]
#                           [--rate PPS] [--generator udpgen|trafgen] [--max-wait S] [--markdown]
# --max-wait S bounds the wait for a quiet machine before each scenario (default 60 s); rows measured
# while it was still busy are flagged. Handy with a small value while profiling.
set -euo pipefail

DURATION=5
WARMUP=1
FLOWS=1024
ONLY=""
MARKDOWN=0
GENERATOR=""
ROUNDS=1
RATE=""
MAX_WAIT=60
GEN_CPU=0 # taskset; trafgen -P 1 also pins its one process to CPU 0
FWD_CPU=${FWD_CPU:-1}

while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --flows) FLOWS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --markdown) MARKDOWN=1; shift ;;
    --generator) GENERATOR=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --max-wait) MAX_WAIT=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$DURATION$WARMUP$FLOWS$ROUNDS$RATE$MAX_WAIT" in *[!0-9]*) echo "--duration, --warmup, --flows, --rounds, --rate and --max-wait take integers" >&2; exit 2 ;; esac
if [ "$ROUNDS" -lt 1 ] || [ "$ROUNDS" -gt 20 ]; then echo "--rounds must be 1..20" >&2; exit 2; fi
if [ "$FLOWS" -lt 1 ] || [ "$FLOWS" -gt 64000 ]; then echo "--flows must be 1..64000" >&2; exit 2; fi
if [ "$DURATION" -lt 1 ] || [ "$DURATION" -gt 120 ]; then echo "--duration must be 1..120" >&2; exit 2; fi

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, AF_PACKET)" >&2; exit 1; }
# System paths only: under npm, PATH starts with node_modules/.bin (whose `nft` is @vercel/nft).
tool() {
  local d
  for d in /usr/local/sbin /usr/sbin /sbin /usr/local/bin /usr/bin /bin; do
    if [ -x "$d/$1" ]; then echo "$d/$1"; return 0; fi
  done
  echo "missing $1: apt-get install $2" >&2
  return 1
}
IP=$(tool ip iproute2)
NFT=$(tool nft nftables)
TASKSET=$(tool taskset util-linux)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "$GENERATOR" ]; then
  if tool trafgen netsniff-ng >/dev/null 2>&1; then GENERATOR=trafgen; else GENERATOR=udpgen; fi
fi
case "$GENERATOR" in
  trafgen) TRAFGEN=$(tool trafgen netsniff-ng) ;;
  udpgen)
    # The AF_PACKET TX-ring generator of crates/lvs-dataplane (examples/udpgen.rs).
    if [ -n "${LVS_UDPGEN:-}" ]; then
      UDPGEN=$LVS_UDPGEN
    else
      TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
      (cd "$ROOT" && cargo build --quiet --release -p lvs-dataplane --example udpgen) ||
        { echo "building udpgen failed" >&2; exit 1; }
      UDPGEN=$TARGET/release/examples/udpgen
    fi
    ;;
  *) echo "--generator is udpgen or trafgen" >&2; exit 2 ;;
esac
NCPU=$(nproc)
if [ "$NCPU" -le "$FWD_CPU" ]; then echo "needs at least $((FWD_CPU + 1)) CPUs (have $NCPU)" >&2; exit 1; fi
if [ -z "$ONLY" ]; then
  ONLY="gen,kernel,nft"
  if [ -n "${LVS_FORWARDER:-}" ]; then ONLY="$ONLY,lvs-dr,lvs-nat"; fi
fi

ID=$$
NS_GEN=lvsb-gen-$ID
NS_FWD=lvsb-fwd-$ID
NS_SINK=lvsb-sink-$ID
WORK=$(mktemp -d /tmp/lvs-netbench.XXXXXX)
GEN_PID=""
FWD_PID=""

VIP=10.200.3.1
PORT=9
GEN_IP=10.200.1.2
FWD_IN_IP=10.200.1.1
FWD_OUT_IP=10.200.2.1
SINK_IP1=10.200.2.2
SINK_IP2=10.200.2.3

stop_pid() { # pid: SIGINT, then SIGKILL after 3 s
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill -INT "$pid" 2>/dev/null || return 0
  for i in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

teardown_topology() {
  stop_pid "$GEN_PID"; GEN_PID=""
  stop_pid "$FWD_PID"; FWD_PID=""
  local ns pid
  for ns in "$NS_GEN" "$NS_FWD" "$NS_SINK"; do
    for pid in $("$IP" netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    "$IP" netns del "$ns" 2>/dev/null || true
  done
}
cleanup() {
  teardown_topology
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_ns() { local ns=$1; shift; "$IP" netns exec "$ns" "$@"; }
sysctl_ns() { in_ns "$1" sh -c "echo $3 > /proc/sys/${2//.//}"; }
mac_of() { in_ns "$1" cat "/sys/class/net/$2/address"; }
stat_of() { in_ns "$1" cat "/sys/class/net/$2/statistics/$3"; }
set_rps() { # ns dev: receive processing of dev on FWD_CPU
  local mask
  mask=$(printf '%x' $((1 << FWD_CPU)))
  in_ns "$1" sh -c "echo $mask > /sys/class/net/$2/queues/rx-0/rps_cpus" 2>/dev/null ||
    echo "  note: RPS not available; receive processing stays on the generator's CPU" >&2
}

new_ns() {
  "$IP" netns add "$1"
  "$IP" -n "$1" link set lo up
  sysctl_ns "$1" net.ipv6.conf.all.disable_ipv6 1
  sysctl_ns "$1" net.ipv6.conf.default.disable_ipv6 1
}

veth() { # ns_a dev_a ns_b dev_b
  "$IP" -n "$1" link add "$2" type veth peer name "$4" netns "$3"
  "$IP" -n "$1" link set "$2" up
  "$IP" -n "$3" link set "$4" up
}

wait_up() { # ns dev: bounded wait for operstate up (queues active)
  local i
  for i in $(seq 100); do
    [ "$(in_ns "$1" cat "/sys/class/net/$2/operstate")" = up ] && return 0
    sleep 0.05
  done
  echo "$2 in $1 did not come up" >&2
  return 1
}

# The sink: both real-server addresses, everything dropped at netdev ingress (cheap, no replies).
setup_sink() {
  "$IP" -n "$NS_SINK" addr add "$SINK_IP1/24" dev eth0
  "$IP" -n "$NS_SINK" addr add "$SINK_IP2/24" dev eth0
  set_rps "$NS_SINK" eth0
  in_ns "$NS_SINK" "$NFT" -f - <<EOF
table netdev sink {
  chain ingress {
    type filter hook ingress device "eth0" priority 0; policy drop;
  }
}
EOF
}

# topology MODE: direct (generator -> sink) or forward (generator -> forwarder -> sink)
topology() {
  teardown_topology
  new_ns "$NS_GEN"
  new_ns "$NS_SINK"
  if [ "$1" = direct ]; then
    veth "$NS_GEN" eth0 "$NS_SINK" eth0
    setup_sink
    wait_up "$NS_GEN" eth0
    wait_up "$NS_SINK" eth0
    return
  fi
  new_ns "$NS_FWD"
  veth "$NS_GEN" eth0 "$NS_FWD" eth0
  veth "$NS_FWD" eth1 "$NS_SINK" eth0
  "$IP" -n "$NS_GEN" addr add "$GEN_IP/24" dev eth0
  "$IP" -n "$NS_FWD" addr add "$FWD_IN_IP/24" dev eth0
  "$IP" -n "$NS_FWD" addr add "$FWD_OUT_IP/24" dev eth1
  setup_sink
  set_rps "$NS_FWD" eth0
  sysctl_ns "$NS_FWD" net.ipv4.conf.all.rp_filter 0
  sysctl_ns "$NS_FWD" net.ipv4.conf.default.rp_filter 0
  # No ARP on the measured path: static neighbours both ways.
  local sink_mac gen_mac
  sink_mac=$(mac_of "$NS_SINK" eth0)
  gen_mac=$(mac_of "$NS_GEN" eth0)
  "$IP" -n "$NS_FWD" neigh replace "$SINK_IP1" lladdr "$sink_mac" dev eth1 nud permanent
  "$IP" -n "$NS_FWD" neigh replace "$SINK_IP2" lladdr "$sink_mac" dev eth1 nud permanent
  "$IP" -n "$NS_FWD" neigh replace "$GEN_IP" lladdr "$gen_mac" dev eth0 nud permanent
  "$IP" -n "$NS_FWD" route add "$VIP/32" via "$SINK_IP1"
  for d in "$NS_GEN eth0" "$NS_FWD eth0" "$NS_FWD eth1" "$NS_SINK eth0"; do
    # shellcheck disable=SC2086
    wait_up $d
  done
}

# Generator target (both generators), and the trafgen configuration: one packet template, source
# port cycling over FLOWS values.
write_trafgen_conf() { # dst_mac dst_ip
  GEN_DST_MAC=$1
  GEN_DST_IP=$2
  [ "$GENERATOR" = trafgen ] || return 0
  local src_mac
  src_mac=$(mac_of "$NS_GEN" eth0)
  cat >"$WORK/gen.cfg" <<EOF
{
  eth(da=$1, sa=$src_mac),
  ipv4(sa=$GEN_IP, da=$2, ttl=64),
  udp(sp=dinc(1024, $((1024 + FLOWS - 1))), dp=$PORT),
  fill(0x41, 18)
}
EOF
}

start_generator() {
  if [ "$GENERATOR" = trafgen ]; then
    # trafgen 0.6.8 gives up on the first ENOBUFS of its TX ring on a veth ("Flushing TX_RING
    # failed"), so it runs in sendto mode (-t 0): about one system call per packet. A rate (-b)
    # sets the gap between packets itself (and sendto mode); a later -t 0 would cancel it.
    local pace=(-t 0)
    [ -z "$RATE" ] || pace=(-b "${RATE}pps")
    in_ns "$NS_GEN" "$TASKSET" -c "$GEN_CPU" "$TRAFGEN" -o eth0 -i "$WORK/gen.cfg" -P 1 --no-sock-mem \
      --notouch-irq "${pace[@]}" -n 0 >"$WORK/gen.log" 2>&1 &
  else
    in_ns "$NS_GEN" "$TASKSET" -c "$GEN_CPU" "$UDPGEN" --iface eth0 --dst-mac "$GEN_DST_MAC" \
      --src "$GEN_IP" --dst "$GEN_DST_IP" --dport "$PORT" --flows "$FLOWS" --size 60 \
      --seconds $((WARMUP + DURATION + 5)) ${RATE:+--rate "$RATE"} >"$WORK/gen.log" 2>&1 &
  fi
  GEN_PID=$!
}

# Jiffies of one CPU: "kernel user" = system+irq+softirq (the kernel forwarder's work) and
# user+nice (processes: the lvs forwarder, or other load that disturbs the measurement).
cpu_kernel() { awk -v c="cpu$1" '$1 == c { print $4 + $7 + $8 }' /proc/stat; }
cpu_user() { awk -v c="cpu$1" '$1 == c { print $2 + $3 }' /proc/stat; }
# Packets dropped because a CPU's backlog queue was full (all CPUs; /proc/net/softnet_stat is
# global, column 2, hexadecimal).
softnet_drops() {
  local n=0 _p d _r
  while read -r _p d _r; do n=$((n + 16#$d)); done </proc/net/softnet_stat
  echo "$n"
}
# Jiffies the hypervisor gave to others (all CPUs): a guest's rates drop with it.
steal() { awk '$1 == "cpu" { print $9 }' /proc/stat; }
all_busy() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

# Waits (at most MAX_WAIT s, at least one check) until the machine is quiet: below 5 % busy over one second. Other work on
# the CPUs (builds, tests) skews packet rates badly; a scenario measured on a busy machine is
# flagged in the results.
QUIET=1
wait_quiet() {
  local i a b
  for i in $(seq "$((MAX_WAIT > 0 ? MAX_WAIT : 1))"); do
    a=$(all_busy); sleep 1; b=$(all_busy)
    if awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); exit !((y[1] - x[1]) < 0.05 * (y[2] - x[2])) }'; then
      QUIET=1
      return 0
    fi
  done
  QUIET=0
  echo "  warning: the machine is busy (other processes); results are flagged" >&2
}
# utime+stime (clock ticks) of a process (all its threads).
proc_cpu() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" || echo 0; }
# User time alone: the process's system time runs on the forwarding CPU, counted there already.
proc_user() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && awk '{ sub(/.*\) /, ""); print $12 }' "/proc/$1/stat" || echo 0; }

RESULTS=()
HZ=$(getconf CLK_TCK)

# measure LABEL: warm-up, window, one result line
measure() {
  local label=$1 rx0 rx1 tx0 tx1 txd0 txd1 c0 c1 u0 u1 p0 p1 t0 t1 g0 g1 sd0 sd1 st0 st1
  wait_quiet
  start_generator
  sleep "$WARMUP"
  kill -0 "$GEN_PID" 2>/dev/null || { echo "generator failed: $(cat "$WORK/gen.log")" >&2; return 1; }
  rx0=$(stat_of "$NS_SINK" eth0 rx_packets)
  tx0=$(stat_of "$NS_GEN" eth0 tx_packets)
  txd0=$(stat_of "$NS_GEN" eth0 tx_dropped)
  c0=$(cpu_kernel "$FWD_CPU")
  u0=$(cpu_user "$FWD_CPU")
  g0=$(( $(cpu_kernel "$GEN_CPU") + $(cpu_user "$GEN_CPU") ))
  sd0=$(softnet_drops)
  st0=$(steal)
  p0=$(proc_cpu "$FWD_PID")
  pu0=$(proc_user "$FWD_PID")
  t0=$(date +%s.%N)
  sleep "$DURATION"
  rx1=$(stat_of "$NS_SINK" eth0 rx_packets)
  tx1=$(stat_of "$NS_GEN" eth0 tx_packets)
  txd1=$(stat_of "$NS_GEN" eth0 tx_dropped)
  c1=$(cpu_kernel "$FWD_CPU")
  u1=$(cpu_user "$FWD_CPU")
  g1=$(( $(cpu_kernel "$GEN_CPU") + $(cpu_user "$GEN_CPU") ))
  sd1=$(softnet_drops)
  st1=$(steal)
  p1=$(proc_cpu "$FWD_PID")
  pu1=$(proc_user "$FWD_PID")
  t1=$(date +%s.%N)
  stop_pid "$GEN_PID"; GEN_PID=""
  local line
  line=$(awk -v label="$label" -v pkts=$((rx1 - rx0)) -v offered=$((tx1 - tx0 + txd1 - txd0)) \
    -v t0="$t0" -v t1="$t1" -v kern=$((c1 - c0)) -v user=$((u1 - u0)) -v proc=$((p1 - p0)) -v proc_user=$((pu1 - pu0)) -v hz="$HZ" \
    -v has_proc="${FWD_PID:+1}" -v gen=$((g1 - g0)) -v drops=$((sd1 - sd0)) -v quiet="$QUIET" -v steal=$((st1 - st0)) -v ncpu="$NCPU" 'BEGIN {
      secs = t1 - t0; kern_s = kern / hz; user_s = user / hz; proc_s = proc / hz
      # The forwarder: the kernel (softirq/system time on the forwarding CPU), or for lvs the
      # kernel time on that CPU (its system calls included) plus its user time.
      fwd_s = has_proc ? kern_s + proc_user / hz : kern_s
      per_m = pkts > 0 ? sprintf("%.2f", fwd_s / (pkts / 1e6)) : "-"
      proc_m = (pkts > 0 && has_proc) ? sprintf("%.2f", proc_s / (pkts / 1e6)) : "-"
      # User time on the forwarding CPU that is not the forwarder: other processes disturbed it.
      other = user_s - (has_proc ? proc_s : 0)
      if (!quiet || other > 0.1 * secs) label = label " (busy machine)"
      # Time the hypervisor gave to other guests: the vCPUs stalled.
      steal_pct = 100 * steal / hz / secs / ncpu
      if (steal_pct > 5) label = label sprintf(" (steal %.0f%%)", steal_pct)
      printf "%s|%.0f|%.0f|%.0f|%.0f|%s|%s|%.0f|%.0f|%.1f\n", label, offered / secs, pkts / secs, 100 * kern_s / secs,
        100 * user_s / secs, per_m, proc_m, 100 * gen / hz / secs, drops / secs, steal_pct
    }')
  RESULTS+=("$line")
  IFS='|' read -r label o f k u c p g d st <<<"$line"
  printf '  %-8s offered %9s pps  forwarded %9s pps  CPU%s: kernel %3s%% user %3s%%  %s CPU-s/Mpkt forwarder, %s process; CPU%s %s%% busy; backlog drops %s/s; steal %s%%\n' \
    "$label" "$o" "$f" "$FWD_CPU" "$k" "$u" "$c" "$p" "$GEN_CPU" "$g" "$d" "$st" >&2
}

run_gen() {
  topology direct
  write_trafgen_conf "$(mac_of "$NS_SINK" eth0)" "$SINK_IP1"
  measure gen
}

run_kernel() {
  topology forward
  sysctl_ns "$NS_FWD" net.ipv4.ip_forward 1
  write_trafgen_conf "$(mac_of "$NS_FWD" eth0)" "$SINK_IP1"
  measure kernel
}

run_nft() {
  topology forward
  sysctl_ns "$NS_FWD" net.ipv4.ip_forward 1
  in_ns "$NS_FWD" "$NFT" -f - <<EOF
table ip lvs_bench {
  chain pre {
    type nat hook prerouting priority dstnat;
    ip daddr $VIP udp dport $PORT dnat to numgen inc mod 2 map { 0 : $SINK_IP1, 1 : $SINK_IP2 }
  }
}
EOF
  write_trafgen_conf "$(mac_of "$NS_FWD" eth0)" "$VIP"
  measure nft
}

# ---------------------------------------------------------------------------------------------
# SLOT: lvs as the forwarder (DR or NAT, one worker).
#
# Set LVS_FORWARDER to a command line that runs the lvs packet engine in the forwarder namespace
# until SIGINT/SIGTERM. It is started with `ip netns exec <forwarder ns> taskset -c $FWD_CPU`, with
# these variables in its environment describing the job:
#   LVS_BENCH_MODE   dr | nat
#   LVS_BENCH_IN     eth0      (clients' side: frames to the VIP arrive here)
#   LVS_BENCH_OUT    eth1      (real servers' side)
#   LVS_BENCH_VIP    10.200.3.1:9 (UDP)
#   LVS_BENCH_REAL   "10.200.2.2 10.200.2.3" (both on the sink; their MAC: LVS_BENCH_REAL_MAC)
#   LVS_BENCH_REAL_MAC, LVS_BENCH_IN_MAC, LVS_BENCH_WORKERS=1
#   LVS_BENCH_XDP    1 for the lvs-*-xdp scenarios (the AF_XDP packet path), else 0
# (LVS_BENCH_XDP_NAPI=pin in run.sh's own environment: see pin_napi.)
# The kernel does not forward in these runs (ip_forward=0; frames for the VIP die in its IP stack
# without an ICMP answer), so everything the sink counts was forwarded by lvs. The engine must say
# `ready` on stderr (or wait 2 s). Its own CPU time (utime+stime) per million packets is reported
# in the last column. Example, once the engine exists:
#   LVS_FORWARDER='node packages/lvs/dist/bench-forwarder.js' benches/net/run.sh --only kernel,lvs-dr
pin_napi() { # ns dev: threaded NAPI for dev, its kernel thread on FWD_CPU
  local before after t
  before=$(pgrep -d' ' "^napi/$2-" || true)
  in_ns "$1" sh -c "echo 1 > /sys/class/net/$2/threaded" 2>"$WORK/napi.err" || {
    echo "  note: no threaded NAPI on $2 ($(cat "$WORK/napi.err")); XDP runs on the generator's CPU" >&2
    return 0
  }
  for _ in $(seq 20); do
    after=$(pgrep "^napi/$2-" || true)
    for t in $after; do
      case " $before " in *" $t "*) ;; *) "$TASKSET" -pc "$FWD_CPU" "$t" >/dev/null && return 0 ;; esac
    done
    sleep 0.05
  done
  echo "  note: the NAPI thread of $2 was not found; XDP runs on the generator's CPU" >&2
}
run_lvs_forwarder() { # mode [xdp]
  local mode=$1 xdp=${2:-} i name xflag=0
  name=lvs-$mode${xdp:+-xdp}
  [ -z "$xdp" ] || xflag=1
  if [ -z "${LVS_FORWARDER:-}" ]; then
    echo "  $name: skipped (LVS_FORWARDER not set: the engine is not plugged in yet)" >&2
    RESULTS+=("$name|-|-|-|-|-|-|-|-")
    return 0
  fi
  topology forward
  sysctl_ns "$NS_FWD" net.ipv4.ip_forward 0
  write_trafgen_conf "$(mac_of "$NS_FWD" eth0)" "$VIP"
  LVS_BENCH_MODE=$mode LVS_BENCH_IN=eth0 LVS_BENCH_OUT=eth1 LVS_BENCH_VIP="$VIP:$PORT" \
    LVS_BENCH_REAL="$SINK_IP1 $SINK_IP2" LVS_BENCH_REAL_MAC="$(mac_of "$NS_SINK" eth0)" \
    LVS_BENCH_IN_MAC="$(mac_of "$NS_FWD" eth0)" LVS_BENCH_WORKERS=1 LVS_BENCH_XDP=$xflag \
    "$IP" netns exec "$NS_FWD" "$TASKSET" -c "$FWD_CPU" sh -c "exec $LVS_FORWARDER" >"$WORK/lvs.log" 2>&1 &
  FWD_PID=$!
  for i in $(seq 20); do
    grep -q ready "$WORK/lvs.log" 2>/dev/null && break
    kill -0 "$FWD_PID" 2>/dev/null || { echo "lvs forwarder exited: $(cat "$WORK/lvs.log")" >&2; return 1; }
    sleep 0.1
  done
  # veth runs XDP (and the copy into the AF_XDP ring) in its NAPI poll, scheduled on the sending
  # CPU: the generator's. LVS_BENCH_XDP_NAPI=pin makes that NAPI a thread on the forwarding CPU,
  # where the kernel forwarder's RPS puts its receive work (it then shares that CPU with lvs).
  if [ -n "$xdp" ] && [ "${LVS_BENCH_XDP_NAPI:-}" = pin ]; then pin_napi "$NS_FWD" eth0; fi
  measure "$name"
  stop_pid "$FWD_PID"; FWD_PID=""
}
# ---------------------------------------------------------------------------------------------

echo "lvs packet-rate baselines: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -sr), $NCPU CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo))" >&2
echo "  60-byte frames (64 with FCS), $FLOWS flows, ${WARMUP}s warm-up + ${DURATION}s window per scenario; $GENERATOR on CPU $GEN_CPU, forwarding CPU $FWD_CPU" >&2
IFS=, read -r -a scenarios <<<"$ONLY"
for s in "${scenarios[@]}"; do
  case "$s" in gen|kernel|nft|lvs-dr|lvs-nat|lvs-dr-xdp|lvs-nat-xdp) ;; *) echo "unknown scenario $s" >&2; exit 2 ;; esac
done
for round in $(seq "$ROUNDS"); do
  [ "$ROUNDS" = 1 ] || echo "  round $round of $ROUNDS" >&2
  for s in "${scenarios[@]}"; do
    case "$s" in
      gen) run_gen ;;
      kernel) run_kernel ;;
      nft) run_nft ;;
      lvs-dr) run_lvs_forwarder dr ;;
      lvs-nat) run_lvs_forwarder nat ;;
      lvs-dr-xdp) run_lvs_forwarder dr xdp ;;
      lvs-nat-xdp) run_lvs_forwarder nat xdp ;;
    esac
  done
done
# Per scenario, the round that forwarded the most among those measured undisturbed (quiet
# machine, little hypervisor steal), or among all if none was.
BEST=()
for s in "${scenarios[@]}"; do
  best=""
  bkey=-1
  for r in "${RESULTS[@]}"; do
    IFS='|' read -r l _ f _ <<<"$r"
    [ "${l%% *}" = "$s" ] || continue
    key=0
    [ "$f" = "-" ] || key=$f
    [ "$l" = "$s" ] && key=$((key + 1000000000)) # not flagged
    if [ "$key" -gt "$bkey" ]; then best=$r; bkey=$key; fi
  done
  BEST+=("$best")
done
RESULTS=("${BEST[@]}")

if [ "$MARKDOWN" = 1 ]; then
  echo "| scenario | offered (pps) | forwarded (pps) | CPU $FWD_CPU kernel | CPU $FWD_CPU user | CPU-s per Mpkt, forwarder | CPU-s per Mpkt, lvs process | CPU $GEN_CPU (generator) busy |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for r in "${RESULTS[@]}"; do
    IFS='|' read -r l o f k u c p g _ <<<"$r"
    [ "$k" = "-" ] || k="$k %"
    [ "$u" = "-" ] || u="$u %"
    [ "$g" = "-" ] || g="$g %"
    echo "| $l | $o | $f | $k | $u | $c | $p | $g |"
  done
else
  for r in "${RESULTS[@]}"; do echo "$r"; done
fi
