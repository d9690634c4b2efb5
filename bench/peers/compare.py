#!/usr/bin/env python3
"""Baton against RabbitMQ, NATS JetStream and Redis Streams, side by side, at equal durability.

Starts its own instances (Baton with --fsync always and interval over its wire protocol, and
optionally over HTTP/2 as `baton-http-always`, Redis with appendfsync always
and everysec, a current NATS server with sync_interval always and its default), uses the
machine's RabbitMQ (classic and quorum queues, publisher confirms), runs the same `baton bench`
workloads against each, alternating systems (A B C D ... A B C D ...), and reports medians,
min-max, the server CPU time per message, and Baton's ratio to the best peer.

Usage: bench/peers/run.sh [--runs 5] [--duration-s 10] [--workloads batch100,single,p99]
                          [--systems baton-always,redis-always,...]
Every run is bounded: each workload runs --duration-s seconds (plus a short drain).
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))

# Workloads of issue 5. Each is the `baton bench e2e` options shared by every system; 1 KiB
# messages throughout.
WORKLOADS = {
    "batch100": {
        "title": "end to end, batches of 100, 4 producers, 4 consumers",
        "args": ["--producers", "4", "--consumers", "4", "--batch", "100"],
        "metric": "throughput",
    },
    "single": {
        "title": "end to end, single-message sends, 1 producer with 1,000 in flight, "
        "1 consumer receiving and acking batches of 100",
        "args": ["--producers", "1", "--inflight", "1000", "--batch", "1",
                 "--consumers", "1", "--receive-batch", "100"],
        "metric": "throughput",
    },
    "p99": {
        "title": "latency at a fixed 5,000 msg/s (open loop, from the scheduled send time), "
        "single-message sends with up to 200 in flight, 1 consumer with batches of 100",
        "args": ["--producers", "1", "--inflight", "200", "--batch", "1", "--rate", "5000",
                 "--consumers", "1", "--receive-batch", "100"],
        "metric": "latency",
    },
}


# A Baton consumer keeps up to 4 acks in flight while it receives on, each answered only once
# it is synced. The peers ack as their clients do: RabbitMQ's basic.ack and NATS's ack are not
# waited for at all, Redis's XACK is one round trip before the next XREADGROUP.
BATON_CONSUMER = ["--ack-inflight", "4"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout_s=30.0):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout_s} s")


def cpu_seconds(pid):
    """User + system CPU time of a process, from /proc (clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class System:
    """A broker under test: how to start it, how `baton bench` reaches it, its server pid."""

    def __init__(self, name, label, fsync_before_ack, bench_args, pid=None, proc=None):
        self.name = name
        self.label = label
        self.fsync_before_ack = fsync_before_ack
        self.bench_args = bench_args
        self.pid = pid
        self.proc = proc


def start(cmd, log_path, **kwargs):
    log = open(log_path, "w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, **kwargs)


def start_systems(wanted, baton, nats_server, work):
    systems = []
    procs = []

    def add_baton(name, fsync, label, fsync_before_ack, api_args):
        # `--api wire` upgrades connections on the HTTP port: one port, as users run it.
        port = free_port()
        data = os.path.join(work, name)
        proc = start([baton, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data,
                      "--fsync", fsync],
                     os.path.join(work, f"{name}.log"))
        procs.append(proc)
        wait_port(port)
        systems.append(System(name, label, fsync_before_ack,
                              ["--url", f"http://127.0.0.1:{port}", *api_args],
                              pid=proc.pid, proc=proc))

    def add_redis(name, appendfsync, label, fsync_before_ack):
        port = free_port()
        data = os.path.join(work, name)
        os.makedirs(data)
        proc = start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", data,
                      "--appendonly", "yes", "--appendfsync", appendfsync, "--save", "",
                      "--protected-mode", "no"], os.path.join(work, f"{name}.log"))
        procs.append(proc)
        wait_port(port)
        systems.append(System(name, label, fsync_before_ack,
                              ["--target", "redis", "--target-url", f"redis://127.0.0.1:{port}"],
                              pid=proc.pid, proc=proc))

    def add_nats(name, sync, label, fsync_before_ack):
        port = free_port()
        data = os.path.join(work, name)
        os.makedirs(data)
        config = os.path.join(work, f"{name}.conf")
        with open(config, "w") as f:
            f.write(f'listen: "127.0.0.1:{port}"\n')
            f.write(f'jetstream {{\n  store_dir: "{data}"\n')
            if sync:
                f.write(f"  sync_interval: {sync}\n")
            f.write("}\n")
        proc = start([nats_server, "-c", config], os.path.join(work, f"{name}.log"))
        procs.append(proc)
        wait_port(port)
        systems.append(System(name, label, fsync_before_ack,
                              ["--target", "nats", "--target-url", f"nats://127.0.0.1:{port}"],
                              pid=proc.pid, proc=proc))

    def rabbitmq_pid():
        out = subprocess.run(["pgrep", "-f", "beam.smp.*rabbit"], capture_output=True, text=True)
        pids = out.stdout.split()
        return int(pids[0]) if pids else None

    catalogue = {
        "baton-always": lambda: add_baton("baton-always", "always",
                                          "Baton (wire protocol), fsync always", True,
                                          ["--api", "wire", *BATON_CONSUMER]),
        "baton-interval": lambda: add_baton("baton-interval", "interval=1000",
                                            "Baton (wire protocol), fsync every 1 s", False,
                                            ["--api", "wire", *BATON_CONSUMER]),
        "baton-http-always": lambda: add_baton("baton-http-always", "always",
                                               "Baton (HTTP/2 JSON API), fsync always", True,
                                               ["--http2", *BATON_CONSUMER]),
        "redis-always": lambda: add_redis("redis-always", "always",
                                          "Redis Streams, appendfsync always", True),
        "redis-everysec": lambda: add_redis("redis-everysec", "everysec",
                                            "Redis Streams, appendfsync everysec", False),
        "nats-always": lambda: add_nats("nats-always", "always",
                                        "NATS JetStream, sync_interval always", True),
        "nats-default": lambda: add_nats("nats-default", None,
                                         "NATS JetStream, default sync (2 min)", False),
        "rabbitmq-quorum": lambda: systems.append(System(
            "rabbitmq-quorum", "RabbitMQ quorum queue, confirms", True,
            ["--target", "rabbitmq", "--rabbitmq-quorum"], pid=rabbitmq_pid())),
        "rabbitmq-classic": lambda: systems.append(System(
            "rabbitmq-classic", "RabbitMQ classic durable queue, confirms", True,
            ["--target", "rabbitmq"], pid=rabbitmq_pid())),
    }
    for name in wanted:
        if name not in catalogue:
            raise SystemExit(f"unknown system {name!r}; known: {', '.join(catalogue)}")
        catalogue[name]()
    return systems, procs


