"""Runs PyVRP on the routing benchmark files, for the side-by-side columns of
`cargo bench -p doorstep-solver --bench routing`.

Reads a JSON list of jobs `{"path", "budget_ms", "seed"}` from the file given as the only
argument and prints one JSON object per job and line:
`{"path", "budget_ms", "routes", "cost", "feasible", "elapsed_ms"}` with routes as file node
indices (0 = depot, excluded) and cost in the file's published unit. One interpreter serves
every job so that start-up time is not charged to PyVRP.

The files are parsed here, independently of PyVRP's reader, under the same conventions as the
Rust solver (see shared/bench/routing/README.md):
- TSPTW: duration = distance = the matrix (service folded in); client windows as given; the
  vehicle's shift is [depot earliest, depot latest], so it leaves at or after 0 and must be
  back by the depot's closing time. PyVRP waits for free, like the convention. Exact mapping.
- Solomon: everything in integer tenths, distance = floor(10·euclid), service times x10,
  capacity, 25 vehicles. Exact mapping.
- TSPLIB EUC_2D: nint(euclid), one vehicle, no windows. Exact mapping.
"""

import json
import math
import sys
import time

import numpy as np
from pyvrp import Client, Depot, Location, ProblemData, VehicleType, solve
from pyvrp.stop import MaxRuntime

BIG = 2**40


def parse_tsptw(text):
    toks = [t for line in text.splitlines() if not line.lstrip().startswith("#") for t in line.split()]
    n = int(toks[0])
    vals = [int(float(t)) for t in toks[1 : 1 + n * n + 2 * n]]
    mat = np.array(vals[: n * n], dtype=np.int64).reshape(n, n)
    tw = [(vals[n * n + 2 * i], vals[n * n + 2 * i + 1]) for i in range(n)]
    return dict(n=n, dist=mat, tw=tw, service=[0] * n, demand=[0] * n, capacity=None, vehicles=1, scale=1)


def header(text, key):
    for line in text.splitlines():
        if ":" in line and line.split(":", 1)[0].strip() == key:
            return line.split(":", 1)[1].strip()
    return None


def section(text, name):
    lines = text.splitlines()
    start = [i for i, l in enumerate(lines) if l.strip() == name][0] + 1
    out = []
    for l in lines[start:]:
        s = l.strip()
        if s == "EOF" or s.endswith("_SECTION"):
            break
        if s:
            out.append(s.split())
    return out


def coords(text):
    return [(float(p[1]), float(p[2])) for p in section(text, "NODE_COORD_SECTION")]


def parse_solomon(text):
    xy = coords(text)
    n = len(xy)
    d = np.zeros((n, n), dtype=np.int64)
    for i, (xi, yi) in enumerate(xy):
        for j, (xj, yj) in enumerate(xy):
            sq = int(round((xi - xj) ** 2 + (yi - yj) ** 2)) * 100
            d[i, j] = math.isqrt(sq)
    tw = [(int(p[1]) * 10, int(p[2]) * 10) for p in section(text, "TIME_WINDOW_SECTION")]
    demand = [int(p[1]) for p in section(text, "DEMAND_SECTION")]
    s = int(header(text, "SERVICE_TIME")) * 10
    return dict(n=n, dist=d, tw=tw, service=[0] + [s] * (n - 1), demand=demand,
                capacity=int(header(text, "CAPACITY")), vehicles=int(header(text, "VEHICLES") or 25), scale=10)


def parse_tsplib(text):
    xy = coords(text)
    n = len(xy)
    d = np.zeros((n, n), dtype=np.int64)
    for i, (xi, yi) in enumerate(xy):
        for j, (xj, yj) in enumerate(xy):
            d[i, j] = int(math.floor(math.hypot(xi - xj, yi - yj) + 0.5))
    return dict(n=n, dist=d, tw=[(0, BIG)] * n, service=[0] * n, demand=[0] * n, capacity=None, vehicles=1, scale=1)


def parse(path):
    text = open(path).read()
    first = text.split()[0]
    if first.lstrip("-").isdigit():
        return parse_tsptw(text)
    if "TIME_WINDOW_SECTION" in text:
        return parse_solomon(text)
    return parse_tsplib(text)


def model(inst):
    n = inst["n"]
    cap = inst["capacity"]
    locations = [Location(0.0, 0.0) for _ in range(n)]
    e0, l0 = inst["tw"][0]
    depots = [Depot(0, tw_early=e0, tw_late=l0)]
    clients = [
        Client(i, delivery=[inst["demand"][i]] if cap is not None else [], service_duration=inst["service"][i],
               tw_early=inst["tw"][i][0], tw_late=inst["tw"][i][1])
        for i in range(1, n)
    ]
    vt = VehicleType(num_available=inst["vehicles"], capacity=[cap] if cap is not None else [],
                     tw_early=e0, tw_late=l0)
    # Duration from i to j = travel + service at i is PyVRP's own convention (it adds the
    # service duration of the client it leaves), so the matrices are the plain travel times.
    dist = np.ascontiguousarray(inst["dist"])
    return ProblemData(locations, clients, depots, [vt], [dist], [dist.copy()])


def run(job):
    inst = parse(job["path"])
    data = model(inst)
    t0 = time.perf_counter()
    res = solve(data, stop=MaxRuntime(job["budget_ms"] / 1000.0), seed=job["seed"], display=False)
    elapsed = (time.perf_counter() - t0) * 1000.0
    best = res.best
    # A route iterates scheduled activities; a client's idx counts clients from 0, so the
    # file's node index is idx + 1 (the depot is node 0).
    routes = [[int(a.idx) + 1 for a in r if a.is_client()] for r in best.routes() if r.num_clients() > 0]
    return dict(path=job["path"], budget_ms=job["budget_ms"], routes=routes,
                cost=best.distance() / inst["scale"], feasible=bool(best.is_feasible()), elapsed_ms=elapsed)


def main():
    jobs = json.load(open(sys.argv[1]))
    for job in jobs:
        try:
            out = run(job)
        except Exception as e:  # one bad instance must not end the batch
            out = dict(path=job["path"], budget_ms=job["budget_ms"], error=repr(e))
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
