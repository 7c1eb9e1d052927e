#!/usr/bin/env python3
"""Aggregates one bench/run.sh run: fio JSON files -> one table and one JSON.

run.sh writes, in its work directory:
  meta.json       mode, sizes, machine, job parameters, configs, jobs
  runs.jsonl      one line per fio run: config, target, profile, section, the
                  path of fio's JSON output, fio's exit status, the CPU
                  ticks the daemons spent during the measured window (after
                  the ramp) per process, and the machine's context switches
                  in that window (/proc/stat ctxt)
  timings.jsonl   other timings (snapshot create, ...), one line each

This script reads them, computes per row IOPS, MiB/s, mean and p99 latency
(fio's lat_ns: submission to completion), the ratio to raw (same job, raw's
file) and to the FUSE floor (same target, same job), the daemons' CPU
seconds per GiB moved and microseconds per I/O, the machine's context
switches per I/O, prints the table, writes the result JSON, and with
--check fails (exit 1) unless every fio run finished with 0 errors and
non-zero IOPS, every expected row exists, the ratios and context switches
are computed, and the JSON it wrote parses back. Standard library only.
"""

import argparse
import json
import math
import os
import sys

MiB = 1 << 20
GiB = 1 << 30

# profile -> what its jobs do (../shared/bench/*.fio)
PROFILE_LABEL = {
    "iops": "4k QD64",
    "bandwidth": "128k QD64",
    "latency": "4k QD1",
    "flush": "4k QD1",
}


def load_jsonl(path):
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise SystemExit(f"report: {path}:{n}: not JSON: {e}")
    return out


def fio_figures(path):
    """IOPS, MiB/s, mean/p99 latency (us), bytes moved and error of one fio run."""
    with open(path) as f:
        text = f.read()
    # fio may print notes before the JSON document.
    start = text.find("{")
    if start < 0:
        raise ValueError(f"{path}: no JSON in fio output")
    doc = json.loads(text[start:])
    jobs = doc.get("jobs", [])
    if len(jobs) != 1:
        raise ValueError(f"{path}: expected one fio job, found {len(jobs)}")
    job = jobs[0]
    iops = bw = io_bytes = 0.0
    ios_total = 0
    lat_mean = lat_p99 = 0.0
    weight = 0.0
    for d in ("read", "write", "trim"):
        s = job.get(d, {})
        ios = s.get("total_ios", 0) or 0
        if ios == 0:
            continue
        ios_total += ios
        iops += s.get("iops", 0.0)
        bw += s.get("bw_bytes", 0.0)
        io_bytes += s.get("io_bytes", 0.0)
        lat = s.get("lat_ns", {})
        pct = lat.get("percentile") or s.get("clat_ns", {}).get("percentile") or {}
        p99 = pct.get("99.000000", 0.0)
        lat_mean += lat.get("mean", 0.0) * ios
        lat_p99 = max(lat_p99, p99)
        weight += ios
    sync = job.get("sync", {})
    return {
        "iops": iops,
        "mib_s": bw / MiB,
        "lat_mean_us": (lat_mean / weight / 1000.0) if weight else 0.0,
        "lat_p99_us": lat_p99 / 1000.0,
        "bytes": io_bytes,
        "ios": ios_total,
        "error": job.get("error", 0),
        "runtime_ms": job.get("job_runtime", 0),
        "fsync_mean_us": (sync.get("lat_ns", {}).get("mean", 0.0) / 1000.0) if sync else None,
        "fio_job_options": job.get("job options", {}),
    }


def ratio(a, b):
    return a / b if b else None