def fdatasync_latency(directory, count=500):
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    samples = []
    try:
        block = b"x" * 4096
        for _ in range(count):
            os.write(fd, block)
            begin = time.perf_counter()
            os.fdatasync(fd)
            samples.append((time.perf_counter() - begin) * 1e6)
    finally:
        os.close(fd)
        os.unlink(path)
    samples.sort()
    return {"p50_us": samples[len(samples) // 2], "p99_us": samples[int(len(samples) * 0.99)],
            "per_s": 1e6 / statistics.mean(samples)}


def version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "unknown"


def run_one(baton, system, workload, duration_s):
    cmd = [baton, "bench", "e2e", *system.bench_args, *WORKLOADS[workload]["args"],
           "--message-bytes", "1024", "--duration-s", str(duration_s), "--json", "--no-progress"]
    before = cpu_seconds(system.pid) if system.pid else None
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 120)
    after = cpu_seconds(system.pid) if system.pid else None
    if out.returncode != 0:
        return {"error": (out.stderr or out.stdout).strip()[-500:], "command": " ".join(cmd)}
    report = json.loads(out.stdout)
    report["command"] = " ".join(cmd)
    if before is not None and report.get("acked"):
        report["server_cpu_s"] = after - before
        report["server_cpu_us_per_msg"] = (after - before) * 1e6 / report["acked"]
    return report


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(results, systems, workloads):
    summary = {}
    for workload in workloads:
        rows = {}
        for system in systems:
            runs = [r for r in results if r["workload"] == workload and r["system"] == system.name]
            ok = [r["report"] for r in runs if "error" not in r["report"]]
            rows[system.name] = {
                "label": system.label,
                "fsync_before_ack": system.fsync_before_ack,
                "runs": len(runs),
                "failed": len(runs) - len(ok),
                "throughput": spread([r["received_per_s"] for r in ok]),
                "p50_ms": spread([(r.get("latency_from_schedule") or r.get("latency") or {})
                                  .get("p50_ms") for r in ok]),
                "p99_ms": spread([(r.get("latency_from_schedule") or r.get("latency") or {})
                                  .get("p99_ms") for r in ok]),
                "cpu_us_per_msg": spread([r.get("server_cpu_us_per_msg") for r in ok]),
                "errors": sum(r.get("errors", 0) for r in ok),
            }
        summary[workload] = rows
    return summary


def ratio_lines(workload, rows):
    metric = WORKLOADS[workload]["metric"]
    lines = []
    batons = {k: v for k, v in rows.items() if k.startswith("baton")}
    peers = {k: v for k, v in rows.items() if not k.startswith("baton")}
    for baton_name, baton in batons.items():
        for label, pool in (("best peer that fsyncs before acking",
                             {k: v for k, v in peers.items() if v["fsync_before_ack"]}),
                            ("best peer at any durability", peers)):
            if metric == "throughput":
                scored = [(v["throughput"]["median"], k) for k, v in pool.items() if v["throughput"]]
                if not scored or not baton["throughput"]:
                    continue
                best, name = max(scored)
                lines.append(f"- {baton['label']} / {label} ({name}): "
                             f"{baton['throughput']['median'] / best:.2f}× throughput")
            else:
                scored = [(v["p99_ms"]["median"], k) for k, v in pool.items() if v["p99_ms"]]
                if not scored or not baton["p99_ms"]:
                    continue
                best, name = min(scored)
                lines.append(f"- {baton['label']} p99 {baton['p99_ms']['median']:.2f} ms vs "
                             f"{label} ({name}) {best:.2f} ms")
    return lines


