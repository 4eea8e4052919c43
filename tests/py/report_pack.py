"""A reference reader of the HTML report's data, for tests: the JSON in
tp-data and the packed tree in tp-tree and tp-members (docs/API.md "The
packed report tree"), written from the spec apart from the page's reader (web/js/packed.js)."""

import base64
import json
import re
import zlib

FLAGS = ["exc", "caught", "open", "gen", "folded", "args_mixed", "ret_mixed",
         "spawned", "calls_mixed", "seq", "mem"]


def _reader(buf, pos=0):
    state = {"p": pos}

    def uv():
        x, shift = 0, 0
        while True:
            b = buf[state["p"]]
            state["p"] += 1
            x |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return x

    def sv():
        u = uv()
        return -(u + 1) // 2 if u & 1 else u // 2

    return uv, sv, state


def unpack(buf):
    """The packed tree's roots as nested node dicts (the API's node fields,
    with "kids" always present, "call" and "rparent" the raw call number and
    its parent's, and "calls" the raw calls of a group the file holds: dicts
    of "call", "parent", "kids", "depth", "args", "ret", "start", "end")."""
    assert buf[:4] == b"TPK2"
    uv, sv, st = _reader(buf, 4)
    strs = [None]
    for _ in range(uv()):
        n = uv()
        strs.append(buf[st["p"]:st["p"] + n].decode("utf-8", "replace"))
        st["p"] += n
    funcs = []
    seen = [0]
    for _ in range(uv()):
        m, q, f = uv(), uv(), uv()
        seen[0] = max(seen[0], m, q, f)
        funcs.append((strs[m], strs[q], strs[f], sv()))

    def sref():
        # 0 none, 1 the next string not used yet, k + 1 the earlier string k.
        v = uv()
        if v == 1:
            seen[0] += 1
            return seen[0]
        return v - 1 if v else 0
    n = uv()
    strcols = {"args", "ret", "exc_type", "exc_msg"}
    cols = {}
    for name, signed in [("up", 0), ("func", 0), ("depth", 1), ("thread", 0), ("count", 0),
                         ("flags", 0), ("start", 1), ("span", 1), ("total", 1), ("self", 1),
                         ("min", 1), ("max", 1), ("args", 0), ("ret", 0), ("exc_type", 0),
                         ("exc_msg", 0), ("nexc", 0), ("suspends", 0), ("seq", 0), ("mem", 1),
                         ("call", 1), ("rparent", 1)]:
        cols[name] = [sref() if name in strcols else sv() if signed else uv() for _ in range(n)]
    for _ in range(uv()):  # the strings only the groups' calls use
        m = uv()
        strs.append(buf[st["p"]:st["p"] + m].decode("utf-8", "replace"))
        st["p"] += m
    max_members = uv()
    groups = []
    node = 0
    for _ in range(uv()):
        node += uv()
        groups.append((node, uv()))
    nm = sum(g[1] for g in groups)
    mcols = {}
    for name, signed in [("call", 1), ("rparent", 1), ("kids", 0), ("depth", 1), ("thread", 0),
                         ("count", 0), ("flags", 0), ("start", 1), ("span", 1), ("total", 1),
                         ("self", 1), ("min", 1), ("max", 1), ("args", 0), ("ret", 0),
                         ("exc_type", 0), ("exc_msg", 0), ("nexc", 0), ("suspends", 0), ("mem", 1)]:
        mcols[name] = [sref() if name in strcols else sv() if signed else uv() for _ in range(nm)]
    assert st["p"] == len(buf), "trailing bytes"
    nodes, roots, path = [], [], []
    prev_call = -1
    for i in range(n):
        level = len(path) - cols["up"][i]
        del path[level:]
        parent = path[-1] if path else None
        siblings = nodes[parent]["kids"] if parent is not None else roots
        ref = siblings[-1]["_end"] if siblings else (nodes[parent]["_start"] if parent is not None else 0)
        start = ref + cols["start"][i]
        end = start + cols["span"][i]
        total = end - start + cols["total"][i]
        mn = total - cols["min"][i]
        mod, qual, file, line = funcs[cols["func"][i]]
        bits = cols["flags"][i]
        node = {
            "id": i, "name": qual, "module": mod, "file": file, "line": line,
            "depth": level + cols["depth"][i], "parent": parent, "thread": cols["thread"][i],
            "count": cols["count"][i], "_start": start, "_end": end, "total_ns": total,
            "self_ns": total - cols["self"][i], "min_ns": mn, "max_ns": mn + cols["max"][i],
            "args": strs[cols["args"][i]], "ret": strs[cols["ret"][i]],
            "exc": None if not cols["exc_type"][i] else {
                "type": strs[cols["exc_type"][i]], "msg": strs[cols["exc_msg"][i]] or "",
                "caught": not bits & 1},
            "nexc": cols["nexc"][i], "suspends": cols["suspends"][i], "seq": cols["seq"][i],
            "mem": cols["mem"][i], "flags": [f for k, f in enumerate(FLAGS) if bits >> k & 1],
            "kids": [],
        }
        node["call"] = prev_call = prev_call + 1 + cols["call"][i]
        ref = (siblings[-1]["_rp"] if siblings else nodes[parent]["call"] + 1 if parent is not None else 0)
        node["_rp"] = ref + cols["rparent"][i]
        node["rparent"] = node["_rp"] - 1 if node["_rp"] else None
        nodes.append(node)
        siblings.append(node)
        path.append(i)
    k = 0
    for g, ncalls in groups:
        nd, calls = nodes[g], []
        call, rp, end = nd["call"], nd["_rp"], nd["_start"]
        for _ in range(ncalls):
            call += mcols["call"][k]
            rp += mcols["rparent"][k]
            start = end + mcols["start"][k]
            end = start + mcols["span"][k]
            calls.append({"call": call, "parent": rp - 1 if rp else None, "kids": mcols["kids"][k],
                          "depth": nd["depth"] + mcols["depth"][k], "args": strs[mcols["args"][k]],
                          "ret": strs[mcols["ret"][k]], "start": start, "end": end})
            k += 1
        nd["calls"] = calls
    roots_info = {"max_members": max_members}
    for r in roots:
        r.setdefault("_pack", roots_info)
    return roots


def report_data(html):
    """(the tp-data JSON, the packed tree's roots) of an HTML report: the
    tp-tree element's bytes, then the tp-members element's (the groups'
    calls), one packed stream."""
    data = re.search(r'<script type="application/json" id="tp-data">(.*?)</script>', html, re.S)
    parts = [re.search(r'<script type="application/octet-stream" id="%s">([A-Za-z0-9+/=]*)</script>'
                       % name, html) for name in ("tp-tree", "tp-members")]
    assert data is not None and None not in parts
    buf = b"".join(zlib.decompress(base64.b64decode(p.group(1))) for p in parts)
    return json.loads(data.group(1)), unpack(buf)