def fmt(v, spec, none="-"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return none
    return format(v, spec)


def build(meta, runs, timings):
    rows, problems = [], []
    ticks = meta.get("clk_tck", 100)
    for r in runs:
        row = {k: r[k] for k in ("config", "target", "profile", "section")}
        row["job"] = f"{PROFILE_LABEL.get(r['profile'], r['profile'])} {r['section']}"
        row["fio_status"] = r.get("status", 0)
        row["load1_at_start"] = r.get("load1")
        try:
            row.update(fio_figures(r["fio_json"]))
        except (OSError, ValueError, json.JSONDecodeError) as e:
            problems.append(f"{r['config']}/{r['target']}/{r['profile']}/{r['section']}: {e}")
            row.update(iops=0.0, mib_s=0.0, lat_mean_us=0.0, lat_p99_us=0.0, bytes=0.0,
                       ios=0, error=-1, runtime_ms=0)
        cpu = r.get("cpu_ticks")  # {process: ticks} in the measured window
        if cpu:
            row["daemon_cpu_s"] = {p: t / ticks for p, t in cpu.items()}
            total = sum(cpu.values()) / ticks
            row["daemon_cpu_s_total"] = total
            row["cpu_s_per_gib"] = total / (row["bytes"] / GiB) if row["bytes"] else None
            row["cpu_us_per_io"] = total * 1e6 / row["ios"] if row["ios"] else None
        else:
            row["cpu_s_per_gib"] = None
            row["cpu_us_per_io"] = None
        # The whole machine's context switches (fio, the kernel's workers,
        # the daemons, and whatever else runs) per I/O fio completed.
        row["context_switches"] = r.get("ctxt")
        row["cs_per_io"] = r["ctxt"] / row["ios"] if r.get("ctxt") is not None and row["ios"] else None
        rows.append(row)

    def find(config, target, profile, section):
        for x in rows:
            if (x["config"], x["target"], x["profile"], x["section"]) == (config, target, profile, section):
                return x
        return None

    for x in rows:
        raw = find("raw", "file", x["profile"], x["section"])
        floor = find("fuse-floor", x["target"], x["profile"], x["section"])
        x["ratio_raw"] = ratio(x["iops"], raw["iops"]) if raw else None
        x["ratio_floor"] = ratio(x["iops"], floor["iops"]) if floor else None
        x["lat_over_floor_us"] = (x["lat_mean_us"] - floor["lat_mean_us"]) if floor else None

    # CPU per GiB per config and target, over the measured windows.
    cpu_summary = []
    seen = []
    for x in rows:
        key = (x["config"], x["target"])
        if "daemon_cpu_s" in x and key not in seen:
            seen.append(key)
    for config, target in seen:
        sel = [x for x in rows if (x["config"], x["target"]) == (config, target) and "daemon_cpu_s" in x]
        per_proc = {}
        for x in sel:
            for p, s in x["daemon_cpu_s"].items():
                per_proc[p] = per_proc.get(p, 0.0) + s
        gib = sum(x["bytes"] for x in sel) / GiB
        ios = sum(x["ios"] for x in sel)
        total = sum(per_proc.values())
        cpu_summary.append({
            "config": config, "target": target, "cpu_s": total, "gib": gib, "ios": ios,
            "cpu_s_per_gib": total / gib if gib else None,
            "cpu_us_per_io": total * 1e6 / ios if ios else None, "per_process_cpu_s": per_proc,
        })
    return rows, cpu_summary, problems


def targets(rows):
    """Issue 5's targets, evaluated on whatever rows this run has."""
    def get(config, target, profile, section):
        for x in rows:
            if (x["config"], x["target"], x["profile"], x["section"]) == (config, target, profile, section):
                return x
        return None

    out = []
    for target in ("blk", "fs"):
        for profile, section, need in (("iops", "randread", 0.85), ("iops", "randwrite", 0.85),
                                       ("bandwidth", "randread", 0.90), ("bandwidth", "randwrite", 0.90),
                                       ("bandwidth", "read", 0.90), ("bandwidth", "write", 0.90)):
            x = get("shorthorn-1", target, profile, section)
            if x and x["ratio_floor"] is not None:
                out.append({"what": f"shorthorn-1 {target} {x['job']} >= {need:.0%} of fuse-floor",
                            "value": f"{x['ratio_floor']:.0%}", "met": x["ratio_floor"] >= need})
        x = get("shorthorn-1", target, "latency", "randwrite")
        if x and x["lat_over_floor_us"] is not None:
            out.append({"what": f"shorthorn-1 {target} 4k QD1 randwrite mean latency <= fuse-floor + 40 us",
                        "value": f"{x['lat_over_floor_us']:+.0f} us", "met": x["lat_over_floor_us"] <= 40})
        x = get("shorthorn-3", target, "iops", "randwrite")
        floor = get("fuse-floor", target, "iops", "randwrite")
        raw = get("raw", "file", "iops", "randwrite")
        if x and floor and raw:
            bound = min(floor["iops"], raw["iops"] / 3)
            out.append({"what": f"shorthorn-3 {target} 4k QD64 randwrite >= 80% of min(floor, raw/3)",
                        "value": f"{x['iops'] / bound:.0%} of {bound:,.0f}", "met": x["iops"] >= 0.8 * bound})
    return out


def print_table(meta, rows, cpu_summary, timings, goals):
    print()
    mode = meta["mode"] + (" (ramp/runtime overridden)" if meta.get("ramp_runtime_overridden") else "")
    print(f"Shorthorn bench, mode {mode}: size {meta['size_mib']} MiB per target, "
          f"ramp {meta['ramp']}, runtime {meta['runtime']}, {meta['nproc']} CPUs, kernel {meta['kernel']}")
    head = (f"{'config':<12} {'target':<6} {'job':<28} {'IOPS':>9} {'MiB/s':>8} {'mean us':>9} "
            f"{'p99 us':>9} {'x raw':>6} {'x floor':>7} {'+us/floor':>9} {'cpu s/GiB':>9} "
            f"{'cpu us/IO':>9} {'cs/IO':>6}")
    print(head)
    print("-" * len(head))
    for x in rows:
        bad = "" if x["error"] == 0 and x["fio_status"] == 0 and x["iops"] > 0 else "  FAILED"
        print(f"{x['config']:<12} {x['target']:<6} {x['job']:<28} {x['iops']:>9,.0f} {x['mib_s']:>8.1f} "
              f"{x['lat_mean_us']:>9.1f} {x['lat_p99_us']:>9.1f} {fmt(x['ratio_raw'], '6.2f'):>6} "
              f"{fmt(x['ratio_floor'], '7.2f'):>7} {fmt(x['lat_over_floor_us'], '+9.1f'):>9} "
              f"{fmt(x['cpu_s_per_gib'], '9.2f'):>9} {fmt(x.get('cpu_us_per_io'), '9.1f'):>9} "
              f"{fmt(x.get('cs_per_io'), '6.2f'):>6}{bad}")
    print("x raw: IOPS / raw file's IOPS (same job); x floor: IOPS / fuse-floor's (same target, same job);")
    print("+us/floor: mean latency minus fuse-floor's; cpu s/GiB, cpu us/IO: daemon CPU seconds per GiB "
          "moved and microseconds per I/O")
    print("(fuse_floor, or fused + the volume's replicads); cs/IO: the machine's context switches "
          "(/proc/stat ctxt) per I/O; all measured after the ramp.")
    if cpu_summary:
        print()
        print("Daemon CPU per GiB moved (all jobs of a target, measured windows):")
        for c in cpu_summary:
            procs = ", ".join(f"{p} {s:.1f}s" for p, s in sorted(c["per_process_cpu_s"].items()))
            print(f"  {c['config']:<12} {c['target']:<4} {fmt(c['cpu_s_per_gib'], '.2f')} s/GiB, "
                  f"{fmt(c['cpu_us_per_io'], '.1f')} us/IO ({c['cpu_s']:.1f} s over {c['gib']:.2f} GiB, "
                  f"{c['ios']:,} I/Os: {procs})")
    loads = {}
    for x in rows:
        if x.get("load1_at_start") is not None:
            loads.setdefault(x["config"], []).append(x["load1_at_start"])
    if loads:
        ranges = ", ".join(f"{c} {min(v):.1f}..{max(v):.1f}" for c, v in loads.items())
        print(f"Machine load (1-min average) when jobs started, on {meta['nproc']} CPUs: {ranges}.")
        print("  Linux counts runnable and I/O-blocked threads, so the daemons' own threads raise it "
              "with each replica; a config's load far above the same config's in another run means other work.")
    print()
    print("Other timings (same run):")
    for t in timings:
        print(f"  {t['label']}: {t['text']}")
    if goals:
        print()
        print("Issue 5 targets (on the rows this run has):")
        for g in goals:
            print(f"  [{'met' if g['met'] else 'NOT met'}] {g['what']}: {g['value']}")


def summarize_timings(timings):
    out = []
    for t in timings:
        t = dict(t)
        kind = t.get("kind")
        if kind == "samples_ms":
            s = sorted(t["samples_ms"])
            if s:
                t["median_ms"] = s[len(s) // 2]
                t["min_ms"], t["max_ms"] = s[0], s[-1]
                t["text"] = (f"median {t['median_ms']:.1f} ms (min {s[0]:.1f}, max {s[-1]:.1f}, "
                             f"n={len(s)}){t.get('note', '')}")
            else:
                t["text"] = "no samples"
        elif kind == "fio_throughput":
            try:
                f = fio_figures(t["fio_json"])
                t["mib_s"] = f["mib_s"]
                t["error"] = f["error"]
                t["text"] = f"{f['mib_s']:.0f} MiB/s{t.get('note', '')}"
            except (OSError, ValueError, json.JSONDecodeError) as e:
                t["text"] = f"unreadable ({e})"
                t["error"] = -1
        elif kind == "rate":
            secs, nbytes = t.get("seconds") or 0, t.get("bytes") or 0
            if secs > 0 and nbytes > 0:
                t["mib_s"] = nbytes / MiB / secs
                t["text"] = f"{t['mib_s']:.0f} MiB/s ({nbytes / MiB:.0f} MiB in {secs:.1f} s)"
            else:
                t["error"] = -1
                t["text"] = f"no rate ({nbytes} bytes in {secs} s)"
        else:
            t.setdefault("text", t.get("note", ""))
        out.append(t)
    raw = [t for t in out if t.get("kind") == "fio_throughput" and t.get("mib_s")]
    for t in out:
        if t.get("compare_raw") and t.get("mib_s") and raw:
            t["x_raw_seq_write"] = t["mib_s"] / raw[0]["mib_s"]
            t["text"] += f", {t['x_raw_seq_write']:.2f} x the raw disk's sequential write"
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, help="run.sh's work directory")
    ap.add_argument("--out", required=True, help="result JSON to write")
    ap.add_argument("--check", action="store_true", help="fail unless the run is sound")
    a = ap.parse_args()

    with open(os.path.join(a.work, "meta.json")) as f:
        meta = json.load(f)
    runs = load_jsonl(os.path.join(a.work, "runs.jsonl"))
    timings = summarize_timings(load_jsonl(os.path.join(a.work, "timings.jsonl")))
    rows, cpu_summary, problems = build(meta, runs, timings)
    goals = targets(rows)
    print_table(meta, rows, cpu_summary, timings, goals)

    result = {"meta": meta, "rows": rows, "cpu": cpu_summary, "timings": timings,
              "issue5_targets": goals, "problems": problems}
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
    os.replace(tmp, a.out)
    print(f"\nJSON: {a.out}")

    if not a.check:
        return 0
    # The checks: a harness that can fail.
    with open(a.out) as f:
        back = json.load(f)
    expected = {(c, t, p, s) for c, t in meta["targets"] for p, s in meta["jobs"]}
    have = {(x["config"], x["target"], x["profile"], x["section"]) for x in back["rows"]}
    for miss in sorted(expected - have):
        problems.append("no result for " + "/".join(miss))
    for x in back["rows"]:
        name = f"{x['config']}/{x['target']}/{x['profile']}/{x['section']}"
        if x["fio_status"] != 0:
            problems.append(f"{name}: fio exited with status {x['fio_status']}")
        if x["error"] != 0:
            problems.append(f"{name}: fio reports error {x['error']}")
        if not x["iops"] > 0:
            problems.append(f"{name}: IOPS is {x['iops']}")
        if "raw" in meta["configs"] and not (x["ratio_raw"] and math.isfinite(x["ratio_raw"])):
            problems.append(f"{name}: no ratio to raw")
        if ("fuse-floor" in meta["configs"] and x["config"] != "raw"
                and not (x["ratio_floor"] and math.isfinite(x["ratio_floor"]))):
            problems.append(f"{name}: no ratio to fuse-floor")
        if (x["config"].startswith("shorthorn") or x["config"].startswith("fuse-")) and not x.get("cpu_s_per_gib"):
            problems.append(f"{name}: no daemon CPU per GiB")
        if not (x.get("cs_per_io") and math.isfinite(x["cs_per_io"])):
            problems.append(f"{name}: no context switches per I/O")
    for t in back["timings"]:
        if t.get("required") and (t.get("error") not in (None, 0) or
                                  (t.get("kind") == "samples_ms" and not t.get("samples_ms"))):
            problems.append(f"timing {t['label']}: {t.get('text')}")
    if problems:
        print("\nCHECK FAILED:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        return 1
    print(f"CHECK OK: {len(back['rows'])} fio runs with 0 errors and non-zero IOPS, ratios computed, "
          "JSON parses")
    return 0


if __name__ == "__main__":
    sys.exit(main())