def fmt(spread_value, digits=0):
    if not spread_value:
        return "—"
    f = f"{{:,.{digits}f}}"
    return (f"{f.format(spread_value['median'])} "
            f"({f.format(spread_value['min'])}–{f.format(spread_value['max'])})")


def markdown(meta, summary):
    out = [f"### Peer comparison, {meta['date']}", "",
           f"Machine: {meta['cores']} cores, {meta['memory_gib']:.0f} GiB, {meta['kernel']}; "
           f"fdatasync of 4 KiB: p50 {meta['fdatasync']['p50_us']:.0f} µs, "
           f"p99 {meta['fdatasync']['p99_us']:.0f} µs "
           f"({meta['fdatasync']['per_s']:,.0f}/s).",
           "Versions: " + "; ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
           f"Command: `{meta['command']}` — {meta['runs']} runs of {meta['duration_s']} s per "
           "workload and system, systems alternating within each round; 1 KiB messages; "
           "medians with min–max; server CPU = user + system time of the broker process "
           "during the run / messages acked.", ""]
    for workload, rows in summary.items():
        metric = WORKLOADS[workload]["metric"]
        out.append(f"**{workload}** — {WORKLOADS[workload]['title']}")
        out.append("")
        out.append("| system | fsync before ack | msg/s | p50 ms | p99 ms | server CPU µs/msg |"
                   " failed runs |")
        out.append("|---|---|---|---|---|---|---|")
        for row in rows.values():
            out.append(f"| {row['label']} | {'yes' if row['fsync_before_ack'] else 'no'} | "
                       f"{fmt(row['throughput'])} | {fmt(row['p50_ms'], 2)} | "
                       f"{fmt(row['p99_ms'], 2)} | {fmt(row['cpu_us_per_msg'], 1)} | "
                       f"{row['failed']}/{row['runs']} |")
        out.append("")
        out.extend(ratio_lines(workload, rows))
        if metric == "latency":
            out.append("- (latency is measured from each message's scheduled send time, which "
                       "corrects for coordinated omission)")
        out.append("")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baton", default=os.path.join(ROOT, "target", "release", "baton"))
    parser.add_argument("--nats-server", required=True, help="a NATS server >= 2.10 binary")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration-s", type=int, default=10)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--systems", default="baton-always,baton-interval,redis-always,"
                        "redis-everysec,nats-always,nats-default,rabbitmq-quorum,"
                        "rabbitmq-classic")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    if not 1 <= args.runs <= 20 or not 1 <= args.duration_s <= 120:
        raise SystemExit("--runs must be 1..20 and --duration-s 1..120")
    workloads = args.workloads.split(",")
    for workload in workloads:
        if workload not in WORKLOADS:
            raise SystemExit(f"unknown workload {workload!r}; known: {', '.join(WORKLOADS)}")

    work = tempfile.mkdtemp(prefix="baton-peers-", dir=os.environ.get("BENCH_TMP", ROOT))
    systems, procs = start_systems(args.systems.split(","), args.baton, args.nats_server, work)
    results = []
    try:
        meta = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cores": os.cpu_count(),
            "memory_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
            "kernel": platform.platform(),
            "fdatasync": fdatasync_latency(work),
            "versions": {
                "baton": version([args.baton, "--version"]),
                "redis": version(["redis-server", "--version"]),
                "nats-server": version([args.nats_server, "--version"]),
                "rabbitmq": version(["rabbitmqctl", "version"]),
            },
            "command": " ".join(["bench/peers/run.sh", *sys.argv[1:]]),
            "runs": args.runs,
            "duration_s": args.duration_s,
        }
        total = args.runs * len(workloads) * len(systems)
        done = 0
        for round_ in range(1, args.runs + 1):
            for workload in workloads:
                for system in systems:
                    done += 1
                    report = run_one(args.baton, system, workload, args.duration_s)
                    results.append({"round": round_, "workload": workload,
                                    "system": system.name, "report": report})
                    shown = (f"error: {report['error']}" if "error" in report else
                             f"{report['received_per_s']:,.0f} msg/s, "
                             f"cpu {report.get('server_cpu_us_per_msg', float('nan')):.1f} µs/msg")
                    print(f"[{done}/{total}] round {round_} {workload:<8} {system.name:<17} "
                          f"{shown}", file=sys.stderr, flush=True)
        summary = summarise(results, systems, workloads)
        text = markdown(meta, summary)
        os.makedirs(args.out, exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        with open(os.path.join(args.out, f"{stamp}.json"), "w") as f:
            json.dump({"meta": meta, "summary": summary, "results": results}, f, indent=1)
        with open(os.path.join(args.out, f"{stamp}.md"), "w") as f:
            f.write(text + "\n")
        print(text)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
